//! Reading a JSON Web Key Set (RFC 7517) into verification keys, and the
//! `Cache-Control` header that says how long it may be kept.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use crate::config::AcceptedAlgorithm;

/// Bytes of a raw Ed25519 public key.
const ED25519_PUBLIC_KEY_BYTES: usize = 32;
/// Bytes of one P-256 coordinate.
const P256_COORDINATE_BYTES: usize = 32;
/// The prefix of an uncompressed elliptic-curve point (SEC 1).
const UNCOMPRESSED_POINT: u8 = 0x04;

/// One usable key of the set: its algorithm, taken from the JWK and
/// checked against its key type and curve, and the public key.
#[derive(Clone)]
pub(crate) struct RemoteKey {
    pub(crate) algorithm: AcceptedAlgorithm,
    pub(crate) decoding_key: DecodingKey,
}

/// The usable keys of one fetched key set, by `kid`.
pub(crate) type KeySet = HashMap<String, RemoteKey>;

/// The members of a JWK this crate reads; every other member is ignored.
#[derive(Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: Option<String>,
    crv: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    public_key_use: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// Reads a key set, keeping the keys that are usable: a `kid`, `use`
/// absent or `sig`, an `alg` among `accepted` that matches `kty`/`crv`, and
/// public key members of the right size. Others are skipped (and logged),
/// not fatal: an issuer may publish keys for other uses or algorithms.
/// At most `max_keys` keys are kept.
///
/// Fails only when the document is not a key set at all.
pub(crate) fn parse_key_set(
    body: &[u8],
    accepted: &[AcceptedAlgorithm],
    max_keys: usize,
) -> Result<KeySet, String> {
    let set: JwkSet =
        serde_json::from_slice(body).map_err(|error| format!("not a JWK set: {error}"))?;
    let mut keys = KeySet::new();
    let mut ambiguous = HashSet::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            tracing::debug!("skipping a JWK whose members have the wrong types");
            continue;
        };
        let Some(kid) = jwk.kid.clone() else {
            tracing::debug!("skipping a JWK without kid");
            continue;
        };
        match usable_key(&jwk, accepted) {
            Ok(key) => {
                if ambiguous.contains(&kid) {
                    continue;
                }
                if keys.remove(&kid).is_some() {
                    // Two keys under one kid: a token naming it could mean
                    // either, so neither is trusted.
                    tracing::warn!(kid, "the key set has two keys with one kid; using neither");
                    ambiguous.insert(kid);
                    continue;
                }
                if keys.len() >= max_keys {
                    tracing::warn!(kid, max_keys, "the key set has more keys than are kept");
                    continue;
                }
                keys.insert(kid, key);
            }
            Err(reason) => tracing::debug!(kid, reason, "skipping a JWK"),
        }
    }
    Ok(keys)
}

/// The key a JWK describes, if this verifier may use it.
fn usable_key(jwk: &Jwk, accepted: &[AcceptedAlgorithm]) -> Result<RemoteKey, &'static str> {
    if jwk
        .public_key_use
        .as_deref()
        .is_some_and(|usage| usage != "sig")
    {
        return Err("not a signature key");
    }
    let algorithm = jwk
        .alg
        .as_deref()
        .and_then(AcceptedAlgorithm::from_name)
        .ok_or("no alg, or one this crate does not verify")?;
    if !accepted.contains(&algorithm) {
        return Err("algorithm not accepted by this verifier");
    }
    let decode = |member: Option<&String>| {
        member
            .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
            .ok_or("a public key member is missing or not base64url")
    };
    let decoding_key = match (algorithm, jwk.kty.as_deref(), jwk.crv.as_deref()) {
        (AcceptedAlgorithm::EdDsa, Some("OKP"), Some("Ed25519")) => {
            let x = decode(jwk.x.as_ref())?;
            if x.len() != ED25519_PUBLIC_KEY_BYTES {
                return Err("an Ed25519 key is 32 bytes");
            }
            // jsonwebtoken's aws-lc backend takes the raw key in its "DER"
            // constructors.
            DecodingKey::from_ed_der(&x)
        }
        (AcceptedAlgorithm::Es256, Some("EC"), Some("P-256")) => {
            let (x, y) = (decode(jwk.x.as_ref())?, decode(jwk.y.as_ref())?);
            if x.len() != P256_COORDINATE_BYTES || y.len() != P256_COORDINATE_BYTES {
                return Err("a P-256 coordinate is 32 bytes");
            }
            let mut point = Vec::with_capacity(1 + 2 * P256_COORDINATE_BYTES);
            point.push(UNCOMPRESSED_POINT);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            DecodingKey::from_ec_der(&point)
        }
        _ => return Err("alg does not match kty and crv"),
    };
    Ok(RemoteKey {
        algorithm,
        decoding_key,
    })
}

