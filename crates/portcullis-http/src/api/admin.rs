//! The admin API: accounts of everyone, and the signing keys.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use portcullis_domain::{
    AdminUserUpdate, AuditListRequest, DEFAULT_PAGE_SIZE, Initiator, PageCursor, UserId,
    UserListQuery, UserSearch,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ApiTags, client_info, page_request};
use crate::dto::{AdminUserUpdateBody, AuditPageBody, SigningKeyBody, UserBody, UserPageBody};
use crate::error::ApiError;
use crate::payload::ValidatedJson;
use crate::security::{AdminScope, ApiScopes, Authenticated};
use crate::state::AppState;
use crate::wire_strings::{EmailString, RoleName};

/// Admin operations; every one requires the `admin` scope.
pub struct AdminApi;

#[derive(ApiResponse)]
enum PageResponse {
    /// One page of users.
    #[oai(status = 200)]
    Ok(Json<UserPageBody>),
}

#[derive(ApiResponse)]
enum UserResponse {
    /// The account.
    #[oai(status = 200)]
    Ok(Json<UserBody>),
}

#[derive(ApiResponse)]
enum KeysResponse {
    /// Every signing key not yet deleted, oldest first.
    #[oai(status = 200)]
    Ok(Json<Vec<SigningKeyBody>>),
}

#[derive(ApiResponse)]
enum AuditPageResponse {
    /// One page of the audit log, newest first.
    #[oai(status = 200)]
    Ok(Json<AuditPageBody>),
}

