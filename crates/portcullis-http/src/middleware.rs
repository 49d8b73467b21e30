//! The one wrapper every request passes through: request id, body limit,
//! mapping of every remaining error to the contract's formats, security
//! headers, and the access log line.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use poem::http::header::{self, HeaderName, HeaderValue};
use poem::http::{Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::error::{ContentTypeError, ParseParamError, ParsePathError};
use tracing::Instrument;

use crate::error::{ApiError, FieldErrorBody, OAuthErrorResponse};
use crate::payload::{UrlEncodedError, parse_urlencoded};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `Content-Security-Policy` of API responses: nothing may load or frame them.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// `Content-Security-Policy` of `/docs`: Swagger UI is one inline HTML page
/// with inline script and styles, which loads its spec and calls the API on
/// this origin only (STACK-NOTES 9).
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Paths whose errors are RFC 6749 JSON rather than problem details.
const OAUTH_PATHS: [&str; 3] = ["/auth/token", "/auth/login", "/auth/revoke"];
/// The operations whose body is form-encoded (the rest take JSON).
const FORM_PATHS: [&str; 3] = ["/auth/token", "/auth/revoke", "/auth/introspect"];

/// `Strict-Transport-Security` when serving HTTPS: one year, subdomains too.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The longest request target (path and query) accepted; longer is 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The largest request header section accepted (names, values and their
/// separators, as HTTP/2 counts them); larger is 431.
pub const MAX_HEADER_SECTION_BYTES: usize = 16 * 1024;

/// Set by the server on a request whose HTTP/1.1 head has no `Host` header
/// or more than one (RFC 9112 §3.2): the wrapper answers it with 400. The
/// server decides, because only it knows the request came over HTTP/1.1 from
/// a socket; in-process test clients send no `Host` at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedHost;

/// What the wrapper needs to know.
#[derive(Debug)]
pub(crate) struct WrapperConfig {
    /// Paths and their methods, for `Allow`.
    pub(crate) routes: RouteTable,
    /// Whether to send HSTS.
    pub(crate) hsts: bool,
    /// How long a request body may take to arrive.
    pub(crate) body_read_timeout: Duration,
    /// Whether to record metrics.
    pub(crate) metrics: bool,
}

/// What the wrapper needs to know about the routes.
#[derive(Debug, Clone)]
pub(crate) struct RouteTable {
    /// Path templates (split in segments, `{param}` matching any segment) and their methods.
    routes: Vec<Route>,
}

/// One path template of the [`RouteTable`].
#[derive(Debug, Clone)]
struct Route {
    /// The template as written, `/admin/users/{id}`: the `route` label of
    /// the request metrics.
    template: String,
    /// The template split in segments.
    segments: Vec<String>,
    /// The methods it answers.
    methods: Vec<String>,
}

impl RouteTable {
    /// Builds the table from the OpenAPI document's `paths`.
    pub(crate) fn from_spec(spec: &serde_json::Value) -> Self {
        let routes = spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, operations)| {
                        let segments = path.split('/').map(str::to_owned).collect();
                        let mut methods: Vec<String> = operations
                            .as_object()
                            .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                            .unwrap_or_default();
                        // poem answers HEAD wherever GET works.
                        if methods.iter().any(|m| m == "GET")
                            && !methods.iter().any(|m| m == "HEAD")
                        {
                            let get = methods.iter().position(|m| m == "GET").unwrap_or(0);
                            methods.insert(get + 1, "HEAD".to_owned());
                        }
                        Route {
                            template: path.clone(),
                            segments,
                            methods,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { routes }
    }

    /// Adds `path` (no templates) with `methods`.
    pub(crate) fn with(mut self, path: &str, methods: &[&str]) -> Self {
        self.routes.push(Route {
            template: path.to_owned(),
            segments: path.split('/').map(str::to_owned).collect(),
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        });
        self
    }

    /// The `Allow` header value for `path`, if it is a known path.
    fn allowed_methods(&self, path: &str) -> Option<String> {
        self.route_of(path).map(|route| route.methods.join(", "))
    }

    /// The template `path` matches (`/admin/users/{id}` for
    /// `/admin/users/0191...`), if it is a known path: one of a fixed set,
    /// whatever paths clients send.
    pub(crate) fn template_of(&self, path: &str) -> Option<&str> {
        self.route_of(path).map(|route| route.template.as_str())
    }

    /// Whether `method` is one some route answers: the request metrics
    /// label other methods alike, so their values stay a fixed set.
    pub(crate) fn knows_method(&self, method: &str) -> bool {
        self.routes
            .iter()
            .any(|route| route.methods.iter().any(|m| m == method))
    }

    fn route_of(&self, path: &str) -> Option<&Route> {
        let segments: Vec<&str> = path.split('/').collect();
        self.routes.iter().find(|route| {
            route.segments.len() == segments.len()
                && route.segments.iter().zip(&segments).all(|(t, s)| {
                    (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                })
        })
    }
}

/// The request's id (as answered in `X-Request-Id`), for the handlers: the
/// audit events a request causes carry it.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

/// Wraps the whole application.
pub(crate) async fn handle<E: Endpoint>(
    endpoint: Arc<E>,
    mut request: Request,
    config: Arc<WrapperConfig>,
) -> poem::Result<Response> {
    let started = Instant::now();
    let request_id = request_id(&request);
    let method = request.method().clone();
    // Only the path is logged: a query string might carry a secret.
    let path = request.uri().path().to_owned();
    let oauth = OAUTH_PATHS.contains(&path.as_str());
    let span = tracing::info_span!("request", request_id = %request_id);

    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let result = async {
        if config.metrics {
            request
                .extensions_mut()
                .insert(crate::metrics::RecordMetrics);
        }
        if let Some(rejection) = refuse_malformed_head(&request, oauth) {
            return rejection;
        }
        if let Err(rejection) = limit_body(&mut request, oauth, config.body_read_timeout).await {
            return rejection;
        }
        // A panic in a handler must not take the connection down with an
        // empty reply: it becomes the opaque 500, logged once.
        match AssertUnwindSafe(endpoint.call(request))
            .catch_unwind()
            .await
        {
            Ok(Ok(response)) => response.into_response(),
            Ok(Err(error)) => error_response(error, oauth, &path, &config.routes),
            Err(panic) => {
                let cause = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a handler panicked".to_owned());
                tracing::error!(%cause, "handler panicked");
                if oauth {
                    OAuthErrorResponse::internal().into_response()
                } else {
                    ApiError::internal().into_response()
                }
            }
        }
    }
    .instrument(span.clone())
    .await;

    let mut response = result;
    add_security_headers(&mut response, &path, config.hsts);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if config.metrics {
        crate::metrics::record_request(
            &config.routes,
            &method,
            &path,
            response.status(),
            started.elapsed(),
        );
    }
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    Ok(response)
}

/// A client-supplied `X-Request-Id` is kept when it is short and plain;
/// anything else is replaced so it cannot inject into logs.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map_or_else(new_request_id, str::to_owned)
}

/// Refuses what is wrong with a request before any handler sees it: an
/// HTTP/1.1 head without exactly one `Host` (400), a request target over
/// [`MAX_URI_BYTES`] (414), a header section over [`MAX_HEADER_SECTION_BYTES`]
/// (431), and a query string that repeats a parameter or is not UTF-8 once
/// decoded (400: two values for one name would let two readers disagree,
/// and a lossy decoding would let different bytes mean the same value).
fn refuse_malformed_head(request: &Request, oauth: bool) -> Option<Response> {
    let refuse = |status: StatusCode, error: &str, detail: &str| {
        let mut response = if oauth {
            oauth_error(status, error, detail)
        } else {
            problem_response(status, detail)
        };
        if status != StatusCode::BAD_REQUEST {
            // The rest of what the client sent cannot be trusted to frame
            // the next request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Some(response)
    };
    if request.extensions().get::<MalformedHost>().is_some() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "an HTTP/1.1 request must carry exactly one Host header",
        );
    }
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return refuse(
            StatusCode::URI_TOO_LONG,
            "invalid_request",
            "the request target must not exceed 8 KiB",
        );
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    if header_bytes > MAX_HEADER_SECTION_BYTES {
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "invalid_request",
            "the request headers must not exceed 16 KiB",
        );
    }
    if let Some(query) = request.uri().query() {
        let detail = match parse_urlencoded(query.as_bytes()) {
            Err(UrlEncodedError::InvalidUtf8) => {
                Some("the query string is not valid UTF-8 once percent-decoded".to_owned())
            }
            Ok(params) => {
                let mut seen = std::collections::HashSet::new();
                params
                    .iter()
                    .find(|(name, _)| !seen.insert(name.as_str()))
                    .map(|(name, _)| match crate::payload::printable_name(name) {
                        Some(name) => format!("query parameter `{name}` must not be repeated"),
                        None => "a query parameter must not be repeated".to_owned(),
                    })
            }
        };
        if let Some(detail) = detail {
            return refuse(StatusCode::BAD_REQUEST, "invalid_request", &detail);
        }
    }
    None
}

