//! Verify Portcullis access tokens in a Rust service (a *resource server*),
//! with the keys Portcullis publishes: no shared secret, no call to
//! Portcullis per request.
//!
//! - [`ResourceServerConfig`]: the issuer (Portcullis's public URL), your
//!   audience, and optionally the key set's address, the accepted
//!   algorithms (EdDSA and ES256; never HS256), the leeway (at most 30 s)
//!   and how often the key set may be fetched;
//! - [`RemoteVerifier`]: finds the key set through the issuer's RFC 8414
//!   metadata (checking its `issuer`), caches it for its
//!   `Cache-Control: max-age`, fetches it again when a token names an
//!   unknown `kid` (at most once per minimum interval, however many tokens
//!   ask), and checks a token as RFC 9068 and RFC 8725 say: `typ` `at+jwt`,
//!   the algorithm of the key the `kid` names (never the header's choice),
//!   the signature, `iss`, `aud`, `exp`, `nbf`, `iat`, `sub`, `jti`;
//! - [`VerifiedToken`]: `sub`, `scopes`, `sid`, `jti`, `exp`, `iat` and every
//!   claim; or a [`VerifyError`]: `Invalid`, `Expired`, or `KeysUnavailable`
//!   when the key set cannot be fetched and no cached key matches;
//! - with the `poem` feature (on by default): [`PortcullisToken<S>`], an
//!   extractor for poem handlers that requires the scopes of
//!   `S: RequiredScope` and answers 401 `invalid_token`, 403
//!   `insufficient_scope` or 503 (see [`TokenRejection`]).
//!
//! What it is not: it depends on no other Portcullis crate, and it knows
//! nothing of sessions. A locally verified token stays valid until it
//! expires, even after a logout; for work where that matters, ask
//! Portcullis's introspection endpoint (`docs/verifying-tokens.md`). It
//! fetches nothing but the one key set address: a token's `jku`, `x5u`,
//! `jwk` or `x5c` header is refused, never followed.
//!
//! The README has a complete example; `apps/rust-resource-server` is a
//! runnable one.

mod config;
mod error;
#[cfg(feature = "poem")]
mod extractor;
mod jwks;
mod key_cache;
mod token;
mod verifier;

pub use config::{
    AcceptedAlgorithm, DEFAULT_HTTP_TIMEOUT, DEFAULT_MAX_CACHED_KEYS, DEFAULT_MIN_REFETCH_INTERVAL,
    MAX_LEEWAY, ResourceServerConfig,
};
pub use error::{InvalidToken, SetupError, VerifyError};
#[cfg(feature = "poem")]
pub use extractor::{AnyScope, PortcullisToken, RequiredScope, TokenRejection};
pub use token::VerifiedToken;
pub use verifier::{METADATA_PATH, RemoteVerifier};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
