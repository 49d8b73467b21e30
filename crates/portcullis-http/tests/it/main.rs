//! The HTTP layer driven in-process with poem's `TestClient`, over the
//! in-memory store and fakes of the other ports: what the endpoints of the
//! key set, the metadata, introspection and key administration answer.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "tests: a failed set-up panics saying what failed, and tests draw ids as the code under test does"
)]

mod fakes;
mod introspection;
mod keys;
mod publication;