/// A fresh request id: a random UUID, so ids never collide across nodes.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place request ids are drawn"
)]
fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Reads the body into memory, refusing more than [`MAX_BODY_BYTES`] and a
/// body that takes longer than `timeout` to arrive (408, and the connection
/// is closed). poem has no default limit (STACK-NOTES 10); bodiless methods
/// are left alone so a GET without `Content-Length` is not refused.
async fn limit_body(request: &mut Request, oauth: bool, timeout: Duration) -> Result<(), Response> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(());
    }
    let too_large = || {
        if oauth {
            OAuthErrorResponse::payload_too_large().into_response()
        } else {
            ApiError::payload_too_large().into_response()
        }
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = request.take_body().into_bytes_limit(MAX_BODY_BYTES);
    let Ok(read) = tokio::time::timeout(timeout, body).await else {
        let detail = "the request body did not arrive in time";
        let mut response = if oauth {
            oauth_error(StatusCode::REQUEST_TIMEOUT, "invalid_request", detail)
        } else {
            problem_response(StatusCode::REQUEST_TIMEOUT, detail)
        };
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Err(response);
    };
    match read {
        Ok(bytes) => {
            request.set_body(bytes);
            Ok(())
        }
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(too_large()),
        Err(_) => Err(if oauth {
            OAuthErrorResponse::invalid_request("the request body could not be read")
                .into_response()
        } else {
            ApiError::bad_request("the request body could not be read").into_response()
        }),
    }
}

