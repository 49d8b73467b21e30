//! `rust-resource-server`: serves [`rust_resource_server::app`].
//!
//! Configuration (environment):
//! - `PORTCULLIS_URL`: Portcullis's public URL, which is also its issuer;
//! - `RESOURCE_AUDIENCE` (default `portcullis`): the tokens' `aud`;
//! - `BIND` (default `127.0.0.1:9000`).

use anyhow::Context;
use poem::Server;
use poem::listener::TcpListener;
use portcullis_resource_server::{RemoteVerifier, ResourceServerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let issuer = std::env::var("PORTCULLIS_URL").context("PORTCULLIS_URL is required")?;
    let audience = std::env::var("RESOURCE_AUDIENCE").unwrap_or_else(|_| "portcullis".to_owned());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:9000".to_owned());

    let verifier = RemoteVerifier::new(ResourceServerConfig::new(issuer, audience))
        .await
        .context("cannot find Portcullis's keys")?;
    tracing::info!(jwks_uri = verifier.jwks_uri(), %bind, "serving");
    Server::new(TcpListener::bind(bind))
        .run(rust_resource_server::app(verifier))
        .await?;
    Ok(())
}
