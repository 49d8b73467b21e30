//! Integration tests of `portcullis-postgres`: one binary, one fresh
//! database per test on the server of `PORTCULLIS_TEST_DATABASE_URL`
//! (default: PostgreSQL on 127.0.0.1:5432 with trust auth).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "tests: a failed set-up panics saying what failed, and tests read the real clock and draw ids as the code under test does"
)]

mod attempts;
mod audit;
mod conformance;
mod errors;
mod migrations;
mod outage;
mod snapshot;
mod support;
