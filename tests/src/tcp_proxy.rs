//! A TCP proxy a test can cut and restore, to watch the application lose
//! its database server (PostgreSQL) and get it back.
//!
//! The application is pointed at [`TcpProxy::local_addr`] instead of the
//! server. [`TcpProxy::cut`] is the nasty kind of outage: the open
//! connections are closed, and new ones are accepted but then never
//! answered, so a client without its own timeouts hangs instead of being
//! refused at once. [`TcpProxy::restore`] ends the outage.
//!
//! ```
//! # async fn example(postgres: std::net::SocketAddr) -> std::io::Result<()> {
//! use portcullis_tests::TcpProxy;
//!
//! let proxy = TcpProxy::start(postgres).await?;
//! // ... start the application on `proxy.local_addr()` ...
//! proxy.cut();
//! // ... requests that need the database now hang or fail ...
//! proxy.restore();
//! // ... and succeed again ...
//! # Ok(())
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy on `127.0.0.1` to one upstream address, which a test can cut
/// off and restore.
///
/// Dropping it stops accepting and closes every connection through it.
/// Must be started, used and dropped within a Tokio runtime.
#[derive(Debug)]
pub struct TcpProxy {
    local_addr: SocketAddr,
    /// Whether the proxy is cut. Every connection task watches it and ends
    /// (closing its sockets) at the first change it sees, and when this
    /// sender is dropped.
    cut: watch::Sender<bool>,
    forwarded: Arc<AtomicUsize>,
    accept_loop: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy to `upstream`, listening on `127.0.0.1` at a port of
    /// the system's choosing ([`local_addr`](Self::local_addr)). Forwards
    /// until [`cut`](Self::cut).
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let local_addr = listener.local_addr()?;
        let (cut, changes) = watch::channel(false);
        let forwarded = Arc::new(AtomicUsize::new(0));
        let accept_loop = tokio::spawn(accept(listener, upstream, changes, forwarded.clone()));
        Ok(TcpProxy {
            local_addr,
            cut,
            forwarded,
            accept_loop,
        })
    }

    /// The address to connect to instead of the upstream one.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Cuts the upstream off: closes every connection open through the
    /// proxy and, until [`restore`](Self::restore), accepts new connections
    /// but holds them silent (never connects upstream, never answers): a
    /// hang, not a refusal. Does nothing when already cut.
    pub fn cut(&self) {
        self.cut
            .send_if_modified(|cut| !std::mem::replace(cut, true));
    }

    /// Ends a cut: new connections are forwarded again. The connections
    /// held silent during the cut are closed, as a connection broken by an
    /// outage would be, so that a client that waited on one without a
    /// timeout sees a failure and may retry. Does nothing when not cut.
    pub fn restore(&self) {
        self.cut
            .send_if_modified(|cut| std::mem::replace(cut, false));
    }

    /// How many connections have been forwarded upstream so far (each
    /// counted once its upstream connection was made).
    pub fn connections_forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops the listener; dropping `cut` (a
        // field, dropped after this) ends every connection task.
        self.accept_loop.abort();
    }
}

/// Accepts connections until aborted, each served by a task of its own.
async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    changes: watch::Receiver<bool>,
    forwarded: Arc<AtomicUsize>,
) {
    let mut changes = changes;
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of file descriptors, say: wait instead of spinning;
                // the test will see its connection fail.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Marking the state seen here, and cloning the receiver after,
        // makes the connection's task see every change from this moment on,
        // even one that lands before the task first runs.
        let cut = *changes.borrow_and_update();
        let connection_changes = changes.clone();
        tokio::spawn(serve(
            client,
            upstream,
            cut,
            connection_changes,
            forwarded.clone(),
        ));
    }
}

