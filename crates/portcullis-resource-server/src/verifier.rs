//! The verifier: discovery, header checks, the key, the signature, the
//! claims.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{AcceptedAlgorithm, MAX_LEEWAY, ResourceServerConfig};
use crate::error::{InvalidToken, SetupError, VerifyError};
use crate::key_cache::KeyCache;
use crate::token::VerifiedToken;

/// The path of the RFC 8414 metadata below the issuer.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// The `typ` of an access token (RFC 9068 section 2.1), short form.
const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The same as a full media type.
const ACCESS_TOKEN_MEDIA_TYPE: &str = "application/at+jwt";

/// The largest metadata document read.
const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Verifies Portcullis access tokens in another service, with the public
/// keys Portcullis publishes: no shared secret, no call to Portcullis per
/// request.
///
/// Named apart from Portcullis's own `JwtVerifier` because it does what
/// that one does not: it fetches its keys over HTTP. The key set comes
/// from one address only, the configured or discovered `jwks_uri`; nothing
/// in a token can make it fetch from anywhere else.
///
/// Cheap to clone (one `Arc`); clones share the cached key set.
#[derive(Clone)]
pub struct RemoteVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    leeway_secs: i64,
    accepted: Vec<AcceptedAlgorithm>,
    min_refetch_interval: Duration,
    keys: KeyCache,
}

