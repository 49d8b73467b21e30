//! `portcullis-bench`: the reproducible load benchmark behind `just bench`.
//!
//! It seeds two databases directly through the storage crate (1,000 and, by
//! default, 1,000,000 users), starts the release server on each, drives load
//! from a separate process with `oha`, measures one argon2 hash in the same
//! run, and prints one table (also written, with a chart, to `target/bench/`).
//! All scenarios run in one go so their ratios are meaningful on a noisy
//! machine. See docs/performance.md for the targets and the figures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use portcullis_adapters::MasterAuditKey;
use portcullis_crypto::{Argon2Hasher, Argon2Policy, MasterKey};
use portcullis_domain::audit::{AuditContext, AuditEvent, AuditKey};
use secrecy::ExposeSecret as _;
use std::sync::Arc;

use portcullis_domain::ports::{Clock, SystemClock, UserStore};
use portcullis_domain::{EmailAddress, NewUser, PasswordHashString, Role, User, UserId, Username};
use portcullis_postgres::testing::TestDatabase;
use portcullis_postgres::{PostgresOptions, PostgresStore};
use portcullis_sqlite::SqliteStore;
use serde_json::Value;

/// The password of every seeded user.
const BENCH_PASSWORD: &str = "bench password that is long enough";

#[derive(Debug, Parser)]
#[command(name = "portcullis-bench", about)]
struct Args {
    /// The server binary to benchmark.
    #[arg(long, default_value = "target/release/portcullis")]
    portcullis: PathBuf,
    /// Where results go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Seconds per throughput scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections for the throughput scenarios.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Users in the small database.
    #[arg(long, default_value_t = 1_000)]
    small_users: usize,
    /// Users in the large database.
    #[arg(long, default_value_t = 1_000_000)]
    large_users: usize,
}

/// One oha run, summarised.
#[derive(Debug, Clone)]
struct Measurement {
    name: String,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Status code → count.
    statuses: Vec<(String, u64)>,
    /// Transport errors (connection refused, timeouts, ...).
    errors: u64,
}

impl Measurement {
    fn status_summary(&self) -> String {
        let mut parts: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, count)| format!("{status}×{count}"))
            .collect();
        if self.errors > 0 {
            parts.push(format!("errors×{}", self.errors));
        }
        parts.join(" ")
    }

    fn only_statuses(&self, allowed: &[&str]) -> bool {
        self.errors == 0
            && self
                .statuses
                .iter()
                .all(|(s, _)| allowed.contains(&s.as_str()))
    }
}

