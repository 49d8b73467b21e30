//! CONTRACT §1, Logs: passwords, tokens, API keys, hashes and secrets
//! never appear in logs — checked over everything `serve` writes at
//! `debug` while a client goes through every kind of credential.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::*;

/// Passwords made only of URL-unreserved characters, so their form- and
/// JSON-encoded forms are the text itself and a leak of either is found.
const PASSWORD: &str = "Tangerine-Quokka-4821-Lumen";
const WRONG_BASIC_PASSWORD: &str = "Obsidian-Heron-7305-Wrong";
const WRONG_GRANT_PASSWORD: &str = "Saffron-Ibex-1946-Wrong";
const WRONG_CURRENT_PASSWORD: &str = "Cobalt-Marmot-5150-Wrong";
const REFUSED_NEW_PASSWORD: &str = "Juniper-Narwhal-8264-Never";
const MALFORMED_BODY_PASSWORD: &str = "Malformed-Pelican-3071-Body";
const ECHOED_PASSWORD: &str = "Echoer-Saguaro-6622-echoer";

/// One HTTP/1.0 exchange (the server closes the connection, no
/// chunking): the status and the body.
fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let (content_type, content) = body.unwrap_or(("text/plain", ""));
    if body.is_some() {
        request.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\n\r\n{content}",
        content.len()
    ));
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn json_body(value: &Value) -> String {
    value.to_string()
}

/// `application/x-www-form-urlencoded` of `params`.
fn form(params: &[(&str, &str)]) -> String {
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(byte).to_string()
                }
                _ => format!("%{byte:02X}"),
            })
            .collect()
    }
    params
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn parse(body: &str, case: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{case}: JSON body {body:?}: {e}"))
}

fn text(value: &Value, member: &str) -> String {
    value[member]
        .as_str()
        .unwrap_or_else(|| panic!("`{member}` in {value}"))
        .to_owned()
}

fn basic(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    )
}