/// The single place where errors that did not come from a handler become
/// responses in the contract's formats.
fn error_response(error: poem::Error, oauth: bool, path: &str, routes: &RouteTable) -> Response {
    if error.is_from_response() {
        // Already one of our typed error responses.
        return error.into_response();
    }
    let status = error.status();
    if let Some(cors) = error.downcast_ref::<poem::error::CorsError>() {
        tracing::debug!(error = %cors, "cross-origin request refused");
        let detail = "this origin, method or header is not allowed";
        return if oauth {
            oauth_error(StatusCode::FORBIDDEN, "access_denied", detail)
        } else {
            problem_response(StatusCode::FORBIDDEN, detail)
        };
    }
    if error.is::<ContentTypeError>() || status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        let expected = if FORM_PATHS.contains(&path) {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        return if oauth {
            OAuthErrorResponse::unsupported_media_type(expected).into_response()
        } else {
            ApiError::unsupported_media_type(expected).into_response()
        };
    }
    if let Some(param) = error.downcast_ref::<ParseParamError>() {
        return ApiError::validation(vec![FieldErrorBody {
            field: param.name.to_owned(),
            message: "is invalid".to_owned(),
        }])
        .into_response();
    }
    if error.is::<ParsePathError>() {
        // poem-openapi names path parameters `param0`, ...: nothing a
        // client could act on, so the answer is the plain 404.
        return ApiError::not_found("no such resource").into_response();
    }
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("no such resource").into_response(),
        StatusCode::METHOD_NOT_ALLOWED => {
            let detail = "this method is not allowed on this path";
            let mut response = if oauth {
                oauth_error(status, "invalid_request", detail)
            } else {
                problem_response(status, detail)
            };
            if let Some(allow) = routes
                .allowed_methods(path)
                .and_then(|a| HeaderValue::from_str(&a).ok())
            {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            response
        }
        StatusCode::PAYLOAD_TOO_LARGE if oauth => {
            OAuthErrorResponse::payload_too_large().into_response()
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large().into_response(),
        status if status.is_server_error() => {
            tracing::error!(error = %error, "unhandled error");
            if oauth {
                OAuthErrorResponse::internal().into_response()
            } else {
                ApiError::internal().into_response()
            }
        }
        _ if oauth => {
            tracing::debug!(error = %error, "request refused");
            OAuthErrorResponse::invalid_request("the request is malformed").into_response()
        }
        status => {
            // poem's messages can quote input, so only the status is described.
            tracing::debug!(error = %error, "request refused");
            problem_response(status, "the request could not be processed")
        }
    }
}

/// An RFC 6749 §5.2 error body with any status, for the OAuth paths.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn problem_response(status: StatusCode, detail: &str) -> Response {
    let problem = crate::error::Problem::from_status(status.as_u16(), detail);
    let body = serde_json::json!({
        "type": problem.problem_type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    });
    Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(body.to_string())
}

