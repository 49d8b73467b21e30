//! The RFC 9068 checks on the header and the claims.

use std::time::Duration;

use jsonwebtoken::Header;
use portcullis_crypto::JwtAlgorithm;
use portcullis_resource_server::{InvalidToken, RemoteVerifier, VerifyError};
use serde_json::{Value, json};

use crate::support::{KeyServer, NOW, TestKey, claims};

async fn set_up() -> (TestKey, KeyServer, RemoteVerifier) {
    let key = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&key]).await;
    let verifier = server.verifier(Duration::from_secs(30)).await;
    (key, server, verifier)
}

fn with(base: &Value, changes: &Value) -> Value {
    let mut claims = base.clone();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

#[tokio::test]
async fn every_claim_rule_refuses_what_it_should() {
    let (key, server, verifier) = set_up().await;
    let base = claims(&server.base);
    let invalid = |reason| Err(VerifyError::Invalid(reason));
    let cases = [
        (
            json!({"iss": "https://other.example"}),
            invalid(InvalidToken::WrongIssuer),
        ),
        (
            json!({"iss": null}),
            invalid(InvalidToken::MissingClaim("iss")),
        ),
        (
            json!({"aud": "another-api"}),
            invalid(InvalidToken::WrongAudience),
        ),
        (
            json!({"aud": ["a", "b"]}),
            invalid(InvalidToken::WrongAudience),
        ),
        (
            json!({"aud": null}),
            invalid(InvalidToken::MissingClaim("aud")),
        ),
        (json!({"exp": NOW - 31}), Err(VerifyError::Expired)),
        (
            json!({"exp": null}),
            invalid(InvalidToken::MissingClaim("exp")),
        ),
        (json!({"exp": "tomorrow"}), invalid(InvalidToken::Malformed)),
        (
            json!({"iat": null}),
            invalid(InvalidToken::MissingClaim("iat")),
        ),
        (
            json!({"iat": NOW + 31}),
            invalid(InvalidToken::IssuedInTheFuture),
        ),
        (json!({"nbf": NOW + 31}), invalid(InvalidToken::NotYetValid)),
        (
            json!({"sub": null}),
            invalid(InvalidToken::MissingClaim("sub")),
        ),
        (
            json!({"sub": ""}),
            invalid(InvalidToken::MissingClaim("sub")),
        ),
        (
            json!({"jti": null}),
            invalid(InvalidToken::MissingClaim("jti")),
        ),
        (
            json!({"scope": ["profile"]}),
            invalid(InvalidToken::Malformed),
        ),
        (json!({"sid": 7}), invalid(InvalidToken::Malformed)),
    ];
    for (changes, expected) in cases {
        let token = key.sign(&with(&base, &changes));
        assert_eq!(verifier.verify_at(&token, NOW).await, expected, "{changes}");
    }
}

#[tokio::test]
async fn the_leeway_covers_thirty_seconds_of_clock_skew_and_optional_claims_may_be_absent() {
    let (key, server, verifier) = set_up().await;
    let base = claims(&server.base);
    for changes in [
        json!({"exp": NOW - 29, "iat": NOW - 900, "nbf": NOW - 900}),
        json!({"nbf": NOW + 29, "iat": NOW + 29}),
        json!({"aud": ["another-api", "notes-api"]}),
        json!({"nbf": null, "sid": null, "scope": null}),
    ] {
        let token = key.sign(&with(&base, &changes));
        let verified = verifier.verify_at(&token, NOW).await;
        assert!(verified.is_ok(), "{changes}: {verified:?}");
    }
    let token = key.sign(&with(&base, &json!({"scope": null, "sid": null})));
    let verified = verifier.verify_at(&token, NOW).await.unwrap();
    assert!(verified.scopes.is_empty());
    assert_eq!(verified.sid, None);
}

#[tokio::test]
async fn typ_must_name_an_access_token_in_any_case() {
    let (key, server, verifier) = set_up().await;
    let base = claims(&server.base);
    let token_with_typ = |typ: Option<&str>| {
        let mut header = Header::new(key.jsonwebtoken_algorithm());
        header.typ = typ.map(str::to_owned);
        header.kid = Some(key.kid().to_owned());
        key.sign_with_header(&header, &base)
    };
    for accepted in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/At+JWT",
    ] {
        let token = token_with_typ(Some(accepted));
        assert!(verifier.verify_at(&token, NOW).await.is_ok(), "{accepted}");
    }
    for refused in [Some("JWT"), Some("id_token+jwt"), None] {
        assert_eq!(
            verifier.verify_at(&token_with_typ(refused), NOW).await,
            Err(VerifyError::Invalid(InvalidToken::NotAnAccessToken)),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn a_token_without_kid_or_with_crit_is_refused() {
    let (key, server, verifier) = set_up().await;
    let base = claims(&server.base);
    let mut header = Header::new(key.jsonwebtoken_algorithm());
    header.typ = Some("at+jwt".to_owned());
    assert_eq!(
        verifier
            .verify_at(&key.sign_with_header(&header, &base), NOW)
            .await,
        Err(VerifyError::Invalid(InvalidToken::MissingKeyId))
    );
    header.kid = Some(key.kid().to_owned());
    header.crit = Some(vec!["exp".to_owned()]);
    assert_eq!(
        verifier
            .verify_at(&key.sign_with_header(&header, &base), NOW)
            .await,
        Err(VerifyError::Invalid(InvalidToken::CriticalHeader))
    );
    assert_eq!(
        verifier.verify_at("not.a.token", NOW).await,
        Err(VerifyError::Invalid(InvalidToken::Malformed))
    );
}
