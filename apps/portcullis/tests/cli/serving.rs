//! `portcullis serve` on port 0: its address, `/health`, the files it
//! creates, the reused master key (and, with HS256, signing key), JSON logs
//! and SIGTERM.

use super::*;

#[test]
fn serve_on_port_0_logs_its_address_answers_health_creates_its_files_and_exits_0_on_sigterm() {
    let sandbox = Sandbox::new();
    let data_dir = sandbox.data_dir();
    assert!(!data_dir.exists());
    let server = Server::start(sandbox.command());

    let (status, body) = http_get(server.addr, "/health").expect("GET /health");
    assert_eq!(status, 200, "body: {body}");
    let health: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/health body {body:?}: {e}"));
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["database"], "ok", "{health}");

    assert!(
        data_dir.join("portcullis.db").is_file(),
        "the SQLite file is in the data directory"
    );
    // v2: the signing keys are in the database, sealed by the master key.
    let key = data_dir.join("master-key");
    assert!(key.is_file(), "the master key is in the data directory");
    assert_eq!(mode_of(&key), 0o600, "the key file is owner-only");
    assert!(
        !data_dir.join("jwt-signing-key").exists(),
        "no HS256 key is made for EdDSA"
    );
    for file in ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"] {
        assert_eq!(
            mode_of(&data_dir.join(file)),
            0o600,
            "{file} (password hashes) is owner-only"
        );
    }
    assert_eq!(
        mode_of(&data_dir),
        0o700,
        "the data directory holding the key is owner-only"
    );

    let (status, lines) = server.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM ends the server with exit code 0; stderr:\n{}",
        lines.join("\n")
    );
    let key_text = std::fs::read_to_string(&key).expect("read key");
    assert!(
        !lines.iter().any(|line| line.contains(key_text.trim())),
        "the master key never appears in the log"
    );
}

#[test]
fn json_log_format_writes_one_json_object_per_stderr_line() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command();
    command.env("PORTCULLIS_LOG_FORMAT", "json");
    let server = Server::start(command);
    let (status, _) = http_get(server.addr, "/health").expect("GET /health");
    assert_eq!(status, 200);
    let (status, lines) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        lines.len() >= 2,
        "start-up and requests are logged: {lines:?}"
    );
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(value.is_object(), "not a JSON object: {line}");
    }
    assert!(
        lines.iter().any(|line| listening_port(line).is_some()),
        "the address is logged in JSON too: {lines:?}"
    );
}

#[test]
fn a_second_start_on_the_same_data_dir_reuses_the_master_key_and_with_hs256_the_signing_key() {
    for (algorithm, file) in [("EdDSA", "master-key"), ("HS256", "jwt-signing-key")] {
        let sandbox = Sandbox::new();
        let key = sandbox.data_dir().join(file);
        let command = || {
            let mut command = sandbox.command();
            command.env("PORTCULLIS_JWT_ALG", algorithm);
            command
        };

        let first = Server::start(command());
        let original = std::fs::read(&key).expect("the first start writes the key");
        assert!(!original.is_empty());
        let (status, _) = first.terminate();
        assert!(status.success(), "{status:?}");

        let second = Server::start(command());
        let (status, _) = http_get(second.addr, "/health").expect("GET /health");
        assert_eq!(status, 200);
        let (exit, lines) = second.terminate();
        assert!(exit.success(), "{exit:?}");
        assert!(
            !lines
                .iter()
                .any(|line| line.contains("installed new signing keys")),
            "{algorithm}: the second start makes no new keys: {lines:?}"
        );

        let reused = std::fs::read(&key).expect("the key is still there");
        assert_eq!(reused, original, "{file} is unchanged by a restart");
        assert_eq!(mode_of(&key), 0o600);
    }
}

#[test]
fn serve_uses_the_accounts_and_the_master_key_that_commands_made_before_it() {
    let sandbox = Sandbox::migrated();
    let key = sandbox.data_dir().join("master-key");
    // The audit log's chain is keyed from the master key from its first
    // event on, so the first command on a new data directory makes it.
    let made = std::fs::read(&key).expect("migrate made the master key");
    assert_eq!(mode_of(&key), 0o600);
    create_user(sandbox.command(), "dave", &password(20)).assert_success();
    let server = Server::start(sandbox.command());
    let (status, _) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        std::fs::read(&key).expect("the key is still there"),
        made,
        "serve uses the master key the commands made"
    );
    let mut command = sandbox.command();
    command.args(["user", "disable", "dave"]);
    let outcome = run(command, None);
    outcome.assert_success();
    assert!(outcome.stdout.contains("disabled=true"), "{outcome:?}");
}