/// Drives registration, both password grants, bearer, Basic (right and
/// wrong), refresh, API keys, refused password change, malformed and
/// invalid bodies, a token in the query string, revocation, logout and
/// refresh-token reuse; returns every secret that went over the wire,
/// with a name for the failure message.
fn drive_every_credential(addr: SocketAddr) -> Vec<(String, String)> {
    let mut secrets: Vec<(String, String)> = [
        ("the password", PASSWORD),
        ("a wrong Basic password", WRONG_BASIC_PASSWORD),
        ("a wrong grant password", WRONG_GRANT_PASSWORD),
        ("a wrong current password", WRONG_CURRENT_PASSWORD),
        ("a refused new password", REFUSED_NEW_PASSWORD),
        ("a malformed body's password", MALFORMED_BODY_PASSWORD),
        ("a refused registration password", ECHOED_PASSWORD),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let json = "application/json";
    let form_type = "application/x-www-form-urlencoded";

    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/register",
        &[],
        Some((
            json,
            &json_body(&json!({
                "username": "logwatch",
                "email": "logwatch@example.com",
                "password": PASSWORD,
            })),
        )),
    );
    assert_eq!(status, 201, "register: {body}");

    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/token",
        &[],
        Some((
            form_type,
            &form(&[
                ("grant_type", "password"),
                ("username", "logwatch"),
                ("password", PASSWORD),
            ]),
        )),
    );
    assert_eq!(status, 200, "password grant: {body}");
    let first = parse(&body, "password grant");
    let (access1, refresh1) = (text(&first, "access_token"), text(&first, "refresh_token"));

    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/token",
        &[],
        Some((
            form_type,
            &form(&[
                ("grant_type", "password"),
                ("username", "logwatch"),
                ("password", WRONG_GRANT_PASSWORD),
            ]),
        )),
    );
    assert_eq!(status, 400, "wrong password grant: {body}");

    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/login",
        &[],
        Some((
            json,
            &json_body(&json!({"username": "logwatch", "password": PASSWORD})),
        )),
    );
    assert_eq!(status, 200, "JSON login: {body}");
    let second = parse(&body, "JSON login");
    let (access2, refresh2) = (
        text(&second, "access_token"),
        text(&second, "refresh_token"),
    );

    let bearer1 = format!("Bearer {access1}");
    let (status, body) = exchange(
        addr,
        "GET",
        "/users/me",
        &[("Authorization", &bearer1)],
        None,
    );
    assert_eq!(status, 200, "bearer: {body}");

    let right_basic = basic("logwatch", PASSWORD);
    let (status, body) = exchange(
        addr,
        "GET",
        "/users/me",
        &[("Authorization", &right_basic)],
        None,
    );
    assert_eq!(status, 200, "Basic: {body}");

    let wrong_basic = basic("logwatch", WRONG_BASIC_PASSWORD);
    let (status, body) = exchange(
        addr,
        "GET",
        "/users/me",
        &[("Authorization", &wrong_basic)],
        None,
    );
    assert_eq!(status, 401, "wrong Basic: {body}");

    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/token",
        &[],
        Some((
            form_type,
            &form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh1),
            ]),
        )),
    );
    assert_eq!(status, 200, "refresh: {body}");
    let third = parse(&body, "refresh");
    let (access3, refresh3) = (text(&third, "access_token"), text(&third, "refresh_token"));
    let bearer3 = format!("Bearer {access3}");

    let (status, body) = exchange(
        addr,
        "POST",
        "/users/me/api-keys",
        &[("Authorization", &bearer3)],
        Some((json, &json_body(&json!({"name": "ci"})))),
    );
    assert_eq!(status, 201, "new API key: {body}");
    let api_key = text(&parse(&body, "new API key"), "key");

    let (status, body) = exchange(addr, "GET", "/users/me", &[("X-API-Key", &api_key)], None);
    assert_eq!(status, 200, "API key: {body}");

    let (status, body) = exchange(
        addr,
        "POST",
        "/users/me/password",
        &[("Authorization", &bearer3)],
        Some((
            json,
            &json_body(&json!({
                "current_password": WRONG_CURRENT_PASSWORD,
                "new_password": REFUSED_NEW_PASSWORD,
            })),
        )),
    );
    assert!(
        (400..500).contains(&status),
        "a password change with a wrong current password is refused: {status} {body}"
    );

    let malformed = format!(
        r#"{{"username": "mallory", "email": "mallory@example.com", "password": "{MALFORMED_BODY_PASSWORD}", "#
    );
    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/register",
        &[],
        Some((json, &malformed)),
    );
    assert_eq!(status, 400, "malformed JSON: {body}");

    // Refused by the password rules: it contains the username.
    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/register",
        &[],
        Some((
            json,
            &json_body(&json!({
                "username": "echoer",
                "email": "echoer@example.com",
                "password": ECHOED_PASSWORD,
            })),
        )),
    );
    assert_eq!(status, 422, "a password containing the username: {body}");

    // Tokens in the query string are not accepted, and not logged either.
    let (status, body) = exchange(
        addr,
        "GET",
        &format!("/users/me?access_token={access3}"),
        &[],
        None,
    );
    assert_eq!(status, 401, "a token in the query string: {body}");

    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/revoke",
        &[],
        Some((form_type, &form(&[("token", &refresh2)]))),
    );
    assert_eq!(status, 200, "revoke: {body}");

    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/logout",
        &[("Authorization", &bearer3)],
        None,
    );
    assert_eq!(status, 204, "logout: {body}");

    // After logout the token is refused (and the refusal logged, maybe).
    let (status, body) = exchange(
        addr,
        "GET",
        "/users/me",
        &[("Authorization", &bearer3)],
        None,
    );
    assert_eq!(status, 401, "a logged-out token: {body}");

    // Reuse of a rotated refresh token.
    let (status, body) = exchange(
        addr,
        "POST",
        "/auth/token",
        &[],
        Some((
            form_type,
            &form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh1),
            ]),
        )),
    );
    assert_eq!(status, 400, "a rotated refresh token: {body}");

    for (name, value) in [
        ("the first access token", access1),
        ("the second access token", access2),
        ("the refreshed access token", access3),
        ("the first refresh token", refresh1),
        ("the second refresh token", refresh2),
        ("the rotated refresh token", refresh3),
        ("the Basic credential", right_basic),
        ("the wrong Basic credential", wrong_basic),
    ] {
        secrets.push((name.to_owned(), value));
    }
    secrets.push((
        "the API key without its prefix".to_owned(),
        api_key
            .strip_prefix("pcl_")
            .unwrap_or_else(|| panic!("an API key starts with pcl_: {api_key}"))
            .to_owned(),
    ));
    secrets.push(("the API key".to_owned(), api_key));
    secrets
}