impl RemoteVerifier {
    /// Checks `config` and, unless it names a `jwks_uri`, reads the
    /// issuer's metadata to find it. The key set itself is fetched by the
    /// first verification.
    ///
    /// # Errors
    ///
    /// - [`SetupError::InvalidConfig`] for a setting out of range;
    /// - [`SetupError::Discovery`] when the metadata cannot be fetched or
    ///   read, or its `jwks_uri` is not an absolute http(s) URL;
    /// - [`SetupError::IssuerMismatch`] when the metadata's `issuer` is not
    ///   the configured issuer.
    pub async fn new(config: ResourceServerConfig) -> Result<Self, SetupError> {
        validate(&config)?;
        let http = reqwest::Client::builder()
            // A redirect could send the fetch anywhere; the key set is
            // fetched from exactly the address configured or discovered.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .user_agent(concat!(
                "portcullis-resource-server/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|error| SetupError::InvalidConfig {
                setting: "http_timeout",
                reason: format!("cannot build the HTTP client: {error}"),
            })?;
        let jwks_uri = match config.jwks_uri.clone() {
            Some(jwks_uri) => {
                absolute_http_url(&jwks_uri).map_err(|reason| SetupError::InvalidConfig {
                    setting: "jwks_uri",
                    reason,
                })?;
                jwks_uri
            }
            None => discover_jwks_uri(&http, &config.issuer).await?,
        };
        let leeway_secs = i64::try_from(config.leeway.as_secs()).unwrap_or(0);
        let keys = KeyCache::new(
            http,
            jwks_uri,
            config.accepted_algorithms.clone(),
            config.max_cached_keys,
            config.min_refetch_interval,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: config.issuer,
                audience: config.audience,
                leeway_secs,
                accepted: config.accepted_algorithms,
                min_refetch_interval: config.min_refetch_interval,
                keys,
            }),
        })
    }

    /// The issuer tokens must name.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The audience tokens must name.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// Where the key set is fetched from.
    #[must_use]
    pub fn jwks_uri(&self) -> &str {
        self.inner.keys.jwks_uri()
    }

    /// The least time between two fetches of the key set: how long a
    /// caller should wait before trying again after
    /// [`VerifyError::KeysUnavailable`].
    #[must_use]
    pub fn min_refetch_interval(&self) -> Duration {
        self.inner.min_refetch_interval
    }

    /// Verifies `token` now, by the system clock.
    ///
    /// # Errors
    ///
    /// See [`verify_at`](Self::verify_at).
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        self.verify_at(token, unix_now()).await
    }

    /// Verifies `token` at `now_unix` (Unix seconds).
    ///
    /// In order: the header (`typ` is `at+jwt` or `application/at+jwt` in
    /// any case; no `jku`, `x5u`, `jwk`, `x5c` or `crit`; a `kid`), the key
    /// `kid` names (fetching the key set when needed), the header's `alg`
    /// against *that key's* algorithm, the signature, then the claims:
    /// `iss` and `aud`, `sub` and `jti` non-empty strings, `exp` and `iat`
    /// numbers, `exp` after now and `nbf` (when present) and `iat` not after
    /// now, each with the leeway, and `scope` and `sid` strings when
    /// present.
    ///
    /// # Errors
    ///
    /// [`VerifyError::Invalid`] with the reason, [`VerifyError::Expired`],
    /// or [`VerifyError::KeysUnavailable`] when the key set cannot be
    /// fetched and no cached key matches.
    pub async fn verify_at(
        &self,
        token: &str,
        now_unix: i64,
    ) -> Result<VerifiedToken, VerifyError> {
        // Header first: a token of the wrong kind, or one that tries to
        // choose its own key, is refused before any key is looked up (and
        // so before any fetch).
        let header = jsonwebtoken::decode_header(token).map_err(|_| InvalidToken::Malformed)?;
        if !is_access_token_type(header.typ.as_deref()) {
            return Err(InvalidToken::NotAnAccessToken.into());
        }
        for (member, present) in [
            ("jku", header.jku.is_some()),
            ("x5u", header.x5u.is_some()),
            ("jwk", header.jwk.is_some()),
            ("x5c", header.x5c.is_some()),
        ] {
            if present {
                return Err(InvalidToken::ForbiddenHeader(member).into());
            }
        }
        if header.crit.is_some() {
            return Err(InvalidToken::CriticalHeader.into());
        }
        // Checked before the key set is consulted: a header naming an
        // algorithm this verifier never accepts (HS256) is refused without
        // a fetch.
        if !self
            .inner
            .accepted
            .iter()
            .any(|algorithm| algorithm.jsonwebtoken() == header.alg)
        {
            return Err(InvalidToken::AlgorithmMismatch.into());
        }
        let kid = header.kid.as_deref().ok_or(InvalidToken::MissingKeyId)?;
        let key = self.inner.keys.key(kid).await?;
        // The key decides the algorithm (RFC 8725 section 3.1).
        let algorithm = key.algorithm.jsonwebtoken();
        if header.alg != algorithm {
            return Err(InvalidToken::AlgorithmMismatch.into());
        }

        let mut validation = Validation::new(algorithm);
        // jsonwebtoken's claim checks read the system clock and its own
        // rules; they are off, and every claim is checked below.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding_key, &validation)
                .map_err(|error| match error.kind() {
                    ErrorKind::InvalidSignature => InvalidToken::BadSignature,
                    ErrorKind::InvalidAlgorithm => InvalidToken::AlgorithmMismatch,
                    _ => InvalidToken::Malformed,
                })?
                .claims;
        self.check_claims(claims, now_unix)
    }

    fn check_claims(
        &self,
        claims: Map<String, Value>,
        now_unix: i64,
    ) -> Result<VerifiedToken, VerifyError> {
        let leeway = self.inner.leeway_secs;
        if optional_string(&claims, "iss")?.ok_or(InvalidToken::MissingClaim("iss"))?
            != self.inner.issuer
        {
            return Err(InvalidToken::WrongIssuer.into());
        }
        let audience_matches = match claims.get("aud") {
            Some(Value::String(audience)) => *audience == self.inner.audience,
            Some(Value::Array(audiences)) => audiences
                .iter()
                .any(|audience| audience.as_str() == Some(self.inner.audience.as_str())),
            None => return Err(InvalidToken::MissingClaim("aud").into()),
            Some(_) => return Err(InvalidToken::Malformed.into()),
        };
        if !audience_matches {
            return Err(InvalidToken::WrongAudience.into());
        }

        let exp = required_time(&claims, "exp")?;
        let iat = required_time(&claims, "iat")?;
        if exp.saturating_add(leeway) <= now_unix {
            return Err(VerifyError::Expired);
        }
        if let Some(nbf) = optional_time(&claims, "nbf")?
            && nbf.saturating_sub(leeway) > now_unix
        {
            return Err(InvalidToken::NotYetValid.into());
        }
        if iat.saturating_sub(leeway) > now_unix {
            return Err(InvalidToken::IssuedInTheFuture.into());
        }

        let sub = required_string(&claims, "sub")?;
        let jti = required_string(&claims, "jti")?;
        let sid = optional_string(&claims, "sid")?.map(str::to_owned);
        let scopes = optional_string(&claims, "scope")?
            .map(|scope| {
                scope
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(VerifiedToken {
            sub,
            scopes,
            sid,
            jti,
            exp,
            iat,
            claims,
        })
    }
}

impl fmt::Debug for RemoteVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RemoteVerifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("jwks_uri", &self.inner.keys.jwks_uri())
            .field("accepted", &self.inner.accepted)
            .field("leeway_secs", &self.inner.leeway_secs)
            .finish_non_exhaustive()
    }
}

