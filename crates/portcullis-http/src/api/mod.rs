//! The operations, grouped by tag.

mod admin;
mod api_keys;
mod auth;
mod health;
mod publication;
mod users;

pub use admin::AdminApi;
pub use api_keys::ApiKeysApi;
pub use auth::AuthApi;
pub use health::HealthApi;
pub use publication::{JWKS_PATH, PublicationApi};
pub use users::UsersApi;

use poem::Request;
use poem_openapi::Tags;
use portcullis_domain::{ClientInfo, MAX_LISTING_PAGE_SIZE, PageCursor, PageRequest};

use crate::state::AppState;

/// The tags that group operations in the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// Registration, tokens and sessions.
    Auth,
    /// Your own account.
    Users,
    /// Everyone's accounts and the signing keys (admin scope).
    Admin,
    /// What resource servers read to trust tokens: the signing keys (JWKS)
    /// and the authorization-server metadata.
    Discovery,
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
        request_id: request
            .extensions()
            .get::<crate::middleware::RequestId>()
            .map(|id| id.0.clone()),
    }
}

/// The page a credential listing asks for: `limit` (already validated to
/// 1–100 by the operation, absent: 100) after `cursor` (absent or empty:
/// the first page).
pub(crate) fn page_request(limit: Option<u32>, cursor: Option<String>) -> PageRequest {
    PageRequest {
        limit: limit.unwrap_or(MAX_LISTING_PAGE_SIZE),
        after: cursor.filter(|c| !c.is_empty()).map(PageCursor::new),
    }
}

/// The RFC 8288 `Link` to the next page of the listing at `path`, relative
/// to this server, when there is one.
pub(crate) fn next_page_link(path: &str, limit: u32, next: Option<&PageCursor>) -> Option<String> {
    // Store cursors are base64url text, which needs no escaping in a query.
    next.map(|cursor| {
        format!(
            "<{path}?limit={limit}&cursor={}>; rel=\"next\"",
            cursor.as_str()
        )
    })
}
