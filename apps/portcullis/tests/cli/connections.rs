//! Connection limits of the real binary (issue 18, findings 1 and 2): a low
//! open-file limit caps connections instead of spinning on `accept()`, and
//! clients that stop reading the documents, over HTTP/1.1 or HTTP/2, cannot
//! multiply the server's memory.

use std::net::Shutdown;
use std::sync::Arc as StdArc;

use super::*;

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// CPU time (user + system) process `pid` has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Reads a whole HTTP/1.1 response to `GET path` on a fresh connection.
fn fetch_fully(addr: SocketAddr, path: &str) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut sink = Vec::new();
    stream.read_to_end(&mut sink).expect("read");
    assert!(sink.starts_with(b"HTTP/1.1 200"), "GET {path}");
}

/// A connection that sends `GET path` and then reads nothing, with a tiny
/// receive buffer so the server's writes stall at once.
fn stalled_reader(addr: SocketAddr, path: &str) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("send");
    stream
}

/// The growth the tests allow: a few shared copies of the documents and
/// per-connection buffers, far below one copy of the 1.8 MB page per client.
const ALLOWED_GROWTH_KIB: u64 = 64 * 1024;

#[test]
fn a_low_open_file_limit_caps_connections_instead_of_spinning_and_health_recovers() {
    let sandbox = Sandbox::new();
    // The review's reproduction: a soft limit of 256 and 226 stalled sockets.
    let mut command = sandbox.command_with_open_file_limit(256);
    command.env("PORTCULLIS_HEADER_READ_TIMEOUT_SECS", "2");
    let server = Server::start(command);
    assert!(
        server.log().contains("max_connections=128"),
        "the cap is the open-file limit less the reserve: {}",
        server.log()
    );
    let stalled: Vec<TcpStream> = (0..226)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(server.pid());
    thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(server.pid()) - before;
    // Spinning on EMFILE burns a whole core: about 200 ticks in 2 s.
    assert!(
        used < 60,
        "the server used {used} ticks in 2 s with stalled clients"
    );
    let started = Instant::now();
    let (status, _) = http_get(server.addr, "/health").expect("GET /health");
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "health answered only after {:?}",
        started.elapsed()
    );
    drop(stalled);
    let (exit, _) = server.terminate();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn stalled_http_1_1_readers_of_the_documents_do_not_multiply_their_size() {
    let sandbox = Sandbox::new();
    let server = Server::start(sandbox.command());
    fetch_fully(server.addr, "/docs");
    fetch_fully(server.addr, "/openapi.json");
    let before = resident_kib(server.pid());
    let stalled: Vec<TcpStream> = (0..200)
        .map(|index| {
            stalled_reader(
                server.addr,
                if index % 2 == 0 {
                    "/docs"
                } else {
                    "/openapi.json"
                },
            )
        })
        .collect();
    thread::sleep(Duration::from_secs(2));
    let growth = resident_kib(server.pid()).saturating_sub(before);
    eprintln!("200 stalled HTTP/1.1 readers: the server grew by {growth} KiB");
    assert!(
        growth < ALLOWED_GROWTH_KIB,
        "200 stalled readers grew the server by {growth} KiB"
    );
    for stream in &stalled {
        let _ = stream.shutdown(Shutdown::Both);
    }
    drop(stalled);
    let (status, _) = http_get(server.addr, "/health").expect("GET /health");
    assert_eq!(status, 200);
    let (exit, _) = server.terminate();
    assert!(exit.success(), "{exit:?}");
}

/// A self-signed certificate for 127.0.0.1, written next to the sandbox.
fn write_certificate(
    sandbox: &Sandbox,
) -> (PathBuf, PathBuf, rustls::pki_types::CertificateDer<'static>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let cert_path = sandbox.path("cert.pem");
    let key_path = sandbox.path("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).expect("write cert");
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");
    (cert_path, key_path, certified.cert.der().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_2_is_served_over_tls_only_with_a_stream_limit_and_stalled_streams_stay_small() {
    let sandbox = Sandbox::new();
    let (cert_path, key_path, certificate) = write_certificate(&sandbox);
    let mut command = sandbox.command();
    command
        .env("PORTCULLIS_TLS_CERT", &cert_path)
        .env("PORTCULLIS_TLS_KEY", &key_path);
    let server = tokio::task::spawn_blocking(move || {
        let mut command = command;
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Server::start_prepared(command)
    })
    .await
    .expect("server start");
    let before = resident_kib(server.pid());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate).expect("trust the test certificate");
    let mut config = rustls::ClientConfig::builder_with_provider(StdArc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(StdArc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "ALPN chose h2"
    );

    // A client that never opens its flow-control window: the server can
    // send headers but no body bytes.
    let (mut client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, bytes::Bytes>(tls)
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let mut responses = Vec::new();
    for _ in 0..400 {
        let mut ready = client
            .clone()
            .ready()
            .await
            .expect("the connection is usable");
        let request = http::Request::get(format!("https://{}/docs", server.addr))
            .body(())
            .expect("request");
        let (response, _) = ready.send_request(request, true).expect("open a stream");
        responses.push(response);
        client = ready;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        client.current_max_send_streams(),
        32,
        "the server's SETTINGS_MAX_CONCURRENT_STREAMS"
    );
    // Only the streams the server let open got an answer (headers are not
    // flow-controlled); the rest wait in the client's queue.
    let mut answered = 0;
    for response in &mut responses {
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(5), response).await {
            answered += 1;
        }
    }
    assert_eq!(answered, 32, "streams served at once on one connection");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let growth = resident_kib(server.pid()).saturating_sub(before);
    eprintln!("400 HTTP/2 streams with a closed window: the server grew by {growth} KiB");
    assert!(
        growth < ALLOWED_GROWTH_KIB,
        "stalled HTTP/2 streams grew the server by {growth} KiB"
    );
    drop(responses);
    drop(client);
    let (exit, _) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("terminate");
    assert!(exit.success(), "{exit:?}");
}
