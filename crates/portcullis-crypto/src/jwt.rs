//! JWT access tokens per RFC 9068 ("JWT Profile for OAuth 2.0 Access Tokens"),
//! hardened per RFC 8725 ("JWT Best Current Practices").
//!
//! Only HS256 is issued and accepted. The `typ` header is `at+jwt` so that an
//! access token cannot be confused with any other JWT signed with the same key
//! (for example an ID token), and verification takes the current time as a
//! parameter so callers (and tests) control the clock.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{CryptoError, JwtError};

/// The `typ` header of an access token (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Allowed clock skew, in seconds, when checking `exp` and `nbf`.
pub const MAX_LEEWAY_SECS: u64 = 30;

/// The full media type form of [`ACCESS_TOKEN_TYPE`], also accepted in `typ`.
const ACCESS_TOKEN_MEDIA_TYPE: &str = "application/at+jwt";

/// Smallest accepted HS256 key: the size of the SHA-256 output (RFC 7518
/// section 3.2).
const MIN_SECRET_LEN: usize = 32;

/// [`MAX_LEEWAY_SECS`] as a signed number of seconds, to compare with claims.
const LEEWAY_SECS: i64 = MAX_LEEWAY_SECS as i64;

/// The claims of an access token. All nine are required on decoding.
///
/// Times are Unix timestamps in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer. Overwritten by [`JwtCodec::encode`] with the codec's issuer.
    pub iss: String,
    /// Audience. Overwritten by [`JwtCodec::encode`] with the codec's audience.
    /// Serialised as a string; on decoding a one-element array is also
    /// accepted (RFC 7519 section 4.1.3).
    #[serde(deserialize_with = "deserialize_single_audience")]
    pub aud: String,
    /// Subject: the user the token was issued to.
    pub sub: String,
    /// Expiry time.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// Time before which the token must not be accepted.
    pub nbf: i64,
    /// Unique token identifier.
    pub jti: String,
    /// Identifier of the session the token belongs to.
    pub sid: String,
    /// Space-separated OAuth scopes.
    pub scope: String,
}

/// Issues and verifies HS256 access tokens for one issuer and one audience.
///
/// Cheap to clone. `Debug` prints the issuer and audience, never the key.
#[derive(Clone)]
pub struct JwtCodec {
    issuer: String,
    audience: String,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    validation: Validation,
}

impl JwtCodec {
    /// Builds a codec signing with HS256 and `secret`.
    ///
    /// `issuer` and `audience` are put into every issued token and required on
    /// verification. The leeway for `exp`/`nbf` is [`MAX_LEEWAY_SECS`].
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyTooShort`] if `secret` is shorter than 32 bytes.
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, CryptoError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(CryptoError::KeyTooShort);
        }

        let mut validation = Validation::new(Algorithm::HS256);
        // jsonwebtoken's own time checks read the system clock; time is a
        // parameter of `decode` here, so they are off and done in `decode`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_aud = true;

        Ok(JwtCodec {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            encoding_key: EncodingKey::from_secret(secret),
            decoding_key: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// The `iss` put into and required from tokens.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` put into and required from tokens.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs `claims` with header `{"alg": "HS256", "typ": "at+jwt"}`.
    ///
    /// `iss` and `aud` are replaced by the codec's own; every other claim is
    /// signed as given.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Signing`] if serialising or signing fails.
    pub fn encode(&self, claims: &AccessTokenClaims) -> Result<String, CryptoError> {
        let claims = AccessTokenClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            ..claims.clone()
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.encoding_key)
            .map_err(|error| CryptoError::Signing(error.to_string()))
    }

    /// Verifies `token` at time `now_unix` (Unix seconds) and returns its
    /// claims.
    ///
    /// Checks, in order: the header (`alg` must be HS256, `typ` must be
    /// `at+jwt` or `application/at+jwt` in any case, no `crit`), the signature,
    /// that all nine claims are present and well typed, `iss` and `aud`, then
    /// time: `exp + 30 > now_unix` and `nbf - 30 <= now_unix`.
    ///
    /// # Errors
    ///
    /// - [`JwtError::Malformed`] for any structural, header, signature or claim
    ///   problem;
    /// - [`JwtError::WrongIssuerOrAudience`] if `iss` or `aud` is not the
    ///   codec's;
    /// - [`JwtError::Expired`] if the token is expired or not yet valid beyond
    ///   the leeway.
    pub fn decode(&self, token: &str, now_unix: i64) -> Result<AccessTokenClaims, JwtError> {
        // The header is checked before anything else so that a token of the
        // wrong kind is refused as such, whatever its claims say.
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.alg != Algorithm::HS256
            || !is_access_token_type(header.typ.as_deref())
            // RFC 7515 section 4.1.11: extensions listed in `crit` must be
            // understood, and this codec understands none.
            || header.crit.is_some()
        {
            return Err(JwtError::Malformed);
        }

        let claims =
            jsonwebtoken::decode::<AccessTokenClaims>(token, &self.decoding_key, &self.validation)
                .map_err(|error| match error.kind() {
                    ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                        JwtError::WrongIssuerOrAudience
                    }
                    ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => JwtError::Expired,
                    _ => JwtError::Malformed,
                })?
                .claims;

        // jsonwebtoken has already checked these; checking again costs nothing
        // and does not depend on its `Validation` semantics.
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(JwtError::WrongIssuerOrAudience);
        }

        let not_expired = claims.exp.saturating_add(LEEWAY_SECS) > now_unix;
        let already_valid = claims.nbf.saturating_sub(LEEWAY_SECS) <= now_unix;
        if !not_expired || !already_valid {
            return Err(JwtError::Expired);
        }

        Ok(claims)
    }
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("JwtCodec")
            .field("algorithm", &Algorithm::HS256)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &MAX_LEEWAY_SECS)
            .finish_non_exhaustive()
    }
}

