//! The caller's API keys.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use portcullis_domain::{ApiKeyId, ApiKeyRequest};
use uuid::Uuid;

use super::ApiTags;
use crate::dto::{ApiKeyBody, ApiKeyRequestBody, NewApiKeyBody};
use crate::error::ApiError;
use crate::payload::ValidatedJson;
use crate::security::{ApiScopes, Authenticated, ProfileScope};
use crate::state::AppState;

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
    /// Your keys that are not revoked, newest first.
    #[oai(status = 200)]
    Ok(Json<Vec<ApiKeyBody>>),
}

#[derive(ApiResponse)]
enum RevokedResponse {
    /// The key is revoked.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "ApiTags::Users")]
impl ApiKeysApi {
    /// Create an API key
    ///
    /// Creates a key (`pcl_` and 256 random bits) to send as `X-API-Key`. The
    /// response is the only time the key is shown; only its hash is stored.
    /// `scopes` defaults to, and may not exceed, the scopes of the credential
    /// making the request.
    #[oai(
        path = "/users/me/api-keys",
        method = "post",
        operation_id = "createApiKey"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
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
                    scopes: body.scopes.map(|scopes| scopes.join(" ")),
                    expires_in_days: body.expires_in_days,
                },
            )
            .await?;
        Ok(CreatedKeyResponse::Created(Json(NewApiKeyBody::new(
            info, key,
        ))))
    }

    /// List your API keys
    ///
    /// Your keys that are not revoked (expired ones included). Never contains
    /// the keys themselves.
    #[oai(
        path = "/users/me/api-keys",
        method = "get",
        operation_id = "listApiKeys"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
    ) -> Result<KeysResponse, ApiError> {
        let keys = state.auth.list_api_keys(&auth.principal).await?;
        Ok(KeysResponse::Ok(Json(
            keys.into_iter().map(Into::into).collect(),
        )))
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
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        /// The key id.
        id: Path<Uuid>,
    ) -> Result<RevokedResponse, ApiError> {
        state
            .auth
            .revoke_api_key(&auth.principal, ApiKeyId::from_uuid(id.0))
            .await?;
        Ok(RevokedResponse::NoContent)
    }
}
