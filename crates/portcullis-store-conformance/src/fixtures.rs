//! Values the promises are checked with: fixed times in whole seconds (what
//! every store keeps), accounts, sessions and keys with fresh ids and
//! stand-in hashes, and a stand-in audit key.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::audit::{AuditContext, AuditEvent, AuditKey, AuditMac, AuditRecord};
use portcullis_domain::{
    ApiKeyHash, ApiKeyId, ApiKeyName, EmailAddress, NewApiKey, NewSession, NewUser,
    PasswordHashString, RefreshTokenHash, Role, Scope, ScopeSet, SessionId, User, UserId, Username,
};
use time::OffsetDateTime;

/// One hour.
pub const HOUR: Duration = Duration::from_secs(60 * 60);
/// One day: the lifetime and idle timeout of fixture sessions.
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// A session cap no fixture reaches.
pub const NO_CAP: u32 = 1000;

/// A fixed moment, in whole seconds.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// [`t0`] plus `offset`.
pub fn at(offset: Duration) -> OffsetDateTime {
    t0() + offset
}

/// An enabled user account created at [`t0`].
///
/// # Panics
/// When `username` or `email` is not valid: a mistake in the suite.
pub fn user(username: &str, email: &str) -> User {
    User {
        id: UserId::random(),
        username: name(username),
        email: email_address(email),
        full_name: None,
        role: Role::User,
        disabled: false,
        created_at: t0(),
    }
}

/// An enabled user `name` with the email `name@example.com`.
pub fn named(name: &str) -> User {
    user(name, &format!("{name}@example.com"))
}

/// An enabled admin `name` with the email `name@example.com`.
pub fn admin(name: &str) -> User {
    User {
        role: Role::Admin,
        ..named(name)
    }
}

/// A username.
///
/// # Panics
/// When `text` is not a valid username: a mistake in the suite.
pub fn name(text: &str) -> Username {
    Username::parse(text).unwrap()
}

/// An email address.
///
/// # Panics
/// When `text` is not a valid address: a mistake in the suite.
pub fn email_address(text: &str) -> EmailAddress {
    EmailAddress::parse(text).unwrap()
}

/// A stand-in password hash; stores keep whatever text they are given.
pub fn hash(tag: &str) -> PasswordHashString {
    PasswordHashString::new(format!(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$c3RhbmQtaW4tJ{tag}"
    ))
}

/// `user` as a new account with [`hash`]`("first")`.
pub fn new_user(user: &User) -> NewUser {
    NewUser {
        user: user.clone(),
        password_hash: hash("first"),
    }
}

/// A 32-byte stand-in for a digest, unique like a real one.
pub fn digest() -> Vec<u8> {
    [
        SessionId::random().as_uuid().as_bytes().as_slice(),
        SessionId::random().as_uuid().as_bytes().as_slice(),
    ]
    .concat()
}

/// A fresh stand-in refresh-token hash.
pub fn token_hash() -> RefreshTokenHash {
    RefreshTokenHash::from_digest(digest())
}

/// The profile scope alone.
pub fn profile() -> ScopeSet {
    ScopeSet::EMPTY.with(Scope::Profile)
}

/// Both scopes.
pub fn profile_and_admin() -> ScopeSet {
    profile().with(Scope::Admin)
}

/// A session of `user` started at `started`, lasting a [`DAY`], granted
/// the profile scope.
pub fn new_session(user: &User, started: OffsetDateTime) -> NewSession {
    NewSession {
        id: SessionId::random(),
        user_id: user.id,
        scopes: profile(),
        refresh_token_hash: token_hash(),
        created_at: started,
        expires_at: started + DAY,
        ip: Some("192.0.2.1".into()),
        user_agent: Some("conformance/1.0".into()),
    }
}

/// A key of `user` created at `created` with the profile scope and no expiry.
///
/// # Panics
/// Never for these constants.
pub fn new_api_key(user: &User, created: OffsetDateTime) -> NewApiKey {
    let id = ApiKeyId::random();
    NewApiKey {
        id,
        user_id: user.id,
        name: ApiKeyName::parse("ci deploy").unwrap(),
        prefix: format!("pcl_{}", &id.to_string()[..8]),
        key_hash: ApiKeyHash::from_digest(digest()),
        scopes: profile(),
        created_at: created,
        expires_at: None,
    }
}

/// A deterministic keyed hash standing in for the audit MAC key in tests.
///
/// **Not a MAC**: four rounds of the standard library's SipHash
/// ([`DefaultHasher`]) over the round, a fixed key and the message, each
/// filling 8 of the 32 bytes. It is deterministic (equal messages hash
/// alike in every process, so a chain written by one store verifies when
/// read by another) and changes with every byte of the message, which is
/// all the suite needs; it resists no forger. Real stores are given
/// `portcullis-crypto`'s HMAC key.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestAuditKey;

impl TestAuditKey {
    /// The fixed key mixed into every round.
    const KEY: &'static [u8] = b"portcullis conformance audit key";
}

impl AuditKey for TestAuditKey {
    fn mac(&self, message: &[u8]) -> AuditMac {
        let mut mac = [0_u8; 32];
        for (round, chunk) in (0_u8..).zip(mac.chunks_exact_mut(8)) {
            let mut hasher = DefaultHasher::new();
            round.hash(&mut hasher);
            Self::KEY.hash(&mut hasher);
            message.hash(&mut hasher);
            chunk.copy_from_slice(&hasher.finish().to_be_bytes());
        }
        AuditMac(mac)
    }
}

/// [`TestAuditKey`] as the key a store is given.
pub fn test_audit_key() -> Arc<dyn AuditKey> {
    Arc::new(TestAuditKey)
}

/// The context of work at `now` with no actor and no client.
pub fn audit_context(now: OffsetDateTime) -> AuditContext {
    AuditContext::system(now)
}

/// A filler record at `now` (a password change about no one), for calls
/// whose audit content the promise does not examine.
pub fn audit_record(now: OffsetDateTime) -> AuditRecord {
    audit_context(now).record(None, AuditEvent::PasswordChanged)
}
