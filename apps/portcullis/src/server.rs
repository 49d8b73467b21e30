//! Serving connections with the limits poem's own `Server` lacks.
//!
//! poem's `Server` never times out a connection (a client sending half a
//! header, half a body or nothing at all keeps its socket, and hyper buffers
//! up to 400 KiB of unfinished header for it), retries `accept()` at once
//! when file descriptors run out (spinning a core while every new client
//! hangs), and serves HTTP/2 with prior knowledge on the plain port with no
//! limit on concurrent streams. This module accepts and serves connections
//! itself, with hyper, and bounds each of those:
//!
//! - a header-read timeout (hyper's own, which also bounds how long an idle
//!   HTTP/1.1 keep-alive connection waits for its next request), and an idle
//!   timeout on every connection: no byte read or written for that long, and
//!   no request being handled, closes it;
//! - the TLS handshake must finish within the header-read timeout;
//! - at most `max_connections` connections at once (a semaphore, so the
//!   process stops accepting instead of running out of file descriptors);
//! - a short back-off after a failed `accept()`;
//! - HTTP/2 only over TLS, chosen by ALPN, with a bounded number of
//!   concurrent streams and a bounded send buffer per stream; the plain port
//!   speaks HTTP/1.1 only.
//!
//! The body-read timeout and the limits on URI and header size are enforced
//! by the HTTP layer (`portcullis_http`), which sees every request.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The most bytes hyper buffers while reading one HTTP/1.1 request head.
/// The HTTP layer answers a head over 16 KiB with its own 431; this is the
/// hard ceiling beyond which hyper refuses the request itself.
pub const MAX_HEADER_BUFFER_BYTES: usize = 64 * 1024;

/// The largest HTTP/2 header list accepted (`SETTINGS_MAX_HEADER_LIST_SIZE`).
pub const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// The most response bytes HTTP/2 buffers per stream for a client that does
/// not read (its flow-control window is closed).
pub const HTTP2_MAX_SEND_BUFFER_BYTES: usize = 64 * 1024;

/// How long the accept loop waits after `accept()` failed (say with EMFILE)
/// before it tries again, instead of spinning on the error.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// How often, at most, a failing `accept()` is logged.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The limits every connection is served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time allowed for a request's whole header (and for a TLS handshake),
    /// counted from when the connection is ready for the request.
    pub header_read_timeout: Duration,
    /// A connection with no byte read or written for this long, and no
    /// request in progress, is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Concurrent streams allowed on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
}

impl ConnectionLimits {
    /// The header-read timeout unless configured otherwise: generous for a
    /// client on a slow link, short for one that sends half a header and
    /// waits.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

    /// The idle timeout unless configured otherwise.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

    /// Concurrent streams per HTTP/2 connection unless configured otherwise.
    pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 32;
}

/// The listening socket and, when serving HTTPS, its TLS configuration.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local_addr", &self.tcp.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Listener {
    /// Binds `address`; with `tls`, serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN).
    pub async fn bind(
        address: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Self> {
        Ok(Self {
            tcp: TcpListener::bind(address).await?,
            tls: tls.map(TlsAcceptor::from),
        })
    }

    /// The bound address (with the port chosen when binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Whether this listener serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// A rustls configuration for HTTPS from PEM files: TLS 1.2 and 1.3 with
/// the aws-lc-rs provider, ALPN `h2` and `http/1.1`.
pub fn tls_config(certificate_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<rustls::ServerConfig> {
    use anyhow::Context;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certificates = CertificateDer::pem_slice_iter(certificate_pem)
        .collect::<Result<Vec<_>, _>>()
        .context("the TLS certificate file is not PEM")?;
    if certificates.is_empty() {
        anyhow::bail!("the TLS certificate file holds no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("the TLS key file holds no key")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .context("the TLS certificate and key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Marks a request whose HTTP/1.1 head carries no `Host` header or more than
/// one (RFC 9112 §3.2); the HTTP layer answers it with 400.
pub use portcullis_http::MalformedHost;

/// Serves `app` on `listener` until `shutdown` completes, then lets
/// connections finish their requests for up to `grace` and closes the rest.
pub async fn serve(
    listener: Listener,
    app: BoxEndpoint<'static>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> io::Result<()> {
    let local_addr = listener.local_addr()?;
    let app: Arc<BoxEndpoint<'static>> = Arc::new(app);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let force_close = CancellationToken::new();
    let mut last_accept_error_log: Option<Instant> = None;
    tokio::pin!(shutdown);

    loop {
        // A free slot first, so that at the limit new clients wait in the
        // kernel's backlog instead of costing a file descriptor each.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.tcp.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                if !is_per_connection_error(&error) {
                    // Out of file descriptors or memory: retrying at once
                    // would spin; waiting lets connections finish and free
                    // what accept needs.
                    let now = Instant::now();
                    if last_accept_error_log.is_none_or(|logged| {
                        now.duration_since(logged) >= ACCEPT_ERROR_LOG_INTERVAL
                    }) {
                        tracing::warn!(%error, "accepting a connection failed; backing off");
                        last_accept_error_log = Some(now);
                    }
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: Arc::clone(&app),
            tls: listener.tls.clone(),
            limits,
            local_addr,
            peer,
        };
        let watcher = graceful.watcher();
        let force_close = force_close.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                () = connection.serve(stream, watcher) => {}
                () = force_close.cancelled() => {}
            }
        });
    }

    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("closing the connections still open after the grace period");
    }
    force_close.cancel();
    Ok(())
}

