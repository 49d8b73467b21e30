//! Outages: the store reaches its database through a small TCP proxy that
//! the test can cut. While it is cut, every operation fails as
//! unavailable within a few seconds instead of hanging; once it is
//! restored, the same store (the same pool) works again by itself.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_domain::StoreError;
use portcullis_domain::ports::{SessionStore, UserStore};
use portcullis_postgres::testing::TestDatabase;
use portcullis_postgres::{PostgresOptions, PostgresStore};
use portcullis_store_conformance::fixtures::{
    DAY, NO_CAP, audit_record, named, new_session, new_user, t0, test_audit_key,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Passes bytes both ways.
    Forward,
    /// The server went away: open connections are closed, new ones are
    /// accepted and closed at once.
    Refuse,
    /// The network drops everything: open connections stay open but carry
    /// nothing, new ones are accepted and never answered.
    BlackHole,
}

/// A TCP proxy on loopback in front of the test server.
struct Proxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Sockets kept open without traffic while black-holed.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let (mode, watching) = watch::channel(Mode::Forward);
        let held = Arc::new(Mutex::new(Vec::new()));
        let accepting_held = Arc::clone(&held);
        tokio::spawn(async move {
            // Bounded by the test: the runtime ends with it.
            while let Ok((client, _)) = listener.accept().await {
                let current = *watching.borrow();
                match current {
                    Mode::Forward => {
                        tokio::spawn(forward(
                            client,
                            upstream,
                            watching.clone(),
                            Arc::clone(&accepting_held),
                        ));
                    }
                    Mode::Refuse => drop(client),
                    Mode::BlackHole => accepting_held.lock().expect("held").push(client),
                }
            }
        });
        Self {
            address,
            mode,
            held,
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
        if mode == Mode::Forward {
            // The partition is over and the server has long given up on
            // the stalled connections: they close.
            self.held.lock().expect("held").clear();
        }
    }
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    held: Arc<Mutex<Vec<TcpStream>>>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        cut = mode.wait_for(|mode| *mode != Mode::Forward) => {
            if cut.map(|mode| *mode == Mode::BlackHole).unwrap_or(false) {
                let mut held = held.lock().expect("held");
                held.push(client);
                held.push(server);
            }
            // Refuse: both sockets close here.
        }
    }
}

/// A migrated store on a fresh database, reached through a proxy.
async fn store_behind_proxy() -> (PostgresStore, Proxy, TestDatabase) {
    let database = TestDatabase::create().await;
    let config: tokio_postgres::Config = database.url().parse().expect("test url");
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[allow(unreachable_patterns, reason = "unix sockets exist on unix only")]
        _ => panic!("the outage tests need a TCP test server"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve the test server")
        .next()
        .expect("an address");
    let proxy = Proxy::start(upstream).await;
    let user = config.get_user().unwrap_or("postgres");
    let url = format!(
        "postgres://{user}@{}/{}?sslmode=disable",
        proxy.address,
        database.name()
    );
    let options = PostgresOptions {
        max_connections: 4,
        ca_file: None,
    };
    let store = PostgresStore::open(&url, &options)
        .await
        .expect("open through the proxy");
    store.set_audit_key(test_audit_key());
    (store, proxy, database)
}

/// One store operation, its result reduced to success or the error.
type Check<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Runs one of each kind of operation and checks that each fails as
/// unavailable within four seconds.
async fn every_operation_is_unavailable_promptly(store: &PostgresStore) {
    let user = named("bob");
    let new_bob = new_user(&user);
    let session = new_session(&user, t0());
    let audit = audit_record(t0());
    let checks: Vec<(&str, Check<'_>)> = vec![
        ("check_health", Box::pin(store.check_health())),
        ("ensure_writable", Box::pin(store.ensure_writable())),
        (
            "find_credentials",
            Box::pin(async { store.find_credentials(&user.username).await.map(|_| ()) }),
        ),
        ("insert_user", Box::pin(store.insert_user(&new_bob, &audit))),
        (
            "create_session",
            Box::pin(store.create_session(&session, NO_CAP, DAY, &audit)),
        ),
    ];
    for (name, check) in checks {
        let started = Instant::now();
        let outcome = check.await;
        let took = started.elapsed();
        assert!(
            matches!(outcome, Err(StoreError::Unavailable(_))),
            "{name}: {outcome:?}"
        );
        assert!(took < Duration::from_secs(4), "{name} took {took:?}");
    }
}

async fn recovers_by_itself(store: &PostgresStore) {
    let alice = named("alice");
    // The first operations after the restore may still meet a pooled
    // connection that died during the outage; the pool replaces those
    // itself. Within a few seconds every operation works again, on the
    // same store.
    let started = Instant::now();
    loop {
        match store.check_health().await {
            Ok(()) => break,
            Err(error) if started.elapsed() < Duration::from_secs(6) => {
                assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("no recovery after the restore: {error:?}"),
        }
    }
    store
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await
        .expect("insert after the outage");
    let found = store
        .find_credentials(&alice.username)
        .await
        .expect("read after the outage");
    assert_eq!(found.map(|credentials| credentials.user.id), Some(alice.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_server_is_gone_operations_fail_fast_and_the_pool_recovers_after() {
    let (store, proxy, _database) = store_behind_proxy().await;
    store
        .check_health()
        .await
        .expect("healthy before the outage");
    proxy.set(Mode::Refuse);
    every_operation_is_unavailable_promptly(&store).await;
    proxy.set(Mode::Forward);
    recovers_by_itself(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_network_drops_everything_operations_end_at_the_deadline_and_recover_after() {
    let (store, proxy, _database) = store_behind_proxy().await;
    store
        .check_health()
        .await
        .expect("healthy before the outage");
    proxy.set(Mode::BlackHole);
    every_operation_is_unavailable_promptly(&store).await;
    proxy.set(Mode::Forward);
    recovers_by_itself(&store).await;
}
