//! Black-box tests of the `portcullis` binary's command line (CONTRACT §1):
//! start-up checks, `openapi`, `--help`, the `user` commands, the
//! flag > env > file > default order, and `serve` on port 0 with its data
//! directory, key file, logs and SIGTERM handling.
//!
//! Every run gets a fresh temporary data directory and working directory and
//! none of the developer's `PORTCULLIS_*` variables.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Upper bound for a one-shot command; only reached when something hangs.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);
/// How long the server may take to log its address and answer `/health`.
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);
/// How long the server may take to exit after SIGTERM.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

/// Characters for test passwords: no dictionary word, no username inside.
const PASSWORD_ALPHABET: &str = "Vx7#qLm2!Rt9$Wk4^Zp8&Hs3*Jd6(Nf1)Bc5";

/// A password of exactly `length` code points.
fn password(length: usize) -> String {
    assert!(length <= PASSWORD_ALPHABET.len());
    PASSWORD_ALPHABET[..length].to_owned()
}

/// A temporary working area: the process's working directory, with the data
/// directory as a not-yet-existing subdirectory (so start-up must create it).
struct Sandbox {
    root: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            root: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    /// A sandbox whose data directory and database exist, made with
    /// `portcullis migrate`, as the `user` commands need.
    fn migrated() -> Self {
        let sandbox = Self::new();
        let mut command = sandbox.bare_command();
        command.arg("migrate");
        run(command, None).assert_success();
        sandbox
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The binary with a clean `PORTCULLIS_*` environment, this sandbox's data
    /// directory, and no hashing settings.
    fn bare_command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PORTCULLIS_") {
                command.env_remove(key);
            }
        }
        command
            .current_dir(self.root.path())
            .env("PORTCULLIS_DATA_DIR", self.data_dir());
        command
    }

    /// [`Sandbox::command`] run under `ulimit -n limit` (soft and hard).
    fn command_with_open_file_limit(&self, limit: u32) -> Command {
        let plain = self.command();
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(plain.get_program())
            .current_dir(self.root.path())
            .env_clear();
        for (key, value) in plain.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        for (key, value) in std::env::vars_os() {
            if !key.to_string_lossy().starts_with("PORTCULLIS_") {
                command.env(key, value);
            }
        }
        command
    }

    /// [`Sandbox::bare_command`] plus cheap argon2 settings for anything that hashes.
    fn command(&self) -> Command {
        let mut command = self.bare_command();
        command
            .env("PORTCULLIS_ARGON2_M_KIB", "8")
            .env("PORTCULLIS_ARGON2_T", "1")
            .env("PORTCULLIS_ARGON2_P", "1")
            .env("PORTCULLIS_INSECURE_TEST_HASHING", "1");
        command
    }
}

