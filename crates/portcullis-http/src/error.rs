//! The wire formats of errors, and the conversion of domain errors into them.
//!
//! Two formats exist, as the contract demands: RFC 6749 §5.2 JSON on the OAuth
//! endpoints ([`OAuthErrorResponse`]) and RFC 9457 problem details everywhere
//! else ([`ApiError`]). Both are `ApiResponse` enums so every status they can
//! produce is documented in the OpenAPI document.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use portcullis_domain::{AuthError, FieldError, KeyError, Scope};

/// The `WWW-Authenticate` challenge sent with every 401 when no (bearer)
/// credential was presented.
pub const BEARER_CHALLENGE: &str = r#"Bearer realm="portcullis""#;

/// A challenge for a presented credential that is bad, expired or revoked.
pub const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

/// Seconds a client should wait when hashing capacity is exhausted.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Seconds a client should wait when the database cannot take a write (a
/// writer holds its lock past the store's wait).
pub const STORE_UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// One invalid field of a request.
#[derive(Debug, Clone, Object)]
pub struct FieldErrorBody {
    /// The field, as named in the request.
    pub field: String,
    /// What is wrong with it. Never contains the submitted value.
    pub message: String,
}

impl From<FieldError> for FieldErrorBody {
    fn from(error: FieldError) -> Self {
        Self {
            field: error.field.to_owned(),
            message: error.message,
        }
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// A URI identifying the problem type; `about:blank` when the HTTP status says it all.
    #[oai(rename = "type")]
    pub problem_type: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
    /// Field-level errors (validation failures and conflicts).
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldErrorBody>>,
}

impl Problem {
    /// A problem of type `about:blank` whose title is the status's reason phrase.
    pub fn from_status(status: u16, detail: impl Into<String>) -> Self {
        let title = poem::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Self {
            problem_type: "about:blank".to_owned(),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            errors: None,
        }
    }