/// Errors of `accept()` that concern one failed connection, not the
/// process: retrying at once is right for these.
fn is_per_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// One accepted connection.
struct Connection {
    app: Arc<BoxEndpoint<'static>>,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    local_addr: SocketAddr,
    peer: SocketAddr,
}

impl Connection {
    async fn serve(self, stream: TcpStream, watcher: hyper_util::server::graceful::Watcher) {
        let activity = Arc::new(Activity::new());
        let Some(tls) = self.tls.clone() else {
            let io = TrackedIo::new(stream, Arc::clone(&activity));
            let service = connection_service(&self, Scheme::HTTP, &activity);
            let connection =
                watcher.watch(self.http1().serve_connection(TokioIo::new(io), service));
            self.drive(connection, &activity).await;
            return;
        };
        let handshake = tokio::time::timeout(self.limits.header_read_timeout, tls.accept(stream));
        let stream = match handshake.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(peer = %self.peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                return;
            }
        };
        let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TrackedIo::new(stream, Arc::clone(&activity));
        let service = connection_service(&self, Scheme::HTTPS, &activity);
        if http2 {
            let mut builder = http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .max_concurrent_streams(self.limits.http2_max_concurrent_streams)
                .max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES)
                .max_send_buf_size(HTTP2_MAX_SEND_BUFFER_BYTES)
                .max_pending_accept_reset_streams(20)
                .max_local_error_reset_streams(1024);
            let connection = watcher.watch(builder.serve_connection(TokioIo::new(io), service));
            self.drive(connection, &activity).await;
        } else {
            let connection =
                watcher.watch(self.http1().serve_connection(TokioIo::new(io), service));
            self.drive(connection, &activity).await;
        }
    }

    /// HTTP/1.1 with the header-read timeout and the bounded head buffer.
    fn http1(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(MAX_HEADER_BUFFER_BYTES)
            .keep_alive(true);
        builder
    }

    /// Runs a connection until it ends or has been idle for too long.
    async fn drive<F: Future>(&self, connection: F, activity: &Activity) {
        tokio::select! {
            _ = connection => {}
            () = activity.idle_for(self.limits.idle_timeout) => {
                tracing::debug!(peer = %self.peer, "closing an idle connection");
            }
        }
    }
}

/// The body type poem responses are converted into.
type ResponseBody = http_body_util::combinators::BoxBody<bytes::Bytes, io::Error>;

/// The hyper service of one connection: every request goes to the poem
/// application, with the socket's addresses.
fn connection_service(
    connection: &Connection,
    scheme: Scheme,
    activity: &Arc<Activity>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = hyper::Response<ResponseBody>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ use<> {
    let app = Arc::clone(&connection.app);
    let local = LocalAddr(Addr::SocketAddr(connection.local_addr));
    let remote = RemoteAddr(Addr::SocketAddr(connection.peer));
    let activity = Arc::clone(activity);
    hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let app = Arc::clone(&app);
        let local = local.clone();
        let remote = remote.clone();
        let scheme = scheme.clone();
        let activity = Arc::clone(&activity);
        async move {
            let _in_progress = activity.request_started();
            if request.version() == hyper::Version::HTTP_11
                && request.headers().get_all(HOST).iter().count() != 1
            {
                request.extensions_mut().insert(MalformedHost);
            }
            let request = poem::Request::from((request, local, remote, scheme));
            let response = app.get_response(request).await;
            Ok::<_, Infallible>(hyper::Response::<ResponseBody>::from(response))
        }
    })
}

/// What the idle timeout watches: when a byte last moved, and how many
/// requests are being handled.
#[derive(Debug)]
struct Activity {
    started: Instant,
    last_progress_ms: AtomicU64,
    requests_in_progress: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
            requests_in_progress: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_progress_ms.store(elapsed, Ordering::Relaxed);
    }

    fn since_progress(&self) -> Duration {
        let last = Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    fn request_started(&self) -> RequestInProgress<'_> {
        self.requests_in_progress.fetch_add(1, Ordering::AcqRel);
        RequestInProgress(self)
    }

    /// Completes once no byte has moved for `timeout` while no request was
    /// being handled. A request in progress (say waiting for a password
    /// hash) holds the connection open whatever the socket does.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let quiet = self.since_progress();
            if quiet >= timeout && self.requests_in_progress.load(Ordering::Acquire) == 0 {
                return;
            }
            let wait = timeout.saturating_sub(quiet).max(Duration::from_millis(50));
            tokio::time::sleep(wait).await;
        }
    }
}

/// Counts one request as in progress while it lives.
struct RequestInProgress<'a>(&'a Activity);

impl Drop for RequestInProgress<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.requests_in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that records every read or write that moved bytes.
struct TrackedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> TrackedIo<T> {
    fn new(inner: T, activity: Arc<Activity>) -> Self {
        activity.touch();
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raises the soft limit on open files to the hard limit and returns it, so
/// that the connection cap can be set below what the process may really
/// open.
pub fn raise_open_file_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_times_out_but_not_while_a_request_is_in_progress() {
        let activity = Activity::new();
        let timeout = Duration::from_secs(60);
        {
            let _request = activity.request_started();
            let waited =
                tokio::time::timeout(Duration::from_secs(600), activity.idle_for(timeout)).await;
            assert!(waited.is_err(), "a request in progress keeps it open");
        }
        let started = Instant::now();
        activity.idle_for(timeout).await;
        assert!(started.elapsed() >= Duration::from_secs(59));
    }

    #[test]
    fn only_per_connection_accept_errors_are_retried_at_once() {
        assert!(is_per_connection_error(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        // EMFILE: "Too many open files".
        assert!(!is_per_connection_error(&io::Error::from_raw_os_error(24)));
    }
}