/// What a finished one-shot command produced.
#[derive(Debug)]
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The command's own error lines (`portcullis: ...`), without log lines,
    /// whose timestamps could match a number by chance.
    fn messages(&self) -> String {
        self.stderr
            .lines()
            .filter(|line| line.starts_with("portcullis: "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[track_caller]
    fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "expected success, got {:?}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn assert_failure(&self) -> &Self {
        assert!(
            !self.status.success(),
            "expected failure, got success\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}

fn read_all_in_thread(mut source: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = source.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` to completion with `stdin` (`None`: stdin is `/dev/null`),
/// killing it and failing the test if it is still running after `deadline`.
fn run_with_deadline(mut command: Command, stdin: Option<&str>, deadline: Duration) -> Outcome {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start portcullis");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // The process may exit without reading; a broken pipe is fine.
        let _ = pipe.write_all(input.as_bytes());
    }
    let stdout = read_all_in_thread(child.stdout.take().expect("stdout is piped"));
    let stderr = read_all_in_thread(child.stderr.take().expect("stderr is piped"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "portcullis did not exit within {deadline:?}\nstdout: {}\nstderr: {}",
                stdout.join().unwrap_or_default(),
                stderr.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn run(command: Command, stdin: Option<&str>) -> Outcome {
    run_with_deadline(command, stdin, COMMAND_DEADLINE)
}

/// `portcullis user create` for `username` with the password on stdin.
fn create_user(command: Command, username: &str, password: &str) -> Outcome {
    let mut command = command;
    command.args([
        "user",
        "create",
        "--username",
        username,
        "--email",
        &format!("{username}@example.com"),
        "--password-stdin",
    ]);
    run(command, Some(&format!("{password}\n")))
}

/// The port in a log line containing `listening on http://127.0.0.1:PORT`
/// (or `https://`).
fn listening_port(line: &str) -> Option<u16> {
    let start = [
        "listening on http://127.0.0.1:",
        "listening on https://127.0.0.1:",
    ]
    .iter()
    .find_map(|marker| line.find(marker).map(|at| at + marker.len()))?;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A minimal HTTP/1.0 GET (the server closes the connection, no chunking):
/// the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A running `portcullis serve`; killed on drop if the test did not stop it.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `command serve --bind 127.0.0.1:0`, waits for the logged
    /// address, then for `/health` to answer 200.
    fn start(mut command: Command) -> Self {
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Self::start_prepared(command)
    }

    /// Like [`Server::start`], for a command whose arguments and pipes are
    /// already set.
    fn start_prepared(mut command: Command) -> Self {
        let mut child = command.spawn().expect("start portcullis serve");
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = mpsc::channel();
        let reader = {
            let lines = Arc::clone(&lines);
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().expect("log lock").push(line.clone());
                    let _ = sender.send(line);
                }
            })
        };
        let mut server = Self {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            reader: Some(reader),
        };
        let port = server.wait_for_port(&receiver);
        server.addr = SocketAddr::from(([127, 0, 0, 1], port));
        // An HTTPS server cannot be asked over plain HTTP; its callers
        // check it themselves.
        if !server.log().contains("listening on https://") {
            server.wait_for_health();
        }
        server
    }

    fn wait_for_port(&mut self, receiver: &Receiver<String>) -> u16 {
        let started = Instant::now();
        loop {
            let left = STARTUP_DEADLINE.saturating_sub(started.elapsed());
            match receiver.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = listening_port(&line) {
                        assert_ne!(port, 0, "the logged port is the chosen one, not 0");
                        return port;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no `listening on http://127.0.0.1:PORT` line within {STARTUP_DEADLINE:?}; stderr:\n{}",
                    self.log()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().and_then(|child| child.wait().ok());
                    panic!(
                        "portcullis serve exited ({status:?}) before logging its address; stderr:\n{}",
                        self.log()
                    );
                }
            }
        }
    }

    fn wait_for_health(&self) {
        let started = Instant::now();
        let mut last = None;
        while started.elapsed() < STARTUP_DEADLINE {
            match http_get(self.addr, "/health") {
                Ok((200, _)) => return,
                other => last = Some(other),
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "/health did not answer 200 within {STARTUP_DEADLINE:?}: {last:?}; stderr:\n{}",
            self.log()
        );
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// Everything logged so far, one line each.
    fn log(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }

    /// Sends SIGTERM and waits (bounded) for the exit; the status and every
    /// stderr line.
    fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed: {sent:?}");
        let mut child = self.child.take().expect("server is running");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll the server") {
                break status;
            }
            if started.elapsed() > SHUTDOWN_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "portcullis serve did not exit within {SHUTDOWN_DEADLINE:?} of SIGTERM; stderr:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        let lines = self.lines.lock().expect("log lock").clone();
        (status, lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

mod connections;

mod startup_checks {
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
        std::fs::write(&config, "password_min_length = 20\nisuer = \"typo\"\n")
            .expect("write config");
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
    fn a_signing_key_readable_by_others_is_tightened_with_a_warning() {
        let sandbox = Sandbox::new();
        let server = Server::start(sandbox.command());
        let (status, _) = server.terminate();
        assert!(status.success(), "{status:?}");
        let key = sandbox.data_dir().join("jwt-signing-key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let server = Server::start(sandbox.command());
        assert_eq!(mode_of(&key), 0o600, "the key is owner-only again");
        let (status, lines) = server.terminate();
        assert!(status.success(), "{status:?}");
        assert!(
            lines
                .iter()
                .any(|line| line.contains("WARN") && line.contains("signing key")),
            "a warning names the key: {lines:?}"
        );
    }
}

mod documents_and_help {
    use super::*;

    #[test]
    fn openapi_prints_only_one_openapi_3_json_document_with_the_token_endpoint() {
        let sandbox = Sandbox::new();
        let mut command = sandbox.bare_command();
        command.arg("openapi");
        let outcome = run(command, None);
        outcome.assert_success();
        // `from_str` refuses anything but whitespace after the document.
        let document: serde_json::Value =
            serde_json::from_str(&outcome.stdout).unwrap_or_else(|e| {
                panic!("stdout is not one JSON document ({e}): {}", outcome.stdout)
            });
        let version = document["openapi"].as_str().expect("`openapi` is a string");
        assert!(version.starts_with("3."), "openapi version {version}");
        let paths = document["paths"].as_object().expect("`paths` is an object");
        assert!(
            paths.contains_key("/auth/token"),
            "paths: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn help_works_for_the_top_level_and_every_subcommand() {
        let sandbox = Sandbox::new();
        let cases: [(&[&str], &[&str]); 7] = [
            (&["--help"], &["serve", "user", "openapi", "--config"]),
            (&["serve", "--help"], &["Usage"]),
            (&["openapi", "--help"], &["Usage"]),
            (
                &["user", "--help"],
                &["create", "disable", "enable", "set-role"],
            ),
            (&["user", "disable", "--help"], &["<USERNAME>"]),
            (&["user", "enable", "--help"], &["<USERNAME>"]),
            (
                &["user", "set-role", "--help"],
                &["--role", "admin", "user"],
            ),
        ];
        for (args, expected) in cases {
            let mut command = sandbox.bare_command();
            command.args(args);
            let outcome = run(command, None);
            outcome.assert_success();
            for word in expected {
                assert!(
                    outcome.stdout.contains(word),
                    "`portcullis {}` help mentions {word}: {}",
                    args.join(" "),
                    outcome.stdout
                );
            }
        }
    }

    #[test]
    fn user_create_help_mentions_password_stdin_admin_and_the_required_fields() {
        let sandbox = Sandbox::new();
        let mut command = sandbox.bare_command();
        command.args(["user", "create", "--help"]);
        let outcome = run(command, None);
        outcome.assert_success();
        for flag in [
            "--password-stdin",
            "--admin",
            "--username",
            "--email",
            "--full-name",
        ] {
            assert!(
                outcome.stdout.contains(flag),
                "help mentions {flag}: {}",
                outcome.stdout
            );
        }
    }
}

mod user_commands {
    use super::*;

    #[test]
    fn user_create_reads_the_password_from_stdin_and_prints_the_lowercased_username() {
        let sandbox = Sandbox::migrated();
        let secret = password(20);
        let mut command = sandbox.command();
        command.args([
            "user",
            "create",
            "--username",
            "Alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ]);
        let outcome = run(command, Some(&format!("{secret}\n")));
        outcome.assert_success();
        assert_eq!(
            outcome.stdout.split_whitespace().next(),
            Some("alice"),
            "stdout: {}",
            outcome.stdout
        );
        assert!(
            !outcome.stdout.contains("Alice"),
            "stdout: {}",
            outcome.stdout
        );
        assert!(
            !outcome.stdout.contains(&secret) && !outcome.stderr.contains(&secret),
            "the password is never printed: {outcome:?}"
        );
    }

    #[test]
    fn creating_the_same_username_again_fails_saying_it_is_taken() {
        let sandbox = Sandbox::migrated();
        create_user(sandbox.command(), "alice", &password(20)).assert_success();
        // Different case and different email: still the same username.
        let mut command = sandbox.command();
        command.args([
            "user",
            "create",
            "--username",
            "ALICE",
            "--email",
            "other@example.com",
            "--password-stdin",
        ]);
        let outcome = run(command, Some(&format!("{}\n", password(21))));
        outcome.assert_failure();
        assert!(
            outcome.messages().contains("taken"),
            "stderr says it is taken: {}",
            outcome.stderr
        );
        assert!(
            outcome.messages().contains("username"),
            "stderr names the username: {}",
            outcome.stderr
        );
    }

    #[test]
    fn a_too_short_password_is_refused_naming_the_rule_without_echoing_it() {
        let sandbox = Sandbox::migrated();
        // 14 code points: one below the default minimum of 15.
        let short = password(14);
        let outcome = create_user(sandbox.command(), "bob", &short);
        outcome.assert_failure();
        assert!(
            outcome.messages().contains("password") && outcome.messages().contains("15"),
            "stderr names the password rule: {}",
            outcome.stderr
        );
        assert!(
            !outcome.stderr.contains(&short) && !outcome.stdout.contains(&short),
            "the password is never echoed: {outcome:?}"
        );
        // Nothing was created.
        let mut command = sandbox.command();
        command.args(["user", "disable", "bob"]);
        let lookup = run(command, None);
        lookup.assert_failure();
        assert!(lookup.messages().contains("no such user"), "{lookup:?}");
    }

    #[test]
    fn without_password_stdin_and_no_terminal_user_create_asks_for_password_stdin() {
        let sandbox = Sandbox::migrated();
        let mut command = sandbox.command();
        command.args([
            "user",
            "create",
            "--username",
            "carol",
            "--email",
            "carol@example.com",
        ]);
        // stdin is /dev/null: not a terminal.
        let outcome = run(command, None);
        outcome.assert_failure();
        assert!(
            outcome.messages().contains("--password-stdin"),
            "stderr tells the user to pass --password-stdin: {}",
            outcome.stderr
        );
        let mut command = sandbox.command();
        command.args(["user", "enable", "carol"]);
        let lookup = run(command, None);
        lookup.assert_failure();
        assert!(lookup.messages().contains("no such user"), "{lookup:?}");
    }

    #[test]
    fn disable_enable_and_set_role_print_the_new_state() {
        let sandbox = Sandbox::migrated();
        let mut command = sandbox.command();
        command.args([
            "user",
            "create",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--admin",
            "--password-stdin",
        ]);
        let created = run(command, Some(&format!("{}\n", password(20))));
        created.assert_success();
        assert!(
            created.stdout.contains("role=admin") && created.stdout.contains("disabled=false"),
            "stdout: {}",
            created.stdout
        );

        let steps: [(&[&str], &[&str]); 4] = [
            (&["user", "disable", "alice"], &["disabled=true"]),
            (&["user", "enable", "alice"], &["disabled=false"]),
            (
                &["user", "set-role", "alice", "--role", "user"],
                &["role=user"],
            ),
            (
                &["user", "set-role", "ALICE", "--role", "admin"],
                &["role=admin"],
            ),
        ];
        for (args, expected) in steps {
            let mut command = sandbox.command();
            command.args(args);
            let outcome = run(command, None);
            outcome.assert_success();
            assert_eq!(
                outcome.stdout.split_whitespace().next(),
                Some("alice"),
                "`portcullis {}`: {}",
                args.join(" "),
                outcome.stdout
            );
            for state in expected {
                assert!(
                    outcome.stdout.contains(state),
                    "`portcullis {}` prints {state}: {}",
                    args.join(" "),
                    outcome.stdout
                );
            }
        }
    }

    #[test]
    fn a_user_command_without_a_data_directory_fails_and_creates_nothing() {
        let sandbox = Sandbox::new();
        let outcome = create_user(sandbox.command(), "erin", &password(20));
        outcome.assert_failure();
        assert_eq!(outcome.code(), Some(1), "{outcome:?}");
        assert!(
            outcome.messages().contains("--data-dir") && outcome.messages().contains("migrate"),
            "the message says how to point at the data directory: {}",
            outcome.stderr
        );
        assert!(
            !sandbox.data_dir().exists(),
            "no data directory was invented"
        );
        let mut command = sandbox.command();
        command.args(["user", "disable", "erin"]);
        run(command, None).assert_failure();
        assert!(!sandbox.data_dir().exists());
    }

    #[test]
    fn migrate_creates_the_database_but_no_signing_key() {
        let sandbox = Sandbox::new();
        let mut command = sandbox.bare_command();
        command.arg("migrate");
        let outcome = run(command, None);
        outcome.assert_success();
        assert!(outcome.stdout.contains("up to date"), "{outcome:?}");
        assert_eq!(mode_of(&sandbox.data_dir()), 0o700);
        assert_eq!(mode_of(&sandbox.data_dir().join("portcullis.db")), 0o600);
        assert!(!sandbox.data_dir().join("jwt-signing-key").exists());
    }

    #[test]
    fn set_role_refuses_a_role_that_is_neither_admin_nor_user() {
        let sandbox = Sandbox::migrated();
        let mut command = sandbox.command();
        command.args(["user", "set-role", "alice", "--role", "root"]);
        let outcome = run(command, None);
        outcome.assert_failure();
        assert!(
            outcome.stderr.contains("root"),
            "stderr names the bad value: {}",
            outcome.stderr
        );
    }

    #[test]
    fn account_commands_on_an_unknown_user_say_no_such_user() {
        let sandbox = Sandbox::migrated();
        for args in [
            &["user", "disable", "ghost"][..],
            &["user", "enable", "ghost"][..],
            &["user", "set-role", "ghost", "--role", "user"][..],
        ] {
            let mut command = sandbox.command();
            command.args(args);
            let outcome = run(command, None);
            outcome.assert_failure();
            assert!(
                outcome.messages().contains("no such user"),
                "`portcullis {}`: {}",
                args.join(" "),
                outcome.stderr
            );
        }
    }
}

mod settings_precedence {
    use super::*;

    fn config_with_min_length_20(sandbox: &Sandbox) -> PathBuf {
        let config = sandbox.path("portcullis.toml");
        std::fs::write(&config, "password_min_length = 20\n").expect("write config");
        config
    }

    #[track_caller]
    fn assert_refused_for_length(outcome: &Outcome, minimum: usize) {
        outcome.assert_failure();
        assert!(
            outcome.messages().contains("password")
                && outcome.messages().contains(&minimum.to_string()),
            "refused naming the minimum {minimum}: {}",
            outcome.stderr
        );
    }

    #[test]
    fn a_flag_beats_the_environment_and_the_config_file() {
        let sandbox = Sandbox::migrated();
        let config = config_with_min_length_20(&sandbox);
        let command = || {
            let mut command = sandbox.command();
            command
                .env("PORTCULLIS_PASSWORD_MIN_LENGTH", "16")
                .arg("--config")
                .arg(&config)
                .args(["--password-min-length", "18"]);
            command
        };
        assert_refused_for_length(&create_user(command(), "flagshort", &password(17)), 18);
        create_user(command(), "flagexact", &password(18)).assert_success();
    }

    #[test]
    fn the_environment_beats_the_config_file() {
        let sandbox = Sandbox::migrated();
        let config = config_with_min_length_20(&sandbox);
        let command = || {
            let mut command = sandbox.command();
            command
                .env("PORTCULLIS_PASSWORD_MIN_LENGTH", "16")
                .arg("--config")
                .arg(&config);
            command
        };
        assert_refused_for_length(&create_user(command(), "envshort", &password(15)), 16);
        create_user(command(), "envexact", &password(16)).assert_success();
    }

    #[test]
    fn the_config_file_beats_the_default() {
        let sandbox = Sandbox::migrated();
        let config = config_with_min_length_20(&sandbox);
        let command = || {
            let mut command = sandbox.command();
            command.arg("--config").arg(&config);
            command
        };
        assert_refused_for_length(&create_user(command(), "fileshort", &password(19)), 20);
        create_user(command(), "fileexact", &password(20)).assert_success();
    }

    #[test]
    fn a_flag_after_the_subcommand_also_applies() {
        let sandbox = Sandbox::migrated();
        let mut command = sandbox.command();
        command.args(["user", "create", "--password-min-length", "18"]);
        command.args([
            "--username",
            "late",
            "--email",
            "late@example.com",
            "--password-stdin",
        ]);
        let outcome = run(command, Some(&format!("{}\n", password(17))));
        assert_refused_for_length(&outcome, 18);
    }
}

mod serving {
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
        let key = data_dir.join("jwt-signing-key");
        assert!(key.is_file(), "the signing key is in the data directory");
        assert_eq!(mode_of(&key), 0o600, "the key file is owner-only");
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
            "the signing key never appears in the log"
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
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert!(value.is_object(), "not a JSON object: {line}");
        }
        assert!(
            lines.iter().any(|line| listening_port(line).is_some()),
            "the address is logged in JSON too: {lines:?}"
        );
    }

    #[test]
    fn a_second_start_on_the_same_data_dir_reuses_the_signing_key() {
        let sandbox = Sandbox::new();
        let key = sandbox.data_dir().join("jwt-signing-key");

        let first = Server::start(sandbox.command());
        let original = std::fs::read(&key).expect("the first start writes the key");
        assert!(!original.is_empty());
        let (status, _) = first.terminate();
        assert!(status.success(), "{status:?}");

        let second = Server::start(sandbox.command());
        let (status, _) = http_get(second.addr, "/health").expect("GET /health");
        assert_eq!(status, 200);
        let (exit, _) = second.terminate();
        assert!(exit.success(), "{exit:?}");

        let reused = std::fs::read(&key).expect("the key is still there");
        assert_eq!(reused, original, "the key file is unchanged by a restart");
        assert_eq!(mode_of(&key), 0o600);
    }

    #[test]
    fn serve_uses_the_accounts_that_user_create_made_before_it_and_the_cli_writes_no_key() {
        let sandbox = Sandbox::migrated();
        create_user(sandbox.command(), "dave", &password(20)).assert_success();
        let key = sandbox.data_dir().join("jwt-signing-key");
        assert!(
            !key.exists(),
            "neither migrate nor user create touches the signing key"
        );
        let server = Server::start(sandbox.command());
        let (status, _) = server.terminate();
        assert!(status.success(), "{status:?}");
        assert!(key.exists(), "serve creates the key");
        let mut command = sandbox.command();
        command.args(["user", "disable", "dave"]);
        let outcome = run(command, None);
        outcome.assert_success();
        assert!(outcome.stdout.contains("disabled=true"), "{outcome:?}");
    }
}

mod secrets_in_logs {
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
        let mut stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
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

        let key = std::fs::read_to_string(sandbox.data_dir().join("jwt-signing-key"))
            .expect("the generated key file");
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
}
