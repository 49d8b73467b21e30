//! Errors of the domain and of its ports.

use crate::scope::Scope;

/// One invalid input field, named as the API names it.
///
/// The message describes the rule that was broken and never repeats the
/// submitted value, so it is safe to return to clients and to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The input field, e.g. `username`.
    pub field: &'static str,
    /// What is wrong with it, lowercase, without the submitted value.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The unique attribute that a new or changed account collided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictField {
    /// Another account has this username (compared case-insensitively).
    Username,
    /// Another account has this email address (compared case-insensitively).
    Email,
}

impl ConflictField {
    /// The API field name.
    pub fn field_name(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
        }
    }
}

/// What a store implementation can report.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated.
    #[error("conflict on {}", .0.field_name())]
    Conflict(ConflictField),
    /// The addressed row does not exist.
    #[error("not found")]
    NotFound,
    /// The change would leave no enabled admin.
    #[error("the last admin cannot be removed")]
    LastAdmin,
    /// The user already has as many live API keys as allowed.
    #[error("the api key limit is reached")]
    ApiKeyLimitReached,
    /// A listing cursor the store did not make (or can no longer read).
    #[error("invalid cursor")]
    InvalidCursor,
    /// A copy into a store that already holds data: nothing was written.
    #[error("the store is not empty")]
    NotEmpty,
    /// The store cannot serve this right now but may shortly: another
    /// writer holds the write lock beyond the wait, or no connection became
    /// free in time. Retrying later may succeed. The text is for logs only.
    #[error("storage temporarily unavailable: {0}")]
    Unavailable(String),
    /// The store failed otherwise (I/O, a corrupt row, a broken schema);
    /// retrying will not help. The text is for logs only.
    #[error("storage failure: {0}")]
    Failed(String),
}

/// What a password hasher can report.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// Too many hashes are queued; the caller should retry later.
    #[error("password hashing is saturated")]
    Busy,
    /// The hash could not be computed or the stored hash is unreadable.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Why an access token was refused. Deliberately coarse: clients get one
/// `invalid_token` for all of these, the variant is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed token, wrong algorithm or type, or bad signature.
    #[error("malformed or unsigned token")]
    Malformed,
    /// Issuer or audience do not match this deployment.
    #[error("token issued for another issuer or audience")]
    WrongAudience,
    /// Past `exp` (or before `nbf`), beyond the allowed leeway.
    #[error("token expired or not yet valid")]
    Expired,
    /// The token could not be signed.
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// The outcome of a use-case that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input failed validation; every broken field is listed.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Bad credentials, unknown user, disabled user, or an unusable grant:
    /// indistinguishable on purpose.
    #[error("invalid grant")]
    InvalidGrant,
    /// The requested scope is unknown or exceeds what the user may be granted.
    #[error("invalid scope")]
    InvalidScope,
    /// The presented credential is bad, expired or revoked.
    #[error("invalid token")]
    InvalidToken,
    /// The credential is valid but lacks the named scope.
    #[error("insufficient scope: {0}")]
    InsufficientScope(Scope),
    /// A unique attribute is already taken.
    #[error("conflict on {}", .0.field_name())]
    Conflict(ConflictField),
    /// The addressed resource does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// The change would leave no enabled admin.
    #[error("the last admin cannot be removed")]
    LastAdmin,
    /// The caller already has as many live API keys as allowed; one must
    /// be revoked (or expire) before another can be made.
    #[error("api key limit reached")]
    ApiKeyLimitReached,
    /// The request presented more than one credential (RFC 6750 §2).
    #[error("more than one credential")]
    AmbiguousCredentials,
    /// Too many credential checks; retry after this many seconds (at least 1).
    #[error("rate limited")]
    RateLimited {
        /// Whole seconds to wait, at least 1.
        retry_after_secs: u64,
    },
    /// A bounded resource (password hashing) is saturated; retry later.
    #[error("service busy")]
    Busy,
    /// The store cannot take the work right now (see
    /// [`StoreError::Unavailable`]); retry later. The text is logged, never
    /// sent to clients.
    #[error("storage temporarily unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected. The text is logged, never sent to clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(field) => Self::Conflict(field),
            StoreError::NotFound => Self::NotFound,
            StoreError::LastAdmin => Self::LastAdmin,
            StoreError::ApiKeyLimitReached => Self::ApiKeyLimitReached,
            StoreError::InvalidCursor => Self::Validation(vec![FieldError::new(
                "cursor",
                "is not a cursor returned by this endpoint",
            )]),
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::NotEmpty => Self::Internal("the store is not empty".to_owned()),
            StoreError::Failed(cause) => Self::Internal(cause),
        }
    }
}

impl From<HashingError> for AuthError {
    fn from(error: HashingError) -> Self {
        match error {
            HashingError::Busy => Self::Busy,
            HashingError::Failed(cause) => Self::Internal(cause),
        }
    }
}
