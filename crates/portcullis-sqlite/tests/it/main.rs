//! Integration tests of `portcullis-sqlite`: one binary, one fresh database
//! file in its own temporary directory per test.

#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "tests: a failed set-up panics saying what failed, and tests read the real clock and draw ids as the code under test does"
)]

mod admin;
mod api_keys;
mod audit;
mod conformance;
mod database;
mod email_key;
mod quotas;
mod refresh;
mod session_lifecycle;
mod sessions;
mod snapshot;
mod support;
mod users;