/// The system clock in Unix seconds: the one place this crate reads it
/// (tests and callers with their own clock use
/// [`RemoteVerifier::verify_at`]).
fn unix_now() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

fn validate(config: &ResourceServerConfig) -> Result<(), SetupError> {
    let invalid = |setting, reason: &str| {
        Err(SetupError::InvalidConfig {
            setting,
            reason: reason.to_owned(),
        })
    };
    if let Err(reason) = absolute_http_url(&config.issuer) {
        return Err(SetupError::InvalidConfig {
            setting: "issuer",
            reason,
        });
    }
    if config.audience.is_empty() {
        return invalid("audience", "must not be empty");
    }
    if config.accepted_algorithms.is_empty() {
        return invalid("accepted_algorithms", "at least one algorithm");
    }
    if config.leeway > MAX_LEEWAY {
        return invalid("leeway", "at most 30 s");
    }
    if config.min_refetch_interval < Duration::from_secs(1) {
        return invalid("min_refetch_interval", "at least 1 s");
    }
    if config.max_cached_keys == 0 {
        return invalid("max_cached_keys", "at least 1");
    }
    Ok(())
}

/// Refuses anything but an absolute `http` or `https` URL.
fn absolute_http_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(()),
        Ok(_) => Err(format!("{url:?} is not an http(s) URL")),
        Err(error) => Err(format!("{url:?} is not a URL: {error}")),
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

/// Reads `{issuer}/.well-known/oauth-authorization-server` and returns its
/// `jwks_uri`, once its `issuer` is the configured one.
async fn discover_jwks_uri(http: &reqwest::Client, issuer: &str) -> Result<String, SetupError> {
    let url = format!("{}{METADATA_PATH}", issuer.trim_end_matches('/'));
    let failed = |reason: String| SetupError::Discovery {
        url: url.clone(),
        reason,
    };
    let mut response = http
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| failed(error.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("status {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| failed(error.to_string()))?
    {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(failed(format!("larger than {MAX_METADATA_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let metadata: Metadata = serde_json::from_slice(&body)
        .map_err(|error| failed(format!("not authorization server metadata: {error}")))?;
    if metadata.issuer != issuer {
        return Err(SetupError::IssuerMismatch {
            url,
            expected: issuer.to_owned(),
            found: metadata.issuer,
        });
    }
    absolute_http_url(&metadata.jwks_uri).map_err(failed)?;
    Ok(metadata.jwks_uri)
}

/// Whether a `typ` header names an access token. Media types compare
/// case-insensitively (RFC 9068 section 4).
fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
            || typ.eq_ignore_ascii_case(ACCESS_TOKEN_MEDIA_TYPE)
    })
}

fn optional_string<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, InvalidToken> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(InvalidToken::Malformed),
    }
}

fn required_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<String, InvalidToken> {
    match optional_string(claims, name)? {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        _ => Err(InvalidToken::MissingClaim(name)),
    }
}

/// A NumericDate claim (RFC 7519 section 2), in whole seconds as
/// Portcullis writes it; anything else is refused.
fn optional_time(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, InvalidToken> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or(InvalidToken::Malformed),
    }
}

fn required_time(claims: &Map<String, Value>, name: &'static str) -> Result<i64, InvalidToken> {
    optional_time(claims, name)?.ok_or(InvalidToken::MissingClaim(name))
}
