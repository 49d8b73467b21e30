//! Metrics and health (CONTRACT §8): `PORTCULLIS_METRICS_BIND` serves
//! Prometheus text at `/metrics` on a listener of its own, never on the
//! API's port; the security counters move by what happened; label values
//! are bounded (1,000 random paths add no series); `/health/live` answers
//! without the store and `/health/ready` is 503 while the store is
//! unreachable.
//!
//! The recorder is the process's (the `metrics` facade has one), and these
//! tests run beside many others in one process: only applications with
//! `metrics_bind` set record the HTTP-layer and store counters, and the
//! tests here that compare exact amounts do flows no other metrics test
//! does. Hashing and rate-limit metrics are recorded by every application
//! once the recorder exists, so they are checked as "moved at least".

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use portcullis::{Settings, SettingsArgs};
use portcullis_tests::cluster::{Cluster, database_addr, database_url_via};
use portcullis_tests::tcp_proxy::TcpProxy;
use portcullis_tests::{TestApp, test_args};
use serde_json::Value;

use crate::support::header;

/// A scrape: each sample's `name{labels}` and its value.
type Samples = BTreeMap<String, f64>;

/// Starts an app that serves metrics on a port of its own, with `change`
/// applied to its settings.
async fn app_with_metrics(change: impl FnOnce(&mut SettingsArgs)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = test_args(data_dir.path().join("data"));
    args.metrics_bind = Some("127.0.0.1:0".to_owned());
    change(&mut args);
    let settings = Settings::resolve(&args).expect("valid settings");
    TestApp::spawn_with(data_dir, settings).await
}

/// `GET /metrics` from the app's metrics listener: the text, checked to be
/// Prometheus's text format.
async fn scrape_text(app: &TestApp) -> String {
    let address = app.metrics_addr.expect("the app serves metrics");
    let response = app
        .client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = header(response.headers(), "content-type").map(str::to_owned);
    assert_eq!(
        content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    response.text().await.expect("scrape text")
}

async fn scrape(app: &TestApp) -> Samples {
    parse(&scrape_text(app).await)
}

fn parse(text: &str) -> Samples {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            (
                series.to_owned(),
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("a number in {line}")),
            )
        })
        .collect()
}

/// The value of `series`, 0 when it does not exist yet.
fn value(samples: &Samples, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

fn moved(before: &Samples, after: &Samples, series: &str) -> f64 {
    value(after, series) - value(before, series)
}

async fn password_login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.token_form(&[
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ])
    .await
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.token_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ])
    .await
}

fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` in {value}"))
        .to_owned()
}

#[tokio::test]
async fn a_registration_logins_and_a_refresh_reuse_move_their_counters_by_one_each() {
    let app = app_with_metrics(|_| {}).await;
    let before = scrape(&app).await;

    app.register("metrics-counted").await;
    let tokens = app.login("metrics-counted").await;
    let wrong = password_login(&app, "metrics-counted", "not the password at all").await;
    assert_eq!(wrong.status(), 400);
    let first_refresh = field(&tokens, "refresh_token");
    assert_eq!(refresh(&app, &first_refresh).await.status(), 200);
    // The rotated token again: a replay, which ends the session.
    assert_eq!(refresh(&app, &first_refresh).await.status(), 400);
    // A path with a parameter is counted under its template.
    let user = format!("/admin/users/{}", uuid::Uuid::new_v4());
    let unauthenticated = app.client.get(app.url(&user)).send().await;
    assert_eq!(unauthenticated.expect("request").status(), 401);

    let after = scrape(&app).await;
    let expected = [
        (
            r#"portcullis_http_requests_total{method="POST",route="/auth/register",status="201"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_requests_total{method="POST",route="/auth/token",status="200"}"#,
            2.0,
        ),
        (
            r#"portcullis_http_requests_total{method="POST",route="/auth/token",status="400"}"#,
            2.0,
        ),
        (
            r#"portcullis_http_requests_total{method="GET",route="/admin/users/{id}",status="401"}"#,
            1.0,
        ),
        (r#"portcullis_logins_total{result="success"}"#, 1.0),
        (r#"portcullis_logins_total{result="invalid_grant"}"#, 1.0),
        ("portcullis_refresh_token_reuse_total", 1.0),
        // The login's grant and the one rotation's.
        (r#"portcullis_tokens_issued_total{kind="access"}"#, 2.0),
        (r#"portcullis_tokens_issued_total{kind="refresh"}"#, 2.0),
    ];
    for (series, amount) in expected {
        assert_eq!(moved(&before, &after, series), amount, "{series}");
    }
    assert!(
        value(
            &after,
            r#"portcullis_http_request_duration_seconds_count{method="POST",route="/auth/register"}"#
        ) >= 1.0,
        "the duration histogram counts the registration"
    );
    // Registration hashed once, the two logins verified twice: at least
    // that many (other applications in this process hash too).
    assert!(
        moved(
            &before,
            &after,
            r#"portcullis_password_hash_duration_seconds_count{operation="verify"}"#
        ) >= 2.0
    );
    assert!(value(&after, "portcullis_hashing_queue_capacity") >= 1.0);
}

#[tokio::test]
async fn refused_logins_are_counted_as_rate_limited_by_their_limiter() {
    let app = app_with_metrics(|args| args.login_per_user_per_min = Some(2)).await;
    app.register("metrics-limited").await;
    let before = scrape(&app).await;
    // Wrong passwords until the user's budget (2 a minute) refuses one.
    let mut refused = false;
    for _ in 0..3 {
        let response = password_login(&app, "metrics-limited", "not the password at all").await;
        if response.status() == 429 {
            refused = true;
            break;
        }
        assert_eq!(response.status(), 400);
    }
    assert!(refused, "the third attempt at the latest is refused");
    let after = scrape(&app).await;
    assert_eq!(
        moved(
            &before,
            &after,
            r#"portcullis_logins_total{result="rate_limited"}"#
        ),
        1.0
    );
    assert!(
        moved(
            &before,
            &after,
            r#"portcullis_rate_limited_total{limiter="user",scope="node"}"#
        ) >= 1.0
    );
}

#[tokio::test]
async fn the_api_port_serves_no_metrics() {
    let app = app_with_metrics(|_| {}).await;
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    assert_ne!(app.metrics_addr, Some(app.addr));
    // The metrics listener serves nothing else.
    let address = app.metrics_addr.expect("metrics address");
    let elsewhere = app
        .client
        .get(format!("http://{address}/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(elsewhere.status(), 404);
}

#[tokio::test]
async fn a_thousand_requests_to_random_paths_add_no_series() {
    let app = app_with_metrics(|_| {}).await;
    let marker = "zq7random";
    let random_path = |index: usize| format!("/{marker}-{}/{index}", uuid::Uuid::new_v4());
    // The first unknown path makes the one `unmatched` series.
    let first = app.client.get(app.url(&random_path(0))).send().await;
    assert_eq!(first.expect("request").status(), 404);
    let before = scrape(&app).await;

    for index in 1..=1000 {
        let response = app
            .client
            .get(app.url(&random_path(index)))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404);
    }

    let text = scrape_text(&app).await;
    assert!(!text.contains(marker), "a raw path became a label value");
    let after = parse(&text);
    let added: Vec<&String> = after
        .keys()
        .filter(|series| !before.contains_key(*series) && series.contains("unmatched"))
        .collect();
    assert!(added.is_empty(), "new series: {added:?}");
    let unmatched =
        r#"portcullis_http_requests_total{method="GET",route="unmatched",status="404"}"#;
    assert!(moved(&before, &after, unmatched) >= 1000.0);
}

#[tokio::test]
async fn liveness_and_readiness_answer_200_on_a_healthy_server() {
    let app = TestApp::spawn().await;
    for (path, expected) in [
        ("/health/live", serde_json::json!({"status": "ok"})),
        (
            "/health/ready",
            serde_json::json!({"status": "ok", "database": "ok", "signing_key": "ok"}),
        ),
    ] {
        let response = app.client.get(app.url(path)).send().await.expect(path);
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body, expected, "{path}");
    }
}

#[tokio::test]
async fn readiness_is_503_with_retry_after_while_the_database_is_unreachable_and_liveness_stays_200()
 {
    let cluster = Cluster::start(1).await;
    let upstream = database_addr(cluster.database.url());
    let proxy = TcpProxy::start(upstream).await.expect("proxy");
    let node = cluster
        .spawn_node(|args| {
            args.database_url = Some(database_url_via(cluster.database.url(), proxy.local_addr()));
        })
        .await;
    let ready = node.client.get(node.url("/health/ready")).send().await;
    assert_eq!(ready.expect("ready").status(), 200);

    proxy.cut();
    let started = Instant::now();
    let ready = node
        .client
        .get(node.url("/health/ready"))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered in time"
    );
    assert_eq!(ready.status(), 503);
    assert!(header(ready.headers(), "retry-after").is_some());
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"], "unavailable");
    assert_eq!(body["signing_key"], "ok");
    let live = node.client.get(node.url("/health/live")).send().await;
    assert_eq!(live.expect("live").status(), 200);

    proxy.restore();
    let recovered = Instant::now();
    loop {
        let ready = node.client.get(node.url("/health/ready")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(15),
            "ready again once the database is back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
