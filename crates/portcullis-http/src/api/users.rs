//! The caller's own account.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use portcullis_domain::{Password, PasswordChangeRequest, ProfileUpdateRequest, SessionId};
use uuid::Uuid;

use super::{ApiTags, client_info, next_page_link, page_request};
use crate::dto::{
    AccountDeletionRequest, AuditEventBody, PasswordChangeRequest as PasswordChangeBody,
    SessionBody, UpdateProfileRequest, UserBody,
};
use crate::error::ApiError;
use crate::payload::ValidatedJson;
use crate::security::{ApiScopes, Authenticated, ProfileScope};
use crate::state::AppState;
use crate::wire_strings::EmailString;

/// Operations on the caller's own account.
pub struct UsersApi;

#[derive(ApiResponse)]
enum UserResponse {
    /// The account.
    #[oai(status = 200)]
    Ok(Json<UserBody>),
}

#[derive(ApiResponse)]
enum NoContentResponse {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
enum SessionsResponse {
    /// One page of your active sessions, most recently used first.
    #[oai(status = 200)]
    Ok(
        Json<Vec<SessionBody>>,
        /// `</users/me/sessions?limit=N&cursor=...>; rel="next"` (RFC 8288)
        /// when there is a next page; absent on the last page.
        #[oai(header = "Link")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
enum EventsResponse {
    /// One page of your security activity, newest first.
    #[oai(status = 200)]
    Ok(
        Json<Vec<AuditEventBody>>,
        /// `</users/me/events?limit=N&cursor=...>; rel="next"` (RFC 8288)
        /// when there are older events; absent on the last page.
        #[oai(header = "Link")]
        Option<String>,
    ),
}

#[OpenApi(
    tag = "ApiTags::Users",
    response_header(
        name = "X-Request-Id",
        ty = "crate::wire_strings::RequestId",
        description = "The request's id: the client's `X-Request-Id` when it is 1–128 characters of `A-Z a-z 0-9 - _ . :`, else a new UUID. Logged with the request."
    )
)]
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
    ///
    /// Changing `email` requires re-authentication: send `current_password`
    /// with it (missing or wrong: 422 on `current_password`). That check
    /// counts as a credential check, limited per client address and per
    /// username like a login (429 with `Retry-After` when over). Changing
    /// only `full_name` needs no password.
    #[oai(path = "/users/me", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        state: Data<&AppState>,
        request: &Request,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        body: ValidatedJson<UpdateProfileRequest>,
    ) -> Result<UserResponse, ApiError> {
        let ValidatedJson(body) = body;
        // Absent leaves the name alone, null clears it.
        let full_name: Option<Option<String>> = body.full_name.into();
        let user = state
            .auth
            .update_profile(
                &auth.principal,
                ProfileUpdateRequest {
                    email: body.email.map(EmailString::into_inner),
                    full_name,
                    current_password: body.current_password.map(Password::new),
                },
                &client_info(&state, request),
            )
            .await?;
        Ok(UserResponse::Ok(Json(user.into())))
    }

    /// Change your password
    ///
    /// Re-verifies `current_password` (a wrong one is a 422 on that field),
    /// checks `new_password` against the same rules as registration, and ends
    /// every other session; the session making the request stays.
    #[oai(
        path = "/users/me/password",
        method = "post",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        request: &Request,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        body: ValidatedJson<PasswordChangeBody>,
    ) -> Result<NoContentResponse, ApiError> {
        let ValidatedJson(body) = body;
        state
            .auth
            .change_password(
                &auth.principal,
                PasswordChangeRequest {
                    current_password: Password::new(body.current_password),
                    new_password: Password::new(body.new_password),
                },
                &client_info(&state, request),
            )
            .await?;
        Ok(NoContentResponse::NoContent)
    }

    /// Delete your account
    ///
    /// Deletes your account, every session and every credential of it, after
    /// re-verifying `password` (a wrong one is a 422 on that field).
    #[oai(path = "/users/me", method = "delete", operation_id = "deleteMe")]
    async fn delete_me(
        &self,
        state: Data<&AppState>,
        request: &Request,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        body: ValidatedJson<AccountDeletionRequest>,
    ) -> Result<NoContentResponse, ApiError> {
        let ValidatedJson(body) = body;
        state
            .auth
            .delete_account(
                &auth.principal,
                &Password::new(body.password),
                &client_info(&state, request),
            )
            .await?;
        Ok(NoContentResponse::NoContent)
    }

    /// List your sessions
    ///
    /// Your active sessions, most recently used first, with the one making
    /// this request marked `current`; `limit` (1–100, default 100) at a
    /// time. When there are more, the `Link` header (`rel="next"`) names the
    /// next page; its `cursor` is opaque, pass it back unchanged. An account
    /// keeps at most 100 active sessions by default: a new sign-in beyond
    /// that ends the least recently used one.
    #[oai(
        path = "/users/me/sessions",
        method = "get",
        operation_id = "listSessions"
    )]
    async fn sessions(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        /// Page size, 1–100 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `cursor` of a `Link` this listing returned.
        #[oai(validator(max_length = 128, pattern = r"^[A-Za-z0-9_-]*$"))]
        cursor: Query<Option<String>>,
    ) -> Result<SessionsResponse, ApiError> {
        let current = auth.principal.session_id();
        let request = page_request(limit.0, cursor.0);
        let limit = request.limit;
        let page = state.auth.list_sessions(&auth.principal, request).await?;
        let link = next_page_link("/users/me/sessions", limit, page.next.as_ref());
        Ok(SessionsResponse::Ok(
            Json(
                page.items
                    .into_iter()
                    .map(|session| {
                        let is_current = Some(session.id) == current;
                        SessionBody::new(session, is_current)
                    })
                    .collect(),
            ),
            link,
        ))
    }

    /// Your security activity
    ///
    /// Your own logins (and failed or refused attempts on your account),
    /// sessions started and ended, password, profile and API-key changes,
    /// and what an administrator changed on your account, newest first,
    /// from the audit log. Requires the `profile` scope.
    #[oai(
        path = "/users/me/events",
        method = "get",
        operation_id = "listMyEvents"
    )]
    async fn events(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        /// Page size, 1–100 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `cursor` of a `Link` this listing returned.
        #[oai(validator(max_length = 128, pattern = r"^[A-Za-z0-9_-]*$"))]
        cursor: Query<Option<String>>,
    ) -> Result<EventsResponse, ApiError> {
        let request = page_request(limit.0, cursor.0);
        let limit = request.limit;
        let page = state.auth.list_own_events(&auth.principal, request).await?;
        let link = next_page_link("/users/me/events", limit, page.next.as_ref());
        Ok(EventsResponse::Ok(
            Json(page.items.into_iter().map(Into::into).collect()),
            link,
        ))
    }

    /// End one session
    ///
    /// Ends one of your sessions; its tokens stop working on the next request.
    /// A session that is not an active session of yours is 404.
    #[oai(
        path = "/users/me/sessions/:id",
        method = "delete",
        operation_id = "endSession"
    )]
    async fn end_session(
        &self,
        state: Data<&AppState>,
        request: &Request,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        /// The session id.
        id: Path<Uuid>,
    ) -> Result<NoContentResponse, ApiError> {
        state
            .auth
            .end_session(
                &auth.principal,
                SessionId::from_uuid(id.0),
                &client_info(&state, request),
            )
            .await?;
        Ok(NoContentResponse::NoContent)
    }
}
