//! Use-case tests of `AuthService` over in-memory fakes of every port, with a
//! clock the tests move.

#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "tests: a failed set-up panics saying what failed, and tests read the real clock and draw ids as the code under test does"
)]

mod audit;
mod credentials;
mod fakes;
mod keys;
mod lifecycle;
mod login;
mod normalisation;
mod properties;
mod quotas;
mod register;
mod tokens;
