//! The operations, grouped by tag.

mod admin;
mod api_keys;
mod auth;
mod health;
mod users;

pub use admin::AdminApi;
pub use api_keys::ApiKeysApi;
pub use auth::AuthApi;
pub use health::HealthApi;
pub use users::UsersApi;

use poem::Request;
use poem_openapi::Tags;
use portcullis_domain::ClientInfo;

use crate::state::AppState;

/// The tags that group operations in the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// Registration, tokens and sessions.
    Auth,
    /// Your own account.
    Users,
    /// Everyone's accounts (admin scope).
    Admin,
    /// Service status.
    Health,
}

/// The longest `User-Agent` kept on a session record.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Who is calling: the client address (see [`crate::client_ip`]) and the
/// user agent.
pub(crate) fn client_info(state: &AppState, request: &Request) -> ClientInfo {
    ClientInfo {
        ip: state.trusted_proxies.client_ip(request),
        user_agent: request
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
    }
}
