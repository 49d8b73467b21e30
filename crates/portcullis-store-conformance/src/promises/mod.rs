//! The promises, one public function each, generic over the store. Every
//! function takes a fresh, empty store and panics, saying which promise
//! broke, when the store does not keep it.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod listing;
pub mod refresh;
pub mod sessions;
pub mod signing_keys;
pub mod users;

use portcullis_domain::ports::Store;
use portcullis_domain::{NewApiKey, NewSession, RefreshOutcome, RefreshTokenHash, User};
use time::OffsetDateTime;

use crate::fixtures::{
    DAY, NO_CAP, audit_context, audit_record, new_api_key, new_session, new_user, token_hash,
};

/// Inserts `user`, which must succeed.
async fn insert<S: Store + ?Sized>(store: &S, user: &User) {
    store
        .insert_user(&new_user(user), &audit_record(user.created_at))
        .await
        .expect("inserting a new user succeeds");
}

/// Starts a [`new_session`] of `user` at `started` (no cap reached).
async fn start<S: Store + ?Sized>(store: &S, user: &User, started: OffsetDateTime) -> NewSession {
    let session = new_session(user, started);
    store
        .create_session(&session, NO_CAP, DAY, &audit_record(started))
        .await
        .expect("creating a session succeeds");
    session
}

/// Whether `session` is active at `now` with a [`DAY`]'s idle timeout.
async fn is_active<S: Store + ?Sized>(
    store: &S,
    session: &NewSession,
    now: OffsetDateTime,
) -> bool {
    store
        .find_active_session(session.id, session.user_id, now, DAY)
        .await
        .expect("finding a session succeeds")
        .is_some()
}

/// Stores a [`new_api_key`] of `user` created at `created` (no cap reached).
async fn create_key<S: Store + ?Sized>(
    store: &S,
    user: &User,
    created: OffsetDateTime,
) -> NewApiKey {
    let key = new_api_key(user, created);
    store
        .create_api_key(&key, NO_CAP, &audit_record(created))
        .await
        .expect("creating a key succeeds");
    key
}

/// Whether `key` authenticates at `now`.
async fn authenticates<S: Store + ?Sized>(store: &S, key: &NewApiKey, now: OffsetDateTime) -> bool {
    store
        .authenticate_api_key(&key.key_hash, now)
        .await
        .expect("authenticating a key succeeds")
        .is_some()
}

/// Rotates `presented` at `now` with a [`DAY`]'s idle timeout and returns
/// the outcome and the replacement offered.
async fn rotate<S: Store + ?Sized>(
    store: &S,
    presented: &RefreshTokenHash,
    now: OffsetDateTime,
) -> (RefreshOutcome, RefreshTokenHash) {
    let replacement = token_hash();
    let outcome = store
        .rotate_refresh_token(presented, &replacement, now, DAY, &audit_context(now))
        .await
        .expect("presenting a refresh token succeeds");
    (outcome, replacement)
}
