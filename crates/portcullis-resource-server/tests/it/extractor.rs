//! The poem extractor: 200 with the token, 401 `invalid_token`, 403
//! `insufficient_scope`, 503 when the keys are unavailable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, Request, Route, get, handler};
use portcullis_crypto::JwtAlgorithm;
use portcullis_resource_server::{AnyScope, PortcullisToken, RequiredScope};

use crate::support::{KeyServer, TestKey, claims_at};

struct NotesWrite;
impl RequiredScope for NotesWrite {
    const SCOPES: &'static [&'static str] = &["notes:read", "notes:write"];
}

#[handler]
fn whoami(token: PortcullisToken<AnyScope>) -> String {
    format!("{} {}", token.sub, token.scopes.join(","))
}

#[handler]
fn write(token: PortcullisToken<NotesWrite>) -> String {
    token.into_inner().sub
}

fn now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    retry_after: Option<String>,
    body: String,
}

async fn call(app: &impl Endpoint, path: &str, authorization: Option<&str>) -> Answer {
    let mut request = Request::builder().uri(path.parse().unwrap());
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = app.get_response(request.finish()).await;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    Answer {
        status: response.status(),
        challenge: header("www-authenticate"),
        retry_after: header("retry-after"),
        body: response.into_body().into_string().await.unwrap(),
    }
}

#[tokio::test]
async fn the_extractor_answers_as_rfc_6750_says() {
    let key = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&key]).await;
    let verifier = server.verifier(Duration::from_secs(30)).await;
    let app = Route::new()
        .at("/whoami", get(whoami))
        .at("/write", get(write))
        .data(verifier);
    let token = key.sign(&claims_at(&server.base, now()));
    let bearer = format!("Bearer {token}");

    let ok = call(&app, "/whoami", Some(&bearer)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, "0190a1b2-user profile,notes:read");
    let lower_case = format!("bearer {token}");
    assert_eq!(
        call(&app, "/whoami", Some(&lower_case)).await.status,
        StatusCode::OK
    );

    let missing = call(&app, "/whoami", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.challenge.as_deref(), Some("Bearer"));
    let basic = call(&app, "/whoami", Some("Basic YWxpY2U6cHc=")).await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(basic.challenge.as_deref(), Some("Bearer"));

    let tampered = format!("Bearer {}x", token);
    let invalid = call(&app, "/whoami", Some(&tampered)).await;
    assert_eq!(invalid.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        invalid.challenge.as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert!(
        invalid.body.contains(r#""error":"invalid_token""#),
        "{}",
        invalid.body
    );

    let expired_token = key.sign(&claims_at(&server.base, now() - 3600));
    let expired = call(&app, "/whoami", Some(&format!("Bearer {expired_token}"))).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(
        expired
            .challenge
            .unwrap()
            .starts_with(r#"Bearer error="invalid_token""#)
    );

    let forbidden = call(&app, "/write", Some(&bearer)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.challenge.as_deref(),
        Some(r#"Bearer error="insufficient_scope", scope="notes:read notes:write""#)
    );
    assert!(forbidden.body.contains("insufficient_scope"));
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_answer_503_not_401() {
    let key = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&key]).await;
    server.set_down(true);
    let verifier = server.verifier(Duration::from_secs(30)).await;
    let app = Route::new().at("/whoami", get(whoami)).data(verifier);
    let token = key.sign(&claims_at(&server.base, now()));
    let answer = call(&app, "/whoami", Some(&format!("Bearer {token}"))).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.challenge, None);
    assert_eq!(answer.retry_after.as_deref(), Some("30"));
}

#[tokio::test]
async fn a_route_without_a_verifier_in_its_data_is_a_500() {
    let app = Route::new().at("/whoami", get(whoami));
    let answer = call(&app, "/whoami", Some("Bearer x.y.z")).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
}
