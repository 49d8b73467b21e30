//! The Portcullis HTTP API: poem + poem-openapi endpoints, the security
//! schemes, the error formats of the contract, and the middleware every
//! request passes through.
//!
//! [`build_app`] turns an [`AppState`] (the domain's `AuthService`, built
//! from whatever store and crypto adapters you choose) into a poem
//! endpoint that serves the API, `/openapi.json` and Swagger UI on
//! `/docs`. Ready-made adapters for the domain's ports (hashing, tokens,
//! rate limits) are in `portcullis-adapters`.
//!
//! What it is not: a server. Binding sockets, TLS, configuration and signals
//! are the binary's job (`apps/portcullis`), and the crate depends on no
//! other Portcullis crate but `portcullis-domain`: storage, hashing and
//! token signing reach it only through the domain's traits.
//!
//! To protect your own poem-openapi operations with Portcullis credentials,
//! take an [`Authenticated`](security::Authenticated) parameter; its type
//! parameter names the scope the operation requires.

pub mod api;
pub mod client_ip;
pub mod dto;
pub mod error;
pub mod metrics;
mod middleware;
pub mod payload;
pub mod security;
mod state;
pub mod wire_strings;

use std::sync::Arc;

use bytes::Bytes;
use poem::endpoint::BoxEndpoint;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApi, OpenApiService};

pub use middleware::{
    API_CSP, DOCS_CSP, MAX_BODY_BYTES, MAX_HEADER_SECTION_BYTES, MAX_URI_BYTES, MalformedHost,
};
pub use state::{AppState, Publication};

/// Options of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Serve `/docs` (Swagger UI) and `/openapi.json`.
    pub docs_enabled: bool,
    /// Origins allowed to call the API from a browser. Empty: no CORS headers
    /// at all (and never a reflected origin).
    pub cors_origins: Vec<String>,
    /// Send `Strict-Transport-Security` (only when serving HTTPS).
    pub hsts: bool,
    /// How long a request body may take to arrive before the answer is 408
    /// and the connection is closed.
    pub body_read_timeout: std::time::Duration,
    /// Record the request, login and token metrics ([`metrics`]) through
    /// the `metrics` facade. Off, this app records none, even when another
    /// app in the process does (the recorder is global to the process).
    pub metrics: bool,
}

impl HttpOptions {
    /// The default body-read timeout.
    pub const DEFAULT_BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            docs_enabled: true,
            cors_origins: Vec::new(),
            hsts: false,
            body_read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
            metrics: false,
        }
    }
}

/// Portcullis's own operations.
pub type PortcullisApis = (
    api::AuthApi,
    api::UsersApi,
    api::ApiKeysApi,
    api::AdminApi,
    api::HealthApi,
    api::PublicationApi,
);

/// Portcullis's own operations, as one value for [`api_service_with`].
pub fn portcullis_apis() -> PortcullisApis {
    (
        api::AuthApi,
        api::UsersApi,
        api::ApiKeysApi,
        api::AdminApi,
        api::HealthApi,
        api::PublicationApi,
    )
}

/// An API with no operations: what [`build_app`] adds to Portcullis's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExtraApi;

impl OpenApi for NoExtraApi {
    fn meta() -> Vec<poem_openapi::registry::MetaApi> {
        Vec::new()
    }

    fn register(_registry: &mut poem_openapi::registry::Registry) {}

    fn add_routes(
        self,
        _route_table: &mut std::collections::HashMap<
            String,
            std::collections::HashMap<poem::http::Method, BoxEndpoint<'static>>,
        >,
    ) {
    }
}

/// The OpenAPI service of the whole API.
pub fn api_service() -> OpenApiService<(PortcullisApis, NoExtraApi), ()> {
    api_service_with(NoExtraApi, "Portcullis", env!("CARGO_PKG_VERSION"))
}

/// The OpenAPI service of Portcullis's operations plus `extra`, your own
/// poem-openapi API, under one document titled `title`.
pub fn api_service_with<T: OpenApi>(
    extra: T,
    title: &str,
    version: &str,
) -> OpenApiService<(PortcullisApis, T), ()> {
    OpenApiService::new((portcullis_apis(), extra), title, version).description(
        "Username/password authentication: OAuth2 password grant, JWT access tokens \
         (RFC 9068), rotating refresh tokens. Use **Authorize** to log in with the \
         OAuth2 password flow; every protected operation then works with *Try it out*.",
    )
}

