//! Several nodes on one PostgreSQL database are one deployment
//! (CONTRACT §5): what one node does holds on every other at the next
//! request; races spread over nodes have one winner; the attempt limits are
//! the deployment's, not each node's; nodes starting together on an empty
//! database migrate it once; an outage answers 503 with `Retry-After` within
//! 5 s and service resumes by itself.
//!
//! Needs the PostgreSQL server of `PORTCULLIS_TEST_DATABASE_URL` (default
//! 127.0.0.1:5432, trust auth); each test gets a database of its own.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use portcullis_tests::cluster::{CLUSTER_PUBLIC_URL, Cluster, database_addr, database_url_via};
use portcullis_tests::tcp_proxy::TcpProxy;
use portcullis_tests::{GOOD_PASSWORD, TestApp};
use reqwest::Response;
use serde_json::{Value, json};

use crate::support::{header, jwt_segment};

/// Builds one request again for each round.
type RequestMaker<'a> = Box<dyn Fn() -> reqwest::RequestBuilder + 'a>;

/// How long an answer may take while the database is unreachable.
const OUTAGE_ANSWER_DEADLINE: Duration = Duration::from_secs(5);

/// How long the pool may take to serve again once the database is back.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(15);

async fn refresh(node: &TestApp, refresh_token: &str) -> Response {
    node.token_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ])
    .await
}