/// A running server.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(binary: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, data_dir, &[])
    }

    /// [`start`](Self::start) with more settings, e.g. the PostgreSQL URL.
    fn start_with(
        binary: &Path,
        data_dir: &Path,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let log = data_dir.join("server.log");
        let mut child = Command::new(binary)
            .arg("serve")
            .env_clear()
            .envs(settings.iter().copied())
            .env("PORTCULLIS_BIND", "127.0.0.1:0")
            .env("PORTCULLIS_DATA_DIR", data_dir.join("data"))
            .env("PORTCULLIS_LOG_FORMAT", "json")
            // Request lines would dominate the server's own work at these
            // rates and measure the logger; warnings and errors still show.
            .env("PORTCULLIS_LOG", "warn,portcullis=info")
            // Rate limits are not what is measured here.
            .env("PORTCULLIS_LOGIN_PER_IP_PER_MIN", "100000000")
            .env("PORTCULLIS_LOGIN_PER_USER_PER_MIN", "100000000")
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(address) = text
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find_map(|line| line["address"].as_str().map(str::to_owned))
            {
                return Ok(Self {
                    child,
                    url: format!("http://{address}"),
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!("server exited with {status}: {text}");
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("server did not start: {text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resident set size now and at its peak, in MiB (Linux /proc).
    fn memory_mib(&self) -> anyhow::Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let line = status
                .lines()
                .find(|line| line.starts_with(name))
                .with_context(|| format!("{name} missing"))?;
            let kib: f64 = line
                .split_whitespace()
                .nth(1)
                .context("no value")?
                .parse()?;
            Ok(kib / 1024.0)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    if Command::new("oha").arg("--version").output().is_err() {
        bail!("oha is not installed: `cargo install oha --locked` (just bench does this)");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    say("measuring one argon2id hash (OWASP parameters) in this run");
    let hasher = Argon2Hasher::new(Argon2Policy::OWASP)?;
    let hash_time = time_hashes(&hasher, 20)?;
    let login_limit = cores as f64 / hash_time.as_secs_f64();
    let seed_hash = PasswordHashString::new(hasher.hash(BENCH_PASSWORD.as_bytes())?);

    let small = tempfile::tempdir()?;
    let large = tempfile::tempdir()?;
    let seeding = Instant::now();
    runtime.block_on(seed(small.path(), args.small_users, &seed_hash))?;
    runtime.block_on(seed(large.path(), args.large_users, &seed_hash))?;
    say(&format!(
        "seeded {} + {} users in {:.1} s",
        args.small_users,
        args.large_users,
        seeding.elapsed().as_secs_f64()
    ));

    let d = args.seconds;
    let c = args.connections;
    let mut results = Vec::new();

    let server = Server::start(&args.portcullis, small.path())?;
    std::thread::sleep(Duration::from_secs(1));
    let (idle_rss, _) = server.memory_mib()?;
    let (token, key) = runtime.block_on(credentials(&server.url, "user0"))?;
    let bearer = format!("Authorization: Bearer {token}");
    let api_key = format!("X-API-Key: {key}");
    let me = format!("{}/users/me", server.url);
    let login_body = format!(
        "grant_type=password&username=user1&password={}",
        BENCH_PASSWORD.replace(' ', "+")
    );

    let health = oha("1 GET /health", &[&format!("{}/health", server.url)], d, c)?;
    let bearer_me = oha("2 GET /users/me (bearer)", &["-H", &bearer, &me], d, c)?;
    let key_me = oha("3 GET /users/me (API key)", &["-H", &api_key, &me], d, c)?;
    let login_args = [
        "-m",
        "POST",
        "-T",
        "application/x-www-form-urlencoded",
        "-d",
        login_body.as_str(),
    ];
    let token_url = format!("{}/auth/token", server.url);
    let mut flood_args: Vec<&str> = login_args.to_vec();
    flood_args.push(&token_url);
    let logins = oha("4 POST /auth/token (login flood)", &flood_args, d, c)?;

    // 5: a paced stream of /users/me while a login flood saturates the CPU.
    let flood = spawn_oha(&flood_args, d + 2, c)?;
    std::thread::sleep(Duration::from_secs(1));
    let during = oha_paced(
        "5 GET /users/me during login flood",
        &["-H", &bearer, &me],
        d,
        4,
        200,
    )?;
    flood.wait_with_output()?;

    // 7: peak memory under 200 concurrent logins.
    let _ = oha("7 POST /auth/token ×200 concurrent", &flood_args, 5, 200)?;
    let (_, peak_rss) = server.memory_mib()?;
    server.stop()?;

    let server = Server::start(&args.portcullis, large.path())?;
    let last_user = format!("user{}", args.large_users - 1);
    let (large_token, _) = runtime.block_on(credentials(&server.url, &last_user))?;
    let large_me = oha(
        &format!("6 GET /users/me ({} users)", args.large_users),
        &[
            "-H",
            &format!("Authorization: Bearer {large_token}"),
            &format!("{}/users/me", server.url),
        ],
        d,
        c,
    )?;
    server.stop()?;

    // PostgreSQL: one node, then two nodes on one database, on a fresh
    // database of the test server (PORTCULLIS_TEST_DATABASE_URL).
    let postgres = runtime.block_on(TestDatabase::create());
    let pg_store = runtime.block_on(PostgresStore::open(
        postgres.url(),
        &PostgresOptions::default(),
    ))?;
    let pg_dir = tempfile::tempdir()?;
    let master_key = pg_dir.path().join("node-1/data/master-key");
    pg_store.set_audit_key(new_master_key(&master_key)?);
    runtime.block_on(seed_store(Arc::new(pg_store), args.small_users, &seed_hash))?;
    let master_key_setting = master_key.display().to_string();
    let pg_settings = [
        ("PORTCULLIS_DATABASE_URL", postgres.url()),
        // Both nodes sign with the keys in the database, sealed by one
        // master key, for one issuer: a token from either works on both.
        ("PORTCULLIS_MASTER_KEY_FILE", master_key_setting.as_str()),
        ("PORTCULLIS_PUBLIC_URL", "http://portcullis.bench"),
    ];
    let node_1 = Server::start_with(
        &args.portcullis,
        &pg_dir.path().join("node-1"),
        &pg_settings,
    )?;
    let (pg_token, pg_key) = runtime.block_on(credentials(&node_1.url, "user0"))?;
    let pg_bearer = format!("Authorization: Bearer {pg_token}");
    let pg_api_key = format!("X-API-Key: {pg_key}");
    let pg_me = format!("{}/users/me", node_1.url);
    let pg_bearer_me = oha(
        "8 GET /users/me (bearer, PostgreSQL)",
        &["-H", &pg_bearer, &pg_me],
        d,
        c,
    )?;
    let pg_key_me = oha(
        "9 GET /users/me (API key, PostgreSQL)",
        &["-H", &pg_api_key, &pg_me],
        d,
        c,
    )?;
    let pg_token_url = format!("{}/auth/token", node_1.url);
    let mut pg_flood_args: Vec<&str> = login_args.to_vec();
    pg_flood_args.push(&pg_token_url);
    let pg_logins = oha(
        "10 POST /auth/token (login flood, PostgreSQL)",
        &pg_flood_args,
        d,
        c,
    )?;
    let round_trips = runtime.block_on(transactions_per_request(
        &postgres, &pg_me, &pg_token, 1_000,
    ))?;

    let node_2 = Server::start_with(
        &args.portcullis,
        &pg_dir.path().join("node-2"),
        &pg_settings,
    )?;
    let pg_me_2 = format!("{}/users/me", node_2.url);
    let half = (c / 2).max(1);
    let second = spawn_oha_json(&["-H", &pg_bearer, &pg_me_2], d, half)?;
    let first = oha(
        "11a GET /users/me (bearer, PostgreSQL, node 1 of 2)",
        &["-H", &pg_bearer, &pg_me],
        d,
        half,
    )?;
    let second = parse_oha(
        "11b GET /users/me (bearer, PostgreSQL, node 2 of 2)",
        &second.wait_with_output()?.stdout,
    )?;
    let two_nodes = first.requests_per_sec + second.requests_per_sec;
    node_2.stop()?;
    node_1.stop()?;
    drop(postgres);

    // What the audit log costs: the store writes of a login and a refresh,
    // in-process, with the log and with a key that records nothing, on
    // both stores (the HTTP logins above are bound by argon2, which hides
    // a write's cost; this shows it).
    say("measuring the audit log's cost on the store writes of a login and a refresh");
    let audit_seconds = args.seconds.clamp(1, 5);
    let sqlite_stores = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut sqlite_pair = Vec::new();
    for (dir, records) in sqlite_stores.iter().zip([true, false]) {
        let store = Arc::new(SqliteStore::open(&dir.path().join("portcullis.db"))?);
        let key: Arc<dyn AuditKey> = if records {
            new_master_key(&dir.path().join("master-key"))?
        } else {
            Arc::new(NoAuditLog)
        };
        store.set_audit_key(key);
        runtime.block_on(seed_store(store.clone(), 4, &seed_hash))?;
        sqlite_pair.push(store);
    }
    let sqlite_costs = runtime.block_on(audit_costs(
        "SQLite",
        sqlite_pair[0].clone(),
        sqlite_pair[1].clone(),
        audit_seconds,
    ))?;
    let pg_databases = [
        runtime.block_on(TestDatabase::create()),
        runtime.block_on(TestDatabase::create()),
    ];
    let mut pg_pair = Vec::new();
    for (database, records) in pg_databases.iter().zip([true, false]) {
        let store = Arc::new(runtime.block_on(PostgresStore::open(
            database.url(),
            &PostgresOptions::default(),
        ))?);
        let key: Arc<dyn AuditKey> = if records {
            Arc::new(MasterAuditKey::derive(&MasterKey::generate())?)
        } else {
            Arc::new(NoAuditLog)
        };
        store.set_audit_key(key);
        runtime.block_on(seed_store(store.clone(), 4, &seed_hash))?;
        pg_pair.push(store);
    }
    let pg_costs = runtime.block_on(audit_costs(
        "PostgreSQL",
        pg_pair[0].clone(),
        pg_pair[1].clone(),
        audit_seconds,
    ))?;
    drop(pg_pair);
    drop(pg_databases);

    results.extend([
        health.clone(),
        bearer_me.clone(),
        key_me.clone(),
        logins.clone(),
        during.clone(),
        large_me.clone(),
        pg_bearer_me.clone(),
        pg_key_me.clone(),
        pg_logins.clone(),
        first.clone(),
        second.clone(),
    ]);
    results.extend(sqlite_costs.iter().cloned());
    results.extend(pg_costs.iter().cloned());

    let hash_concurrency = cores as f64;
    let checks = vec![
        check(
            "(2) bearer /users/me ≥ 70% of /health",
            bearer_me.requests_per_sec / health.requests_per_sec,
            0.70,
        ),
        check(
            "(3) API-key /users/me ≥ 70% of /health",
            key_me.requests_per_sec / health.requests_per_sec,
            0.70,
        ),
        check(
            "(4) logins ≥ 85% of cores ÷ hash time",
            logins.requests_per_sec / login_limit,
            0.85,
        ),
        (
            "(4) logins answer only 200/429/503, no errors".to_owned(),
            logins.status_summary(),
            logins.only_statuses(&["200", "429", "503"]),
        ),
        (
            "(5) /users/me p99 ≤ 25 ms during the login flood".to_owned(),
            format!("{:.1} ms", during.p99_ms),
            during.p99_ms <= 25.0 && during.errors == 0,
        ),
        check(
            "(6) 1M-user /users/me ≥ 90% of 1k-user",
            large_me.requests_per_sec / bearer_me.requests_per_sec,
            0.90,
        ),
        check(
            "(8) PostgreSQL bearer /users/me ≥ 50% of SQLite",
            pg_bearer_me.requests_per_sec / bearer_me.requests_per_sec,
            0.50,
        ),
        check(
            "(10) PostgreSQL logins ≥ 85% of cores ÷ hash time",
            pg_logins.requests_per_sec / login_limit,
            0.85,
        ),
        (
            "(10) PostgreSQL logins answer only 200/429/503, no errors".to_owned(),
            pg_logins.status_summary(),
            pg_logins.only_statuses(&["200", "429", "503"]),
        ),
        (
            "(11) two nodes on one database answer only 200, no errors".to_owned(),
            format!(
                "{two_nodes:.0}/s together ({:.0}% of one node); {} / {}",
                two_nodes / pg_bearer_me.requests_per_sec * 100.0,
                first.status_summary(),
                second.status_summary()
            ),
            first.only_statuses(&["200"]) && second.only_statuses(&["200"]),
        ),
        (
            "(8) database transactions per bearer /users/me (informational)".to_owned(),
            format!("{round_trips:.2}"),
            true,
        ),
        audit_cost(
            "(12) SQLite: a login's store write with the audit log, ÷ without",
            &sqlite_costs[0],
            &sqlite_costs[1],
        ),
        audit_cost(
            "(12) SQLite: a refresh's store write with the audit log, ÷ without",
            &sqlite_costs[2],
            &sqlite_costs[3],
        ),
        audit_cost(
            "(12) PostgreSQL: a login's store write with the audit log, ÷ without",
            &pg_costs[0],
            &pg_costs[1],
        ),
        audit_cost(
            "(12) PostgreSQL: a refresh's store write with the audit log, ÷ without",
            &pg_costs[2],
            &pg_costs[3],
        ),
        (
            "(12) HTTP logins with the audit log, ÷ cores ÷ hash time (SQLite; PostgreSQL)"
                .to_owned(),
            format!(
                "{:.0}%; {:.0}%",
                logins.requests_per_sec / login_limit * 100.0,
                pg_logins.requests_per_sec / login_limit * 100.0
            ),
            true,
        ),
        (
            "(7) idle RSS ≤ 20 MiB".to_owned(),
            format!("{idle_rss:.1} MiB"),
            idle_rss <= 20.0,
        ),
        (
            format!("(7) peak RSS ≤ {hash_concurrency:.0}×19 + 64 MiB"),
            format!("{peak_rss:.1} MiB"),
            peak_rss <= hash_concurrency * 19.0 + 64.0,
        ),
    ];

    let report = render(&results, &checks, hash_time, login_limit, cores, &args);
    print_report(&report);
    std::fs::write(args.out.join("results.md"), &report)?;
    std::fs::write(args.out.join("chart.svg"), chart(&results))?;
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "cores": cores,
            "argon2_hash_ms": hash_time.as_secs_f64() * 1000.0,
            "login_limit_per_sec": login_limit,
            "idle_rss_mib": idle_rss,
            "peak_rss_mib": peak_rss,
            "scenarios": results.iter().map(|m| serde_json::json!({
                "name": m.name, "requests_per_sec": m.requests_per_sec,
                "p50_ms": m.p50_ms, "p99_ms": m.p99_ms,
                "statuses": m.statuses.iter().map(|(s, n)| (s.clone(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
                "errors": m.errors,
            })).collect::<Vec<_>>(),
            "checks": checks.iter().map(|(name, value, pass)| serde_json::json!({
                "check": name, "value": value, "pass": pass,
            })).collect::<Vec<_>>(),
        }))?,
    )?;
    say(&format!("written to {}", args.out.display()));
    Ok(())
}

/// An informational row: the rate with the audit log as a share of the
/// rate without, and the p50 latencies of both.
fn audit_cost(
    name: &str,
    with_log: &Measurement,
    without_log: &Measurement,
) -> (String, String, bool) {
    (
        name.to_owned(),
        format!(
            "{:.0}% ({:.0}/s vs {:.0}/s; p50 {:.2} vs {:.2} ms)",
            with_log.requests_per_sec / without_log.requests_per_sec * 100.0,
            with_log.requests_per_sec,
            without_log.requests_per_sec,
            with_log.p50_ms,
            without_log.p50_ms
        ),
        true,
    )
}

fn check(name: &str, ratio: f64, target: f64) -> (String, String, bool) {
    (
        name.to_owned(),
        format!("{:.0}%", ratio * 100.0),
        ratio >= target,
    )
}

#[allow(clippy::print_stdout, reason = "the report is the program's output")]
fn print_report(report: &str) {
    println!("{report}");
}

#[allow(
    clippy::print_stderr,
    reason = "progress for the person running the benchmark"
)]
fn say(text: &str) {
    eprintln!("portcullis-bench: {text}");
}

fn time_hashes(hasher: &Argon2Hasher, count: u32) -> anyhow::Result<Duration> {
    hasher.hash(b"warm up")?;
    let started = Instant::now();
    for _ in 0..count {
        hasher.hash(b"correct horse battery staple")?;
    }
    Ok(started.elapsed() / count)
}

/// Inserts `count` users named `user0..` through the storage crate, all with
/// the same (real, production-cost) password hash.
async fn seed(dir: &Path, count: usize, hash: &PasswordHashString) -> anyhow::Result<()> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let store = Arc::new(SqliteStore::open(&data.join("portcullis.db"))?);
    store.set_audit_key(new_master_key(&data.join("master-key"))?);
    seed_store(store, count, hash).await
}

/// Writes a new master key where the server will look for it (owner-only,
/// as the server makes it) and returns the audit key derived from it: the
/// users seeded behind the server's back are then in the chain the server
/// continues.
fn new_master_key(path: &Path) -> anyhow::Result<Arc<dyn AuditKey>> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let key = MasterKey::generate();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(format!("{}\n", key.encode().expose_secret()).as_bytes())?;
    Ok(Arc::new(MasterAuditKey::derive(&key)?))
}

