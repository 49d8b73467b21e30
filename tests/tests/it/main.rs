//! Black-box tests of Portcullis: each test starts the real application on
//! port 0 with a fresh temporary data directory (see `portcullis_tests`) and
//! checks the HTTP contract (`CONTRACT.md`) from the outside.

mod abuse;
mod admin;
mod credentials;
mod documents;
mod enforcement;
mod errors;
mod hardening;
mod layering;
mod lifecycle;
mod quotas;
mod register;
mod storage_secrets;
mod support;
mod token;
mod transport;
mod unicode_identity;
mod users;
