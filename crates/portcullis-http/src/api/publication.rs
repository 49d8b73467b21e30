//! What resource servers read to trust Portcullis tokens: the key set and
//! the authorization-server metadata.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use portcullis_domain::Scope;

use super::ApiTags;
use crate::dto::{AuthorizationServerMetadataBody, JsonWebKeyBody, JsonWebKeySetBody};
use crate::state::{AppState, DocsServed, Publication};

/// The public documents of `/.well-known`.
pub struct PublicationApi;

/// The key set's path, also named by the metadata's `jwks_uri`.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

#[derive(ApiResponse)]
enum JwksResponse {
    /// The published keys.
    #[oai(status = 200)]
    Ok(
        Json<JsonWebKeySetBody>,
        /// `public, max-age=N`: N is no longer than the time a new key is
        /// published before it signs, so a cached copy always knows the
        /// next key in time. A token with an unknown `kid` is reason to
        /// fetch again.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

#[derive(ApiResponse)]
enum MetadataResponse {
    /// The metadata.
    #[oai(status = 200)]
    Ok(
        Json<AuthorizationServerMetadataBody>,
        /// `public, max-age=N`, like the key set's.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

#[OpenApi(
    tag = "ApiTags::Discovery",
    response_header(
        name = "X-Request-Id",
        ty = "crate::wire_strings::RequestId",
        description = "The request's id: the client's `X-Request-Id` when it is 1–128 characters of `A-Z a-z 0-9 - _ . :`, else a new UUID. Logged with the request."
    )
)]
impl PublicationApi {
    /// Get the token signing keys (JWKS)
    ///
    /// The JSON Web Key Set (RFC 7517) of every published public key: the
    /// next key (published before it signs), the current one and the
    /// retired ones whose tokens may not have expired yet. Verify an access
    /// token with the key whose `kid` its header names, and only with that
    /// key's `alg`. Never contains a private member or an HS256 key: a
    /// server that signs with an HS256 secret publishes an empty set.
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, state: Data<&AppState>) -> JwksResponse {
        let publication = &state.publication;
        let keys = publication
            .key_ring
            .published_keys()
            .into_iter()
            // The ring promises asymmetric keys only; the filter makes the
            // promise this document's too.
            .filter(|key| key.algorithm.is_asymmetric())
            .map(JsonWebKeyBody::from)
            .collect();
        JwksResponse::Ok(Json(JsonWebKeySetBody { keys }), cache_control(publication))
    }

    /// Get the authorization-server metadata (RFC 8414)
    ///
    /// Where the token, revocation and introspection endpoints and the key
    /// set are, what grants and scopes exist and how callers authenticate:
    /// every URL absolute, built on the service's public URL
    /// (`PORTCULLIS_PUBLIC_URL`); `issuer` equals the `iss` of every token.
    #[oai(
        path = "/.well-known/oauth-authorization-server",
        method = "get",
        operation_id = "authorizationServerMetadata"
    )]
    async fn metadata(&self, state: Data<&AppState>, docs: Data<&DocsServed>) -> MetadataResponse {
        let publication = &state.publication;
        MetadataResponse::Ok(
            Json(metadata(publication, docs.0.0)),
            cache_control(publication),
        )
    }
}

fn cache_control(publication: &Publication) -> String {
    format!("public, max-age={}", publication.jwks_max_age.as_secs())
}

/// The metadata document of `publication`.
fn metadata(publication: &Publication, docs_served: bool) -> AuthorizationServerMetadataBody {
    let base = publication.public_url.trim_end_matches('/');
    let url = |path: &str| format!("{base}{path}");
    let names = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
    AuthorizationServerMetadataBody {
        issuer: publication.issuer.clone(),
        token_endpoint: url("/auth/token"),
        token_endpoint_auth_methods_supported: names(&["none"]),
        revocation_endpoint: url("/auth/revoke"),
        revocation_endpoint_auth_methods_supported: names(&["none"]),
        introspection_endpoint: url("/auth/introspect"),
        introspection_endpoint_auth_methods_supported: names(&[
            "Bearer",
            "urn:portcullis:auth-method:api-key",
            "urn:portcullis:auth-method:basic",
        ]),
        jwks_uri: url(JWKS_PATH),
        grant_types_supported: names(&["password", "refresh_token"]),
        response_types_supported: Vec::new(),
        scopes_supported: Scope::ALL
            .iter()
            .map(|scope| scope.as_str().to_owned())
            .collect(),
        service_documentation: docs_served.then(|| url("/docs")),
    }
}
