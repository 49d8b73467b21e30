//! A token that passed every check, and its claims in typed form.

use serde_json::{Map, Value};

/// An access token that verified: signed by a key of the issuer's key set,
/// of type `at+jwt`, for this issuer and audience, and live now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `sub`: the id of the user the token was issued to.
    pub sub: String,
    /// `scope`, split on spaces: what the token may be used for. Empty when
    /// the token has no `scope` claim.
    pub scopes: Vec<String>,
    /// `sid`: the Portcullis session the token belongs to, if it names one.
    pub sid: Option<String>,
    /// `jti`: the token's unique id.
    pub jti: String,
    /// `exp`: expiry, Unix seconds.
    pub exp: i64,
    /// `iat`: issue time, Unix seconds.
    pub iat: i64,
    /// Every claim as signed, including the ones above and any this crate
    /// does not read.
    pub claims: Map<String, Value>,
}

impl VerifiedToken {
    /// Whether the token carries `scope`.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }
}
