//! What every handler can reach.

use portcullis_domain::AuthService;

use crate::client_ip::TrustedProxies;

/// The application state handed to [`build_app`](crate::build_app); handlers
/// receive it through poem's `Data` extractor.
#[derive(Clone)]
pub struct AppState {
    /// The authentication use-cases.
    pub auth: AuthService,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
}
