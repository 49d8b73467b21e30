//! Black-box tests of the `portcullis` binary's command line (CONTRACT §1):
//! start-up checks, `openapi`, `--help`, the `user` commands, the
//! flag > env > file > default order, and `serve` on port 0 with its data
//! directory, key file, logs and SIGTERM handling.
//!
//! Every run gets a fresh temporary data directory and working directory and
//! none of the developer's `PORTCULLIS_*` variables.

#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "tests: a failed set-up panics saying what failed, and tests read the real clock and draw ids as the code under test does"
)]

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

mod audit_commands;
mod connections;
mod documents_and_help;
mod key_commands;
mod postgres_commands;
mod secrets_in_logs;
mod serving;
mod settings_precedence;
mod startup_checks;
mod user_commands;