/// How long a response may be used, from its `Cache-Control` header:
/// `max-age=N` seconds, zero for `no-cache` or `no-store`, `None` when the
/// header says neither (or cannot be read).
pub(crate) fn max_age(cache_control: Option<&str>) -> Option<Duration> {
    let mut found = None;
    for directive in cache_control?.split(',') {
        let directive = directive.trim();
        let (name, value) = directive
            .split_once('=')
            .map_or((directive, None), |(name, value)| {
                (name.trim(), Some(value.trim()))
            });
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = value
                .map(|value| value.trim_matches('"'))
                .and_then(|value| value.parse::<u64>().ok())
                .map(Duration::from_secs);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_the_usual_forms() {
        assert_eq!(
            max_age(Some("public, max-age=150")),
            Some(Duration::from_secs(150))
        );
        assert_eq!(max_age(Some("MAX-AGE=\"7\"")), Some(Duration::from_secs(7)));
        assert_eq!(max_age(Some("public, no-cache")), Some(Duration::ZERO));
        assert_eq!(max_age(Some("max-age=60, no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(Some("public")), None);
        assert_eq!(max_age(Some("max-age=soon")), None);
        assert_eq!(max_age(None), None);
    }

    #[test]
    fn keys_whose_alg_disagrees_with_their_type_or_that_are_not_accepted_are_skipped() {
        let x = URL_SAFE_NO_PAD.encode([7_u8; 32]);
        let body = serde_json::json!({"keys": [
            {"kid": "ed", "kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig"},
            {"kid": "ec-claims-eddsa", "kty": "EC", "crv": "P-256", "x": x, "y": x, "alg": "EdDSA"},
            {"kid": "no-alg", "kty": "OKP", "crv": "Ed25519", "x": x},
            {"kid": "hmac", "kty": "oct", "k": x, "alg": "HS256"},
            {"kid": "encryption", "kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "enc"},
            {"kid": "short", "kty": "OKP", "crv": "Ed25519", "x": "AAAA", "alg": "EdDSA"},
            {"kid": "es", "kty": "EC", "crv": "P-256", "x": x, "y": x, "alg": "ES256"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA"},
            {"kid": 5},
        ]});
        let body = serde_json::to_vec(&body).unwrap();
        let all = [AcceptedAlgorithm::EdDsa, AcceptedAlgorithm::Es256];
        let keys = parse_key_set(&body, &all, 16).unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["ed", "es"]);
        assert_eq!(keys["es"].algorithm, AcceptedAlgorithm::Es256);

        let eddsa_only = parse_key_set(&body, &[AcceptedAlgorithm::EdDsa], 16).unwrap();
        assert_eq!(eddsa_only.len(), 1);
        assert_eq!(parse_key_set(&body, &all, 1).unwrap().len(), 1);
        assert!(parse_key_set(b"{\"kes\": []}", &all, 16).is_err());
    }

    #[test]
    fn two_keys_under_one_kid_are_both_dropped() {
        let x = URL_SAFE_NO_PAD.encode([7_u8; 32]);
        let key =
            serde_json::json!({"kid": "k", "kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA"});
        let body = serde_json::to_vec(&serde_json::json!({"keys": [key, key, key]})).unwrap();
        let keys = parse_key_set(&body, &[AcceptedAlgorithm::EdDsa], 16).unwrap();
        assert!(keys.is_empty());
    }
}
