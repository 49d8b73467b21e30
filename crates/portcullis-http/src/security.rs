//! Security schemes and the extractor that authenticates a caller.
//!
//! poem-openapi's own scheme extractors answer `text/plain` 401s without a
//! `WWW-Authenticate` header, report only the last scheme's error, and do not
//! enforce scopes (STACK-NOTES 7). So the derived scheme types below exist
//! only to be declared in the OpenAPI document; [`Authenticated`] does the
//! real work: it reads the credential, authenticates it through the domain,
//! and enforces the scope its type parameter names.

use std::marker::PhantomData;

use poem::Request;
use poem::http::header::AUTHORIZATION;
use poem_openapi::auth::Bearer;
use poem_openapi::registry::Registry;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OAuthScopes, SecurityScheme,
};
use portcullis_domain::{Principal, Scope};

use crate::error::ApiError;
use crate::state::AppState;

/// The OAuth scopes Portcullis grants, as documented in the OpenAPI document.
#[derive(Debug, OAuthScopes)]
pub enum ApiScopes {
    /// Read and change your own account.
    #[oai(rename = "profile")]
    Profile,
    /// Use the admin API (accounts with the `admin` role only).
    #[oai(rename = "admin")]
    Admin,
}

/// OAuth2 password flow: Swagger UI's **Authorize** button posts your
/// username and password to `/auth/token` and uses the returned access token.
#[derive(SecurityScheme)]
#[oai(
    rename = "OAuth2",
    ty = "oauth2",
    flows(password(token_url = "/auth/token", scopes = "ApiScopes"))
)]
pub struct OAuth2Scheme(pub Bearer);

/// An access token (JWT) obtained from `/auth/token` or `/auth/login`, sent as
/// `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(rename = "BearerAuth", ty = "bearer", bearer_format = "JWT")]
pub struct BearerScheme(pub Bearer);

/// A scope that an operation requires, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
}

/// Marker: the operation requires the `profile` scope.
#[derive(Debug)]
pub struct ProfileScope;

impl RequiredScope for ProfileScope {
    const SCOPE: Scope = Scope::Profile;
}

/// Marker: the operation requires the `admin` scope.
#[derive(Debug)]
pub struct AdminScope;

impl RequiredScope for AdminScope {
    const SCOPE: Scope = Scope::Admin;
}

/// An authenticated caller whose credential carries scope `S`.
///
/// Failing requests get the contract's answers: 401 with
/// `WWW-Authenticate: Bearer realm="portcullis"` (plus `error="invalid_token"`
/// when a credential was presented but refused) and 403 with
/// `error="insufficient_scope"`.
#[derive(Debug)]
pub struct Authenticated<S: RequiredScope = ProfileScope> {
    /// The caller.
    pub principal: Principal,
    scope: PhantomData<S>,
}

/// A credential as found in the request headers.
#[derive(Debug, PartialEq, Eq)]
pub enum PresentedCredential<'a> {
    /// Nothing Portcullis understands was presented.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// An `Authorization` header that is present but unusable.
    Malformed,
}

/// Reads the credential out of an `Authorization` header value. The scheme
/// name is case-insensitive (RFC 9110 §11.1); tokens in the query string are
/// never considered.
pub fn parse_authorization(value: Option<&[u8]>) -> PresentedCredential<'_> {
    let Some(value) = value else {
        return PresentedCredential::None;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return PresentedCredential::Malformed;
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        return PresentedCredential::Malformed;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Other schemes (e.g. Basic) are not accepted on these operations.
        return PresentedCredential::None;
    }
    let token = rest.trim_matches(' ');
    let is_token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.is_empty() || !token.chars().all(is_token68) {
        return PresentedCredential::Malformed;
    }
    PresentedCredential::Bearer(token)
}

impl<'a, S: RequiredScope> ApiExtractor<'a> for Authenticated<S> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <OAuth2Scheme as ApiExtractor>::register(registry);
        <BearerScheme as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <OAuth2Scheme as ApiExtractor>::security_schemes();
        schemes.extend(<BearerScheme as ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = request.data::<AppState>().ok_or_else(|| {
            tracing::error!("AppState is missing from the request data");
            ApiError::internal()
        })?;
        let header = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
        let principal = match parse_authorization(header) {
            PresentedCredential::None => return Err(ApiError::missing_credentials().into()),
            PresentedCredential::Malformed => return Err(ApiError::invalid_token().into()),
            PresentedCredential::Bearer(token) => state
                .auth
                .authenticate_access_token(token)
                .await
                .map_err(ApiError::from)?,
        };
        principal.require(S::SCOPE).map_err(ApiError::from)?;
        Ok(Self {
            principal,
            scope: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(
            parse_authorization(Some(b"bEaReR abc.def-ghi")),
            PresentedCredential::Bearer("abc.def-ghi")
        );
    }

    #[test]
    fn absent_or_foreign_schemes_are_no_credential() {
        assert_eq!(parse_authorization(None), PresentedCredential::None);
        assert_eq!(
            parse_authorization(Some(b"Digest abc")),
            PresentedCredential::None
        );
    }

    #[test]
    fn empty_or_non_token68_bearer_values_are_malformed() {
        for value in [
            &b"Bearer "[..],
            b"Bearer a b",
            b"Bearer\xff",
            b"Bearer",
            b"Bearer a\"b",
        ] {
            assert_eq!(
                parse_authorization(Some(value)),
                PresentedCredential::Malformed,
                "{value:?}"
            );
        }
    }
}