/// [`seed`] into any store.
async fn seed_store(
    store: Arc<dyn UserStore>,
    count: usize,
    hash: &PasswordHashString,
) -> anyhow::Result<()> {
    let created_at = SystemClock.now().replace_nanosecond(0)?;
    let workers = 4;
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let store = store.clone();
        let hash = hash.clone();
        tasks.push(tokio::spawn(async move {
            for n in (worker..count).step_by(workers) {
                let user = User {
                    id: UserId::random(),
                    username: Username::parse(&format!("user{n}"))?,
                    email: EmailAddress::parse(&format!("user{n}@bench.example"))?,
                    full_name: None,
                    role: Role::User,
                    disabled: false,
                    created_at,
                };
                let registered = AuditContext::system(created_at).record(
                    Some(user.id),
                    AuditEvent::UserRegistered {
                        username: user.username.clone(),
                        role: user.role,
                    },
                );
                store
                    .insert_user(
                        &NewUser {
                            user,
                            password_hash: hash.clone(),
                        },
                        &registered,
                    )
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Logs in and creates an API key; returns (access token, key).
async fn credentials(base: &str, username: &str) -> anyhow::Result<(String, String)> {
    let client = reqwest::Client::new();
    let tokens: Value = client
        .post(format!("{base}/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", BENCH_PASSWORD),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = tokens["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned();
    let key: Value = client
        .post(format!("{base}/users/me/api-keys"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok((token, key["key"].as_str().context("key")?.to_owned()))
}

fn oha_command(extra: &[&str], seconds: u64, connections: u32) -> Command {
    let mut command = Command::new("oha");
    command
        // Requests still running at the deadline are awaited, not counted as
        // errors: a cut-off request says nothing about the server.
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "--wait-ongoing-requests-after-deadline",
            "-z",
        ])
        .arg(format!("{seconds}s"))
        .arg("-c")
        .arg(connections.to_string())
        .args(extra);
    command
}

/// oha in the background, its JSON report on stdout for [`parse_oha`].
fn spawn_oha_json(extra: &[&str], seconds: u64, connections: u32) -> anyhow::Result<Child> {
    Ok(oha_command(extra, seconds, connections)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Transactions the server commits per bearer `/users/me`, from
/// PostgreSQL's own counter (`pg_stat_database.xact_commit`, read through
/// `psql`): `requests` sequential requests, minus what the same time idle
/// commits (the node's background tasks). Every statement outside an
/// explicit transaction is one transaction and one round trip.
///
/// A backend reports its counts only now and then while it lives (at most
/// once a second, and an idle one after ten), but always when it exits: so
/// before each reading the node's connections are ended
/// (`pg_terminate_backend`), and its pool opens new ones for the next
/// requests.
async fn transactions_per_request(
    database: &TestDatabase,
    url: &str,
    token: &str,
    requests: u32,
) -> anyhow::Result<f64> {
    let psql = |sql: &str| -> anyhow::Result<String> {
        let output = Command::new("psql")
            .arg(database.url())
            .args(["-XAtqc", sql])
            .output()
            .context("psql (PostgreSQL's client) is needed to count transactions")?;
        if !output.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commits = || -> anyhow::Result<f64> {
        psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'portcullis'",
        )?;
        // Exiting backends report as they go; give them a moment.
        std::thread::sleep(Duration::from_millis(500));
        Ok(
            psql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")?
                .parse()?,
        )
    };
    let client = reqwest::Client::new();
    // The first request after the connections were ended may find one
    // dead in the pool; warm it up before counting.
    let warm_up = |count: u32| {
        let client = client.clone();
        async move {
            for _ in 0..count {
                client
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await?
                    .error_for_status()?;
            }
            anyhow::Ok(())
        }
    };
    commits()?;
    warm_up(10).await?;
    let before = commits()?;
    let started = Instant::now();
    warm_up(requests).await?;
    let busy = started.elapsed();
    let after_load = commits()?;
    tokio::time::sleep(busy).await;
    let after_idle = commits()?;
    // Each reading is itself two transactions (psql's two statements).
    let load = after_load - before - 2.0;
    let idle = after_idle - after_load - 2.0;
    Ok((load - idle).max(0.0) / f64::from(requests))
}

fn spawn_oha(extra: &[&str], seconds: u64, connections: u32) -> anyhow::Result<Child> {
    Ok(oha_command(extra, seconds, connections)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

fn oha(name: &str, extra: &[&str], seconds: u64, connections: u32) -> anyhow::Result<Measurement> {
    say(&format!("{name}: {seconds} s, {connections} connections"));
    let output = oha_command(extra, seconds, connections).output()?;
    parse_oha(name, &output.stdout)
}

fn oha_paced(
    name: &str,
    extra: &[&str],
    seconds: u64,
    connections: u32,
    per_second: u32,
) -> anyhow::Result<Measurement> {
    say(&format!("{name}: {per_second} requests/s for {seconds} s"));
    let mut args: Vec<&str> = vec!["-q"];
    let rate = per_second.to_string();
    args.push(&rate);
    args.extend_from_slice(extra);
    let output = oha_command(&args, seconds, connections).output()?;
    parse_oha(name, &output.stdout)
}

fn parse_oha(name: &str, stdout: &[u8]) -> anyhow::Result<Measurement> {
    let report: Value = serde_json::from_slice(stdout)
        .with_context(|| format!("oha output: {}", String::from_utf8_lossy(stdout)))?;
    let seconds = |value: &Value| value.as_f64().unwrap_or(f64::NAN) * 1000.0;
    let statuses = report["statusCodeDistribution"]
        .as_object()
        .map(|codes| {
            codes
                .iter()
                .map(|(code, count)| (code.clone(), count.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let errors = report["errorDistribution"]
        .as_object()
        .map(|errors| errors.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    Ok(Measurement {
        name: name.to_owned(),
        requests_per_sec: report["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: seconds(&report["latencyPercentiles"]["p50"]),
        p99_ms: seconds(&report["latencyPercentiles"]["p99"]),
        statuses,
        errors,
    })
}

fn render(
    results: &[Measurement],
    checks: &[(String, String, bool)],
    hash_time: Duration,
    login_limit: f64,
    cores: usize,
    args: &Args,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Portcullis benchmark\n\n{cores} cores; one argon2id hash (m=19456, t=2, p=1) = {:.1} ms, \
         so the login limit is {cores} ÷ that = {login_limit:.0}/s. {} s per scenario, {} connections.\n",
        hash_time.as_secs_f64() * 1000.0,
        args.seconds,
        args.connections
    );
    let _ = writeln!(
        out,
        "| scenario | requests/s | p50 ms | p99 ms | responses |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|");
    for m in results {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {:.2} | {} |",
            m.name,
            m.requests_per_sec,
            m.p50_ms,
            m.p99_ms,
            m.status_summary()
        );
    }
    let _ = writeln!(out, "\n| target | measured | met |\n|---|---|---|");
    for (name, value, pass) in checks {
        let _ = writeln!(
            out,
            "| {name} | {value} | {} |",
            if *pass { "yes" } else { "**no**" }
        );
    }
    out
}

/// A horizontal bar chart of throughput, as SVG.
fn chart(results: &[Measurement]) -> String {
    let max = results
        .iter()
        .map(|m| m.requests_per_sec)
        .fold(1.0_f64, f64::max);
    let (width, bar_height, left) = (900.0, 26.0, 330.0);
    let height = 40.0 + results.len() as f64 * (bar_height + 10.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13"><text x="10" y="22" font-size="15">Requests per second</text>"#
    );
    for (i, m) in results.iter().enumerate() {
        let y = 36.0 + i as f64 * (bar_height + 10.0);
        let w = (width - left - 90.0) * m.requests_per_sec / max;
        let _ = write!(
            svg,
            r##"<text x="10" y="{ty}">{name}</text><rect x="{left}" y="{y}" width="{w:.1}" height="{bar_height}" fill="#4a78b5"/><text x="{tx:.1}" y="{ty}">{rps:.0}</text>"##,
            ty = y + 18.0,
            name = m.name.replace('&', "&amp;").replace('<', "&lt;"),
            tx = left + w + 6.0,
            rps = m.requests_per_sec
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The baseline key of the audit-cost scenarios: it records nothing, so
/// the store skips its appends (see `AuditKey::records`).
struct NoAuditLog;

impl AuditKey for NoAuditLog {
    fn mac(&self, _message: &[u8]) -> portcullis_domain::audit::AuditMac {
        portcullis_domain::audit::AuditMac::GENESIS
    }

    fn records(&self) -> bool {
        false
    }
}

/// How many tasks write at once in the audit-cost scenarios.
const AUDIT_COST_WRITERS: usize = 4;

/// The store write of a login (`create_session` with its `login.succeeded`
/// event) and of a refresh (`rotate_refresh_token`), each for `seconds`
/// with [`AUDIT_COST_WRITERS`] concurrent writers, on `store`: operations
/// per second and the latencies. In-process, so that a baseline without
/// the audit log can be measured in the same run (no setting turns the log
/// off).
async fn store_write_rates(
    label: &str,
    store: Arc<dyn portcullis_domain::ports::Store>,
    seconds: u64,
) -> anyhow::Result<[Measurement; 2]> {
    use portcullis_domain::{NewSession, RefreshTokenHash, ScopeSet, SessionId};

    let user_id = store
        .find_credentials(&Username::parse("user0")?)
        .await?
        .context("user0 is seeded")?
        .user
        .id;
    let now = SystemClock.now().replace_nanosecond(0)?;
    let day = Duration::from_secs(86_400);
    // The salt is new for each run, so that two runs on one store never
    // make the same token.
    let token = |salt: &str, n: u64, task: usize| {
        RefreshTokenHash::from_digest(format!("{task}:{n}:{salt}").into_bytes())
    };
    let new_session = move |refresh_token_hash| NewSession {
        id: SessionId::random(),
        user_id,
        scopes: ScopeSet::EMPTY,
        refresh_token_hash,
        created_at: now,
        expires_at: now + day,
        ip: Some("192.0.2.1".to_owned()),
        user_agent: Some("portcullis-bench".to_owned()),
    };
    let context = AuditContext::system(now);
    let run = |rotate: bool| {
        let store = store.clone();
        let context = context.clone();
        let salt = Arc::new(SessionId::random().to_string());
        async move {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            for task in 0..AUDIT_COST_WRITERS {
                let store = store.clone();
                let context = context.clone();
                let salt = salt.clone();
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut current = token(&salt, 0, task);
                    if rotate {
                        let session = new_session(current.clone());
                        let record = context.record(
                            Some(user_id),
                            AuditEvent::LoginSucceeded {
                                session_id: session.id,
                            },
                        );
                        store
                            .create_session(&session, u32::MAX, day, &record)
                            .await?;
                    }
                    let mut n = 1;
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        let next = token(&salt, n, task);
                        if rotate {
                            store
                                .rotate_refresh_token(&current, &next, now, day, &context)
                                .await?;
                            current = next;
                        } else {
                            let session = new_session(next);
                            let record = context.record(
                                Some(user_id),
                                AuditEvent::LoginSucceeded {
                                    session_id: session.id,
                                },
                            );
                            store
                                .create_session(&session, u32::MAX, day, &record)
                                .await?;
                        }
                        latencies.push(started.elapsed());
                        n += 1;
                    }
                    anyhow::Ok(latencies)
                }));
            }
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await??);
            }
            latencies.sort_unstable();
            anyhow::Ok(latencies)
        }
    };
    let measure = |name: String, latencies: Vec<Duration>| {
        let at = |quantile: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "an index into the sorted latencies"
            )]
            let index = ((latencies.len() as f64 - 1.0) * quantile).round() as usize;
            latencies
                .get(index)
                .map_or(0.0, |latency| latency.as_secs_f64() * 1000.0)
        };
        #[allow(clippy::cast_precision_loss, reason = "a count of operations")]
        let rate = latencies.len() as f64 / seconds as f64;
        Measurement {
            name,
            requests_per_sec: rate,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            statuses: vec![("ok".to_owned(), latencies.len() as u64)],
            errors: 0,
        }
    };
    let logins = run(false).await?;
    let refreshes = run(true).await?;
    Ok([
        measure(format!("{label}: a login's store write"), logins),
        measure(format!("{label}: a refresh's store write"), refreshes),
    ])
}

/// The audit-cost scenarios on one store kind: the same writes on a store
/// with the deployment's audit key and on one whose key records nothing.
async fn audit_costs(
    label: &str,
    with_log: Arc<dyn portcullis_domain::ports::Store>,
    without_log: Arc<dyn portcullis_domain::ports::Store>,
    seconds: u64,
) -> anyhow::Result<Vec<Measurement>> {
    // On, off, off, on: what runs later on a warmer database (or page
    // cache) is not always the same side.
    let on_label = format!("{label}, audit log on");
    let off_label = format!("{label}, audit log off");
    let [login_1, refresh_1] = store_write_rates(&on_label, with_log.clone(), seconds).await?;
    let [login_off_1, refresh_off_1] =
        store_write_rates(&off_label, without_log.clone(), seconds).await?;
    let [login_off_2, refresh_off_2] = store_write_rates(&off_label, without_log, seconds).await?;
    let [login_2, refresh_2] = store_write_rates(&on_label, with_log, seconds).await?;
    Ok(vec![
        mean_of(&login_1, &login_2),
        mean_of(&login_off_1, &login_off_2),
        mean_of(&refresh_1, &refresh_2),
        mean_of(&refresh_off_1, &refresh_off_2),
    ])
}

/// Two rounds of one scenario as one: mean rate and latencies, summed
/// counts.
fn mean_of(first: &Measurement, second: &Measurement) -> Measurement {
    let count = |m: &Measurement| m.statuses.iter().map(|(_, n)| n).sum::<u64>();
    Measurement {
        name: format!("{} (2 rounds)", first.name),
        requests_per_sec: f64::midpoint(first.requests_per_sec, second.requests_per_sec),
        p50_ms: f64::midpoint(first.p50_ms, second.p50_ms),
        p99_ms: f64::midpoint(first.p99_ms, second.p99_ms),
        statuses: vec![("ok".to_owned(), count(first) + count(second))],
        errors: first.errors + second.errors,
    }
}
