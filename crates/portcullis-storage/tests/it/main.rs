//! Integration tests of `portcullis-storage`: one binary, one fresh database
//! file in its own temporary directory per test.

mod admin;
mod api_keys;
mod database;
mod email_key;
mod quotas;
mod refresh;
mod session_lifecycle;
mod sessions;
mod support;
mod users;
