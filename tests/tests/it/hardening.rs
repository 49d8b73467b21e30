//! Findings of the outside attack review (issue 18) that concern the
//! transport and the parsing of requests, each checked from the outside
//! over a real socket: connection timeouts and the connection cap, HTTP/2
//! only over TLS, `Host` on HTTP/1.1, size limits in the contract's format,
//! repeated JSON keys and query parameters, url-encoding that is not UTF-8,
//! the documents' methods, CORS for same-origin requests, and error shapes
//! on the OAuth paths.

use std::time::{Duration, Instant};

use portcullis_tests::{GOOD_PASSWORD, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{API_CSP, PROBLEM_JSON, expect_oauth_error, expect_problem, header};
use crate::transport::spawn_tuned;

/// An app whose connection timeouts are short enough to watch.
async fn spawn_with_short_timeouts(max_connections: Option<usize>) -> TestApp {
    spawn_tuned(None, |args| {
        args.header_read_timeout_secs = Some(1);
        args.body_read_timeout_secs = Some(1);
        args.idle_timeout_secs = Some(2);
        args.max_connections = max_connections;
    })
    .await
}

/// Reads until the server closes the connection, for at most `limit`.
/// Returns what arrived, or `None` when the connection was still open.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let deadline = Instant::now() + limit;
    loop {
        let mut buffer = [0_u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(received),
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// Sends `request` as is on a new connection and returns the whole answer
/// (the server closes the connection after it, or within 5 s).
async fn exchange(app: &TestApp, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw HTTP/1.1 answer.
fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// A header of a raw HTTP/1.1 answer, by lower-case name.
fn raw_header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let app = spawn_with_short_timeouts(None).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let started = Instant::now();
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "a socket that never sends stays open"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_partial_header_is_not_waited_for_past_the_header_read_timeout() {
    let app = spawn_with_short_timeouts(None).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("send");
    // Dribbling more header bytes does not extend the deadline.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if stream.write_all(b"a").await.is_err() {
            break;
        }
    }
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "an unfinished header keeps the connection"
    );
}

#[tokio::test]
async fn a_half_sent_body_gets_408_in_the_contract_format_and_the_connection_closes() {
    let app = spawn_with_short_timeouts(None).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(
            b"POST /auth/register HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
        )
        .await
        .expect("send");
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server answers and closes");
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert_eq!(raw_header(&answer, "content-type"), Some(PROBLEM_JSON));
    assert_eq!(
        raw_header(&answer, "content-security-policy"),
        Some(API_CSP)
    );

    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(
            b"POST /auth/token HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_",
        )
        .await
        .expect("send");
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server answers and closes");
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_with_short_timeouts(None).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send");
    let mut first = [0_u8; 1024];
    let read = stream.read(&mut first).await.expect("an answer");
    assert!(String::from_utf8_lossy(&first[..read]).starts_with("HTTP/1.1 200"));
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "an idle kept-alive connection stays open"
    );
}

#[tokio::test]
async fn past_the_connection_cap_clients_wait_until_timeouts_free_a_slot() {
    let app = spawn_with_short_timeouts(Some(3)).await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The kernel completes the handshake (backlog), but the server does not
    // read from a fourth connection until a slot is free.
    let started = Instant::now();
    let answer = exchange(
        &app,
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served at once although three connections held the cap of 3"
    );
    drop(silent);
}

#[tokio::test]
async fn the_plain_port_refuses_http2_with_prior_knowledge() {
    let app = TestApp::spawn().await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    // The HTTP/2 connection preface, then an empty SETTINGS frame.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("send");
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server closes the connection");
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "an HTTP/2 answer on the plain port: {answer:?}"
    );
}

#[tokio::test]
async fn an_http_1_1_request_without_exactly_one_host_is_400_with_every_header() {
    let app = TestApp::spawn().await;
    for request in [
        &b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
        b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    ] {
        let answer = exchange(&app, request).await;
        assert_eq!(status_of(&answer), 400, "{answer}");
        assert_eq!(raw_header(&answer, "content-type"), Some(PROBLEM_JSON));
        assert_eq!(
            raw_header(&answer, "x-content-type-options"),
            Some("nosniff")
        );
        assert!(raw_header(&answer, "x-request-id").is_some(), "{answer}");
    }
    // HTTP/1.0 has no Host requirement.
    let answer = exchange(&app, b"GET /health HTTP/1.0\r\n\r\n").await;
    assert_eq!(status_of(&answer), 200, "{answer}");
}