fn add_security_headers(response: &mut Response, path: &str, hsts: bool) {
    let docs = path == "/docs" || path.starts_with("/docs/");
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A handler that states its own caching (the public key set and
    // metadata documents) means it; everything else is never stored.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if docs { DOCS_CSP } else { API_CSP }),
    );
    if headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        // The answer depends on the Origin: caches must key on it.
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    headers.remove(header::SERVER);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_labelled_by_their_template_and_unknown_ones_by_none() {
        let routes = RouteTable::from_spec(&serde_json::json!({"paths": {
            "/admin/users/{id}": {"get": {}, "patch": {}},
            "/health": {"get": {}},
        }}))
        .with("/docs", &["GET", "HEAD"]);
        assert_eq!(
            routes.template_of("/admin/users/0191e4f2-0000-7000-8000-000000000000"),
            Some("/admin/users/{id}")
        );
        assert_eq!(routes.template_of("/health"), Some("/health"));
        assert_eq!(routes.template_of("/docs"), Some("/docs"));
        for unknown in ["/admin/users/", "/admin/users/x/y", "/healthz", "/"] {
            assert_eq!(routes.template_of(unknown), None, "{unknown}");
        }
        assert!(routes.knows_method("PATCH") && routes.knows_method("HEAD"));
        assert!(!routes.knows_method("BREW"));
    }

    fn config() -> Arc<WrapperConfig> {
        Arc::new(WrapperConfig {
            routes: RouteTable::from_spec(&serde_json::json!({"paths": {}})),
            hsts: false,
            body_read_timeout: Duration::from_secs(10),
            metrics: false,
        })
    }

    #[tokio::test]
    async fn a_panicking_handler_gets_the_opaque_500_with_every_header() {
        for (path, oauth) in [("/users/me", false), ("/auth/token", true)] {
            let endpoint = Arc::new(poem::endpoint::make_sync(|_| -> &'static str {
                panic!("a bug with a secret-looking message: hunter2")
            }));
            let request = Request::builder().uri_str(path).finish();
            let response = handle(endpoint, request, config())
                .await
                .expect("a response");
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(
                response.headers().get(header::X_CONTENT_TYPE_OPTIONS),
                Some(&HeaderValue::from_static("nosniff"))
            );
            assert!(response.headers().contains_key(REQUEST_ID));
            let body = response.into_body().into_string().await.expect("body");
            assert!(!body.contains("hunter2"), "{body}");
            let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if oauth {
                assert_eq!(body["error"], "server_error");
            } else {
                assert_eq!(body["status"], 500);
            }
        }
    }

    #[test]
    fn allowed_methods_match_templated_paths() {
        let spec = serde_json::json!({"paths": {
            "/users/me": {"get": {}, "patch": {}},
            "/users/me/sessions/{id}": {"delete": {}},
        }});
        let table = RouteTable::from_spec(&spec);
        assert_eq!(
            table.allowed_methods("/users/me").as_deref(),
            Some("GET, HEAD, PATCH")
        );
        assert_eq!(
            table.allowed_methods("/users/me/sessions/abc").as_deref(),
            Some("DELETE")
        );
        assert_eq!(table.allowed_methods("/users/me/sessions/"), None);
        assert_eq!(table.allowed_methods("/nope"), None);
    }
}
