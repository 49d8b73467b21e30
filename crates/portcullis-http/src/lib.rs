//! The Portcullis HTTP API: poem + poem-openapi endpoints, the security
//! schemes, the error formats of the contract, and the middleware every
//! request passes through.
//!
//! [`build_app`] turns an [`AppState`] (the domain's `AuthService`, built
//! from whatever store and crypto adapters you choose) into a poem
//! endpoint that serves the API, `/openapi.json` and Swagger UI on
//! `/docs`. [`adapters`] holds ready-made adapters from `portcullis-crypto`
//! to the domain's ports.
//!
//! What it is not: a server. Binding sockets, TLS, configuration and signals
//! are the binary's job (`apps/portcullis`), and the crate never touches a
//! database: storage reaches it only through the domain's traits.
//!
//! To protect your own poem-openapi operations with Portcullis credentials,
//! take an [`Authenticated`](security::Authenticated) parameter; its type
//! parameter names the scope the operation requires.

pub mod adapters;
pub mod api;
pub mod client_ip;
pub mod dto;
pub mod error;
mod middleware;
pub mod payload;
pub mod security;
mod state;

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use middleware::{API_CSP, DOCS_CSP, MAX_BODY_BYTES};
pub use state::AppState;

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
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            docs_enabled: true,
            cors_origins: Vec::new(),
            hsts: false,
        }
    }
}

type Apis = (
    api::AuthApi,
    api::UsersApi,
    api::ApiKeysApi,
    api::AdminApi,
    api::HealthApi,
);

/// The OpenAPI service of the whole API.
pub fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            api::AuthApi,
            api::UsersApi,
            api::ApiKeysApi,
            api::AdminApi,
            api::HealthApi,
        ),
        "Portcullis",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Username/password authentication: OAuth2 password grant, JWT access tokens \
         (RFC 9068), rotating refresh tokens. Use **Authorize** to log in with the \
         OAuth2 password flow; every protected operation then works with *Try it out*.",
    )
}

/// The OpenAPI document as JSON, exactly as `/openapi.json` serves it.
pub fn openapi_json() -> String {
    api_service().spec()
}

/// Builds the application: the API, the documents (when enabled), and the
/// wrapper that adds request ids, the 64 KiB body limit, security headers,
/// access logging and the contract's error formats.
pub fn build_app(state: AppState, options: &HttpOptions) -> BoxEndpoint<'static> {
    let service = api_service();
    let spec: serde_json::Value =
        serde_json::from_str(&service.spec()).unwrap_or(serde_json::Value::Null);
    let wrapper = Arc::new(middleware::WrapperConfig {
        routes: middleware::RouteTable::from_spec(&spec),
        hsts: options.hsts,
    });
    let mut route = Route::new();
    if options.docs_enabled {
        route = route
            .at("/openapi.json", service.spec_endpoint())
            .nest("/docs", service.swagger_ui());
    }
    let route = route.nest("/", service).data(state);
    // poem's Cors allows every origin when given none, so it is only added
    // for a non-empty list.
    let cors_enabled = !options.cors_origins.is_empty();
    let route = route.with_if(cors_enabled, cors(&options.cors_origins));
    route
        .around(move |endpoint, request| {
            let wrapper = Arc::clone(&wrapper);
            middleware::handle(endpoint, request, wrapper)
        })
        .boxed()
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