    fn typed(problem_type: &str, title: &str, status: u16, detail: impl Into<String>) -> Self {
        Self {
            problem_type: problem_type.to_owned(),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            errors: None,
        }
    }
}

/// Every error a non-OAuth endpoint can answer, as `application/problem+json`.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed (unreadable body, bad JSON).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No credential, or a bad, expired or revoked one.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(
        Json<Problem>,
        /// The authentication challenge.
        #[oai(header = "WWW-Authenticate")]
        String,
    ),
    /// The credential lacks the scope this operation requires.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(
        Json<Problem>,
        /// `Bearer error="insufficient_scope"` with the required scope.
        #[oai(header = "WWW-Authenticate")]
        String,
    ),
    /// No such resource.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The username or email address is already taken, the change would
    /// leave no admin, the API-key limit is reached, or the signing keys are
    /// fixed by configuration and cannot be rotated here.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The request body is over 64 KiB.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The request body is not JSON.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Input failed validation; `errors` lists every invalid field.
    #[oai(status = 422, content_type = "application/problem+json")]
    UnprocessableEntity(Json<Problem>),
    /// Too many attempts; retry after the given number of seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(
        Json<Problem>,
        /// Seconds to wait.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// An unexpected failure; the cause is logged, never returned.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// Temporarily unable to serve (password hashing saturated, database
    /// locked or unreachable).
    #[oai(status = 503, content_type = "application/problem+json")]
    ServiceUnavailable(
        Json<Problem>,
        /// Seconds to wait.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

impl ApiError {
    /// 400 with a detail that must not contain submitted values.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(Json(Problem::from_status(400, detail)))
    }

    /// 401 for a request without a usable credential.
    pub fn missing_credentials() -> Self {
        Self::Unauthorized(
            Json(Problem::from_status(401, "authentication is required")),
            BEARER_CHALLENGE.to_owned(),
        )
    }

    /// 401 for a presented credential that is bad, expired or revoked.
    pub fn invalid_token() -> Self {
        Self::Unauthorized(
            Json(Problem::from_status(
                401,
                "the credential is invalid, expired or revoked",
            )),
            INVALID_TOKEN_CHALLENGE.to_owned(),
        )
    }

    /// 403 naming the missing scope.
    pub fn insufficient_scope(scope: Scope) -> Self {
        Self::Forbidden(
            Json(Problem::from_status(
                403,
                format!("this operation requires the `{scope}` scope"),
            )),
            format!(r#"Bearer realm="portcullis", error="insufficient_scope", scope="{scope}""#),
        )
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(Json(Problem::from_status(404, detail)))
    }

    /// 413.
    pub fn payload_too_large() -> Self {
        Self::PayloadTooLarge(Json(Problem::from_status(
            413,
            "the request body must not exceed 64 KiB",
        )))
    }

    /// 415.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::UnsupportedMediaType(Json(Problem::from_status(
            415,
            format!("the request body must be {expected}"),
        )))
    }

    /// 422 listing every invalid field.
    pub fn validation(errors: Vec<FieldErrorBody>) -> Self {
        let mut problem = Problem::typed(
            "urn:portcullis:problem:validation-failed",
            "Validation failed",
            422,
            "one or more fields are invalid",
        );
        problem.errors = Some(errors);
        Self::UnprocessableEntity(Json(problem))
    }

    /// 409: the signing keys come from `PORTCULLIS_JWT_SECRET` (HS256), not
    /// from the key store, so there is nothing this API can rotate.
    pub fn keys_fixed_by_secret() -> Self {
        Self::Conflict(Json(Problem::typed(
            "urn:portcullis:problem:keys-fixed-by-secret",
            "Signing keys are fixed by configuration",
            409,
            "access tokens are signed with the HS256 secret from PORTCULLIS_JWT_SECRET; \
             rotate it by changing the secret and restarting every node",
        )))
    }

    /// 500 with an opaque detail. The caller logs the cause.
    pub fn internal() -> Self {
        Self::Internal(Json(Problem::from_status(
            500,
            "an unexpected error occurred; it has been logged",
        )))
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::ServiceUnavailable(Json(Problem::from_status(503, detail)), retry_after_secs)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Validation(errors) => {
                Self::validation(errors.into_iter().map(FieldErrorBody::from).collect())
            }
            AuthError::InvalidGrant => Self::bad_request("the credentials are invalid"),
            AuthError::InvalidScope => Self::bad_request("the requested scope is invalid"),
            AuthError::InvalidToken => Self::invalid_token(),
            AuthError::InsufficientScope(scope) => Self::insufficient_scope(scope),
            AuthError::Conflict(field) => {
                let mut problem = Problem::typed(
                    "urn:portcullis:problem:conflict",
                    "Conflict",
                    409,
                    format!("this {} is already taken", field.field_name()),
                );
                problem.errors = Some(vec![FieldErrorBody {
                    field: field.field_name().to_owned(),
                    message: "is already taken".to_owned(),
                }]);
                Self::Conflict(Json(problem))
            }
            AuthError::NotFound => Self::not_found("no such resource"),
            AuthError::ApiKeyLimitReached => Self::Conflict(Json(Problem::typed(
                "urn:portcullis:problem:api-key-limit",
                "API key limit reached",
                409,
                "you already have the most live API keys allowed; revoke a key first",
            ))),
            AuthError::LastAdmin => {
                let problem = Problem::typed(
                    "urn:portcullis:problem:last-admin",
                    "Last admin",
                    409,
                    "this would leave no enabled admin; make another admin first",
                );
                Self::Conflict(Json(problem))
            }
            AuthError::AmbiguousCredentials => Self::bad_request(
                "send exactly one credential: a bearer token, an API key or Basic",
            ),
            AuthError::RateLimited { retry_after_secs } => Self::TooManyRequests(
                Json(Problem::typed(
                    "urn:portcullis:problem:rate-limited",
                    "Too many attempts",
                    429,
                    format!("too many attempts; retry in {retry_after_secs} s"),
                )),
                retry_after_secs,
            ),
            AuthError::Busy => {
                Self::unavailable("the server is busy; retry shortly", BUSY_RETRY_AFTER_SECS)
            }
            AuthError::Unavailable(cause) => {
                tracing::warn!(%cause, "storage temporarily unavailable");
                Self::unavailable(
                    "the database is busy or unreachable; retry shortly",
                    STORE_UNAVAILABLE_RETRY_AFTER_SECS,
                )
            }
            AuthError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::internal()
            }
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Store(error) => AuthError::from(error).into(),
            other => {
                tracing::error!(cause = %other, "signing key operation failed");
                Self::internal()
            }
        }
    }
}

