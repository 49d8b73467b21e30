//! The caller's own account.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, OpenApi};
use portcullis_domain::ProfileUpdateRequest;

use super::ApiTags;
use crate::dto::{UpdateProfileRequest, UserBody};
use crate::error::ApiError;
use crate::payload::ValidatedJson;
use crate::security::{ApiScopes, Authenticated, ProfileScope};
use crate::state::AppState;

/// Operations on the caller's own account.
pub struct UsersApi;

#[derive(ApiResponse)]
enum UserResponse {
    /// The account.
    #[oai(status = 200)]
    Ok(Json<UserBody>),
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Get your account
    ///
    /// Returns the account of the authenticated caller. Requires the
    /// `profile` scope.
    #[oai(path = "/users/me", method = "get", operation_id = "getMe")]
    async fn me(
        &self,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
    ) -> Result<UserResponse, ApiError> {
        Ok(UserResponse::Ok(Json(auth.principal.user.into())))
    }

    /// Update your profile
    ///
    /// Changes your `email` and/or `full_name`. Absent fields are left as they
    /// are; `full_name: null` clears it. Requires the `profile` scope.
    #[oai(path = "/users/me", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        body: ValidatedJson<UpdateProfileRequest>,
    ) -> Result<UserResponse, ApiError> {
        let ValidatedJson(body) = body;
        let full_name = match body.full_name {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(name) => Some(Some(name)),
        };
        let user = state
            .auth
            .update_profile(
                &auth.principal,
                ProfileUpdateRequest {
                    email: body.email,
                    full_name,
                },
            )
            .await?;
        Ok(UserResponse::Ok(Json(user.into())))
    }
}
