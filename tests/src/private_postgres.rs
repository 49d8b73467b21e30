//! A private PostgreSQL cluster a test starts for itself, serving TLS with a
//! certificate from a test CA, to prove that the application's connection
//! to the database is encrypted and the server's certificate verified.
//!
//! The machine's shared PostgreSQL (see [`cluster`](crate::cluster)) cannot
//! serve that proof: its certificate is Debian's self-signed "snakeoil" one,
//! issued for the machine's host name, which no verifying client accepts for
//! `127.0.0.1`. A private cluster has a certificate for `127.0.0.1` and
//! `localhost` signed by a CA only the test trusts ([`PrivatePostgres::ca_file`]),
//! and its `pg_hba.conf` refuses every connection that is not TLS.
//!
//! The cluster runs PostgreSQL 15's own programs from
//! `/usr/lib/postgresql/15/bin` (Debian's `postgresql-15` package); without
//! them the test fails, saying so, instead of being skipped. `initdb` refuses
//! to run as root, so as root the cluster is made and run by the `postgres`
//! operating-system user (through `runuser`), which then owns its directory.
//!
//! ```no_run
//! use portcullis_tests::private_postgres::PrivatePostgres;
//!
//! let postgres = PrivatePostgres::start_with_tls();
//! let url = postgres.url("sslmode=require");
//! let ca_file = postgres.ca_file();
//! // ... start the application with `url` and `ca_file` ...
//! let tls_connections = postgres.query("SELECT count(*) FROM pg_stat_ssl WHERE ssl");
//! // Dropping `postgres` stops the cluster and removes its directory.
//! ```

