//! Ready-made implementations of the domain's ports that are neither
//! storage nor HTTP: password hashing with argon2id on a fixed pool of
//! threads behind a bounded queue ([`BlockingArgon2Hasher`]), RFC 9068
//! access tokens and opaque refresh tokens and API keys ([`JwtTokens`]), and
//! per-address, per-username and per-user rate limits with governor
//! ([`GovernorAttemptLimiter`]), and the signing keys of a deployment kept
//! in its store, sealed by the master key ([`StoreKeyRing`],
//! [`SealingKeyGenerator`]). Each records what it does through the
//! `metrics` facade ([`metrics`] names them); without a recorder that
//! costs nothing.
//!
//! They add to `portcullis-crypto` the runtime concerns it deliberately
//! lacks: threads, queues, deadlines and in-memory limiter state. What this
//! crate is not: a composition root. It builds no service and reads no
//! settings; `apps/portcullis` chooses these adapters (or others) and wires
//! them into `portcullis_domain::AuthService`.
//!
//! ```
//! use std::num::NonZeroU32;
//!
//! use portcullis_adapters::GovernorAttemptLimiter;
//! use portcullis_domain::ports::AttemptLimiter;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), std::net::AddrParseError> {
//! let ten = NonZeroU32::new(10).expect("non-zero");
//! let limiter = GovernorAttemptLimiter::new(ten, ten, ten);
//! let client = Some("192.0.2.7".parse()?);
//! for _ in 0..10 {
//!     assert!(limiter.check_attempt(client, "alice").await.is_ok());
//! }
//! // The eleventh attempt within the minute is refused, with a wait.
//! assert!(limiter.check_attempt(client, "alice").await.is_err());
//! # Ok(())
//! # }
//! ```

mod audit_key;
mod deployment_limiter;
mod hashing;
mod limiter;
pub mod metrics;
mod signing_keys;
mod tokens;

pub use audit_key::MasterAuditKey;
pub use deployment_limiter::DeploymentAttemptLimiter;
pub use hashing::{BlockingArgon2Hasher, HashingLimits};
pub use limiter::{GovernorAttemptLimiter, address_key};
pub use signing_keys::{KeyRingError, SealingKeyGenerator, StoreKeyRing, open_signing_keys};
pub use tokens::JwtTokens;

/// The README's examples, compiled and run as doc tests so that they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