/// Serves one accepted connection: forwards it upstream, or, when accepted
/// while `cut`, holds it without a word. Either way it ends at the next
/// change of the cut state (a cut ends forwarded connections, a restore
/// ends held ones) or when the proxy is dropped, closing both sockets.
async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    cut: bool,
    mut changes: watch::Receiver<bool>,
    forwarded: Arc<AtomicUsize>,
) {
    let work = async move {
        let mut client = client;
        if cut {
            std::future::pending::<()>().await;
        }
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            // The upstream is down for real: the client sees its
            // connection closed.
            return;
        };
        forwarded.fetch_add(1, Ordering::SeqCst);
        // Either side closing or failing ends the forwarding; the other
        // socket is closed when this returns.
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    };
    tokio::select! {
        () = work => {}
        // A change, or the proxy dropped (the error): close.
        _ = changes.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::timeout;

    use super::*;

    /// Long enough for anything that should happen on loopback to happen.
    const PATIENCE: Duration = Duration::from_secs(5);
    /// How long a held connection must stay silent.
    const SILENCE: Duration = Duration::from_millis(300);

    /// An echo server on `127.0.0.1` that runs until the test ends.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind echo server");
        let addr = listener.local_addr().expect("echo server address");
        tokio::spawn(async move {
            while let Ok((mut connection, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut reader, mut writer) = connection.split();
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                });
            }
        });
        addr
    }

    async fn connect(proxy: &TcpProxy) -> TcpStream {
        timeout(PATIENCE, TcpStream::connect(proxy.local_addr()))
            .await
            .expect("connect in time")
            .expect("connect to the proxy")
    }

    /// Sends `message` and reads back as many bytes.
    async fn echo(connection: &mut TcpStream, message: &[u8]) -> Vec<u8> {
        connection.write_all(message).await.expect("write");
        let mut answer = vec![0; message.len()];
        timeout(PATIENCE, connection.read_exact(&mut answer))
            .await
            .expect("echo in time")
            .expect("read the echo");
        answer
    }

    /// Whether the peer closed `connection`: a read returns end of file or a
    /// reset within [`PATIENCE`].
    async fn is_closed(connection: &mut TcpStream) -> bool {
        let mut byte = [0; 1];
        match timeout(PATIENCE, connection.read(&mut byte)).await {
            Ok(Ok(0)) => true,
            Ok(Err(error)) => matches!(
                error.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
            ),
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    /// Whether `connection` stays silent for [`SILENCE`] after a request.
    async fn stays_silent(connection: &mut TcpStream) -> bool {
        connection.write_all(b"ping").await.expect("write");
        let mut byte = [0; 1];
        timeout(SILENCE, connection.read(&mut byte)).await.is_err()
    }

    #[tokio::test]
    async fn bytes_are_forwarded_both_ways_and_counted() {
        let proxy = TcpProxy::start(echo_server().await)
            .await
            .expect("start proxy");
        assert_eq!(proxy.connections_forwarded(), 0);

        let mut first = connect(&proxy).await;
        assert_eq!(echo(&mut first, b"hello").await, b"hello");
        let mut second = connect(&proxy).await;
        assert_eq!(echo(&mut second, b"again").await, b"again");
        assert_eq!(echo(&mut first, b"still").await, b"still");

        assert_eq!(proxy.connections_forwarded(), 2);
    }

    #[tokio::test]
    async fn a_cut_closes_open_connections_and_holds_new_ones_silent() {
        let proxy = TcpProxy::start(echo_server().await)
            .await
            .expect("start proxy");
        let mut open = connect(&proxy).await;
        assert_eq!(echo(&mut open, b"before").await, b"before");

        proxy.cut();

        assert!(is_closed(&mut open).await, "the open connection is closed");
        let mut held = connect(&proxy).await;
        assert!(
            stays_silent(&mut held).await,
            "a new connection is accepted but never answered"
        );
        assert_eq!(
            proxy.connections_forwarded(),
            1,
            "nothing was forwarded during the cut"
        );
    }

    #[tokio::test]
    async fn after_a_restore_new_connections_are_forwarded_and_held_ones_closed() {
        let proxy = TcpProxy::start(echo_server().await)
            .await
            .expect("start proxy");
        proxy.cut();
        let mut held = connect(&proxy).await;
        assert!(stays_silent(&mut held).await);

        proxy.restore();

        assert!(
            is_closed(&mut held).await,
            "a connection held during the cut is closed"
        );
        let mut fresh = connect(&proxy).await;
        assert_eq!(echo(&mut fresh, b"after").await, b"after");
        assert_eq!(proxy.connections_forwarded(), 1);
        // Restoring again changes nothing: the live connection stays.
        proxy.restore();
        assert_eq!(echo(&mut fresh, b"still").await, b"still");
    }

    #[tokio::test]
    async fn a_second_cut_or_restore_changes_nothing() {
        let proxy = TcpProxy::start(echo_server().await)
            .await
            .expect("start proxy");
        proxy.cut();
        let mut held = connect(&proxy).await;
        proxy.cut();
        assert!(
            stays_silent(&mut held).await,
            "a held connection stays held, neither closed nor forwarded"
        );
        proxy.restore();
        proxy.restore();
        let mut fresh = connect(&proxy).await;
        assert_eq!(echo(&mut fresh, b"after").await, b"after");
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_connections_and_stops_listening() {
        let proxy = TcpProxy::start(echo_server().await)
            .await
            .expect("start proxy");
        let addr = proxy.local_addr();
        let mut open = connect(&proxy).await;
        assert_eq!(echo(&mut open, b"before").await, b"before");

        drop(proxy);

        assert!(is_closed(&mut open).await, "the open connection is closed");
        // The listener goes when the aborted accept loop is dropped, which
        // the runtime does shortly after.
        let refused = timeout(PATIENCE, async {
            loop {
                match TcpStream::connect(addr).await {
                    Err(error) if error.kind() == ErrorKind::ConnectionRefused => break,
                    _ => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        })
        .await;
        assert!(refused.is_ok(), "the port no longer accepts connections");
    }
}