/// The forms of the HS256 key a careless log line could show: as stored
/// (base64url), as hex, and as Rust's `Debug` of the bytes.
fn signing_key_forms(encoded: &str) -> Vec<(String, String)> {
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded.trim())
        .or_else(|_| STANDARD.decode(encoded.trim()))
        .unwrap_or_else(|_| encoded.trim().as_bytes().to_vec());
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    vec![
        ("the signing key".to_owned(), encoded.trim().to_owned()),
        ("the signing key in hex".to_owned(), hex),
        ("the signing key's bytes".to_owned(), format!("{bytes:?}")),
    ]
}

#[track_caller]
fn assert_no_secret(lines: &[String], secrets: &[(String, String)]) {
    let log = lines.join("\n");
    let lowered = log.to_lowercase();
    for (name, secret) in secrets {
        assert!(
            !lowered.contains(&secret.to_lowercase()),
            "{name} ({secret}) appears in the log:\n{}",
            lines
                .iter()
                .filter(|line| line.to_lowercase().contains(&secret.to_lowercase()))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        !log.contains("$argon2"),
        "a password hash appears in the log:\n{log}"
    );
}

/// How many lines mention each of these paths.
#[track_caller]
fn assert_requests_logged(lines: &[String], marker: impl Fn(&str) -> String) {
    for path in [
        "/auth/register",
        "/auth/token",
        "/auth/login",
        "/users/me",
        "/users/me/api-keys",
        "/users/me/password",
        "/auth/revoke",
        "/auth/logout",
    ] {
        let wanted = marker(path);
        assert!(
            lines.iter().any(|line| line.contains(&wanted)),
            "the request log records {wanted}, so the scan is meaningful:\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn at_debug_level_the_text_log_records_requests_but_no_password_token_key_or_hash() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command();
    command.env("PORTCULLIS_LOG", "debug");
    let server = Server::start(command);
    let mut secrets = drive_every_credential(server.addr);
    let (status, lines) = server.terminate();
    assert_eq!(status.code(), Some(0), "{}", lines.join("\n"));

    let key = std::fs::read_to_string(sandbox.data_dir().join("master-key"))
        .expect("the generated master key file");
    secrets.extend(signing_key_forms(&key));
    assert_requests_logged(&lines, |path| format!("path={path} "));
    assert!(
        lines.iter().any(|line| line.contains("DEBUG")),
        "debug logging is on, so the scan covers it:\n{}",
        lines.join("\n")
    );
    assert_no_secret(&lines, &secrets);
}

#[test]
fn at_debug_level_the_json_log_records_requests_but_no_password_token_key_or_hash() {
    let sandbox = Sandbox::new();
    let jwt_secret = "Configured-Signing-Secret-4417-Zephyr-Quill";
    let mut command = sandbox.command();
    command
        .env("PORTCULLIS_LOG", "debug")
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .env("PORTCULLIS_JWT_SECRET", jwt_secret);
    let server = Server::start(command);
    let mut secrets = drive_every_credential(server.addr);
    let (status, lines) = server.terminate();
    assert_eq!(status.code(), Some(0), "{}", lines.join("\n"));

    secrets.push((
        "the configured JWT secret".to_owned(),
        jwt_secret.to_owned(),
    ));
    let hex: String = jwt_secret.bytes().map(|b| format!("{b:02x}")).collect();
    secrets.push(("the configured JWT secret in hex".to_owned(), hex));
    assert_requests_logged(&lines, |path| format!(r#""path":"{path}""#));
    assert_no_secret(&lines, &secrets);
}
