//! The Portcullis domain: what an account, a credential and a session are, the
//! rules they obey, and the use-cases (register, log in, authenticate a request)
//! written against abstract ports.
//!
//! This crate is what the rest of Portcullis is built around. It is deliberately
//! free of I/O: it has no database, web, or crypto dependency (it emits
//! `tracing` events, which are not I/O until a subscriber makes them so). Storage, hashing,
//! token signing and time reach it only through the traits in [`ports`], which
//! the `portcullis-sqlite`, `portcullis-crypto` and `portcullis-http` crates
//! implement and the `portcullis` binary wires together.
//!
//! What it is not: a web framework integration or a crypto library. If you want
//! an HTTP API, use `portcullis-http`; if you want argon2 or JWTs alone, use
//! `portcullis-crypto`.
//!
//! # Parse, don't validate
//!
//! Every value that crosses a trust boundary becomes a newtype through a
//! parser, and the rest of the code can rely on it being valid:
//!
//! ```
//! use portcullis_domain::{EmailAddress, Username};
//!
//! let username = Username::parse("Alice_01")?;
//! assert_eq!(username.as_str(), "alice_01"); // stored lower-case
//! assert!(Username::parse("a:b").is_err()); // ':' would break HTTP Basic
//! assert!(EmailAddress::parse("not-an-email").is_err());
//! # Ok::<(), portcullis_domain::FieldError>(())
//! ```

mod account;
mod admin;
mod api_key;
pub mod audit;
mod client;
mod email;
mod error;
mod id;
mod key_lifecycle;
mod listing;
mod password;
pub mod ports;
mod scope;
mod service;
mod session;
mod signing_key;
mod snapshot;
mod unicode;

pub use account::{
    FullName, NewAccount, NewUser, PasswordHashString, ProfileChanges, Role, User, UserCredentials,
    UserId, Username,
};
pub use admin::{
    AdminStanding, AdminUserChanges, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, UserListQuery, UserPage,
    UserSearch,
};
pub use api_key::{
    API_KEY_PREFIX, API_KEY_SHOWN_CHARS, ApiKeyHash, ApiKeyId, ApiKeyInfo, ApiKeyName,
    MAX_API_KEY_DAYS, NewApiKey, is_well_formed_api_key,
};
pub use client::canonical_ip;
pub use email::{EmailAddress, normalise_search_term};
pub use error::{AuthError, ConflictField, FieldError, HashingError, StoreError, TokenError};
pub use key_lifecycle::{
    GeneratedKey, KeyError, KeyGenerator, KeyInfo, KeyLifecycle, KeyPolicy, Maintenance,
};
pub use listing::{MAX_LISTING_PAGE_SIZE, Page, PageCursor, PageRequest};
pub use password::{
    MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH_FLOOR, Password, PasswordPolicy, TrivialPattern,
    common_password_count, find_trivial_pattern, is_common_password, is_repetitive_or_sequential,
};
pub use scope::{Scope, ScopeSet, UnknownScope};
pub use service::{
    ActiveToken, AdminUserUpdate, ApiKeyRequest, AuditListRequest, AuthService, AuthSettings,
    ClientInfo, Credential, Initiator, LoginRequest, LogoutScope, MAX_INTROSPECTED_TOKEN_CHARS,
    PasswordChangeRequest, Ports, Principal, ProfileUpdateRequest, RefreshRequest,
    RegistrationRequest, TokenGrant, TokenKind, TokenTypeHint,
};
pub use session::{
    AccessTokenClaims, NewSession, RefreshOutcome, RefreshTokenHash, RefreshTokenOwner, SessionId,
    SessionInfo, new_token_id,
};
pub use signing_key::{
    KeyId, KeyRotation, KeyState, PublishedKey, RotationOutcome, SealedPrivateKey,
    SigningAlgorithm, StoredSigningKey,
};
pub use snapshot::{ApiKeyRecord, RefreshTokenRecord, SessionRecord, StoreSnapshot, UserRecord};

/// The README's examples, compiled and run as doc tests so that they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