/// Whether a `typ` header names an access token. Media types compare
/// case-insensitively (RFC 8725 section 3.11, RFC 9068 section 4).
fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
            || typ.eq_ignore_ascii_case(ACCESS_TOKEN_MEDIA_TYPE)
    })
}

/// Reads `aud` as either `"a"` or `["a"]`. Arrays of any other length are
/// refused: this codec serves exactly one audience.
fn deserialize_single_audience<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum SingleAudience {
        String(String),
        OneElementArray([String; 1]),
    }

    Ok(match SingleAudience::deserialize(deserializer)? {
        SingleAudience::String(audience) | SingleAudience::OneElementArray([audience]) => audience,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER_SECRET: &[u8] = b"fedcba9876543210fedcba9876543210";
    const ISSUER: &str = "https://auth.example.test";
    const AUDIENCE: &str = "portcullis-api";
    const NOW: i64 = 1_700_000_000;

    fn codec() -> JwtCodec {
        JwtCodec::new(SECRET, ISSUER, AUDIENCE).unwrap()
    }

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: "user-1".to_owned(),
            exp: NOW + 900,
            iat: NOW,
            nbf: NOW,
            jti: "token-1".to_owned(),
            sid: "session-1".to_owned(),
            scope: "openid profile".to_owned(),
        }
    }

    fn claims_json() -> Value {
        serde_json::to_value(claims()).unwrap()
    }

    /// Signs arbitrary JSON claims with an arbitrary header, bypassing the codec.
    fn sign_raw(header: &Header, claims: &Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn access_token_header() -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header
    }

    #[test]
    fn encoded_token_decodes_to_the_same_claims() {
        let codec = codec();
        let token = codec.encode(&claims()).unwrap();
        assert_eq!(codec.decode(&token, NOW).unwrap(), claims());
    }

    #[test]
    fn header_of_an_encoded_token_is_hs256_with_typ_at_jwt() {
        let token = codec().encode(&claims()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    }

    #[test]
    fn encode_overwrites_issuer_and_audience_with_the_codecs_own() {
        let codec = codec();
        let mut foreign = claims();
        foreign.iss = "https://evil.example.test".to_owned();
        foreign.aud = "other-api".to_owned();
        let decoded = codec.decode(&codec.encode(&foreign).unwrap(), NOW).unwrap();
        assert_eq!(decoded.iss, ISSUER);
        assert_eq!(decoded.aud, AUDIENCE);
    }

    #[test]
    fn tampered_signature_is_malformed() {
        let codec = codec();
        let token = codec.encode(&claims()).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        signature[0] ^= 1;
        let tampered = format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature));
        assert_eq!(codec.decode(&tampered, NOW), Err(JwtError::Malformed));
    }

    #[test]
    fn tampered_payload_is_malformed() {
        let codec = codec();
        let token = codec.encode(&claims()).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut elevated = claims_json();
        elevated["scope"] = json!("admin");
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&elevated).unwrap());
        parts[1] = &payload;
        assert_eq!(
            codec.decode(&parts.join("."), NOW),
            Err(JwtError::Malformed)
        );
    }

    #[test]
    fn token_signed_with_another_key_is_malformed() {
        let other = JwtCodec::new(OTHER_SECRET, ISSUER, AUDIENCE).unwrap();
        let token = other.encode(&claims()).unwrap();
        assert_eq!(codec().decode(&token, NOW), Err(JwtError::Malformed));
    }

    #[test]
    fn unsigned_alg_none_token_is_malformed() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_json()).unwrap());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert_eq!(codec().decode(&token, NOW), Err(JwtError::Malformed));
        }
    }

    #[test]
    fn hs512_token_with_the_right_key_is_malformed() {
        let mut header = Header::new(Algorithm::HS512);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        let token = sign_raw(&header, &claims_json(), SECRET);
        assert_eq!(codec().decode(&token, NOW), Err(JwtError::Malformed));
    }

    #[test]
    fn hs256_token_with_typ_jwt_is_malformed() {
        let token = sign_raw(&Header::new(Algorithm::HS256), &claims_json(), SECRET);
        assert_eq!(codec().decode(&token, NOW), Err(JwtError::Malformed));
    }

    #[test]
    fn hs256_token_without_typ_is_malformed() {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = None;
        let token = sign_raw(&header, &claims_json(), SECRET);
        assert_eq!(codec().decode(&token, NOW), Err(JwtError::Malformed));
    }

    #[test]
    fn typ_is_compared_case_insensitively_and_may_be_the_full_media_type() {
        for typ in ["AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
            let mut header = Header::new(Algorithm::HS256);
            header.typ = Some(typ.to_owned());
            let token = sign_raw(&header, &claims_json(), SECRET);
            assert_eq!(codec().decode(&token, NOW), Ok(claims()), "{typ}");
        }
    }

    #[test]
    fn token_with_a_crit_header_is_malformed() {
        let mut header = access_token_header();
        header.crit = Some(vec!["exp".to_owned()]);
        let token = sign_raw(&header, &claims_json(), SECRET);
        assert_eq!(codec().decode(&token, NOW), Err(JwtError::Malformed));
    }

    #[test]
    fn wrong_issuer_is_rejected() {
        let other = JwtCodec::new(SECRET, "https://other.example.test", AUDIENCE).unwrap();
        let token = other.encode(&claims()).unwrap();
        assert_eq!(
            codec().decode(&token, NOW),
            Err(JwtError::WrongIssuerOrAudience)
        );
    }

    #[test]
    fn wrong_audience_is_rejected() {
        let other = JwtCodec::new(SECRET, ISSUER, "other-api").unwrap();
        let token = other.encode(&claims()).unwrap();
        assert_eq!(
            codec().decode(&token, NOW),
            Err(JwtError::WrongIssuerOrAudience)
        );
    }

    #[test]
    fn audience_as_a_one_element_array_is_accepted() {
        let mut raw = claims_json();
        raw["aud"] = json!([AUDIENCE]);
        let token = sign_raw(&access_token_header(), &raw, SECRET);
        assert_eq!(codec().decode(&token, NOW), Ok(claims()));
    }

    #[test]
    fn audience_array_with_a_foreign_element_is_rejected() {
        let mut raw = claims_json();
        raw["aud"] = json!(["other-api"]);
        let token = sign_raw(&access_token_header(), &raw, SECRET);
        assert_eq!(
            codec().decode(&token, NOW),
            Err(JwtError::WrongIssuerOrAudience)
        );

        raw["aud"] = json!([AUDIENCE, "other-api"]);
        let token = sign_raw(&access_token_header(), &raw, SECRET);
        assert!(codec().decode(&token, NOW).is_err());
    }

    #[test]
    fn token_expired_beyond_the_leeway_is_expired() {
        let codec = codec();
        let mut expired = claims();
        expired.exp = NOW - LEEWAY_SECS - 1;
        expired.nbf = NOW - 900;
        let token = codec.encode(&expired).unwrap();
        assert_eq!(codec.decode(&token, NOW), Err(JwtError::Expired));

        expired.exp = NOW - LEEWAY_SECS;
        let token = codec.encode(&expired).unwrap();
        assert_eq!(codec.decode(&token, NOW), Err(JwtError::Expired));
    }

    #[test]
    fn token_expired_within_the_leeway_is_accepted() {
        let codec = codec();
        let mut recent = claims();
        recent.exp = NOW - LEEWAY_SECS + 1;
        recent.nbf = NOW - 900;
        let token = codec.encode(&recent).unwrap();
        assert_eq!(codec.decode(&token, NOW), Ok(recent));
    }

    #[test]
    fn token_not_yet_valid_beyond_the_leeway_is_expired() {
        let codec = codec();
        let mut future = claims();
        future.nbf = NOW + LEEWAY_SECS + 1;
        let token = codec.encode(&future).unwrap();
        assert_eq!(codec.decode(&token, NOW), Err(JwtError::Expired));

        future.nbf = NOW + LEEWAY_SECS;
        let token = codec.encode(&future).unwrap();
        assert_eq!(codec.decode(&token, NOW), Ok(future));
    }

    #[test]
    fn decode_uses_the_given_time_not_the_system_clock() {
        // These claims are decades in the past for the system clock.
        let codec = codec();
        let mut old = claims();
        old.nbf = 1_000;
        old.iat = 1_000;
        old.exp = 2_000;
        let token = codec.encode(&old).unwrap();
        assert_eq!(codec.decode(&token, 1_500), Ok(old));
        assert_eq!(codec.decode(&token, NOW), Err(JwtError::Expired));
    }

    #[test]
    fn missing_sid_claim_is_malformed() {
        let mut raw = claims_json();
        raw.as_object_mut().unwrap().remove("sid");
        let token = sign_raw(&access_token_header(), &raw, SECRET);
        assert_eq!(codec().decode(&token, NOW), Err(JwtError::Malformed));
    }

    #[test]
    fn any_missing_claim_is_malformed() {
        for claim in [
            "iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "scope",
        ] {
            let mut raw = claims_json();
            raw.as_object_mut().unwrap().remove(claim);
            let token = sign_raw(&access_token_header(), &raw, SECRET);
            assert_eq!(
                codec().decode(&token, NOW),
                Err(JwtError::Malformed),
                "{claim}"
            );
        }
    }

    #[test]
    fn claim_of_the_wrong_type_is_malformed() {
        let mut raw = claims_json();
        raw["exp"] = json!("tomorrow");
        let token = sign_raw(&access_token_header(), &raw, SECRET);
        assert_eq!(codec().decode(&token, NOW), Err(JwtError::Malformed));
    }

    #[test]
    fn garbage_is_malformed() {
        for token in ["", "a", "a.b", "a.b.c", "a.b.c.d", "...", "ey.ey.ey"] {
            assert_eq!(
                codec().decode(token, NOW),
                Err(JwtError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn secret_of_31_bytes_is_too_short() {
        assert!(matches!(
            JwtCodec::new(&[7; 31], ISSUER, AUDIENCE),
            Err(CryptoError::KeyTooShort)
        ));
        assert!(JwtCodec::new(&[7; 32], ISSUER, AUDIENCE).is_ok());
    }

    #[test]
    fn codec_reports_its_issuer_and_audience() {
        let codec = codec();
        assert_eq!(codec.issuer(), ISSUER);
        assert_eq!(codec.audience(), AUDIENCE);
    }

    #[test]
    fn debug_of_codec_contains_no_key_material() {
        let secret = [0xAB_u8; 32];
        let codec = JwtCodec::new(&secret, ISSUER, AUDIENCE).unwrap();
        let debug = format!("{codec:?}");
        assert!(debug.contains(ISSUER), "{debug}");
        for needle in [
            "171",
            "0xab",
            "0xAB",
            "ab, ab",
            "abababab",
            "ABABABAB",
            &URL_SAFE_NO_PAD.encode(secret)[..8],
        ] {
            assert!(!debug.contains(needle), "{needle} in {debug}");
        }
    }
}
