//! Several nodes of one deployment: `Application`s on one fresh PostgreSQL
//! database, as a load balancer would see them.
//!
//! The database comes from `PORTCULLIS_TEST_DATABASE_URL` (default: the
//! project machines' PostgreSQL 15 on 127.0.0.1:5432); each cluster gets a
//! database of its own, dropped with it. Without a reachable server the
//! test fails, saying how to provide one.

use std::net::SocketAddr;
use std::path::PathBuf;

use portcullis::{Settings, SettingsArgs};
use portcullis_postgres::testing::TestDatabase;
use tempfile::TempDir;

use crate::{TestApp, test_args};

/// The public URL every node of a test cluster shares: tokens name it as
/// their issuer, so a token from one node verifies on every other, as behind
/// a load balancer.
pub const CLUSTER_PUBLIC_URL: &str = "http://portcullis.cluster.test";

/// Nodes on one database, and what they share.
pub struct Cluster {
    /// The nodes, each an `Application` on its own port.
    pub nodes: Vec<TestApp>,
    /// The database they share (dropped last).
    pub database: TestDatabase,
    /// Holds the master key every node reads.
    shared_dir: TempDir,
}

impl Cluster {
    /// `nodes` nodes with the test settings on a fresh database.
    pub async fn start(nodes: usize) -> Self {
        Self::start_with(nodes, |_| {}).await
    }

    /// `nodes` nodes, each with the test settings changed by `change`,
    /// started one after the other (the first one migrates).
    pub async fn start_with(nodes: usize, change: impl Fn(&mut SettingsArgs)) -> Self {
        let database = TestDatabase::create().await;
        let shared_dir = tempfile::tempdir().expect("temporary directory");
        let mut cluster = Self {
            nodes: Vec::with_capacity(nodes),
            database,
            shared_dir,
        };
        for _ in 0..nodes {
            let node = cluster.spawn_node(&change).await;
            cluster.nodes.push(node);
        }
        cluster
    }

    /// Settings for one more node: the test settings on this cluster's
    /// database, its master key and public URL, its own data directory.
    pub fn node_settings(&self, data_dir: PathBuf, change: impl Fn(&mut SettingsArgs)) -> Settings {
        let mut args = test_args(data_dir);
        args.database_url = Some(self.database.url().to_owned());
        args.master_key_file = Some(self.master_key_file());
        args.public_url = Some(CLUSTER_PUBLIC_URL.to_owned());
        change(&mut args);
        Settings::resolve(&args).expect("cluster node settings are valid")
    }

    /// Starts one more node (not added to [`nodes`](Self::nodes)).
    pub async fn spawn_node(&self, change: impl Fn(&mut SettingsArgs)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let settings = self.node_settings(data_dir.path().join("data"), change);
        TestApp::spawn_with(data_dir, settings).await
    }

    /// The master key file all nodes share (created by the first node that
    /// starts with stored keys).
    pub fn master_key_file(&self) -> PathBuf {
        self.shared_dir.path().join("master-key")
    }

    /// Node `index`, round robin over the nodes.
    pub fn node(&self, index: usize) -> &TestApp {
        &self.nodes[index % self.nodes.len()]
    }
}

/// The server address of a `postgres://` URL (a test server's: an IP
/// literal or `localhost`, and a port).
pub fn database_addr(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).expect("a database URL");
    let host = match parsed.host_str().expect("the URL names a host") {
        "localhost" => "127.0.0.1",
        host => host,
    };
    let port = parsed.port().unwrap_or(5432);
    format!("{host}:{port}")
        .parse()
        .expect("an IP address and a port")
}

/// `url` with its server replaced by `address` (a proxy in front of it).
pub fn database_url_via(url: &str, address: SocketAddr) -> String {
    let mut parsed = url::Url::parse(url).expect("a database URL");
    parsed
        .set_host(Some(&address.ip().to_string()))
        .expect("an IP host");
    parsed.set_port(Some(address.port())).expect("a port");
    parsed.to_string()
}
