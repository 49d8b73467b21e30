//! Settings the server refuses at start, with exit code 2, and files it
//! tightens before use.

use super::*;

#[test]
fn a_jwt_secret_shorter_than_32_bytes_stops_serve_with_exit_code_2_without_echoing_it() {
    let sandbox = Sandbox::new();
    // 31 bytes: one short of the minimum.
    let secret = "Short-Secret-Value-qz81-XYZ-abc";
    assert_eq!(secret.len(), 31);
    let mut command = sandbox.command();
    command
        .env("PORTCULLIS_JWT_SECRET", secret)
        .args(["serve", "--bind", "127.0.0.1:0"]);
    let outcome = run_with_deadline(command, None, STARTUP_DEADLINE);
    assert_eq!(outcome.code(), Some(2), "{outcome:?}");
    assert!(
        outcome.messages().contains("PORTCULLIS_JWT_SECRET"),
        "stderr names the variable: {}",
        outcome.stderr
    );
    assert!(
        outcome.messages().contains("32 bytes"),
        "stderr names the 32-byte minimum: {}",
        outcome.stderr
    );
    assert!(
        !outcome.stderr.contains(secret) && !outcome.stdout.contains(secret),
        "the secret must not be echoed: {outcome:?}"
    );
}

#[test]
fn an_unknown_key_in_the_config_file_exits_with_code_2_naming_the_key() {
    let sandbox = Sandbox::new();
    let config = sandbox.path("portcullis.toml");
    std::fs::write(&config, "password_min_length = 20\nisuer = \"typo\"\n").expect("write config");
    let mut command = sandbox.command();
    command
        .arg("--config")
        .arg(&config)
        .args(["user", "disable", "nobody"]);
    let outcome = run(command, None);
    assert_eq!(outcome.code(), Some(2), "{outcome:?}");
    assert!(
        outcome.messages().contains("isuer"),
        "stderr names the unknown key: {}",
        outcome.stderr
    );
}

#[test]
fn lifetimes_that_would_overflow_a_timestamp_stop_serve_with_exit_code_2() {
    for (variable, value) in [
        ("PORTCULLIS_ACCESS_TTL_SECS", "18446744073709551615"),
        ("PORTCULLIS_REFRESH_TTL_SECS", "9999999999999"),
        ("PORTCULLIS_REFRESH_IDLE_SECS", "0"),
    ] {
        let sandbox = Sandbox::new();
        let mut command = sandbox.command();
        command
            .env(variable, value)
            .args(["serve", "--bind", "127.0.0.1:0"]);
        let outcome = run_with_deadline(command, None, STARTUP_DEADLINE);
        assert_eq!(outcome.code(), Some(2), "{variable}: {outcome:?}");
        assert!(
            outcome.messages().contains("between 1 and"),
            "stderr names the bounds: {}",
            outcome.stderr
        );
    }
}

#[test]
fn a_wildcard_or_path_cors_origin_stops_serve_with_exit_code_2() {
    for origin in [
        "*",
        "https://app.example.com/",
        "https://app.example.com/app",
    ] {
        let sandbox = Sandbox::new();
        let mut command = sandbox.command();
        command
            .env("PORTCULLIS_CORS_ORIGINS", origin)
            .args(["serve", "--bind", "127.0.0.1:0"]);
        let outcome = run_with_deadline(command, None, STARTUP_DEADLINE);
        assert_eq!(outcome.code(), Some(2), "{origin}: {outcome:?}");
        assert!(
            outcome.messages().contains("cors_origins"),
            "stderr names the setting: {}",
            outcome.stderr
        );
    }
}

#[test]
fn more_connections_than_the_open_file_limit_allows_stop_serve_with_exit_code_2() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command_with_open_file_limit(256);
    command
        .env("PORTCULLIS_MAX_CONNECTIONS", "1000")
        .args(["serve", "--bind", "127.0.0.1:0"]);
    let outcome = run_with_deadline(command, None, STARTUP_DEADLINE);
    assert_eq!(outcome.code(), Some(2), "{outcome:?}");
    assert!(
        outcome.messages().contains("max_connections") && outcome.messages().contains("256"),
        "stderr names the setting and the limit: {}",
        outcome.stderr
    );
}

#[test]
fn a_key_file_readable_by_others_is_tightened_with_a_warning() {
    for (algorithm, file, named) in [
        ("HS256", "jwt-signing-key", "signing key"),
        ("EdDSA", "master-key", "master key"),
    ] {
        let sandbox = Sandbox::new();
        let command = || {
            let mut command = sandbox.command();
            command.env("PORTCULLIS_JWT_ALG", algorithm);
            command
        };
        let server = Server::start(command());
        let (status, _) = server.terminate();
        assert!(status.success(), "{status:?}");
        let key = sandbox.data_dir().join(file);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let server = Server::start(command());
        assert_eq!(mode_of(&key), 0o600, "{file} is owner-only again");
        let (status, lines) = server.terminate();
        assert!(status.success(), "{status:?}");
        assert!(
            lines
                .iter()
                .any(|line| line.contains("WARN") && line.contains(named)),
            "a warning names the {named}: {lines:?}"
        );
    }
}

#[test]
fn a_wrong_or_missing_master_key_is_exit_2_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let server = Server::start(sandbox.command());
    let (status, _) = server.terminate();
    assert!(status.success(), "{status:?}");
    let key = sandbox.data_dir().join("master-key");
    let database = sandbox.data_dir().join("portcullis.db");
    let original = std::fs::read(&key).expect("master key");

    // Another deployment's master key.
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
    std::fs::write(&key, other).expect("replace the master key");
    let before = std::fs::read(&database).expect("database");
    let mut command = sandbox.command();
    command.args(["serve", "--bind", "127.0.0.1:0"]);
    let outcome = run_with_deadline(command, None, STARTUP_DEADLINE);
    assert_eq!(outcome.code(), Some(2), "{outcome:?}");
    assert!(
        outcome.messages().contains("master key")
            && outcome.messages().contains("nothing was changed"),
        "{}",
        outcome.stderr
    );
    assert_eq!(
        std::fs::read(&key).expect("master key"),
        other.as_bytes(),
        "not replaced"
    );
    assert_eq!(
        std::fs::read(&database).expect("database"),
        before,
        "no key replaced"
    );

    // No master key at all beside sealed keys: not a new one.
    std::fs::remove_file(&key).expect("remove");
    let mut command = sandbox.command();
    command.args(["serve", "--bind", "127.0.0.1:0"]);
    let outcome = run_with_deadline(command, None, STARTUP_DEADLINE);
    assert_eq!(outcome.code(), Some(2), "{outcome:?}");
    assert!(outcome.messages().contains("missing"), "{}", outcome.stderr);
    assert!(!key.exists(), "no new master key was made");

    // The right one again: the server starts with its keys.
    std::fs::write(&key, &original).expect("restore");
    let server = Server::start(sandbox.command());
    let (status, _) = server.terminate();
    assert!(status.success(), "{status:?}");
}
