//! The metrics the HTTP layer records, through the `metrics` facade: with
//! no recorder installed every call is a no-op. The binary installs the
//! Prometheus recorder, calls [`describe`] and serves the text on a
//! listener of its own.
//!
//! Every label takes one of a fixed set of values whatever clients send:
//! the route is the matched path template (`/admin/users/{id}`), or
//! [`UNMATCHED_ROUTE`]; a method no route answers is [`OTHER_METHOD`]; the
//! status is one of the few hundred HTTP status codes.

use std::time::Duration;

use poem::http::{Method, StatusCode};
use portcullis_domain::AuthError;

use crate::middleware::RouteTable;

/// Requests answered, by `method`, `route` and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "portcullis_http_requests_total";
/// Time from a request's arrival to its response head, by `method` and
/// `route` (histogram, seconds).
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "portcullis_http_request_duration_seconds";
/// Password logins (the password grant and `/auth/login`), by `result`.
pub const LOGINS_TOTAL: &str = "portcullis_logins_total";
/// Tokens issued, by `kind` (`access`, `refresh`, `api_key`).
pub const TOKENS_ISSUED_TOTAL: &str = "portcullis_tokens_issued_total";

/// The `route` of a request whose path matches no operation.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The `method` of a request whose method no route answers.
pub const OTHER_METHOD: &str = "OTHER";

/// Gives every metric above its unit and help text. Harmless to call again.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        Unit::Count,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from a request's arrival to its response, by method and route template."
    );
    describe_counter!(
        LOGINS_TOTAL,
        Unit::Count,
        "Password logins, by result (success, invalid_grant, rate_limited, unavailable, ...)."
    );
    describe_counter!(
        TOKENS_ISSUED_TOTAL,
        Unit::Count,
        "Tokens issued, by kind (access, refresh, api_key)."
    );
}

/// Put on a request by the wrapper when its app records metrics: the
/// handlers count logins and tokens only then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordMetrics;

/// Whether `request`'s app records metrics.
pub(crate) fn enabled(request: &poem::Request) -> bool {
    request.extensions().get::<RecordMetrics>().is_some()
}

/// Counts one answered request and its duration.
pub(crate) fn record_request(
    routes: &RouteTable,
    method: &Method,
    path: &str,
    status: StatusCode,
    elapsed: Duration,
) {
    let route = routes
        .template_of(path)
        .unwrap_or(UNMATCHED_ROUTE)
        .to_owned();
    let method = if routes.knows_method(method.as_str()) {
        method.as_str().to_owned()
    } else {
        OTHER_METHOD.to_owned()
    };
    metrics::counter!(
        HTTP_REQUESTS_TOTAL,
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    metrics::histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        "method" => method,
        "route" => route
    )
    .record(elapsed.as_secs_f64());
}

/// Counts one password login by its outcome.
pub(crate) fn record_login<T>(request: &poem::Request, outcome: &Result<T, AuthError>) {
    if !enabled(request) {
        return;
    }
    let result = match outcome {
        Ok(_) => "success",
        Err(error) => error_label(error),
    };
    metrics::counter!(LOGINS_TOTAL, "result" => result).increment(1);
}

/// Counts the access and refresh token of one grant.
pub(crate) fn record_grant(request: &poem::Request) {
    if !enabled(request) {
        return;
    }
    metrics::counter!(TOKENS_ISSUED_TOTAL, "kind" => "access").increment(1);
    metrics::counter!(TOKENS_ISSUED_TOTAL, "kind" => "refresh").increment(1);
}

/// Counts one API key made.
pub(crate) fn record_api_key_issued(request: &poem::Request) {
    if !enabled(request) {
        return;
    }
    metrics::counter!(TOKENS_ISSUED_TOTAL, "kind" => "api_key").increment(1);
}

/// The label of a use-case's failure: one per kind, never its text.
fn error_label(error: &AuthError) -> &'static str {
    match error {
        AuthError::Validation(_) => "invalid_request",
        AuthError::InvalidGrant | AuthError::InvalidToken | AuthError::NotFound => "invalid_grant",
        AuthError::InvalidScope | AuthError::InsufficientScope(_) => "invalid_scope",
        AuthError::Conflict(_)
        | AuthError::LastAdmin
        | AuthError::ApiKeyLimitReached
        | AuthError::AmbiguousCredentials => "invalid_request",
        AuthError::RateLimited { .. } => "rate_limited",
        AuthError::Busy => "busy",
        AuthError::Unavailable(_) => "unavailable",
        AuthError::Internal(_) => "error",
    }
}
