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
    IntrospectionBody, IntrospectionRequestForm, LoginRequest, RegisterRequest,
    RevocationRequestForm, TokenRequestForm, TokenResponseBody, UserBody,
};
use crate::error::{ApiError, OAuthErrorResponse};
use crate::metrics;
use crate::payload::{OAuthForm, OAuthJson, ProblemForm, ValidatedJson};
use crate::security::{ApiScopes, Authenticated, IntrospectScope, ProfileScope};
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
enum IntrospectResponse {
    /// What the token is: `{"active": false}` for anything not usable now.
    #[oai(status = 200)]
    Ok(Json<IntrospectionBody>),
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
                    .await;
                metrics::record_login(request, &grant);
                let grant = grant?;
                metrics::record_grant(request);
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
                        client: client_info(&state, request),
                    })
                    .await?;
                metrics::record_grant(request);
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
        request: &Request,
        body: OAuthForm<RevocationRequestForm>,
    ) -> Result<RevokeResponse, OAuthErrorResponse> {
        let token = body.required("token")?;
        let hint = match body.single("token_type_hint")? {
            Some("access_token") => Some(TokenTypeHint::AccessToken),
            Some("refresh_token") => Some(TokenTypeHint::RefreshToken),
            // Unknown hints are ignored (RFC 7009 §2.1: the server may search all types).
            _ => None,
        };
        state
            .auth
            .revoke_token(token, hint, &client_info(&state, request))
            .await?;
        Ok(RevokeResponse::Ok)
    }

    /// Introspect a token (RFC 7662)
    ///
    /// For resource servers: is this access token, refresh token or API key
    /// usable right now, and whose is it? Form-encoded: `token` and an
    /// optional `token_type_hint` (`access_token`, `refresh_token`,
    /// `api_key`). The caller's own credential (usually an API key made for
    /// the resource server) must carry the `introspect` scope, which only
    /// admins can hold.
    ///
    /// An active token answers `active: true` with `token_type`, `scope`,
    /// `sub`, `username`, `iat`, `iss`, and: for an access token `exp`,
    /// `aud`, `jti`, `sid`; for a refresh token `exp` (its session's end
    /// unless used) and `sid`; for an API key `jti` (the key's id) and `exp`
    /// when it expires. Anything else (unknown, malformed, expired, revoked,
    /// rotated, over 4096 characters) answers exactly `{"active": false}`.
    /// Answers read the store: after a logout or revocation the token is
    /// inactive at once. Asking changes nothing about the token.
    #[oai(
        path = "/auth/introspect",
        method = "post",
        operation_id = "introspect"
    )]
    async fn introspect(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "ApiScopes::Introspect")] _auth: Authenticated<IntrospectScope>,
        body: ProblemForm<IntrospectionRequestForm>,
    ) -> Result<IntrospectResponse, ApiError> {
        let token = body.required("token")?;
        let hint = match body.single("token_type_hint")? {
            Some("access_token") => Some(TokenTypeHint::AccessToken),
            Some("refresh_token") => Some(TokenTypeHint::RefreshToken),
            Some("api_key") => Some(TokenTypeHint::ApiKey),
            // Unknown hints are ignored: every kind is tried (RFC 7662 §2.1).
            _ => None,
        };
        let answer = match state.auth.introspect(token, hint).await? {
            Some(active) => {
                let audience = verified_jwt_audience(token);
                IntrospectionBody::active(active, state.publication.issuer.clone(), audience)
            }
            None => IntrospectionBody::inactive(),
        };
        Ok(IntrospectResponse::Ok(Json(answer)))
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
        request: &Request,
        #[oai(scope = "ApiScopes::Profile")] auth: Authenticated<ProfileScope>,
        /// `local` (default), `global` or `others`.
        scope: Query<Option<LogoutScopeParam>>,
    ) -> Result<LogoutResponse, ApiError> {
        let scope = match scope.0.unwrap_or(LogoutScopeParam::Local) {
            LogoutScopeParam::Local => LogoutScope::Local,
            LogoutScopeParam::Global => LogoutScope::Global,
            LogoutScopeParam::Others => LogoutScope::Others,
        };
        state
            .auth
            .logout(&auth.principal, scope, &client_info(&state, request))
            .await?;
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
            .await;
        metrics::record_login(request, &grant);
        let grant = grant?;
        metrics::record_grant(request);
        Ok(TokenResponse::issued(grant.into()))
    }
}

/// The `aud` claim of an access token the domain has already verified (so
/// it names this service's audience): read from the payload, because the
/// domain's claims leave `iss` and `aud` to the verifier. `aud` is a string
/// or a one-element array in a token that verified. `None` for anything
/// that is not a JWT.
fn verified_jwt_audience(token: &str) -> Option<String> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match &claims["aud"] {
        serde_json::Value::String(audience) => Some(audience.clone()),
        serde_json::Value::Array(audiences) => match audiences.as_slice() {
            [serde_json::Value::String(audience)] => Some(audience.clone()),
            _ => None,
        },
        _ => None,
    }
}
