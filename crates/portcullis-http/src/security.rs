//! Security schemes and the extractor that authenticates a caller.
//!
//! poem-openapi's own scheme extractors answer `text/plain` 401s without a
//! `WWW-Authenticate` header, report only the last scheme's error, and do not
//! enforce scopes (STACK-NOTES 7). So the derived scheme types below exist
//! only to be declared in the OpenAPI document; [`Authenticated`] does the
//! real work: it reads the credential, authenticates it through the domain,
//! and enforces the scope its type parameter names.

use std::marker::PhantomData;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use poem::Request;
use poem::http::header::AUTHORIZATION;
use poem_openapi::auth::{ApiKey, Basic, Bearer};
use poem_openapi::registry::Registry;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OAuthScopes, SecurityScheme,
};
use portcullis_domain::{AuthError, Password, Principal, Scope};

use crate::error::ApiError;
use crate::state::AppState;

/// The header that carries an API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The OAuth scopes Portcullis grants, as documented in the OpenAPI document.
#[derive(Debug, OAuthScopes)]
pub enum ApiScopes {
    /// Read and change your own account.
    #[oai(rename = "profile")]
    Profile,
    /// Use the admin API (accounts with the `admin` role only).
    #[oai(rename = "admin")]
    Admin,
    /// Introspect tokens at `/auth/introspect` (accounts with the `admin`
    /// role only): what a resource server's API key carries.
    #[oai(rename = "introspect")]
    Introspect,
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

/// A personal API key created with `POST /users/me/api-keys`, sent as
/// `X-API-Key: pcl_...`. It carries the scopes chosen at creation.
#[derive(SecurityScheme)]
#[oai(
    rename = "ApiKeyAuth",
    ty = "api_key",
    key_name = "X-API-Key",
    key_in = "header"
)]
pub struct ApiKeyScheme(pub ApiKey);

/// Your username and password on every request (RFC 7617). Rate-limited like
/// a login; prefer a token or an API key for anything but quick checks.
#[derive(SecurityScheme)]
#[oai(rename = "BasicAuth", ty = "basic")]
pub struct BasicScheme(pub Basic);

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

/// Marker: the operation requires the `introspect` scope.
#[derive(Debug)]
pub struct IntrospectScope;

impl RequiredScope for IntrospectScope {
    const SCOPE: Scope = Scope::Introspect;
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
#[derive(PartialEq, Eq)]
pub enum PresentedCredential<'a> {
    /// Nothing Portcullis understands was presented.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: Basic` with a username and password.
    Basic {
        /// The username as sent.
        username: String,
        /// The password as sent.
        password: String,
    },
    /// `X-API-Key: <key>`.
    ApiKey(&'a str),
    /// A credential header that is present but unusable.
    Malformed,
    /// More than one credential (RFC 6750 §2: clients use exactly one).
    Several,
}

impl std::fmt::Debug for PresentedCredential<'_> {
    // Never print a secret, even in a test failure or a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Bearer(_) => "Bearer(..)",
            Self::Basic { .. } => "Basic(..)",
            Self::ApiKey(_) => "ApiKey(..)",
            Self::Malformed => "Malformed",
            Self::Several => "Several",
        })
    }
}

/// Reads the credential out of the `Authorization` and `X-API-Key` header
/// values. Scheme names are case-insensitive (RFC 9110 §11.1); tokens in the
/// query string are never considered.
///
/// ```
/// use portcullis_http::security::{PresentedCredential, parse_credentials};
///
/// assert_eq!(
///     parse_credentials(Some(b"Bearer eyJ.abc.def"), None),
///     PresentedCredential::Bearer("eyJ.abc.def")
/// );
/// // "alice:s3cret", base64
/// assert!(matches!(
///     parse_credentials(Some(b"Basic YWxpY2U6czNjcmV0"), None),
///     PresentedCredential::Basic { .. }
/// ));
/// // Clients send exactly one credential (RFC 6750 §2).
/// assert_eq!(
///     parse_credentials(Some(b"Bearer x"), Some(b"pcl_key")),
///     PresentedCredential::Several
/// );
/// ```
pub fn parse_credentials<'a>(
    authorization: Option<&'a [u8]>,
    api_key: Option<&'a [u8]>,
) -> PresentedCredential<'a> {
    let from_authorization = parse_authorization(authorization);
    let from_api_key = match api_key {
        None => PresentedCredential::None,
        Some(value) => match std::str::from_utf8(value) {
            Ok(key) if !key.trim().is_empty() => PresentedCredential::ApiKey(key.trim()),
            _ => PresentedCredential::Malformed,
        },
    };
    match (from_authorization, from_api_key) {
        (PresentedCredential::None, other) | (other, PresentedCredential::None) => other,
        _ => PresentedCredential::Several,
    }
}

