//! Black-box tests of Portcullis: each test starts the real application on
//! port 0 with a fresh temporary data directory (see `portcullis_tests`) and
//! checks the HTTP contract (`CONTRACT.md`) from the outside.

#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "tests: a failed set-up panics saying what failed, and tests read the real clock and draw ids as the code under test does"
)]

mod abuse;
mod admin;
mod audit;
mod credentials;
mod db_copy;
mod documents;
mod enforcement;
mod errors;
mod hardening;
mod layering;
mod lifecycle;
mod metrics;
mod multi_node;
mod postgres_tls;
mod publication;
mod quotas;
mod register;
mod signing_keys;
mod storage_secrets;
mod support;
mod token;
mod transport;
mod unicode_identity;
mod users;
