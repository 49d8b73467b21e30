//! Contract section 4 from the outside: the metadata document, the key set,
//! introspection of every kind of credential, and the key administration,
//! on a server that signs with the fixed HS256 test secret.

use portcullis_tests::{GOOD_PASSWORD, TEST_JWT_SECRET, TestApp};
use reqwest::Response;
use serde_json::{Value, json};

use crate::support::{
    BEARER_CHALLENGE, Credential, PROBLEM_JSON, api_key_of, basic_authorization, header,
    jwt_claims, make_admin, media_type, mint_with_kid, new_api_key, now_unix, spawn_unthrottled,
};

const INTROSPECT_SCOPE_CHALLENGE: &str =
    r#"Bearer realm="portcullis", error="insufficient_scope", scope="introspect""#;

/// A server with the admin `root` and the user `alice`.
async fn spawn() -> TestApp {
    let app = spawn_unthrottled().await;
    app.register("root").await;
    make_admin(&app, "root").await;
    app.register("alice").await;
    app
}

async fn introspect_as(app: &TestApp, credential: Option<&Credential>, token: &str) -> Response {
    let mut request = app
        .client
        .post(app.url("/auth/introspect"))
        .form(&[("token", token)]);
    if let Some(credential) = credential {
        request = credential.apply(request);
    }
    request.send().await.expect("request")
}

