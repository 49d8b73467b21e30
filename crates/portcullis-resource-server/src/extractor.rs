//! The poem extractor: `Authorization: Bearer <token>` in, a
//! [`VerifiedToken`] out, or the RFC 6750 answer.

use std::marker::PhantomData;
use std::ops::Deref;

use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use poem::{FromRequest, Request, RequestBody, Response};

use crate::error::VerifyError;
use crate::token::VerifiedToken;
use crate::verifier::RemoteVerifier;

/// The scopes a route requires, as a type: every one must be in the
/// token's `scope`.
///
/// ```
/// use portcullis_resource_server::RequiredScope;
///
/// struct NotesRead;
/// impl RequiredScope for NotesRead {
///     const SCOPES: &'static [&'static str] = &["notes:read"];
/// }
/// ```
pub trait RequiredScope: Send + Sync + 'static {
    /// The scopes; empty for "any valid token".
    const SCOPES: &'static [&'static str];
}

/// Any valid token, whatever its scopes.
#[derive(Debug, Clone, Copy)]
pub struct AnyScope;

impl RequiredScope for AnyScope {
    const SCOPES: &'static [&'static str] = &[];
}

/// A poem extractor for a verified Portcullis access token carrying the
/// scopes `S` requires.
///
/// Reads `Authorization: Bearer <token>` and verifies it with the
/// [`RemoteVerifier`] in the request's data (`.data(verifier)` on the
/// route). Refusals follow RFC 6750 (see [`TokenRejection`]).
pub struct PortcullisToken<S: RequiredScope = AnyScope> {
    token: VerifiedToken,
    required: PhantomData<fn() -> S>,
}

impl<S: RequiredScope> PortcullisToken<S> {
    /// The verified token.
    #[must_use]
    pub fn into_inner(self) -> VerifiedToken {
        self.token
    }
}

impl<S: RequiredScope> Deref for PortcullisToken<S> {
    type Target = VerifiedToken;

    fn deref(&self) -> &VerifiedToken {
        &self.token
    }
}

impl<S: RequiredScope> std::fmt::Debug for PortcullisToken<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PortcullisToken")
            .field("token", &self.token)
            .field("required", &S::SCOPES)
            .finish()
    }
}

impl<'a, S: RequiredScope> FromRequest<'a> for PortcullisToken<S> {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let Some(verifier) = request.data::<RemoteVerifier>() else {
            tracing::error!("no RemoteVerifier in the request data: add it with `.data(verifier)`");
            return Err(TokenRejection::NotConfigured.into());
        };
        let token = bearer_token(request)?;
        let token = verifier.verify(token).await.map_err(|error| match error {
            VerifyError::KeysUnavailable(reason) => {
                tracing::warn!(%reason, "cannot verify a token: the signing keys are unavailable");
                TokenRejection::KeysUnavailable {
                    retry_after_secs: verifier.min_refetch_interval().as_secs(),
                }
            }
            other => {
                tracing::debug!(error = %other, "refused a bearer token");
                TokenRejection::InvalidToken(other)
            }
        })?;
        if !S::SCOPES.iter().all(|scope| token.has_scope(scope)) {
            return Err(TokenRejection::InsufficientScope {
                required: S::SCOPES,
            }
            .into());
        }
        Ok(Self {
            token,
            required: PhantomData,
        })
    }
}

/// The bearer token of `Authorization`, which must appear once.
fn bearer_token(request: &Request) -> Result<&str, TokenRejection> {
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if request.headers().contains_key(AUTHORIZATION) {
            TokenRejection::InvalidRequest
        } else {
            TokenRejection::MissingToken
        });
    };
    let value = value.to_str().map_err(|_| TokenRejection::InvalidRequest)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    // Another scheme (Basic, say) is no bearer token: answered as if
    // there were none, with the challenge that says what is expected.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenRejection::MissingToken);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenRejection::InvalidRequest);
    }
    Ok(token)
}

/// Why [`PortcullisToken`] refused a request, and the answer (RFC 6750
/// section 3), each with a JSON body `{"error", "error_description"}`:
///
/// | case | status | `WWW-Authenticate` |
/// |---|---|---|
/// | no bearer token | 401 | `Bearer` |
/// | a malformed `Authorization` | 400 | `Bearer error="invalid_request"` |
/// | invalid or expired token | 401 | `Bearer error="invalid_token"` |
/// | a required scope missing | 403 | `Bearer error="insufficient_scope", scope="..."` |
/// | keys unavailable | 503 | none; `Retry-After` |
/// | no verifier in the data | 500 | none |
#[derive(Debug, thiserror::Error)]
pub enum TokenRejection {
    /// No `Authorization: Bearer` header.
    #[error("a bearer token is required")]
    MissingToken,
    /// More than one `Authorization` header, or an empty bearer token.
    #[error("the Authorization header is malformed")]
    InvalidRequest,
    /// The token did not verify.
    #[error("the access token is invalid: {0}")]
    InvalidToken(VerifyError),
    /// The token lacks a scope the route requires.
    #[error("the access token lacks a required scope")]
    InsufficientScope {
        /// The route's scopes.
        required: &'static [&'static str],
    },
    /// The issuer's keys could not be fetched: the token may be good, and
    /// nothing can be said until the keys are back.
    #[error("the token cannot be verified now")]
    KeysUnavailable {
        /// Seconds before the keys are fetched again.
        retry_after_secs: u64,
    },
    /// The application did not put a [`RemoteVerifier`] in the request data.
    #[error("token verification is not configured")]
    NotConfigured,
}

impl ResponseError for TokenRejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::KeysUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        let (error, description, challenge) = match self {
            Self::MissingToken => (
                "invalid_request",
                "a bearer token is required",
                Some("Bearer".to_owned()),
            ),
            Self::InvalidRequest => (
                "invalid_request",
                "the Authorization header is malformed",
                Some(r#"Bearer error="invalid_request""#.to_owned()),
            ),
            // Which check failed is logged, not told: it helps only someone
            // shaping a forgery. Expiry is told, so a client knows to refresh.
            Self::InvalidToken(VerifyError::Expired) => (
                "invalid_token",
                "the access token has expired",
                Some(r#"Bearer error="invalid_token", error_description="the access token has expired""#.to_owned()),
            ),
            Self::InvalidToken(_) => (
                "invalid_token",
                "the access token is invalid",
                Some(r#"Bearer error="invalid_token""#.to_owned()),
            ),
            Self::InsufficientScope { required } => (
                "insufficient_scope",
                "the access token lacks a required scope",
                Some(format!(
                    r#"Bearer error="insufficient_scope", scope="{}""#,
                    required.join(" ")
                )),
            ),
            Self::KeysUnavailable { .. } => (
                "temporarily_unavailable",
                "the token cannot be verified now; try again later",
                None,
            ),
            Self::NotConfigured => ("server_error", "internal server error", None),
        };
        let body = serde_json::json!({"error": error, "error_description": description});
        let mut response = Response::builder()
            .status(self.status())
            .content_type("application/json")
            .body(body.to_string());
        if let Some(challenge) = challenge
            && let Ok(value) = challenge.parse()
        {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        if let Self::KeysUnavailable { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, (*retry_after_secs).max(1).into());
        }
        response
    }
}