use std::fs;
use std::io::{ErrorKind, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// Where Debian's `postgresql-15` package puts the server programs.
pub const POSTGRES_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The database superuser `initdb` creates, and the operating-system user
/// that runs the cluster when the test runs as root.
const SUPERUSER: &str = "postgres";

/// How often [`PrivatePostgres::start_with_tls`] tries another port when the
/// one it picked was taken between picking and binding.
const START_ATTEMPTS: usize = 3;

/// A running PostgreSQL cluster in a temporary directory, listening on
/// `127.0.0.1` for TLS connections only; stopped and removed on drop.
pub struct PrivatePostgres {
    /// Holds the certificates, the cluster, its socket and its log.
    dir: TempDir,
    port: u16,
    /// Whether the cluster's programs run as the `postgres` user (the test
    /// runs as root) or as the test's own user.
    as_postgres_user: bool,
}

impl PrivatePostgres {
    /// Makes a test CA and a server certificate for `127.0.0.1` and
    /// `localhost`, creates a cluster (`initdb`) whose only way in is TLS
    /// from `127.0.0.1` (the superuser `postgres`, no password), and starts
    /// it on a free port, waiting until it accepts connections.
    ///
    /// # Panics
    ///
    /// When PostgreSQL 15's programs are not installed, or making or
    /// starting the cluster fails (the message quotes the server's log).
    pub fn start_with_tls() -> Self {
        let initdb = Path::new(POSTGRES_BIN_DIR).join("initdb");
        let pg_ctl = Path::new(POSTGRES_BIN_DIR).join("pg_ctl");
        assert!(
            initdb.is_file() && pg_ctl.is_file(),
            "the private PostgreSQL of the TLS tests needs PostgreSQL 15's server programs \
             ({} and {}): install Debian's `postgresql-15` package",
            initdb.display(),
            pg_ctl.display()
        );
        let dir = tempfile::tempdir().expect("temporary directory for PostgreSQL");
        // The directory is the test process's own, so its owner says whether
        // the test runs as root, without a libc call.
        let as_postgres_user = fs::metadata(dir.path())
            .expect("the temporary directory's metadata")
            .uid()
            == 0;
        let postgres = Self {
            dir,
            port: 0,
            as_postgres_user,
        };
        postgres.write_certificates();
        fs::create_dir(postgres.socket_dir()).expect("the socket directory");
        if as_postgres_user {
            // The `postgres` user must create the cluster in the directory
            // and own the key (PostgreSQL refuses a key others can read).
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{SUPERUSER}:"))
                    .arg(postgres.dir.path()),
                "chown the private PostgreSQL's directory to the postgres user",
            );
        }
        postgres.init_cluster();
        postgres.start()
    }

    /// A connection URL for the superuser on the `postgres` database, with
    /// the query `params` (`"sslmode=require"`; empty for none), e.g.
    /// `postgres://postgres@127.0.0.1:54321/postgres?sslmode=require`.
    pub fn url(&self, params: &str) -> String {
        let query = if params.is_empty() {
            String::new()
        } else {
            format!("?{params}")
        };
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/postgres{query}",
            self.port
        )
    }

    /// The test CA's certificate (PEM): the one root that verifies the
    /// server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The port the cluster listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `sql` with `psql` over a fully verified TLS connection
    /// (`sslmode=verify-full` against [`ca_file`](Self::ca_file)) and returns
    /// its unaligned, tuples-only output, trimmed: `"3"` for a count.
    ///
    /// # Panics
    ///
    /// When `psql` fails (the message quotes its error output).
    pub fn query(&self, sql: &str) -> String {
        let url = self.url(&format!(
            "sslmode=verify-full&sslrootcert={}&connect_timeout=5",
            self.ca_file().display()
        ));
        let output = run(
            Command::new(Path::new(POSTGRES_BIN_DIR).join("psql"))
                .arg(url)
                .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]),
            &format!("psql -c {sql:?}"),
        );
        String::from_utf8(output.stdout)
            .expect("psql prints UTF-8")
            .trim()
            .to_owned()
    }

    fn cluster_dir(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn server_certificate_file(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    fn server_key_file(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The file with the settings that change from one start attempt to
    /// the next (the port), included from `postgresql.conf`.
    fn port_conf_file(&self) -> PathBuf {
        self.cluster_dir().join("portcullis-port.conf")
    }

    /// One of the cluster's programs, run as the user that owns the cluster.
    fn program(&self, name: &str) -> Command {
        let path = Path::new(POSTGRES_BIN_DIR).join(name);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", SUPERUSER, "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    /// The CA (its certificate only: its key is not needed once the server
    /// certificate is signed) and the server's certificate and key.
    fn write_certificates(&self) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Portcullis test CA");
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");

        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server certificate parameters");
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().expect("server key");
        let server_certificate = server_params
            .signed_by(&server_key, &ca)
            .expect("server certificate");

        fs::write(self.ca_file(), ca.pem()).expect("write the CA certificate");
        fs::write(self.server_certificate_file(), server_certificate.pem())
            .expect("write the server certificate");
        fs::write(self.server_key_file(), server_key.serialize_pem())
            .expect("write the server key");
        fs::set_permissions(self.server_key_file(), fs::Permissions::from_mode(0o600))
            .expect("make the server key owner-only");
    }

    /// `initdb`, then the configuration: TLS with the test certificate,
    /// `127.0.0.1` only, and no durability (a test cluster is thrown away).
    fn init_cluster(&self) {
        run(
            self.program("initdb")
                .arg("--pgdata")
                .arg(self.cluster_dir())
                .args([
                    "--username",
                    SUPERUSER,
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]),
            "initdb for the private PostgreSQL",
        );
        let conf = format!(
            "\n# Portcullis private test cluster\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = {socket}\n\
             max_connections = 50\n\
             shared_buffers = 16MB\n\
             ssl = on\n\
             ssl_cert_file = {cert}\n\
             ssl_key_file = {key}\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             include = {port_conf}\n",
            socket = quoted(&self.socket_dir()),
            cert = quoted(&self.server_certificate_file()),
            key = quoted(&self.server_key_file()),
            port_conf = quoted(&self.port_conf_file()),
        );
        append(&self.cluster_dir().join("postgresql.conf"), &conf);
        // TLS from 127.0.0.1 is let in; the same without TLS matches the
        // second line and is refused, so a client that falls back to (or
        // asks for) plaintext cannot connect at all. No other line: no
        // Unix-socket or IPv6 connections.
        let hba = "hostssl all all 127.0.0.1/32 trust\n\
                   host    all all 127.0.0.1/32 reject\n";
        self.write_as_owner(&self.cluster_dir().join("pg_hba.conf"), hba);
    }

    /// Starts the cluster on a free port, trying another one when the
    /// picked port was taken before the server bound it.
    fn start(mut self) -> Self {
        for attempt in 1..=START_ATTEMPTS {
            self.port = free_port();
            self.write_as_owner(&self.port_conf_file(), &format!("port = {}\n", self.port));
            let output = self
                .program("pg_ctl")
                .arg("--pgdata")
                .arg(self.cluster_dir())
                .arg("--log")
                .arg(self.log_file())
                .args(["--wait", "--timeout", "30", "start"])
                .output()
                .unwrap_or_else(|error| panic!("cannot run pg_ctl start: {error}"));
            if output.status.success() {
                return self;
            }
            let log = fs::read_to_string(self.log_file()).unwrap_or_default();
            if attempt < START_ATTEMPTS && log.contains("could not bind") {
                continue;
            }
            panic!(
                "the private PostgreSQL did not start (pg_ctl: {}{}); its log:\n{log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            );
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Writes `contents` to `path`, owned by the cluster's user.
    fn write_as_owner(&self, path: &Path, contents: &str) {
        fs::write(path, contents)
            .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        if self.as_postgres_user {
            run(
                Command::new("chown").arg(format!("{SUPERUSER}:")).arg(path),
                &format!("chown {} to the postgres user", path.display()),
            );
        }
    }
}

impl Drop for PrivatePostgres {
    /// Stops the server at once (no checkpoint: the cluster is thrown
    /// away); the directory is removed after it.
    fn drop(&mut self) {
        // No `postmaster.pid`, no server: the set-up failed before (or
        // while) starting it, and that failure is the one to report.
        if !self.cluster_dir().join("postmaster.pid").exists() {
            return;
        }
        let stopped = self
            .program("pg_ctl")
            .arg("--pgdata")
            .arg(self.cluster_dir())
            .args(["--mode", "immediate", "--wait", "stop"])
            .output();
        // A panic in `drop` while a failed test unwinds would abort the
        // whole test binary, and that test's own failure is the one to
        // read; otherwise a server left running fails the test that made it.
        if std::thread::panicking() {
            return;
        }
        let output = stopped.unwrap_or_else(|error| {
            panic!(
                "cannot run pg_ctl stop for the private PostgreSQL on port {}: {error}",
                self.port
            )
        });
        assert!(
            output.status.success(),
            "the private PostgreSQL on port {} did not stop: {}",
            self.port,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Runs `command`, panicking with `what`, its output and its status unless
/// it succeeds.
fn run(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|error| {
        if error.kind() == ErrorKind::NotFound {
            panic!(
                "{what}: {:?} is not installed (the private PostgreSQL needs Debian's \
                 `postgresql-15` and util-linux's `runuser`)",
                command.get_program()
            );
        }
        panic!("{what}: cannot run {:?}: {error}", command.get_program())
    });
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    output
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// `path` as a single-quoted `postgresql.conf` string.
fn quoted(path: &Path) -> String {
    let text = path.to_str().expect("the temporary path is UTF-8");
    assert!(
        !text.contains('\''),
        "the temporary path {text} holds a quote"
    );
    format!("'{text}'")
}

/// Appends `text` to the file at `path`.
fn append(path: &Path, text: &str) {
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .unwrap_or_else(|error| panic!("append to {}: {error}", path.display()));
}
