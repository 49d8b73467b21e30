//! What can go wrong: setting up a verifier, and verifying a token.

/// Why a [`RemoteVerifier`](crate::RemoteVerifier) could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is out of its range (for example a leeway above 30 s).
    #[error("invalid resource server setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting, as its `with_...` method names it.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The authorization server metadata could not be fetched or read.
    #[error("cannot discover the key set from {url}: {reason}")]
    Discovery {
        /// The metadata URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The metadata names another issuer than the configured one (RFC 8414
    /// section 3.3): the document is not this issuer's, so nothing in it is
    /// trusted.
    #[error("the metadata at {url} is for issuer {found:?}, not {expected:?}")]
    IssuerMismatch {
        /// The metadata URL.
        url: String,
        /// The configured issuer.
        expected: String,
        /// The metadata's `issuer`.
        found: String,
    },
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token is not a valid access token of this issuer for this
    /// audience. The poem extractor answers 401 `invalid_token`.
    #[error("invalid token: {0}")]
    Invalid(InvalidToken),
    /// The token was valid once and has expired (past `exp` plus the
    /// leeway). The poem extractor answers 401 `invalid_token`.
    #[error("the token has expired")]
    Expired,
    /// The key set could not be fetched and no cached key matches the
    /// token's `kid`: nothing can be said about the token. The poem
    /// extractor answers 503, since the same token may verify once the
    /// issuer is reachable again.
    #[error("the signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// The particular reason a token is [`VerifyError::Invalid`]: for logs and
/// tests. Callers should answer every one of them the same way, since
/// telling an attacker which check failed helps only the attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    /// Not three base64url JSON segments, an unknown or `none` algorithm, or
    /// a claim of the wrong type.
    #[error("malformed token")]
    Malformed,
    /// `typ` is neither `at+jwt` nor `application/at+jwt`.
    #[error("not an access token (typ)")]
    NotAnAccessToken,
    /// The header carries a member that names or embeds a key (`jku`,
    /// `x5u`, `jwk`, `x5c`): keys come only from the configured key set.
    #[error("header member `{0}` is not accepted")]
    ForbiddenHeader(&'static str),
    /// The header lists `crit` extensions, none of which are understood.
    #[error("critical header extensions are not understood")]
    CriticalHeader,
    /// The header has no `kid`.
    #[error("no key id (kid)")]
    MissingKeyId,
    /// The `kid` names no key of the issuer's key set, even after fetching
    /// it again.
    #[error("unknown key id")]
    UnknownKeyId,
    /// The header's `alg` is not the algorithm of the key its `kid` names.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// The signature does not verify with the key.
    #[error("bad signature")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not name the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is missing or empty.
    #[error("missing claim `{0}`")]
    MissingClaim(&'static str),
    /// `nbf` is later than now plus the leeway.
    #[error("not yet valid (nbf)")]
    NotYetValid,
    /// `iat` is later than now plus the leeway.
    #[error("issued in the future (iat)")]
    IssuedInTheFuture,
}

impl From<InvalidToken> for VerifyError {
    fn from(reason: InvalidToken) -> Self {
        Self::Invalid(reason)
    }
}
