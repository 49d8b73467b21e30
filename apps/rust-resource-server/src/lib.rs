//! A resource server written in Rust that trusts Portcullis tokens: one
//! protected route, `GET /notes`, which needs the `profile` scope, and an
//! open `GET /health`.
//!
//! Everything Portcullis-specific is in [`app`]: a
//! [`RemoteVerifier`] in the route's data and a
//! [`PortcullisToken`] argument on the handler.

use poem::web::Json;
use poem::{Endpoint, EndpointExt, Route, get, handler};
use portcullis_resource_server::{PortcullisToken, RemoteVerifier, RequiredScope};
use serde_json::{Value, json};

/// The scope `GET /notes` requires. Every Portcullis user's token carries
/// `profile`; a real service would ask for a scope of its own.
pub struct ReadNotes;

impl RequiredScope for ReadNotes {
    const SCOPES: &'static [&'static str] = &["profile"];
}

/// The service's routes, verifying tokens with `verifier`.
pub fn app(verifier: RemoteVerifier) -> impl Endpoint {
    Route::new()
        .at("/notes", get(notes))
        .at("/health", get(health))
        .data(verifier)
}

/// The caller's notes: here, who the caller is, as the token says.
#[handler]
fn notes(token: PortcullisToken<ReadNotes>) -> Json<Value> {
    Json(json!({
        "owner": token.sub,
        "session": token.sid,
        "scopes": token.scopes,
        "notes": [],
    }))
}

#[handler]
fn health() -> &'static str {
    "ok"
}
