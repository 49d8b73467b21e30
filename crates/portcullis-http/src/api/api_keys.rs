//! The caller's API keys.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use portcullis_domain::{ApiKeyId, ApiKeyRequest};
use uuid::Uuid;

use super::{ApiTags, client_info, next_page_link, page_request};
use crate::dto::{ApiKeyBody, ApiKeyRequestBody, NewApiKeyBody};
use crate::error::ApiError;
use crate::payload::ValidatedJson;
use crate::security::{ApiScopes, Authenticated, ProfileScope};
use crate::state::AppState;
use crate::wire_strings::ScopeName;

/// Operations on the caller's API keys.
pub struct ApiKeysApi;

#[derive(ApiResponse)]
enum CreatedKeyResponse {
    /// The key was created. `key` is shown this once.
    #[oai(status = 201)]
    Created(Json<NewApiKeyBody>),
}

#[derive(ApiResponse)]
enum KeysResponse {
    /// One page of your keys that are not revoked, newest first.
    #[oai(status = 200)]
    Ok(
        Json<Vec<ApiKeyBody>>,
        /// `</users/me/api-keys?limit=N&cursor=...>; rel="next"` (RFC 8288)
        /// when there is a next page; absent on the last page.
        #[oai(header = "Link")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
enum RevokedResponse {
    /// The key is revoked.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(
    tag = "ApiTags::Users",
    response_header(
        name = "X-Request-Id",
        ty = "crate::wire_strings::RequestId",
        description = "The request's id: the client's `X-Request-Id` when it is 1–128 characters of `A-Z a-z 0-9 - _ . :`, else a new UUID. Logged with the request."
    )
)]
impl ApiKeysApi {
    /// Create an API key
    ///
    /// Creates a key (`pcl_` and 256 random bits) to send as `X-API-Key`. The
    /// response is the only time the key is shown; only its hash is stored.
    /// `scopes` defaults to, and may not exceed, the scopes of the credential
    /// making the request.
    ///
    /// Each account may hold a limited number of live (unrevoked, unexpired)
    /// keys, 100 by default: one more is a 409 of type
    /// `urn:portcullis:problem:api-key-limit`; revoke a key first. Creations
    /// are also rate-limited per account (10 a minute by default): 429 with
    /// `Retry-After`.
    #[oai(
        path = "/users/me/api-keys",
        method = "post",
        operation_id = "createApiKey"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        request: &Request,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        body: ValidatedJson<ApiKeyRequestBody>,
    ) -> Result<CreatedKeyResponse, ApiError> {
        let ValidatedJson(body) = body;
        let (info, key) = state
            .auth
            .create_api_key(
                &auth.principal,
                ApiKeyRequest {
                    name: body.name,
                    scopes: body
                        .scopes
                        .map(|scopes| scopes.into_iter().map(ScopeName::into_inner).collect()),
                    expires_in_days: body.expires_in_days,
                },
                &client_info(&state, request),
            )
            .await?;
        crate::metrics::record_api_key_issued(request);
        Ok(CreatedKeyResponse::Created(Json(NewApiKeyBody::new(
            info, key,
        ))))
    }

    /// List your API keys
    ///
    /// Your keys that are not revoked (expired ones included), newest first,
    /// `limit` (1–100, default 100) at a time. Never contains the keys
    /// themselves. When there are more, the `Link` header (`rel="next"`)
    /// names the next page; its `cursor` is opaque, pass it back unchanged.
    #[oai(
        path = "/users/me/api-keys",
        method = "get",
        operation_id = "listApiKeys"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        /// Page size, 1–100 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `cursor` of a `Link` this listing returned.
        #[oai(validator(max_length = 128, pattern = r"^[A-Za-z0-9_-]*$"))]
        cursor: Query<Option<String>>,
    ) -> Result<KeysResponse, ApiError> {
        let request = page_request(limit.0, cursor.0);
        let limit = request.limit;
        let page = state.auth.list_api_keys(&auth.principal, request).await?;
        let link = next_page_link("/users/me/api-keys", limit, page.next.as_ref());
        Ok(KeysResponse::Ok(
            Json(page.items.into_iter().map(Into::into).collect()),
            link,
        ))
    }

    /// Revoke an API key
    ///
    /// Revokes one of your keys; it stops working on the next request. A key
    /// that is not an unrevoked key of yours is 404.
    #[oai(
        path = "/users/me/api-keys/:id",
        method = "delete",
        operation_id = "revokeApiKey"
    )]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        request: &Request,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        /// The key id.
        id: Path<Uuid>,
    ) -> Result<RevokedResponse, ApiError> {
        state
            .auth
            .revoke_api_key(
                &auth.principal,
                ApiKeyId::from_uuid(id.0),
                &client_info(&state, request),
            )
            .await?;
        Ok(RevokedResponse::NoContent)
    }
}
