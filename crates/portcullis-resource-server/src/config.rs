//! What a resource server trusts: the issuer, its own audience, the key
//! set's address, the algorithms, and how often the key set may be fetched.

use std::time::Duration;

/// The most clock skew a verifier may allow, the same as Portcullis's own.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

/// The default least time between two fetches of the key set.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The default largest number of keys kept from one key set. Portcullis
/// publishes three at most (next, current, and a retired one or two).
pub const DEFAULT_MAX_CACHED_KEYS: usize = 16;

/// The default time allowed for one request to the issuer.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A signature algorithm a verifier can accept. HS256 is not among them on
/// purpose: a resource server never holds the issuer's shared secret, and a
/// token "signed" with HS256 under a public key as the secret is the
/// classic algorithm-confusion forgery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcceptedAlgorithm {
    /// EdDSA with Ed25519 (JWK `kty` `OKP`, `crv` `Ed25519`).
    EdDsa,
    /// ECDSA with P-256 and SHA-256 (JWK `kty` `EC`, `crv` `P-256`).
    Es256,
}

impl AcceptedAlgorithm {
    /// The JOSE name (`EdDSA`, `ES256`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    /// The algorithm named `alg` in a JWK, if it is one of these.
    #[must_use]
    pub fn from_name(alg: &str) -> Option<Self> {
        match alg {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// The settings of a [`RemoteVerifier`](crate::RemoteVerifier).
///
/// Built with [`new`](Self::new) and changed with the `with_...` methods;
/// [`RemoteVerifier::new`](crate::RemoteVerifier::new) checks the values.
#[derive(Debug, Clone)]
pub struct ResourceServerConfig {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) accepted_algorithms: Vec<AcceptedAlgorithm>,
    pub(crate) leeway: Duration,
    pub(crate) min_refetch_interval: Duration,
    pub(crate) max_cached_keys: usize,
    pub(crate) http_timeout: Duration,
}

impl ResourceServerConfig {
    /// Trusts tokens of `issuer` (Portcullis's public URL, exactly as its
    /// tokens' `iss` and its metadata's `issuer` spell it) for `audience`
    /// (Portcullis's `PORTCULLIS_AUDIENCE`, default `portcullis`).
    ///
    /// Defaults: the key set's address is discovered from
    /// `{issuer}/.well-known/oauth-authorization-server`; EdDSA and ES256
    /// are accepted; the leeway is [`MAX_LEEWAY`]; the key set is fetched at
    /// most every [`DEFAULT_MIN_REFETCH_INTERVAL`] and at most
    /// [`DEFAULT_MAX_CACHED_KEYS`] keys are kept.
    #[must_use]
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_uri: None,
            accepted_algorithms: vec![AcceptedAlgorithm::EdDsa, AcceptedAlgorithm::Es256],
            leeway: MAX_LEEWAY,
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            max_cached_keys: DEFAULT_MAX_CACHED_KEYS,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
        }
    }

    /// Fetches the key set from `jwks_uri` instead of discovering it, so
    /// building the verifier makes no request.
    #[must_use]
    pub fn with_jwks_uri(mut self, jwks_uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(jwks_uri.into());
        self
    }

    /// Accepts only keys of these algorithms (at least one).
    #[must_use]
    pub fn with_accepted_algorithms(
        mut self,
        algorithms: impl IntoIterator<Item = AcceptedAlgorithm>,
    ) -> Self {
        self.accepted_algorithms = algorithms.into_iter().collect();
        self
    }

    /// Allows this much clock skew for `exp`, `nbf` and `iat`; at most
    /// [`MAX_LEEWAY`].
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Fetches the key set at most once per `interval`, whatever the
    /// tokens' `kid`s and the `Cache-Control` header say (at least 1 s).
    #[must_use]
    pub fn with_min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// Keeps at most `max` keys of a key set (at least 1); the rest are
    /// ignored with a warning.
    #[must_use]
    pub fn with_max_cached_keys(mut self, max: usize) -> Self {
        self.max_cached_keys = max;
        self
    }

    /// Gives up on a request to the issuer after `timeout`.
    #[must_use]
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// The configured issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The configured audience.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }
}
