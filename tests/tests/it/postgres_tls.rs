//! The connection to PostgreSQL is TLS, and the server's certificate is
//! verified (CONTRACT §5: `sslmode=require` served over rustls): against
//! `PORTCULLIS_DATABASE_CA_FILE` when it is set, else the system's roots.
//!
//! Each test starts a private PostgreSQL 15 cluster (see
//! `portcullis_tests::private_postgres`) with a certificate for `127.0.0.1`
//! from a CA only the test knows, which lets in TLS connections only.

use std::future::Future;
use std::time::{Duration, Instant};

use portcullis::{Application, Settings};
use portcullis_tests::private_postgres::PrivatePostgres;
use portcullis_tests::{TestApp, test_args};
use serde_json::Value;
use tempfile::TempDir;

/// How long a start that cannot reach its database may take to fail: the
/// store's connect timeout is 2 s, and a refused certificate or a refused
/// login fails at once.
const FAILURE_DEADLINE: Duration = Duration::from_secs(5);

/// Settings for an app in a fresh temporary directory on `database_url`,
/// trusting `ca_file` (none: the system's roots).
fn settings_on(database_url: String, ca_file: Option<std::path::PathBuf>) -> (TempDir, Settings) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut args = test_args(dir.path().join("data"));
    args.database_url = Some(database_url);
    args.database_ca_file = ca_file;
    let settings = Settings::resolve(&args).expect("settings on the private PostgreSQL");
    (dir, settings)
}

/// Awaits `build`, which must fail within [`FAILURE_DEADLINE`]; returns the
/// whole error chain as text.
async fn start_failure(build: impl Future<Output = anyhow::Result<Application>>) -> String {
    let started = Instant::now();
    let result = tokio::time::timeout(FAILURE_DEADLINE, build)
        .await
        .unwrap_or_else(|_| {
            panic!("the start neither failed nor succeeded within {FAILURE_DEADLINE:?}")
        });
    let Err(error) = result else {
        panic!("the application started on a database it must not be able to use");
    };
    let text = format!("{error:#}");
    assert!(
        started.elapsed() < FAILURE_DEADLINE,
        "failing took {:?}: {text}",
        started.elapsed()
    );
    text
}

#[tokio::test]
async fn with_the_servers_ca_the_application_works_over_tls() {
    let postgres = PrivatePostgres::start_with_tls();
    let (dir, settings) = settings_on(postgres.url("sslmode=require"), Some(postgres.ca_file()));
    let app = TestApp::spawn_with(dir, settings).await;

    let health = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("GET /health");
    assert_eq!(health.status(), 200, "the database is usable");
    let health: Value = health.json().await.expect("health json");
    assert_eq!(health["database"], "ok", "{health}");
    let token = app.access_token_for("tls-alice").await;
    assert_eq!(app.me(&token).await.status(), 200, "the token works");

    // The server's own view of the application's connections (the store
    // names them `portcullis`): there are some, and every one is TLS.
    let connections = postgres.query(
        "SELECT count(*) FILTER (WHERE s.ssl) || '|' || count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'portcullis'",
    );
    let (tls, plain) = connections
        .split_once('|')
        .unwrap_or_else(|| panic!("two counts from psql, got {connections:?}"));
    let tls: u32 = tls.parse().expect("a count");
    assert!(
        tls > 0,
        "the application holds no TLS connection ({connections})"
    );
    assert_eq!(plain, "0", "no connection of the application is plaintext");
}

#[tokio::test]
async fn without_the_servers_ca_its_certificate_is_refused() {
    let postgres = PrivatePostgres::start_with_tls();
    // No CA file: the system's roots, none of which issued the test CA.
    let (_dir, settings) = settings_on(postgres.url("sslmode=require"), None);

    let error = start_failure(Application::build(&settings)).await;

    assert!(
        error.contains("error performing TLS handshake")
            && error.contains("invalid peer certificate: UnknownIssuer"),
        "the error says the certificate's issuer is unknown: {error}"
    );
}

#[tokio::test]
async fn a_certificate_from_the_trusted_ca_for_another_name_is_refused() {
    let postgres = PrivatePostgres::start_with_tls();
    // The same server, reached at its address but under a name its
    // certificate does not hold (`hostaddr` connects, `host` is verified).
    let url = format!(
        "postgres://postgres@db.portcullis.test:{}/postgres?sslmode=require&hostaddr=127.0.0.1",
        postgres.port()
    );
    let (_dir, settings) = settings_on(url, Some(postgres.ca_file()));

    let error = start_failure(Application::build(&settings)).await;

    assert!(
        error.contains("error performing TLS handshake")
            && error.contains(
                "invalid peer certificate: certificate not valid for name \"db.portcullis.test\""
            ),
        "the error says the certificate is not for db.portcullis.test: {error}"
    );
}

#[tokio::test]
async fn without_tls_a_tls_only_server_refuses_the_application() {
    let postgres = PrivatePostgres::start_with_tls();
    let (_dir, settings) = settings_on(postgres.url("sslmode=disable"), Some(postgres.ca_file()));

    let error = start_failure(Application::build(&settings)).await;

    assert!(
        error.contains("database error 28000")
            && error.contains("pg_hba.conf rejects connection")
            && error.contains("no encryption"),
        "the server refused the plaintext connection: {error}"
    );
}