/// The OpenAPI document as JSON, exactly as `/openapi.json` serves it with
/// the default settings. A server with another minimum password length
/// (`PORTCULLIS_PASSWORD_MIN_LENGTH`) serves [`openapi_json_for`] that length.
pub fn openapi_json() -> String {
    openapi_json_for(portcullis_domain::PasswordPolicy::DEFAULT_MIN_LENGTH)
}

/// The OpenAPI document as JSON, exactly as `/openapi.json` serves it on a
/// server whose minimum password length is `min_password_length`.
pub fn openapi_json_for(min_password_length: usize) -> String {
    with_password_minimum(&conforming_spec(&api_service().spec()), min_password_length)
}

/// poem-openapi lists an operation's scopes under every security scheme it
/// accepts; OpenAPI 3.0 allows scopes only for `oauth2` and `openIdConnect`
/// schemes and wants an empty list for the others. This empties them.
fn conforming_spec(spec: &str) -> String {
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(spec) else {
        return spec.to_owned();
    };
    let scoped_types = ["oauth2", "openIdConnect"];
    let scheme_types: std::collections::HashMap<String, String> =
        document["components"]["securitySchemes"]
            .as_object()
            .map(|schemes| {
                schemes
                    .iter()
                    .map(|(name, scheme)| {
                        (
                            name.clone(),
                            scheme["type"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
    if let Some(paths) = document["paths"].as_object_mut() {
        for operation in paths
            .values_mut()
            .filter_map(|p| p.as_object_mut())
            .flat_map(|p| p.values_mut())
        {
            let Some(requirements) = operation.get_mut("security").and_then(|s| s.as_array_mut())
            else {
                continue;
            };
            for requirement in requirements.iter_mut().filter_map(|r| r.as_object_mut()) {
                for (scheme, scopes) in requirement.iter_mut() {
                    let scheme_type = scheme_types
                        .get(scheme)
                        .map(String::as_str)
                        .unwrap_or_default();
                    if !scoped_types.contains(&scheme_type) {
                        *scopes = serde_json::Value::Array(Vec::new());
                    }
                }
            }
        }
    }
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| spec.to_owned())
}

/// The properties that take a new password, as `(schema, property)`.
const NEW_PASSWORD_FIELDS: [(&str, &str); 2] = [
    ("RegisterRequest", "password"),
    ("PasswordChangeRequest", "new_password"),
];

/// The derived schemas state the default minimum password length (15); the
/// document states the minimum the server is configured with
/// (`PORTCULLIS_PASSWORD_MIN_LENGTH`), so that it describes what the server
/// really accepts.
fn with_password_minimum(spec: &str, min_length: usize) -> String {
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(spec) else {
        return spec.to_owned();
    };
    for (schema, property) in NEW_PASSWORD_FIELDS {
        if let Some(field) = document["components"]["schemas"][schema]["properties"]
            .get_mut(property)
            .and_then(|field| field.as_object_mut())
        {
            field.insert("minLength".to_owned(), serde_json::Value::from(min_length));
        }
    }
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| spec.to_owned())
}

/// Builds the application: the API, the documents (when enabled), and the
/// wrapper that adds request ids, the 64 KiB body limit, security headers,
/// access logging and the contract's error formats.
pub fn build_app(state: AppState, options: &HttpOptions) -> BoxEndpoint<'static> {
    build_app_with(state, options, api_service())
}

/// Like [`build_app`], serving a service made with [`api_service_with`]: your
/// operations get the same documents, security schemes, error formats,
/// headers and logging as Portcullis's own, and can take an
/// [`Authenticated`](security::Authenticated) parameter.
pub fn build_app_with<T: OpenApi + 'static>(
    state: AppState,
    options: &HttpOptions,
    service: OpenApiService<T, ()>,
) -> BoxEndpoint<'static> {
    let min_password = state.auth.settings().password_policy.min_length();
    let spec_text = with_password_minimum(&conforming_spec(&service.spec()), min_password);
    let spec: serde_json::Value =
        serde_json::from_str(&spec_text).unwrap_or(serde_json::Value::Null);
    let mut routes = middleware::RouteTable::from_spec(&spec);
    let mut route = Route::new();
    if options.docs_enabled {
        routes = routes
            .with("/openapi.json", &["GET", "HEAD"])
            .with("/docs", &["GET", "HEAD"])
            .with("/docs/", &["GET", "HEAD"])
            .with("/docs/oauth-receiver.html", &["GET", "HEAD"]);
        // Each document is rendered once and shared: a response body is a
        // reference to these bytes, not a copy, so many slow readers cannot
        // multiply their size.
        let spec_bytes = Bytes::from(spec_text);
        let docs_page = Bytes::from(service.swagger_ui_html());
        let document = |bytes: Bytes, content_type: &'static str| {
            poem::get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type(content_type)
                    .body(bytes.clone())
            }))
        };
        route = route
            .at(
                "/openapi.json",
                document(spec_bytes, "application/json; charset=utf-8"),
            )
            .nest(
                "/docs",
                Route::new()
                    .at("/", document(docs_page, "text/html; charset=utf-8"))
                    .at("/oauth-receiver.html", poem::get(service.swagger_ui())),
            );
    }
    let wrapper = Arc::new(middleware::WrapperConfig {
        routes,
        hsts: options.hsts,
        body_read_timeout: options.body_read_timeout,
        metrics: options.metrics,
    });
    let route = route
        .nest("/", service)
        .data(state)
        .data(state::DocsServed(options.docs_enabled));
    // poem's Cors allows every origin when given none, so it is only added
    // for a non-empty list.
    let cors_enabled = !options.cors_origins.is_empty();
    let route = route
        .with_if(cors_enabled, cors(&options.cors_origins))
        .around(|endpoint, mut request| async move {
            // A browser sends `Origin` on same-origin POSTs too (Swagger UI's
            // Authorize): that is not a cross-origin request, and CORS must
            // not refuse it.
            if is_same_origin(&request) {
                request.headers_mut().remove(poem::http::header::ORIGIN);
            }
            endpoint.call(request).await
        });
    route
        .around(move |endpoint, request| {
            let wrapper = Arc::clone(&wrapper);
            middleware::handle(endpoint, request, wrapper)
        })
        .boxed()
}