/// RFC 6749 §5.2 error body.
#[derive(Debug, Clone, Object)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type`,
    /// `invalid_scope`, `rate_limited`, `temporarily_unavailable` or `server_error`.
    pub error: String,
    /// Human-readable explanation; never contains submitted values.
    pub error_description: String,
}

/// Every error an OAuth endpoint (`/auth/token`, `/auth/login`, `/auth/revoke`) can answer.
#[derive(Debug, ApiResponse)]
pub enum OAuthErrorResponse {
    /// The request or grant is invalid (RFC 6749 §5.2).
    #[oai(status = 400)]
    BadRequest(Json<OAuthErrorBody>),
    /// The request body is over 64 KiB.
    #[oai(status = 413)]
    PayloadTooLarge(Json<OAuthErrorBody>),
    /// The request body has the wrong content type.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<OAuthErrorBody>),
    /// Too many attempts; retry after the given number of seconds.
    #[oai(status = 429)]
    TooManyRequests(
        Json<OAuthErrorBody>,
        /// Seconds to wait.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// An unexpected failure; the cause is logged, never returned.
    #[oai(status = 500)]
    Internal(Json<OAuthErrorBody>),
    /// Password hashing is saturated or the database cannot take a write;
    /// retry after the given number of seconds.
    #[oai(status = 503)]
    ServiceUnavailable(
        Json<OAuthErrorBody>,
        /// Seconds to wait.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

impl OAuthErrorResponse {
    fn body(error: &str, description: impl Into<String>) -> Json<OAuthErrorBody> {
        Json(OAuthErrorBody {
            error: error.to_owned(),
            error_description: description.into(),
        })
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::BadRequest(Self::body("invalid_request", description))
    }

    /// 400 `invalid_grant`: one answer for every bad credential or grant.
    pub fn invalid_grant() -> Self {
        Self::BadRequest(Self::body(
            "invalid_grant",
            "the credentials or grant are invalid, expired or revoked",
        ))
    }

    /// 400 `unsupported_grant_type`.
    pub fn unsupported_grant_type() -> Self {
        Self::BadRequest(Self::body(
            "unsupported_grant_type",
            "grant_type must be `password` or `refresh_token`",
        ))
    }

    /// 400 `invalid_scope`.
    pub fn invalid_scope() -> Self {
        Self::BadRequest(Self::body(
            "invalid_scope",
            "the requested scope is unknown or exceeds what this account may be granted",
        ))
    }

    /// 413.
    pub fn payload_too_large() -> Self {
        Self::PayloadTooLarge(Self::body(
            "invalid_request",
            "the request body must not exceed 64 KiB",
        ))
    }

    /// 415.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::UnsupportedMediaType(Self::body(
            "invalid_request",
            format!("the request body must be {expected}"),
        ))
    }

    /// 500 `server_error`. The caller logs the cause.
    pub fn internal() -> Self {
        Self::Internal(Self::body(
            "server_error",
            "an unexpected error occurred; it has been logged",
        ))
    }
}

impl From<AuthError> for OAuthErrorResponse {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Validation(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
                Self::invalid_request(format!("invalid parameters: {}", fields.join(", ")))
            }
            AuthError::InvalidGrant | AuthError::InvalidToken | AuthError::NotFound => {
                Self::invalid_grant()
            }
            AuthError::InvalidScope | AuthError::InsufficientScope(_) => Self::invalid_scope(),
            AuthError::Conflict(_)
            | AuthError::LastAdmin
            | AuthError::ApiKeyLimitReached
            | AuthError::AmbiguousCredentials => Self::invalid_request("conflicting request"),
            AuthError::RateLimited { retry_after_secs } => Self::TooManyRequests(
                Self::body(
                    "rate_limited",
                    format!("too many attempts; retry in {retry_after_secs} s"),
                ),
                retry_after_secs,
            ),
            AuthError::Busy => Self::ServiceUnavailable(
                Self::body(
                    "temporarily_unavailable",
                    "the server is busy; retry shortly",
                ),
                BUSY_RETRY_AFTER_SECS,
            ),
            AuthError::Unavailable(cause) => {
                tracing::warn!(%cause, "storage temporarily unavailable");
                Self::ServiceUnavailable(
                    Self::body(
                        "temporarily_unavailable",
                        "the database is busy or unreachable; retry shortly",
                    ),
                    STORE_UNAVAILABLE_RETRY_AFTER_SECS,
                )
            }
            AuthError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::internal()
            }
        }
    }
}
