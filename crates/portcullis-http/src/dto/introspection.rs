//! Token introspection (RFC 7662) on the wire.

use poem_openapi::Object;
use portcullis_domain::{ActiveToken, TokenKind};

/// An introspection request (RFC 7662 §2.1), form-encoded. Other
/// parameters are accepted and ignored; `token` and `token_type_hint` may
/// each appear once.
#[derive(Debug, Object)]
#[oai(rename = "IntrospectionRequest")]
pub struct IntrospectionRequestForm {
    /// The access token, refresh token or API key to ask about. Empty or
    /// absent: 422. Longer than 4096 characters: simply inactive.
    #[oai(write_only, validator(min_length = 1))]
    pub token: String,
    /// `access_token`, `refresh_token` or `api_key`: a hint only; every kind
    /// is tried, and other values are ignored.
    pub token_type_hint: Option<String>,
}

/// An introspection answer (RFC 7662 §2.2). An inactive token (unknown,
/// malformed, expired, revoked, rotated, of a disabled account) is exactly
/// `{"active": false}`; an active one carries the members that apply to
/// its kind.
#[derive(Debug, Clone, Default, Object)]
#[oai(rename = "Introspection")]
pub struct IntrospectionBody {
    /// Whether the token is usable right now.
    pub active: bool,
    /// `Bearer` (an access token), `refresh_token` or `api_key`.
    #[oai(skip_serializing_if_is_none)]
    pub token_type: Option<String>,
    /// What the token may do now, space-separated: its grant narrowed to
    /// what the account's role allows today.
    #[oai(skip_serializing_if_is_none)]
    pub scope: Option<String>,
    /// The account's id (UUID).
    #[oai(skip_serializing_if_is_none)]
    pub sub: Option<String>,
    /// The account's username.
    #[oai(skip_serializing_if_is_none)]
    pub username: Option<String>,
    /// When it stops working, in seconds since the epoch; absent for an API
    /// key without expiry.
    #[oai(skip_serializing_if_is_none)]
    pub exp: Option<i64>,
    /// When it was issued, in seconds since the epoch.
    #[oai(skip_serializing_if_is_none)]
    pub iat: Option<i64>,
    /// The issuer: this service.
    #[oai(skip_serializing_if_is_none)]
    pub iss: Option<String>,
    /// The audience (access tokens only).
    #[oai(skip_serializing_if_is_none)]
    pub aud: Option<String>,
    /// The access token's id, or the API key's id.
    #[oai(skip_serializing_if_is_none)]
    pub jti: Option<String>,
    /// The session of an access or refresh token.
    #[oai(skip_serializing_if_is_none)]
    pub sid: Option<String>,
}

impl IntrospectionBody {
    /// `{"active": false}`.
    pub fn inactive() -> Self {
        Self::default()
    }

    /// The answer for an active token. `iss` is the issuer; `aud` the
    /// access token's audience (`None` for other kinds).
    pub fn active(token: ActiveToken, iss: String, aud: Option<String>) -> Self {
        let token_type = match token.kind {
            TokenKind::AccessToken => "Bearer",
            TokenKind::RefreshToken => "refresh_token",
            TokenKind::ApiKey => "api_key",
        };
        Self {
            active: true,
            token_type: Some(token_type.to_owned()),
            scope: Some(token.scopes.to_string()),
            sub: Some(token.user.id.to_string()),
            username: Some(token.user.username.as_str().to_owned()),
            exp: token.expires_at.map(|at| at.unix_timestamp()),
            iat: Some(token.issued_at.unix_timestamp()),
            iss: Some(iss),
            aud: aud.filter(|_| token.kind == TokenKind::AccessToken),
            jti: token.token_id.map(|id| id.to_string()),
            sid: token.session_id.map(|id| id.to_string()),
        }
    }
}
