//! `/.well-known/jwks.json` and `/.well-known/oauth-authorization-server`.

use portcullis_http::HttpOptions;
use serde_json::{Value, json};

use crate::fakes::{
    ISSUER, JWKS_MAX_AGE, Keys, PRIVATE_MARKER, PUBLIC_URL, TestApp, header, json_of,
};

#[tokio::test]
async fn the_key_set_lists_every_stored_key_with_exactly_the_public_members() {
    let app = TestApp::new(Keys::Stored).await;
    let (status, headers, body) =
        json_of(app.client.get("/.well-known/jwks.json").send().await).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        header(&headers, "content-type").is_some_and(|t| t.starts_with("application/json")),
        "{headers:?}"
    );
    let keys = body["keys"].as_array().expect("keys");
    // A fresh install: the current key and the next one.
    assert_eq!(keys.len(), 2, "{body}");
    for key in keys {
        let mut members: Vec<&str> = key
            .as_object()
            .expect("a JWK object")
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"], "{key}");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
    }
    let kids: Vec<&str> = keys
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids, ["kid-0", "kid-1"]);
    assert!(!body.to_string().contains(PRIVATE_MARKER));
}

#[tokio::test]
async fn the_key_set_may_be_cached_for_the_configured_time_only() {
    let app = TestApp::new(Keys::Stored).await;
    let response = app.client.get("/.well-known/jwks.json").send().await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("cache-control"),
        Some(format!("public, max-age={}", JWKS_MAX_AGE.as_secs()).as_str())
    );
    // Everything else keeps the API's `no-store`.
    let other = app.client.get("/admin/keys").send().await;
    assert_eq!(other.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn a_server_signing_with_an_hs256_secret_publishes_an_empty_key_set() {
    let app = TestApp::new(Keys::FixedHs256).await;
    let (status, _, body) = json_of(app.client.get("/.well-known/jwks.json").send().await).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"keys": []}));
}

#[tokio::test]
async fn the_metadata_names_absolute_urls_on_the_public_url_and_the_tokens_issuer() {
    let app = TestApp::new(Keys::Stored).await;
    let (status, headers, body) = json_of(
        app.client
            .get("/.well-known/oauth-authorization-server")
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&headers, "cache-control"),
        Some(format!("public, max-age={}", JWKS_MAX_AGE.as_secs()).as_str())
    );
    assert_eq!(body["issuer"], ISSUER);
    for (member, path) in [
        ("token_endpoint", "/auth/token"),
        ("revocation_endpoint", "/auth/revoke"),
        ("introspection_endpoint", "/auth/introspect"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("service_documentation", "/docs"),
    ] {
        assert_eq!(body[member], format!("{PUBLIC_URL}{path}"), "{member}");
    }
    assert_eq!(
        body["grant_types_supported"],
        json!(["password", "refresh_token"])
    );
    assert_eq!(
        body["scopes_supported"],
        json!(["profile", "admin", "introspect"])
    );
    assert_eq!(body["response_types_supported"], json!([]));
    assert_eq!(
        body["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(
        body["revocation_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(
        body["introspection_endpoint_auth_methods_supported"],
        json!([
            "Bearer",
            "urn:portcullis:auth-method:api-key",
            "urn:portcullis:auth-method:basic"
        ])
    );
}

#[tokio::test]
async fn every_metadata_url_is_served_by_this_app() {
    let app = TestApp::new(Keys::Stored).await;
    let (_, _, body) = json_of(
        app.client
            .get("/.well-known/oauth-authorization-server")
            .send()
            .await,
    )
    .await;
    let spec: Value = serde_json::from_str(&portcullis_http::openapi_json()).expect("the document");
    for member in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "jwks_uri",
    ] {
        let url = body[member].as_str().expect(member);
        let path = url.strip_prefix(PUBLIC_URL).expect("on the public URL");
        assert!(
            spec["paths"].get(path).is_some(),
            "{member} {path} is an operation of the document"
        );
    }
}

#[tokio::test]
async fn without_docs_the_metadata_names_no_service_documentation() {
    let options = HttpOptions {
        docs_enabled: false,
        ..HttpOptions::default()
    };
    let app = TestApp::with_options(Keys::Stored, &options).await;
    let (_, _, body) = json_of(
        app.client
            .get("/.well-known/oauth-authorization-server")
            .send()
            .await,
    )
    .await;
    assert!(body.get("service_documentation").is_none(), "{body}");
    assert_eq!(body["issuer"], ISSUER);
}