#[tokio::test]
async fn an_overlong_target_or_header_section_is_answered_in_the_contract_format() {
    let app = TestApp::spawn().await;
    let long_path = format!("/health?pad={}", "a".repeat(9 * 1024));
    let response = app.client.get(app.url(&long_path)).send().await.unwrap();
    assert_eq!(
        header(response.headers(), "x-content-type-options"),
        Some("nosniff")
    );
    assert!(header(response.headers(), "x-request-id").is_some());
    expect_problem(response, 414).await;

    let response = app
        .client
        .get(app.url("/health"))
        .header("x-padding", "b".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert!(header(response.headers(), "x-request-id").is_some());
    expect_problem(response, 431).await;
}

#[tokio::test]
async fn a_repeated_json_key_is_refused_instead_of_the_last_one_winning() {
    let app = TestApp::spawn().await;
    app.register("root").await;
    app.register("nobody").await;
    let body = format!(r#"{{"username":"nobody","username":"root","password":"{GOOD_PASSWORD}"}}"#);
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let error = expect_oauth_error(response, "invalid_request").await;
    assert!(
        error["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("`username`"),
        "{error}"
    );

    let response = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"username":"eve","email":"eve@example.com","email":"root@example.com","password":"{GOOD_PASSWORD}"}}"#
        ))
        .send()
        .await
        .unwrap();
    expect_problem(response, 400).await;
}

#[tokio::test]
async fn a_repeated_query_parameter_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("quinn").await;
    let response = app
        .client
        .post(app.url("/auth/logout?scope=local&scope=global"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("`scope`"),
        "{problem}"
    );
    // The token still works: nothing was logged out.
    assert_eq!(app.me(&token).await.status(), 200);
}

#[tokio::test]
async fn url_encoding_that_is_not_utf8_is_refused_not_read_as_a_replacement_character() {
    let app = TestApp::spawn().await;
    // A password holding U+FFFD, which a lossy decoder would produce for
    // any of the bytes below.
    let password = "correct horse battery \u{FFFD} staple";
    let response = app
        .register_json(&json!({
            "username": "mallory",
            "email": "mallory@example.com",
            "password": password,
        }))
        .await;
    assert_eq!(response.status(), 201);
    for byte in ["%FF", "%C0", "%FE"] {
        let body = format!(
            "grant_type=password&username=mallory&password=correct+horse+battery+{byte}+staple"
        );
        let response = app
            .client
            .post(app.url("/auth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        expect_oauth_error(response, "invalid_request").await;
    }
    let response = app
        .client
        .get(app.url("/health?x=%FF"))
        .send()
        .await
        .unwrap();
    expect_problem(response, 400).await;
}

#[tokio::test]
async fn the_documents_answer_get_and_head_only() {
    let app = TestApp::spawn().await;
    for path in ["/openapi.json", "/docs"] {
        for method in ["POST", "PUT", "DELETE", "TRACE", "PATCH"] {
            let response = app
                .client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(path),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(
                header(response.headers(), "allow"),
                Some("GET, HEAD"),
                "{method} {path}"
            );
        }
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
    }
    let trace = app
        .client
        .request(reqwest::Method::TRACE, app.url("/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(trace.status(), 405);
    let head = app.client.head(app.url("/health")).send().await.unwrap();
    assert_eq!(head.status(), 200);
}

#[tokio::test]
async fn a_bad_path_parameter_is_a_plain_404_naming_no_internal_parameter() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("paula").await;
    let response = app
        .client
        .delete(app.url("/users/me/sessions/not-a-uuid"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 404).await;
    assert!(!problem.to_string().contains("param"), "{problem}");
}

#[tokio::test]
async fn a_wrong_method_on_an_oauth_path_answers_in_the_oauth_shape() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/auth/token")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(header(response.headers(), "allow"), Some("POST"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
}

#[tokio::test]
async fn with_cors_origins_same_origin_posts_pass_and_foreign_ones_get_the_oauth_shape() {
    let app = spawn_tuned(None, |args| {
        args.cors_origins = Some("https://app.example.com".to_owned());
    })
    .await;
    app.register("swagger").await;
    // What Swagger UI's Authorize sends from /docs on the same origin.
    let own_origin = format!("http://{}", app.addr);
    let response = app
        .client
        .post(app.url("/auth/token"))
        .header("origin", &own_origin)
        .form(&[
            ("grant_type", "password"),
            ("username", "swagger"),
            ("password", GOOD_PASSWORD),
            ("client_id", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(header(response.headers(), "access-control-allow-origin").is_none());

    let response = app
        .client
        .post(app.url("/auth/token"))
        .header("origin", "https://evil.example")
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}
