//! The verifier against real HTTP: small key servers this suite controls
//! (`key_server`), and the real Portcullis started in-process
//! (`portcullis_server`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed set-up must fail the test at once"
)]

mod claims;
mod extractor;
mod fetching;
mod forgery;
mod portcullis_server;
mod support;
