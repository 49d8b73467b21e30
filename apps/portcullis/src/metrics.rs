//! Prometheus metrics: the process's one recorder, and the small listener
//! of its own (`PORTCULLIS_METRICS_BIND`) that serves its text at
//! `/metrics`, never on the API's port.
//!
//! The crates count through the `metrics` facade
//! (`portcullis_http::metrics`, `portcullis_adapters::metrics`, and the
//! refresh-reuse counter of [`REFRESH_TOKEN_REUSE_TOTAL`](crate::REFRESH_TOKEN_REUSE_TOTAL)); this module
//! installs the recorder they count into, samples the store's pool, and
//! renders the text.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::Route;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::database::Database;

/// Connections of the store's pool in use (gauge).
pub const STORE_CONNECTIONS_IN_USE: &str = "portcullis_store_connections_in_use";
/// The most connections the store's pool may open (gauge).
pub const STORE_CONNECTIONS_MAX: &str = "portcullis_store_connections_max";

/// How often the pool gauges are sampled and the recorder's histograms are
/// trimmed.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// How long a scrape in progress may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Histogram buckets of every `_seconds` metric: from a fast request (1 ms)
/// to the store's deadline and the hashing queue's longest wait.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The recorder, installed at most once per process: tests start many
/// applications in one process, and the `metrics` facade takes one global
/// recorder. Kept with its error, so a second caller learns why too.
static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The handle of the process's Prometheus recorder, installing it on first
/// use. Fails when another recorder was installed first (an embedding
/// service with its own): then `PORTCULLIS_METRICS_BIND` cannot be served.
pub fn prometheus_handle() -> anyhow::Result<PrometheusHandle> {
    RECORDER
        .get_or_init(install_recorder)
        .clone()
        .map_err(anyhow::Error::msg)
}

fn install_recorder() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| format!("cannot install the Prometheus recorder: {error}"))?;
    portcullis_http::metrics::describe();
    portcullis_adapters::metrics::describe();
    crate::observed_store::describe();
    metrics::describe_gauge!(
        STORE_CONNECTIONS_IN_USE,
        metrics::Unit::Count,
        "Connections of the store's pool in use."
    );
    metrics::describe_gauge!(
        STORE_CONNECTIONS_MAX,
        metrics::Unit::Count,
        "The most connections the store's pool may open."
    );
    Ok(handle)
}

/// The metrics listener, bound and ready to serve.
pub(crate) struct MetricsServer {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    handle: PrometheusHandle,
}

impl MetricsServer {
    /// Installs the recorder (once per process) and binds `address`.
    pub(crate) async fn bind(address: SocketAddr) -> anyhow::Result<Self> {
        let handle = prometheus_handle()?;
        let acceptor = TcpListener::bind(address)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen for metrics on {address}"))?;
        let local_addr = acceptor
            .local_addr()
            .into_iter()
            .find_map(|local| local.as_socket_addr().copied())
            .context("the metrics listener has no socket address")?;
        Ok(Self {
            acceptor,
            local_addr,
            handle,
        })
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `/metrics` (and 404 elsewhere) until `shutdown` completes,
    /// sampling `database`'s pool meanwhile.
    pub(crate) async fn serve(
        self,
        database: Database,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let handle = self.handle.clone();
        let sampler = tokio::spawn(sample_periodically(database, self.handle.clone()));
        let app = Route::new().at(
            "/metrics",
            poem::get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("text/plain; version=0.0.4; charset=utf-8")
                    .body(handle.render())
            })),
        );
        let result = poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(SHUTDOWN_GRACE))
            .await;
        sampler.abort();
        result
    }
}

/// Samples the pool gauges and trims the recorder's histograms every
/// [`SAMPLE_INTERVAL`].
async fn sample_periodically(database: Database, handle: PrometheusHandle) {
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (in_use, max) = database.pool_status();
        metrics::gauge!(STORE_CONNECTIONS_IN_USE).set(in_use as f64);
        metrics::gauge!(STORE_CONNECTIONS_MAX).set(max as f64);
        handle.run_upkeep();
    }
}
