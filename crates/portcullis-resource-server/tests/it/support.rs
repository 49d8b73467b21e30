//! A key server this suite controls (metadata and a JWKS, with a request
//! counter, a settable `Cache-Control` and an outage switch), key pairs
//! from Portcullis's crypto crate, and token minting.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler};
use portcullis_crypto::{GeneratedKeyPair, JwtAlgorithm, PublicJwk};
use portcullis_resource_server::{RemoteVerifier, ResourceServerConfig};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

pub const AUDIENCE: &str = "notes-api";
pub const NOW: i64 = 1_900_000_000;

/// A key pair and the JWK that publishes its public half.
pub struct TestKey {
    pub pair: GeneratedKeyPair,
}

impl TestKey {
    pub fn generate(algorithm: JwtAlgorithm) -> Self {
        Self {
            pair: algorithm.generate_key_pair().expect("key generation"),
        }
    }

    pub fn kid(&self) -> &str {
        &self.pair.kid
    }

    pub fn jwk(&self) -> Value {
        let public = PublicJwk::from_public_key(self.pair.algorithm, &self.pair.public_key)
            .expect("public JWK");
        let mut jwk = json!({
            "kty": public.kty, "crv": public.crv, "x": public.x,
            "kid": self.pair.kid, "use": "sig", "alg": self.pair.algorithm.name(),
        });
        if let Some(y) = public.y {
            jwk["y"] = json!(y);
        }
        jwk
    }

    pub fn jsonwebtoken_algorithm(&self) -> Algorithm {
        match self.pair.algorithm {
            JwtAlgorithm::EdDsa => Algorithm::EdDSA,
            JwtAlgorithm::Es256 => Algorithm::ES256,
            _ => unreachable!("test keys are asymmetric"),
        }
    }

    pub fn encoding_key(&self) -> EncodingKey {
        let pkcs8 = self.pair.private_key_pkcs8.expose_secret();
        match self.pair.algorithm {
            JwtAlgorithm::EdDsa => EncodingKey::from_ed_der(pkcs8),
            JwtAlgorithm::Es256 => EncodingKey::from_ec_der(pkcs8),
            _ => unreachable!("test keys are asymmetric"),
        }
    }

    /// An `at+jwt` signed by this key under its own kid.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid(), claims)
    }

    /// An `at+jwt` signed by this key under `kid`.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.jsonwebtoken_algorithm());
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(kid.to_owned());
        self.sign_with_header(&header, claims)
    }

    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding_key()).expect("signing")
    }
}

/// Claims as Portcullis writes them, at [`NOW`], for `issuer`.
pub fn claims(issuer: &str) -> Value {
    claims_at(issuer, NOW)
}

/// Claims as Portcullis writes them, issued at `now`, for `issuer`.
pub fn claims_at(issuer: &str, now: i64) -> Value {
    json!({
        "iss": issuer, "aud": AUDIENCE, "sub": "0190a1b2-user", "exp": now + 900,
        "iat": now, "nbf": now, "jti": "jti-1", "sid": "session-1", "scope": "profile notes:read",
    })
}

#[derive(Clone)]
struct ServerState {
    base: String,
    jwks: Arc<Mutex<Value>>,
    cache_control: Arc<Mutex<String>>,
    jwks_requests: Arc<AtomicUsize>,
    other_requests: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    metadata_issuer: Arc<Mutex<Option<String>>>,
}

/// A running key server on 127.0.0.1.
pub struct KeyServer {
    pub base: String,
    state: ServerState,
}

impl KeyServer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind");
        let addr: SocketAddr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .expect("a socket address");
        let base = format!("http://{addr}");
        let state = ServerState {
            base: base.clone(),
            jwks: Arc::new(Mutex::new(json!({"keys": []}))),
            cache_control: Arc::new(Mutex::new("public, max-age=300".to_owned())),
            jwks_requests: Arc::new(AtomicUsize::new(0)),
            other_requests: Arc::new(AtomicUsize::new(0)),
            down: Arc::new(AtomicBool::new(false)),
            metadata_issuer: Arc::new(Mutex::new(None)),
        };
        let server = Self { base, state };
        server.publish(keys);
        let app = Route::new()
            .at("/.well-known/oauth-authorization-server", get(metadata))
            .at("/.well-known/jwks.json", get(jwks))
            .at("/*rest", get(other))
            .data(server.state.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        server
    }

    pub fn publish(&self, keys: &[&TestKey]) {
        let keys: Vec<Value> = keys.iter().map(|key| key.jwk()).collect();
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    pub fn publish_raw(&self, document: Value) {
        *self.state.jwks.lock().unwrap() = document;
    }

    pub fn set_cache_control(&self, value: &str) {
        value.clone_into(&mut self.state.cache_control.lock().unwrap());
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn claim_issuer(&self, issuer: &str) {
        *self.state.metadata_issuer.lock().unwrap() = Some(issuer.to_owned());
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/.well-known/jwks.json", self.base)
    }

    /// GETs of the key set so far.
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// GETs of any other path (a `jku` the verifier must not follow).
    pub fn other_requests(&self) -> usize {
        self.state.other_requests.load(Ordering::SeqCst)
    }

    pub fn config(&self) -> ResourceServerConfig {
        ResourceServerConfig::new(self.base.clone(), AUDIENCE)
    }

    /// A verifier that discovers the key set through this server.
    pub async fn verifier(&self, interval: Duration) -> RemoteVerifier {
        RemoteVerifier::new(self.config().with_min_refetch_interval(interval))
            .await
            .expect("verifier")
    }
}

#[handler]
fn metadata(state: Data<&ServerState>) -> Response {
    let issuer = state
        .metadata_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| state.base.clone());
    poem::web::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/.well-known/jwks.json", state.base),
    }))
    .into_response()
}

#[handler]
fn jwks(state: Data<&ServerState>) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = state.jwks.lock().unwrap().to_string();
    Response::builder()
        .content_type("application/json")
        .header(
            "cache-control",
            state.cache_control.lock().unwrap().as_str(),
        )
        .body(body)
}

#[handler]
fn other(state: Data<&ServerState>) -> Response {
    state.other_requests.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND.into_response()
}
