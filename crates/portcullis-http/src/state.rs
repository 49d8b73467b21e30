//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::ports::KeyRing;
use portcullis_domain::{AuthService, KeyLifecycle};

use crate::client_ip::TrustedProxies;

/// The application state handed to [`build_app`](crate::build_app); handlers
/// receive it through poem's `Data` extractor.
#[derive(Clone)]
pub struct AppState {
    /// The authentication use-cases.
    pub auth: AuthService,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// What resource servers are told: keys, metadata.
    pub publication: Publication,
}

/// The keys and the addresses a resource server needs to trust tokens.
#[derive(Clone)]
pub struct Publication {
    /// The keys this node signs and verifies with.
    pub key_ring: Arc<dyn KeyRing>,
    /// Rotation and listing of the stored keys; `None` when the keys are
    /// fixed by configuration (HS256 from `PORTCULLIS_JWT_SECRET`).
    pub key_lifecycle: Option<KeyLifecycle>,
    /// The service's external base URL, without a trailing `/`: every URL
    /// of the metadata document is built on it.
    pub public_url: String,
    /// The `iss` of every token.
    pub issuer: String,
    /// `max-age` of the JWKS: no longer than the publish-ahead time, so a
    /// resource server's cached copy always holds the next key before it
    /// signs.
    pub jwks_max_age: Duration,
}

/// Whether this app serves `/docs`, as the metadata document's
/// `service_documentation` needs to know; added by
/// [`build_app_with`](crate::build_app_with) from its options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocsServed(pub(crate) bool);