#[derive(ApiResponse)]
enum DeletedResponse {
    /// The account and every credential of it are deleted.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(
    tag = "ApiTags::Admin",
    response_header(
        name = "X-Request-Id",
        ty = "crate::wire_strings::RequestId",
        description = "The request's id: the client's `X-Request-Id` when it is 1–128 characters of `A-Z a-z 0-9 - _ . :`, else a new UUID. Logged with the request."
    )
)]
impl AdminApi {
    /// List users
    ///
    /// Users oldest first, `limit` (1–100, default 50) at a time. Pass the
    /// returned `next_cursor` as `cursor` for the next page; pages stay stable
    /// while users are added. `q` filters by a case-insensitive substring of
    /// username or email.
    #[oai(path = "/admin/users", method = "get", operation_id = "adminListUsers")]
    async fn list(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Admin")] _auth: Authenticated<AdminScope>,
        /// Page size, 1–100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page, passed back unchanged.
        #[oai(validator(max_length = 128, pattern = r"^[A-Za-z0-9_-]*$"))]
        cursor: Query<Option<String>>,
        /// Substring of the username or of the email address's canonical form:
        /// compared after NFKC normalisation and lower-casing, with punycode
        /// (`xn--`) labels read as Unicode, so `ＡＬＩＣＥ@EXAMPLE.COM` finds
        /// `alice@example.com`.
        #[oai(validator(max_length = 254))]
        q: Query<Option<String>>,
    ) -> Result<PageResponse, ApiError> {
        // The store made the cursor and is the one to read it: one it did
        // not make is a validation error on `cursor`.
        let after = cursor
            .0
            .filter(|text| !text.is_empty())
            .map(PageCursor::new);
        let page = state
            .auth
            .list_users(UserListQuery {
                after,
                limit: limit.0.unwrap_or(DEFAULT_PAGE_SIZE),
                search: q.0.as_deref().map(UserSearch::new),
            })
            .await?;
        Ok(PageResponse::Ok(Json(UserPageBody {
            items: page.users.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|cursor| cursor.as_str().to_owned()),
        })))
    }

    /// Get a user
    #[oai(
        path = "/admin/users/:id",
        method = "get",
        operation_id = "adminGetUser"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Admin")] _auth: Authenticated<AdminScope>,
        /// The user id.
        id: Path<Uuid>,
    ) -> Result<UserResponse, ApiError> {
        let user = state.auth.get_user(UserId::from_uuid(id.0)).await?;
        Ok(UserResponse::Ok(Json(user.into())))
    }

    /// Change a user
    ///
    /// Changes `disabled`, `roles`, `email` and/or `full_name`. Disabling ends
    /// the user's sessions and API keys at once; removing the admin role takes
    /// effect on the user's next request. The last enabled admin cannot be
    /// disabled or demoted (409).
    #[oai(
        path = "/admin/users/:id",
        method = "patch",
        operation_id = "adminUpdateUser"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        request: &Request,
        #[oai(scope = "ApiScopes::Admin")] auth: Authenticated<AdminScope>,
        /// The user id.
        id: Path<Uuid>,
        body: ValidatedJson<AdminUserUpdateBody>,
    ) -> Result<UserResponse, ApiError> {
        let ValidatedJson(body) = body;
        // Absent leaves the name alone, null clears it.
        let full_name: Option<Option<String>> = body.full_name.into();
        let user = state
            .auth
            .admin_update_user(
                UserId::from_uuid(id.0),
                AdminUserUpdate {
                    disabled: body.disabled,
                    roles: body
                        .roles
                        .map(|roles| roles.into_iter().map(RoleName::into_inner).collect()),
                    email: body.email.map(EmailString::into_inner),
                    full_name,
                },
                &Initiator::caller(&auth.principal, &client_info(&state, request)),
            )
            .await?;
        Ok(UserResponse::Ok(Json(user.into())))
    }

    /// Delete a user
    ///
    /// Deletes the account with its sessions and API keys. The last enabled
    /// admin cannot be deleted (409).
    #[oai(
        path = "/admin/users/:id",
        method = "delete",
        operation_id = "adminDeleteUser"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        request: &Request,
        #[oai(scope = "ApiScopes::Admin")] auth: Authenticated<AdminScope>,
        /// The user id.
        id: Path<Uuid>,
    ) -> Result<DeletedResponse, ApiError> {
        state
            .auth
            .admin_delete_user(
                UserId::from_uuid(id.0),
                &Initiator::caller(&auth.principal, &client_info(&state, request)),
            )
            .await?;
        Ok(DeletedResponse::NoContent)
    }

    /// Read the audit log
    ///
    /// Security events newest first, `limit` (1–100, default 100) at a
    /// time; pass the returned `next_cursor` as `cursor` for older ones.
    /// Filters: `user` (events about or by that account), `event` (one
    /// event name), `since` (inclusive) and `until` (exclusive), RFC 3339
    /// times. Each event is also in the MAC chain `portcullis audit verify`
    /// checks.
    #[oai(
        path = "/admin/audit",
        method = "get",
        operation_id = "adminListAuditEvents"
    )]
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per query parameter"
    )]
    async fn audit(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Admin")] _auth: Authenticated<AdminScope>,
        /// Only events whose subject or actor is this user id.
        user: Query<Option<Uuid>>,
        /// Only events with this name, e.g. `login.failed`.
        #[oai(validator(max_length = 64, pattern = r"^[a-z_.]*$"))]
        event: Query<Option<String>>,
        /// Only events at or after this time (RFC 3339).
        since: Query<Option<OffsetDateTime>>,
        /// Only events before this time (RFC 3339).
        until: Query<Option<OffsetDateTime>>,
        /// Page size, 1–100 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page, passed back unchanged.
        #[oai(validator(max_length = 128, pattern = r"^[A-Za-z0-9_-]*$"))]
        cursor: Query<Option<String>>,
    ) -> Result<AuditPageResponse, ApiError> {
        let page = state
            .auth
            .list_audit_events(AuditListRequest {
                user: user.0.map(UserId::from_uuid),
                event: event.0.filter(|name| !name.is_empty()),
                since: since.0,
                until: until.0,
                page: page_request(limit.0, cursor.0),
            })
            .await?;
        Ok(AuditPageResponse::Ok(Json(AuditPageBody {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next.map(|cursor| cursor.as_str().to_owned()),
        })))
    }

    /// List the signing keys
    ///
    /// Every access-token signing key not yet deleted, oldest first, with
    /// where it is in its life: `next` (published, not yet signing),
    /// `current` (signs; exactly one) or `retired` (verifies the tokens it
    /// signed until `retires_at`). Never any private material. Empty when
    /// tokens are signed with the HS256 secret from `PORTCULLIS_JWT_SECRET`,
    /// whose key is not kept in the store.
    #[oai(path = "/admin/keys", method = "get", operation_id = "adminListKeys")]
    async fn keys(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Admin")] _auth: Authenticated<AdminScope>,
    ) -> Result<KeysResponse, ApiError> {
        let keys = match &state.publication.key_lifecycle {
            Some(lifecycle) => lifecycle.keys().await?,
            None => Vec::new(),
        };
        Ok(KeysResponse::Ok(Json(
            keys.into_iter().map(SigningKeyBody::from).collect(),
        )))
    }

    /// Rotate the signing keys now
    ///
    /// The `next` key becomes `current` at once, the old `current` key
    /// retires (its tokens keep verifying until they expire) and a new `next`
    /// key is made; every node signs with the new key after its next reload,
    /// this one at once. Answers the new listing. For a suspected key leak:
    /// resource servers fetch the key set again when they meet the new
    /// `kid`. 409 when tokens are signed with the HS256 secret from
    /// `PORTCULLIS_JWT_SECRET`: change the secret instead.
    #[oai(
        path = "/admin/keys/rotate",
        method = "post",
        operation_id = "adminRotateKeys"
    )]
    async fn rotate_keys(
        &self,
        state: Data<&AppState>,
        request: &Request,
        #[oai(scope = "ApiScopes::Admin")] auth: Authenticated<AdminScope>,
    ) -> Result<KeysResponse, ApiError> {
        let publication = &state.publication;
        let Some(lifecycle) = &publication.key_lifecycle else {
            return Err(ApiError::keys_fixed_by_secret());
        };
        lifecycle
            .rotate_now_by(&Initiator::caller(
                &auth.principal,
                &client_info(&state, request),
            ))
            .await?;
        // The rotation is stored; a failed reload is reported (this node
        // would keep signing with the retired key until its next periodic
        // reload), and the listing shows the rotation either way.
        publication.key_ring.reload().await?;
        tracing::info!("signing keys rotated on request");
        let keys = lifecycle.keys().await?;
        Ok(KeysResponse::Ok(Json(
            keys.into_iter().map(SigningKeyBody::from).collect(),
        )))
    }
}