/// Reads the credential out of an `Authorization` header value.
pub fn parse_authorization(value: Option<&[u8]>) -> PresentedCredential<'_> {
    let Some(value) = value else {
        return PresentedCredential::None;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return PresentedCredential::Malformed;
    };
    // The scheme decides first: other schemes (Digest, Negotiate, ...) are
    // "no credential" whatever their parameters look like, and only Bearer
    // and Basic values are held to the token68 syntax.
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let bearer = scheme.eq_ignore_ascii_case("bearer");
    let basic = scheme.eq_ignore_ascii_case("basic");
    if !bearer && !basic {
        return PresentedCredential::None;
    }
    let token = rest.trim_matches(' ');
    let is_token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.is_empty() || !token.chars().all(is_token68) {
        return PresentedCredential::Malformed;
    }
    if bearer {
        return PresentedCredential::Bearer(token);
    }
    // RFC 7617: base64 of `user-id ":" password`, UTF-8.
    let decoded = STANDARD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|pair| pair.split_once(':')) {
        Some((username, password)) => PresentedCredential::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        },
        None => PresentedCredential::Malformed,
    }
}

impl<'a, S: RequiredScope> ApiExtractor<'a> for Authenticated<S> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <OAuth2Scheme as ApiExtractor>::register(registry);
        <BearerScheme as ApiExtractor>::register(registry);
        <ApiKeyScheme as ApiExtractor>::register(registry);
        <BasicScheme as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <OAuth2Scheme as ApiExtractor>::security_schemes();
        schemes.extend(<BearerScheme as ApiExtractor>::security_schemes());
        schemes.extend(<ApiKeyScheme as ApiExtractor>::security_schemes());
        schemes.extend(<BasicScheme as ApiExtractor>::security_schemes());
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
        let headers = request.headers();
        // A header repeated is two credentials too (RFC 9110 §5.3 allows one
        // `Authorization`); taking the first would let a proxy checking the
        // last one and this server disagree about who is calling.
        let repeated = headers.get_all(AUTHORIZATION).iter().count() > 1
            || headers.get_all(API_KEY_HEADER).iter().count() > 1;
        let presented = if repeated {
            PresentedCredential::Several
        } else {
            parse_credentials(
                headers.get(AUTHORIZATION).map(|v| v.as_bytes()),
                headers.get(API_KEY_HEADER).map(|v| v.as_bytes()),
            )
        };
        let principal = match presented {
            PresentedCredential::None => return Err(ApiError::missing_credentials().into()),
            PresentedCredential::Malformed => return Err(ApiError::invalid_token().into()),
            PresentedCredential::Several => {
                return Err(ApiError::from(AuthError::AmbiguousCredentials).into());
            }
            PresentedCredential::Bearer(token) => state.auth.authenticate_access_token(token).await,
            PresentedCredential::ApiKey(key) => state.auth.authenticate_api_key(key).await,
            PresentedCredential::Basic { username, password } => {
                state
                    .auth
                    .authenticate_basic(
                        &username,
                        &Password::new(password),
                        &crate::api::client_info(state, request),
                    )
                    .await
            }
        }
        .map_err(ApiError::from)?;
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
    fn basic_credentials_are_decoded_and_split_at_the_first_colon() {
        let header = format!("Basic {}", STANDARD.encode("alice:pass:word"));
        match parse_authorization(Some(header.as_bytes())) {
            PresentedCredential::Basic { username, password } => {
                assert_eq!(username, "alice");
                assert_eq!(password, "pass:word");
            }
            other => panic!("{other:?}"),
        }
        let no_colon = format!("Basic {}", STANDARD.encode("alice"));
        assert_eq!(
            parse_authorization(Some(no_colon.as_bytes())),
            PresentedCredential::Malformed
        );
        assert_eq!(
            parse_authorization(Some(b"Basic !!!")),
            PresentedCredential::Malformed
        );
    }

    #[test]
    fn an_api_key_alone_is_used_but_two_credentials_are_refused() {
        assert_eq!(
            parse_credentials(None, Some(b"pcl_x")),
            PresentedCredential::ApiKey("pcl_x")
        );
        assert_eq!(
            parse_credentials(Some(b"Bearer abc"), Some(b"pcl_x")),
            PresentedCredential::Several
        );
        assert_eq!(
            parse_credentials(None, Some(b"  ")),
            PresentedCredential::Malformed
        );
    }

    #[test]
    fn the_debug_form_never_shows_the_secret() {
        let credential = PresentedCredential::Basic {
            username: "alice".to_owned(),
            password: "hunter2hunter2".to_owned(),
        };
        assert!(!format!("{credential:?}").contains("hunter2"));
    }

    #[test]
    fn absent_or_foreign_schemes_are_no_credential() {
        assert_eq!(parse_authorization(None), PresentedCredential::None);
        for foreign in [
            &b"Digest abc"[..],
            br#"Digest username="alice", realm="x", nonce="n""#,
            b"Negotiate",
            b"NTLM TlRMTVNTUAABAAAAB4IIog==",
        ] {
            assert_eq!(
                parse_authorization(Some(foreign)),
                PresentedCredential::None,
                "{foreign:?}"
            );
        }
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
