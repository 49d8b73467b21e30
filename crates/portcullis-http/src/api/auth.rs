//! Registration and the OAuth token endpoints.

use poem::Request;
use poem::web::Data;
use poem_openapi::Enum;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use portcullis_domain::{
    LoginRequest as DomainLoginRequest, LogoutScope, Password, RefreshRequest, RegistrationRequest,
    TokenTypeHint,
};

use super::{ApiTags, client_info};
use crate::dto::{
    LoginRequest, RegisterRequest, RevocationRequestForm, TokenRequestForm, TokenResponseBody,
    UserBody,
};
use crate::error::{ApiError, OAuthErrorResponse};
use crate::payload::{OAuthForm, OAuthJson, ValidatedJson};
use crate::security::{ApiScopes, Authenticated, ProfileScope};
use crate::state::AppState;

/// Registration and token operations.
pub struct AuthApi;

#[derive(ApiResponse)]
enum RegisterResponse {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<UserBody>),
}

#[derive(ApiResponse)]
enum TokenResponse {
    /// Tokens were issued. Never cache this response.
    #[oai(status = 200)]
    Ok(
        Json<TokenResponseBody>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// Always `no-cache`.
        #[oai(header = "Pragma")]
        String,
    ),
}

#[derive(ApiResponse)]
enum RevokeResponse {
    /// The token is revoked, or was unknown or already invalid (RFC 7009 §2.2).
    #[oai(status = 200)]
    Ok,
}

#[derive(ApiResponse)]
enum LogoutResponse {
    /// The sessions are ended.
    #[oai(status = 204)]
    NoContent,
}

/// Which sessions `POST /auth/logout` ends.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
enum LogoutScopeParam {
    /// This session only.
    Local,
    /// Every session of yours.
    Global,
    /// Every session of yours except this one.
    Others,
}

impl TokenResponse {
    fn issued(body: TokenResponseBody) -> Self {
        Self::Ok(Json(body), "no-store".to_owned(), "no-cache".to_owned())
    }
}

#[OpenApi(
    tag = "ApiTags::Auth",
    response_header(
        name = "X-Request-Id",
        ty = "crate::wire_strings::RequestId",
        description = "The request's id: the client's `X-Request-Id` when it is 1–128 characters of `A-Z a-z 0-9 - _ . :`, else a new UUID. Logged with the request."
    )
)]
impl AuthApi {
    /// Create an account
    ///
    /// Creates an account with the `user` role. The password must be at least
    /// the configured minimum length (default 15 characters, counted in
    /// Unicode code points), at most 256, and must not contain the username or
    /// the email address's local part. Unknown fields are ignored.
    #[oai(path = "/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: ValidatedJson<RegisterRequest>,
    ) -> Result<RegisterResponse, ApiError> {
        let ValidatedJson(body) = body;
        let user = state
            .auth
            .register(
                RegistrationRequest {
                    username: body.username,
                    email: body.email.into_inner(),
                    full_name: body.full_name,
                    password: Password::new(body.password),
                },
                &client_info(&state, request),
            )
            .await?;
        Ok(RegisterResponse::Created(Json(user.into())))
    }

    /// Get tokens (OAuth2 token endpoint)
    ///
    /// The OAuth2 token endpoint, form-encoded. `grant_type=password` takes
    /// `username`, `password` and an optional `scope` that narrows the grant.
    /// Errors follow RFC 6749 §5.2; bad credentials, unknown users and
    /// disabled accounts are indistinguishable (`invalid_grant`).
    #[oai(path = "/auth/token", method = "post", operation_id = "token")]
    async fn token(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: OAuthForm<TokenRequestForm>,
    ) -> Result<TokenResponse, OAuthErrorResponse> {
        match body.required("grant_type")? {
            "password" => {
                let username = body.required("username")?;
                let password = body.required("password")?;
                let scope = body.single("scope")?;
                let grant = state
                    .auth
                    .login(DomainLoginRequest {
                        username: username.to_owned(),
                        password: Password::new(password.to_owned()),
                        scope: scope.map(str::to_owned),
                        client: client_info(&state, request),
                    })
                    .await?;
                Ok(TokenResponse::issued(grant.into()))
            }
            "refresh_token" => {
                let refresh_token = body.required("refresh_token")?;
                let scope = body.single("scope")?;
                let grant = state
                    .auth
                    .refresh(RefreshRequest {
                        refresh_token: refresh_token.to_owned(),
                        scope: scope.map(str::to_owned),
                    })
                    .await?;
                Ok(TokenResponse::issued(grant.into()))
            }
            _ => Err(OAuthErrorResponse::unsupported_grant_type()),
        }
    }

    /// Revoke a token (RFC 7009)
    ///
    /// Revokes an access or refresh token, form-encoded: `token` and an
    /// optional `token_type_hint`. Either token ends its whole session, so
    /// every token of that session stops working on the next request. Unknown,
    /// malformed or already-revoked tokens also get 200, as RFC 7009 requires.
    #[oai(path = "/auth/revoke", method = "post", operation_id = "revoke")]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        body: OAuthForm<RevocationRequestForm>,
    ) -> Result<RevokeResponse, OAuthErrorResponse> {
        let token = body.required("token")?;
        let hint = match body.single("token_type_hint")? {
            Some("access_token") => Some(TokenTypeHint::AccessToken),
            Some("refresh_token") => Some(TokenTypeHint::RefreshToken),
            // Unknown hints are ignored (RFC 7009 §2.1: the server may search all types).
            _ => None,
        };
        state.auth.revoke_token(token, hint).await?;
        Ok(RevokeResponse::Ok)
    }

    /// Log out
    ///
    /// Ends sessions of the caller: `scope=local` (the default) this session,
    /// `global` every session, `others` every session but this one. Their
    /// access and refresh tokens stop working on the next request.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        /// `local` (default), `global` or `others`.
        scope: Query<Option<LogoutScopeParam>>,
    ) -> Result<LogoutResponse, ApiError> {
        let scope = match scope.0.unwrap_or(LogoutScopeParam::Local) {
            LogoutScopeParam::Local => LogoutScope::Local,
            LogoutScopeParam::Global => LogoutScope::Global,
            LogoutScopeParam::Others => LogoutScope::Others,
        };
        state.auth.logout(&auth.principal, scope).await?;
        Ok(LogoutResponse::NoContent)
    }

    /// Log in (JSON)
    ///
    /// The JSON twin of the password grant: `{username, password, scope?}`.
    /// Answers exactly like `POST /auth/token` with `grant_type=password`.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: OAuthJson<LoginRequest>,
    ) -> Result<TokenResponse, OAuthErrorResponse> {
        let OAuthJson(body) = body;
        let grant = state
            .auth
            .login(DomainLoginRequest {
                username: body.username,
                password: Password::new(body.password),
                scope: body.scope.filter(|s| !s.is_empty()),
                client: client_info(&state, request),
            })
            .await?;
        Ok(TokenResponse::issued(grant.into()))
    }
}