/// Introspects `token` as the admin `root`; asserts 200 and returns the answer.
async fn introspect(app: &TestApp, token: &str) -> Value {
    let root = Credential::basic("root", GOOD_PASSWORD);
    let response = introspect_as(app, Some(&root), token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(media_type(response.headers()), "application/json");
    response.json().await.expect("JSON")
}

fn member_names(answer: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = answer
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

fn inactive() -> Value {
    json!({"active": false})
}

#[tokio::test]
async fn the_metadata_document_names_this_servers_absolute_urls_and_the_tokens_issuer() {
    let app = spawn().await;
    let response = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(media_type(response.headers()), "application/json");
    let metadata: Value = response.json().await.expect("JSON");
    let token = app.login("alice").await;
    let claims = jwt_claims(token["access_token"].as_str().expect("token"));
    assert_eq!(metadata["issuer"], claims["iss"]);
    for (member, path) in [
        ("token_endpoint", "/auth/token"),
        ("revocation_endpoint", "/auth/revoke"),
        ("introspection_endpoint", "/auth/introspect"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("service_documentation", "/docs"),
    ] {
        assert_eq!(metadata[member], app.url(path), "{member}");
    }
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["password", "refresh_token"])
    );
    assert_eq!(
        metadata["scopes_supported"],
        json!(["profile", "admin", "introspect"])
    );
    assert_eq!(metadata["response_types_supported"], json!([]));
    // The key set it names is really there.
    let jwks = app
        .client
        .get(metadata["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("request");
    assert_eq!(jwks.status(), 200);
}

#[tokio::test]
async fn with_an_hs256_secret_the_key_set_is_empty_and_leaks_nothing_of_the_secret() {
    let app = spawn().await;
    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(media_type(response.headers()), "application/json");
    let cache = header(response.headers(), "cache-control").expect("Cache-Control");
    let max_age: u64 = cache
        .strip_prefix("public, max-age=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("public with a max-age: {cache}"));
    assert!(
        max_age <= 3600,
        "no longer than the publish-ahead time: {cache}"
    );
    let text = response.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(body, json!({"keys": []}));
    use base64::Engine;
    for encoding in [
        TEST_JWT_SECRET.to_owned(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(TEST_JWT_SECRET),
        base64::engine::general_purpose::STANDARD.encode(TEST_JWT_SECRET),
    ] {
        assert!(!text.contains(&encoding), "the secret leaks: {text}");
    }
    assert!(!text.contains("\"k\""), "no symmetric key member: {text}");
}

#[tokio::test]
async fn an_active_access_token_answers_exactly_its_members_and_is_inactive_after_logout() {
    let app = spawn().await;
    let grant = app.login("alice").await;
    let access = grant["access_token"].as_str().expect("token");
    let claims = jwt_claims(access);
    let answer = introspect(&app, access).await;
    assert_eq!(
        member_names(&answer),
        [
            "active",
            "aud",
            "exp",
            "iat",
            "iss",
            "jti",
            "scope",
            "sid",
            "sub",
            "token_type",
            "username"
        ]
    );
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["scope"], "profile");
    for claim in ["sub", "exp", "iat", "iss", "aud", "jti", "sid"] {
        assert_eq!(answer[claim], claims[claim], "{claim}");
    }

    let logout = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .expect("request");
    assert_eq!(logout.status(), 204);
    assert_eq!(introspect(&app, access).await, inactive());
    let refresh = grant["refresh_token"].as_str().expect("refresh");
    assert_eq!(introspect(&app, refresh).await, inactive());
}

#[tokio::test]
async fn a_refresh_token_is_active_until_rotated_and_its_successor_until_revoked() {
    let app = spawn().await;
    let grant = app.login("alice").await;
    let first = grant["refresh_token"].as_str().expect("refresh");
    let answer = introspect(&app, first).await;
    assert_eq!(
        member_names(&answer),
        [
            "active",
            "exp",
            "iat",
            "iss",
            "scope",
            "sid",
            "sub",
            "token_type",
            "username"
        ]
    );
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(
        answer["sid"],
        jwt_claims(grant["access_token"].as_str().expect("token"))["sid"]
    );

    let rotated = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", first)])
        .await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.expect("JSON");
    let second = rotated["refresh_token"].as_str().expect("refresh");
    assert_eq!(introspect(&app, first).await, inactive());
    // Asking about the used token was no replay: the successor still works.
    assert_eq!(introspect(&app, second).await["active"], true);

    let revoke = app
        .client
        .post(app.url("/auth/revoke"))
        .form(&[("token", second)])
        .send()
        .await
        .expect("request");
    assert_eq!(revoke.status(), 200);
    assert_eq!(introspect(&app, second).await, inactive());
}

#[tokio::test]
async fn an_api_key_is_active_with_its_members_until_revoked() {
    let app = spawn().await;
    let alice = Credential::basic("alice", GOOD_PASSWORD);
    let created = new_api_key(&app, &alice, &json!({"name": "ci"})).await;
    let key = api_key_of(&created);
    let answer = introspect(&app, &key).await;
    assert_eq!(
        member_names(&answer),
        [
            "active",
            "iat",
            "iss",
            "jti",
            "scope",
            "sub",
            "token_type",
            "username"
        ]
    );
    assert_eq!(answer["token_type"], "api_key");
    assert_eq!(answer["jti"], created["id"]);
    assert_eq!(answer["scope"], "profile");

    let id = created["id"].as_str().expect("id");
    let revoked = alice
        .apply(
            app.client
                .delete(app.url(&format!("/users/me/api-keys/{id}"))),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(revoked.status(), 204);
    assert_eq!(introspect(&app, &key).await, inactive());
}

#[tokio::test]
async fn garbage_expired_and_forged_tokens_are_exactly_inactive() {
    let app = spawn().await;
    let grant = app.login("alice").await;
    let claims = jwt_claims(grant["access_token"].as_str().expect("token"));
    let header_kid =
        crate::support::jwt_segment(grant["access_token"].as_str().expect("t"), 0)["kid"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default();
    let mut expired = claims.clone();
    expired["iat"] = json!(now_unix() - 7200);
    expired["nbf"] = json!(now_unix() - 7200);
    expired["exp"] = json!(now_unix() - 3600);
    let expired = mint_with_kid(&expired, &header_kid, TEST_JWT_SECRET.as_bytes());
    let forged = mint_with_kid(
        &claims,
        &header_kid,
        b"another-secret-another-secret-0123456789",
    );
    let long = "a".repeat(20_000);
    let unknown_key = format!("pcl_{}", "A".repeat(43));
    for token in [
        "x",
        "a.b.c",
        expired.as_str(),
        forged.as_str(),
        unknown_key.as_str(),
        "\u{1F980}\u{0}",
        long.as_str(),
    ] {
        assert_eq!(introspect(&app, token).await, inactive(), "{token:.24}");
    }
}

#[tokio::test]
async fn introspection_needs_a_credential_with_the_introspect_scope() {
    let app = spawn().await;
    let alice_token = app.login("alice").await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();

    let response = introspect_as(&app, None, &alice_token).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(BEARER_CHALLENGE)
    );
    assert_eq!(media_type(response.headers()), PROBLEM_JSON);

    let alice_key = api_key_of(
        &new_api_key(
            &app,
            &Credential::Bearer(alice_token.clone()),
            &json!({"name": "mine"}),
        )
        .await,
    );
    for (who, credential) in [
        ("a user's token", Credential::Bearer(alice_token.clone())),
        ("a user's API key", Credential::ApiKey(alice_key)),
        ("a user's Basic", Credential::basic("alice", GOOD_PASSWORD)),
    ] {
        let response = introspect_as(&app, Some(&credential), &alice_token).await;
        assert_eq!(response.status(), 403, "{who}");
        assert_eq!(
            header(response.headers(), "www-authenticate"),
            Some(INTROSPECT_SCOPE_CHALLENGE),
            "{who}"
        );
        assert_eq!(media_type(response.headers()), PROBLEM_JSON, "{who}");
    }

    // An admin narrowed to `admin` lacks it too: the credential decides.
    let narrowed = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", GOOD_PASSWORD),
            ("scope", "profile admin"),
        ])
        .await;
    let narrowed: Value = narrowed.json().await.expect("JSON");
    let narrowed = Credential::Bearer(narrowed["access_token"].as_str().expect("t").to_owned());
    let response = introspect_as(&app, Some(&narrowed), &alice_token).await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_user_can_never_be_granted_introspect() {
    let app = spawn().await;
    let response = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", GOOD_PASSWORD),
            ("scope", "introspect"),
        ])
        .await;
    crate::support::expect_oauth_error(response, "invalid_scope").await;
    let response = app
        .client
        .post(app.url("/users/me/api-keys"))
        .header("authorization", basic_authorization("alice", GOOD_PASSWORD))
        .json(&json!({"name": "sneaky", "scopes": ["introspect"]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn an_admins_api_key_holding_only_introspect_introspects_and_does_nothing_else() {
    let app = spawn().await;
    let root = Credential::basic("root", GOOD_PASSWORD);
    let key = Credential::ApiKey(api_key_of(
        &new_api_key(
            &app,
            &root,
            &json!({"name": "resource server", "scopes": ["introspect"]}),
        )
        .await,
    ));
    let alice_token = app.login("alice").await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let response = introspect_as(&app, Some(&key), &alice_token).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["active"], true);
    assert_eq!(answer["username"], "alice");

    let me = key
        .apply(app.client.get(app.url("/users/me")))
        .send()
        .await
        .expect("request");
    assert_eq!(me.status(), 403);
}

#[tokio::test]
async fn with_hs256_keys_the_admin_listing_is_empty_and_rotation_is_409() {
    let app = spawn().await;
    let root = Credential::basic("root", GOOD_PASSWORD);
    let listing = root
        .apply(app.client.get(app.url("/admin/keys")))
        .send()
        .await
        .expect("request");
    assert_eq!(listing.status(), 200);
    assert_eq!(listing.json::<Value>().await.expect("JSON"), json!([]));

    let rotate = root
        .apply(app.client.post(app.url("/admin/keys/rotate")))
        .send()
        .await
        .expect("request");
    assert_eq!(rotate.status(), 409);
    assert_eq!(media_type(rotate.headers()), PROBLEM_JSON);
    let problem: Value = rotate.json().await.expect("JSON");
    assert_eq!(
        problem["type"],
        "urn:portcullis:problem:keys-fixed-by-secret"
    );
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("PORTCULLIS_JWT_SECRET")),
        "{problem}"
    );
    assert!(!problem.to_string().contains(TEST_JWT_SECRET));

    let alice = Credential::basic("alice", GOOD_PASSWORD);
    for response in [
        alice.apply(app.client.get(app.url("/admin/keys"))),
        alice.apply(app.client.post(app.url("/admin/keys/rotate"))),
    ] {
        assert_eq!(response.send().await.expect("request").status(), 403);
    }
}
