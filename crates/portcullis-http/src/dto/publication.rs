//! What resource servers and operators read about the signing keys: the
//! JWKS (RFC 7517), the authorization-server metadata (RFC 8414) and the
//! admin listing of the keys' lives.

use poem_openapi::{Enum, Object};
use portcullis_domain::{KeyInfo, KeyState, PublishedKey, SigningAlgorithm};
use time::OffsetDateTime;

/// A JSON Web Key Set (RFC 7517 §5): every published public key.
#[derive(Debug, Clone, Object)]
#[oai(rename = "JsonWebKeySet")]
pub struct JsonWebKeySetBody {
    /// The keys: next, current and retired, never an HS256 key and never a
    /// private member. Empty when tokens are signed with an HS256 secret.
    pub keys: Vec<JsonWebKeyBody>,
}

/// One public key (RFC 7517 §4, RFC 8037 for Ed25519, RFC 7518 §6.2 for
/// P-256).
#[derive(Debug, Clone, Object)]
#[oai(rename = "JsonWebKey")]
pub struct JsonWebKeyBody {
    /// `OKP` (Ed25519) or `EC` (P-256).
    pub kty: String,
    /// `Ed25519` or `P-256`.
    pub crv: String,
    /// The public key (Ed25519) or its x coordinate (P-256), base64url.
    pub x: String,
    /// The y coordinate (P-256 only), base64url.
    #[oai(skip_serializing_if_is_none)]
    pub y: Option<String>,
    /// The key id, as in the `kid` header of the tokens it signs (RFC 7638
    /// thumbprint).
    pub kid: String,
    /// Always `sig`.
    #[oai(rename = "use")]
    pub key_use: String,
    /// `EdDSA` or `ES256`: the only algorithm to verify with this key.
    pub alg: String,
}

impl From<PublishedKey> for JsonWebKeyBody {
    fn from(key: PublishedKey) -> Self {
        Self {
            kty: key.kty,
            crv: key.crv,
            x: key.x,
            y: key.y,
            kid: key.kid.as_str().to_owned(),
            key_use: "sig".to_owned(),
            alg: key.algorithm.as_str().to_owned(),
        }
    }
}

/// OAuth 2.0 authorization-server metadata (RFC 8414 §2). Every URL is
/// absolute, built on the service's public URL.
#[derive(Debug, Clone, Object)]
#[oai(rename = "AuthorizationServerMetadata")]
pub struct AuthorizationServerMetadataBody {
    /// The `iss` of every token this service issues.
    pub issuer: String,
    /// `POST` here for tokens (`/auth/token`).
    pub token_endpoint: String,
    /// How clients authenticate at the token endpoint: `none` (the password
    /// and refresh grants need no client credentials).
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7009 revocation (`/auth/revoke`).
    pub revocation_endpoint: String,
    /// How clients authenticate at the revocation endpoint: `none`.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7662 introspection (`/auth/introspect`).
    pub introspection_endpoint: String,
    /// What the introspection endpoint accepts as the caller's credential,
    /// which must carry the `introspect` scope: `Bearer` (an access token,
    /// RFC 6750), `urn:portcullis:auth-method:api-key` (an `X-API-Key`
    /// header) and `urn:portcullis:auth-method:basic` (an account's username
    /// and password in HTTP Basic, RFC 7617; not `client_secret_basic`,
    /// which would form-encode them first).
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// The JWKS with the keys that verify access tokens.
    pub jwks_uri: String,
    /// `password` and `refresh_token`.
    pub grant_types_supported: Vec<String>,
    /// Empty: there is no authorization endpoint, so no `response_type`.
    pub response_types_supported: Vec<String>,
    /// `profile`, `admin`, `introspect`.
    pub scopes_supported: Vec<String>,
    /// The human-readable API documentation (Swagger UI); absent when the
    /// server does not serve `/docs`.
    #[oai(skip_serializing_if_is_none)]
    pub service_documentation: Option<String>,
}

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "KeyState", rename_all = "lowercase")]
pub enum KeyStateName {
    /// Published, not yet signing.
    Next,
    /// Signs every new access token; exactly one key is current.
    Current,
    /// Verifies the tokens it signed until they have expired, then is deleted.
    Retired,
}

impl From<KeyState> for KeyStateName {
    fn from(state: KeyState) -> Self {
        match state {
            KeyState::Next => Self::Next,
            KeyState::Current => Self::Current,
            KeyState::Retired => Self::Retired,
        }
    }
}

/// A JWS algorithm a signing key uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "KeyAlgorithm")]
pub enum KeyAlgorithmName {
    /// Ed25519 (RFC 8037).
    #[oai(rename = "EdDSA")]
    EdDsa,
    /// ECDSA P-256 with SHA-256.
    #[oai(rename = "ES256")]
    Es256,
    /// HMAC-SHA-256 with a shared secret (never published).
    #[oai(rename = "HS256")]
    Hs256,
}

impl From<SigningAlgorithm> for KeyAlgorithmName {
    fn from(algorithm: SigningAlgorithm) -> Self {
        match algorithm {
            SigningAlgorithm::EdDsa => Self::EdDsa,
            SigningAlgorithm::Es256 => Self::Es256,
            SigningAlgorithm::Hs256 => Self::Hs256,
        }
    }
}

/// A signing key as the admin listing shows it: never private material.
#[derive(Debug, Clone, Object)]
#[oai(rename = "SigningKey")]
pub struct SigningKeyBody {
    /// The key id (`kid`).
    pub kid: String,
    /// What it signs with.
    pub alg: KeyAlgorithmName,
    /// `next`, `current` or `retired`.
    pub state: KeyStateName,
    /// When it was made (and, for EdDSA and ES256, first published), RFC 3339 UTC.
    pub created_at: OffsetDateTime,
    /// When it began signing, or the earliest time it may (a next key).
    pub signs_from: OffsetDateTime,
    /// When it stops verifying (retired) or is due to stop signing
    /// (current, by the rotation schedule); null for a next key.
    #[oai(nullable)]
    pub retires_at: Option<OffsetDateTime>,
}

impl From<KeyInfo> for SigningKeyBody {
    fn from(key: KeyInfo) -> Self {
        Self {
            kid: key.kid.as_str().to_owned(),
            alg: key.algorithm.into(),
            state: key.state.into(),
            created_at: key.created_at,
            signs_from: key.signs_from,
            retires_at: key.retires_at,
        }
    }
}