fn field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` in {value}"))
}

/// An admin's access token, made admin with the CLI's use-case on the
/// shared database.
async fn admin_token(cluster: &Cluster, username: &str) -> String {
    let node = cluster.node(0);
    node.register(username).await;
    portcullis::build_admin_service(&node.settings)
        .await
        .expect("admin service on the cluster's database")
        .set_role(
            username,
            portcullis_domain::Role::Admin,
            &portcullis_domain::Initiator::command_line(),
        )
        .await
        .expect("the account exists");
    field(&node.login(username).await, "access_token").to_owned()
}

#[tokio::test]
async fn a_token_from_one_node_works_on_the_other_and_its_revocation_holds_there_at_once() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    a.register("roaming").await;
    let grant = a.login("roaming").await;
    let access = field(&grant, "access_token");
    assert_eq!(
        jwt_segment(access, 1)["iss"],
        CLUSTER_PUBLIC_URL,
        "every node names the shared public URL as issuer"
    );
    assert_eq!(
        b.me(access).await.status(),
        200,
        "node B accepts node A's token"
    );

    // RFC 7009 revocation of the refresh token on B ends the session: A
    // refuses its access token at the next request.
    let revoked = b
        .client
        .post(b.url("/auth/revoke"))
        .form(&[("token", field(&grant, "refresh_token"))])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        a.me(access).await.status(),
        401,
        "revoked on B, refused on A"
    );
    assert_eq!(
        refresh(a, field(&grant, "refresh_token")).await.status(),
        400,
        "the revoked refresh token is refused on A too"
    );
}

#[tokio::test]
async fn logout_password_change_and_disabling_on_one_node_hold_on_the_others_at_once() {
    let cluster = Cluster::start(3).await;
    let (a, b, c) = (cluster.node(0), cluster.node(1), cluster.node(2));

    // Logout on A.
    a.register("leaver").await;
    let token = field(&a.login("leaver").await, "access_token").to_owned();
    assert_eq!(c.me(&token).await.status(), 200);
    let logout = a
        .client
        .post(a.url("/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 204);
    assert_eq!(
        b.me(&token).await.status(),
        401,
        "logged out on A, refused on B"
    );
    assert_eq!(
        c.me(&token).await.status(),
        401,
        "logged out on A, refused on C"
    );

    // A password change on B ends the other sessions everywhere.
    b.register("changer").await;
    let kept = field(&b.login("changer").await, "access_token").to_owned();
    let other = field(&c.login("changer").await, "access_token").to_owned();
    let changed = b
        .client
        .post(b.url("/users/me/password"))
        .bearer_auth(&kept)
        .json(&json!({
            "current_password": GOOD_PASSWORD,
            "new_password": "an entirely different passphrase",
        }))
        .send()
        .await
        .expect("password change");
    assert_eq!(changed.status(), 204);
    assert_eq!(
        a.me(&other).await.status(),
        401,
        "the other session ended for A"
    );
    assert_eq!(
        c.me(&other).await.status(),
        401,
        "the other session ended for C"
    );
    assert_eq!(
        a.me(&kept).await.status(),
        200,
        "the changing session stays"
    );

    // An admin disabling a user on C: the user's token dies on A and B.
    let admin = admin_token(&cluster, "operator").await;
    let victim = a.register("suspended").await;
    let victim_token = field(&b.login("suspended").await, "access_token").to_owned();
    assert_eq!(a.me(&victim_token).await.status(), 200);
    let disabled = c
        .client
        .patch(c.url(&format!("/admin/users/{}", field(&victim, "id"))))
        .bearer_auth(&admin)
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .expect("disable");
    assert_eq!(disabled.status(), 200);
    for node in [a, b] {
        assert_eq!(node.me(&victim_token).await.status(), 401, "disabled on C");
        let login = node
            .token_form(&[
                ("grant_type", "password"),
                ("username", "suspended"),
                ("password", GOOD_PASSWORD),
            ])
            .await;
        assert_eq!(
            login.status(),
            400,
            "a disabled account cannot log in anywhere"
        );
    }
}

#[tokio::test]
async fn twenty_concurrent_refreshes_spread_over_three_nodes_have_exactly_one_winner() {
    let cluster = Cluster::start(3).await;
    cluster.node(0).register("racer").await;
    let grant = cluster.node(1).login("racer").await;
    let token = field(&grant, "refresh_token").to_owned();

    let answers = join_all((0..20).map(|i| {
        let token = token.clone();
        let node = cluster.node(i);
        async move { refresh(node, &token).await.status().as_u16() }
    }))
    .await;
    let winners = answers.iter().filter(|status| **status == 200).count();
    assert_eq!(winners, 1, "exactly one rotation wins: {answers:?}");
    assert!(
        answers.iter().all(|status| matches!(status, 200 | 400)),
        "the losers get invalid_grant, never a 5xx: {answers:?}"
    );
}

#[tokio::test]
async fn one_username_registered_on_two_nodes_at_once_gives_one_201_and_the_rest_409() {
    let cluster = Cluster::start(2).await;
    for round in 0..5 {
        let username = format!("contested-{round}");
        let answers = join_all((0..6).map(|i| {
            let node = cluster.node(i);
            let body = json!({
                "username": username,
                "email": format!("contested-{round}-{i}@example.com"),
                "password": GOOD_PASSWORD,
            });
            async move { node.register_json(&body).await.status().as_u16() }
        }))
        .await;
        let mut sorted = answers.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [201, 409, 409, 409, 409, 409],
            "round {round}: {answers:?}"
        );
    }
}

#[tokio::test]
async fn the_login_limits_hold_for_the_deployment_not_per_node() {
    let per_user = 5;
    let cluster = Cluster::start_with(3, |args| {
        args.login_per_user_per_min = Some(per_user);
    })
    .await;
    cluster.node(0).register("guarded").await;

    // Wrong passwords, round robin over three nodes: each node's own
    // limiter alone would allow 3 × 5.
    let mut answers = Vec::new();
    for i in 0..15 {
        let response = cluster
            .node(i)
            .token_form(&[
                ("grant_type", "password"),
                ("username", "guarded"),
                ("password", "not the password at all"),
            ])
            .await;
        let status = response.status().as_u16();
        if status == 429 {
            let retry_after: u64 = header(response.headers(), "retry-after")
                .expect("a 429 says when to retry")
                .parse()
                .expect("seconds");
            assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        }
        answers.push(status);
    }
    // The registration was a credential check for this username too.
    let checked = answers.iter().filter(|status| **status == 400).count();
    assert_eq!(
        checked + 1,
        per_user as usize,
        "the deployment checks {per_user} credentials a minute for one username: {answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|status| **status == 429).count(),
        15 - checked
    );
}

#[tokio::test]
async fn a_key_rotation_on_one_node_is_seen_by_every_node() {
    let cluster = Cluster::start_with(2, |args| {
        args.jwt_secret = None;
        args.jwt_alg = Some("EdDSA".to_owned());
        // Key upkeep every second (a quarter of the publication lead).
        args.key_publish_ahead_secs = Some(4);
    })
    .await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    let admin = admin_token(&cluster, "rotator").await;
    let before = a.access_token_for("holder").await;
    let kid_before = field(&jwt_segment(&before, 0), "kid").to_owned();

    let rotated = a
        .client
        .post(a.url("/admin/keys/rotate"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("rotate");
    assert_eq!(rotated.status(), 200);

    // B reads the keys again within its upkeep interval: its JWKS and its
    // new tokens follow A's rotation.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = field(&b.login("holder").await, "access_token").to_owned();
        let kid_after = field(&jwt_segment(&after, 0), "kid").to_owned();
        if kid_after != kid_before {
            assert_eq!(a.me(&after).await.status(), 200, "A verifies B's new token");
            let jwks: Value = b
                .client
                .get(b.url("/.well-known/jwks.json"))
                .send()
                .await
                .expect("jwks")
                .json()
                .await
                .expect("json");
            let kids: Vec<&str> = jwks["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|key| field(key, "kid"))
                .collect();
            assert!(
                kids.contains(&kid_before.as_str()),
                "the retired key stays published"
            );
            assert!(
                kids.contains(&kid_after.as_str()),
                "the new current key is published"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never signed with the rotated key"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        b.me(&before).await.status(),
        200,
        "tokens of the retired key still verify"
    );
}

#[tokio::test]
async fn three_nodes_starting_at_once_on_an_empty_database_migrate_it_once() {
    let cluster = Cluster::start(0).await;
    let nodes = join_all((0..3).map(|_| cluster.spawn_node(|_| {}))).await;
    for (i, node) in nodes.iter().enumerate() {
        let health = node
            .client
            .get(node.url("/health"))
            .send()
            .await
            .expect("health");
        assert_eq!(health.status(), 200, "node {i} serves");
    }
    nodes[0].register("first").await;
    assert_eq!(
        nodes[2].login("first").await["token_type"],
        "Bearer",
        "the nodes share one schema"
    );
}

#[tokio::test]
async fn an_outage_answers_503_with_retry_after_within_5_s_and_service_resumes_by_itself() {
    let cluster = Cluster::start(1).await;
    let upstream = database_addr(cluster.database.url());
    let proxy = TcpProxy::start(upstream).await.expect("proxy");
    let node = cluster
        .spawn_node(|args| {
            args.database_url = Some(database_url_via(cluster.database.url(), proxy.local_addr()));
        })
        .await;
    let token = node.access_token_for("steadfast").await;
    assert_eq!(node.me(&token).await.status(), 200);

    proxy.cut();
    let requests: [(&str, RequestMaker<'_>); 3] = [
        (
            "GET /users/me",
            Box::new(|| node.client.get(node.url("/users/me")).bearer_auth(&token)),
        ),
        (
            "POST /auth/token",
            Box::new(|| {
                node.client.post(node.url("/auth/token")).form(&[
                    ("grant_type", "password"),
                    ("username", "steadfast"),
                    ("password", GOOD_PASSWORD),
                ])
            }),
        ),
        (
            "GET /health",
            Box::new(|| node.client.get(node.url("/health"))),
        ),
    ];
    for round in 0..2 {
        for (name, request) in &requests {
            let started = Instant::now();
            let response = request()
                .send()
                .await
                .expect("an answer, not a dropped connection");
            let took = started.elapsed();
            assert_eq!(
                response.status(),
                503,
                "round {round}: {name} during the outage"
            );
            assert!(
                took < OUTAGE_ANSWER_DEADLINE,
                "round {round}: {name} answered after {took:?}"
            );
            let retry_after = header(response.headers(), "retry-after")
                .unwrap_or_else(|| panic!("{name}: a 503 says when to retry"))
                .to_owned();
            assert!(
                retry_after.parse::<u64>().is_ok(),
                "{name}: Retry-After {retry_after}"
            );
            let body: Value = response.json().await.expect("json");
            match *name {
                "GET /health" => {
                    assert_eq!(body["database"], "unavailable", "/health says which");
                }
                // The token endpoint answers in RFC 6749's error format.
                "POST /auth/token" => {
                    assert_eq!(body["error"], "temporarily_unavailable", "{name}: {body}");
                }
                _ => assert_eq!(body["status"], 503, "{name}: problem+json: {body}"),
            }
        }
    }

    proxy.restore();
    let deadline = Instant::now() + RECOVERY_DEADLINE;
    loop {
        let status = node.me(&token).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "only 503 while recovering");
        assert!(
            Instant::now() < deadline,
            "the pool did not recover by itself"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Writes work again too, and what was written before the outage is there.
    node.register("after-the-outage").await;
    assert_eq!(node.login("steadfast").await["token_type"], "Bearer");
}