/// Whether a request's `Origin` names the origin it was sent to: its
/// `host[:port]` is the request's `Host` (HTTP/1.1) or authority (HTTP/2).
/// Browsers write both the same way, default ports omitted; the scheme is
/// not compared, because behind a TLS-terminating proxy the request arrives
/// as plain HTTP.
fn is_same_origin(request: &poem::Request) -> bool {
    let Some(origin) = request
        .headers()
        .get(poem::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((_, origin_authority)) = origin.split_once("://") else {
        return false;
    };
    let host = request
        .headers()
        .get(poem::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    host.is_some_and(|host| host.eq_ignore_ascii_case(origin_authority))
}

/// CORS for the configured origins only: exact matches, the matched origin
/// echoed (never an arbitrary one), no credentials (Portcullis uses no cookies).
fn cors(origins: &[String]) -> poem::middleware::Cors {
    use poem::http::Method;
    poem::middleware::Cors::new()
        .allow_origins(origins.iter().map(String::as_str))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers(["authorization", "content-type", "x-api-key", "x-request-id"])
        .expose_headers(["x-request-id", "retry-after", "www-authenticate"])
        .max_age(600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn min_lengths(spec: &str) -> Vec<u64> {
        let document: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        NEW_PASSWORD_FIELDS
            .iter()
            .map(|(schema, property)| {
                document["components"]["schemas"][schema]["properties"][property]["minLength"]
                    .as_u64()
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn the_document_states_the_default_minimum_and_the_served_one_the_configured() {
        let default = portcullis_domain::PasswordPolicy::DEFAULT_MIN_LENGTH as u64;
        let spec = openapi_json();
        assert_eq!(min_lengths(&spec), [default, default]);
        assert_eq!(min_lengths(&openapi_json_for(12)), [12, 12]);
    }
}

/// The README's examples, compiled and run as doc tests so that they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
