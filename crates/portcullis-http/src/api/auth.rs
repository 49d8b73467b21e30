//! Registration and the OAuth token endpoints.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use portcullis_domain::{LoginRequest as DomainLoginRequest, Password, RegistrationRequest};

use super::{ApiTags, client_info};
use crate::dto::{LoginRequest, RegisterRequest, TokenRequestForm, TokenResponseBody, UserBody};
use crate::error::{ApiError, OAuthErrorResponse};
use crate::payload::{OAuthForm, OAuthJson, ValidatedJson};
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

impl TokenResponse {
    fn issued(body: TokenResponseBody) -> Self {
        Self::Ok(Json(body), "no-store".to_owned(), "no-cache".to_owned())
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
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
        body: ValidatedJson<RegisterRequest>,
    ) -> Result<RegisterResponse, ApiError> {
        let ValidatedJson(body) = body;
        let user = state
            .auth
            .register(RegistrationRequest {
                username: body.username,
                email: body.email,
                full_name: body.full_name,
                password: Password::new(body.password),
            })
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
                        client: client_info(request),
                    })
                    .await?;
                Ok(TokenResponse::issued(grant.into()))
            }
            _ => Err(OAuthErrorResponse::unsupported_grant_type()),
        }
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
                client: client_info(request),
            })
            .await?;
        Ok(TokenResponse::issued(grant.into()))
    }
}
