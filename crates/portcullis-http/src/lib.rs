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
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self { docs_enabled: true }
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
    let routes = Arc::new(middleware::RouteTable::from_spec(&spec));
    let mut route = Route::new();
    if options.docs_enabled {
        route = route
            .at("/openapi.json", service.spec_endpoint())
            .nest("/docs", service.swagger_ui());
    }
    let route = route.nest("/", service).data(state);
    route
        .around(move |endpoint, request| {
            let routes = Arc::clone(&routes);
            middleware::handle(endpoint, request, routes)
        })
        .boxed()
}
