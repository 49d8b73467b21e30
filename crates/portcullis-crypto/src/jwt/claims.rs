//! The claims of an access token, as signed and verified.

use serde::{Deserialize, Deserializer, Serialize};

/// The claims of a JWT access token. All nine are required on verification.
///
/// Times are Unix timestamps in seconds. Named for the wire format: the
/// domain's own `AccessTokenClaims` is the typed form these are converted
/// to and from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtAccessClaims {
    /// Issuer. Overwritten by [`JwtSigner::sign`](super::JwtSigner::sign)
    /// with the signer's issuer.
    pub iss: String,
    /// Audience. Overwritten by [`JwtSigner::sign`](super::JwtSigner::sign)
    /// with the signer's audience. Serialised as a string; on verification a
    /// one-element array is also accepted (RFC 7519 section 4.1.3).
    #[serde(deserialize_with = "deserialize_single_audience")]
    pub aud: String,
    /// Subject: the user the token was issued to.
    pub sub: String,
    /// Expiry time.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// Time before which the token must not be accepted.
    pub nbf: i64,
    /// Unique token identifier.
    pub jti: String,
    /// Identifier of the session the token belongs to.
    pub sid: String,
    /// Space-separated OAuth scopes.
    pub scope: String,
}

/// Reads `aud` as either `"a"` or `["a"]`. Arrays of any other length are
/// refused: a verifier serves exactly one audience.
fn deserialize_single_audience<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum SingleAudience {
        String(String),
        OneElementArray([String; 1]),
    }

    Ok(match SingleAudience::deserialize(deserializer)? {
        SingleAudience::String(audience) | SingleAudience::OneElementArray([audience]) => audience,
    })
}
