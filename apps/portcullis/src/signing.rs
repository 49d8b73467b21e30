//! The access-token keys the server signs and verifies with, as the
//! settings choose them: EdDSA or ES256 keys kept in the store, sealed by
//! the master key and rotated; or HS256 with the v1 secret (configured, or
//! the generated key file), never rotated.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use portcullis_adapters::{JwtTokens, KeyRingError, SealingKeyGenerator, StoreKeyRing};
use portcullis_crypto::{Hs256Key, JwtSigner, JwtVerifier, MAX_LEEWAY_SECS, MasterKey};
use portcullis_domain::ports::{KeyRing, SigningKeyStore, SystemClock};
use portcullis_domain::{KeyLifecycle, KeyPolicy, SigningAlgorithm};
use secrecy::ExposeSecret;

use crate::ConfigError;
use crate::config::Settings;
use crate::keys;

/// The token ports, the key ring behind them, and (for stored keys) their
/// lifecycle.
pub(crate) struct SigningKeys {
    pub tokens: JwtTokens,
    pub key_ring: Arc<dyn KeyRing>,
    pub lifecycle: Option<KeyLifecycle>,
}

/// The keys for a server reachable at `address`: its issuer is the
/// configured one or its public URL.
pub(crate) async fn signing_keys(
    settings: &Settings,
    store: Arc<dyn SigningKeyStore>,
    address: SocketAddr,
) -> anyhow::Result<SigningKeys> {
    let issuer = settings.issuer_for(address);
    let audience = &settings.audience;
    if settings.jwt_algorithm == SigningAlgorithm::Hs256 {
        let secret = match &settings.jwt_secret {
            Some(secret) => secret.expose_secret().as_bytes().to_vec(),
            None => keys::load_or_create_signing_key(&settings.key_path())?
                .expose_secret()
                .clone(),
        };
        let tokens =
            hs256_tokens(&secret, &issuer, audience).context("cannot build the token signer")?;
        return Ok(SigningKeys {
            key_ring: Arc::new(tokens.clone()),
            tokens,
            lifecycle: None,
        });
    }

    let stored = store
        .signing_keys()
        .await
        .context("cannot read the signing keys")?;
    let master_key = Arc::new(load_or_create_master_key(
        &settings.master_key_file,
        !stored.is_empty(),
    )?);
    let generator = SealingKeyGenerator::new(master_key.clone());
    let clock = Arc::new(SystemClock);
    let lifecycle = KeyLifecycle::new(
        store.clone(),
        Arc::new(generator.clone()),
        clock.clone(),
        key_policy(settings),
    );
    if stored.is_empty() {
        // A v1 deployment's key, so that its tokens verify until they
        // expire: the configured secret, or the generated key file.
        let v1_secret = match &settings.jwt_secret {
            Some(secret) => Some(secret.expose_secret().as_bytes().to_vec()),
            None if settings.key_path().is_file() => Some(
                keys::load_or_create_signing_key(&settings.key_path())?
                    .expose_secret()
                    .clone(),
            ),
            None => None,
        };
        let upgraded = v1_secret
            .map(|secret| generator.hs256_key(&secret))
            .transpose()
            .context("cannot seal the v1 signing key")?;
        if lifecycle
            .install_if_empty(upgraded)
            .await
            .context("cannot install the signing keys")?
        {
            tracing::info!(algorithm = %settings.jwt_algorithm, "installed new signing keys");
        }
    }
    let ring = StoreKeyRing::open(store, master_key, &issuer, audience, clock)
        .await
        .map_err(|error| match error {
            KeyRingError::WrongMasterKey { .. } => anyhow::Error::new(ConfigError::new(
                "master_key_file",
                format!(
                    "{error}. The master key in {} must be the one this database's keys were \
                     sealed with; nothing was changed",
                    settings.master_key_file.display()
                ),
            )),
            other => anyhow::Error::new(other).context("cannot open the signing keys"),
        })?;
    Ok(SigningKeys {
        tokens: ring.tokens(),
        key_ring: Arc::new(ring),
        lifecycle: Some(lifecycle),
    })
}

/// When keys are made, rotated and deleted, from the settings.
pub(crate) fn key_policy(settings: &Settings) -> KeyPolicy {
    KeyPolicy {
        algorithm: settings.jwt_algorithm,
        publish_ahead: settings.key_publish_ahead,
        rotation_period: settings.key_rotation,
        verification_window: settings.access_token_ttl + Duration::from_secs(MAX_LEEWAY_SECS),
    }
}

/// `max-age` of the JWKS: half the publish-ahead time, at most five
/// minutes, so a cached copy always holds the next key before it signs.
pub(crate) fn jwks_max_age(settings: &Settings) -> Duration {
    (settings.key_publish_ahead / 2).min(Duration::from_secs(300))
}

/// How often a server runs key upkeep and reads the keys again, so that it
/// sees another node's rotation well within the publish-ahead time.
pub(crate) fn key_upkeep_interval(settings: &Settings) -> Duration {
    (settings.key_publish_ahead / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Access tokens signed with HS256 and `secret`, under its key id. Tokens
/// signed before key ids existed (no `kid` header) keep verifying with the
/// same secret until they expire, so an upgrade logs nobody out
/// (docs/decisions.md, "Token layer").
fn hs256_tokens(
    secret: &[u8],
    issuer: &str,
    audience: &str,
) -> Result<JwtTokens, portcullis_crypto::CryptoError> {
    let signer = JwtSigner::hs256(secret, issuer, audience)?;
    let verifier = JwtVerifier::for_signer(&signer).with_legacy_hs256_key(&Hs256Key::new(secret)?);
    Ok(JwtTokens::new(signer, verifier))
}

/// Reads the master key file; creates it (see [`keys::create_secret_file`])
/// only when the store holds no sealed key yet. A missing file beside
/// sealed keys is an error: a new master key would open none of them.
pub(crate) fn load_or_create_master_key(
    path: &Path,
    store_has_keys: bool,
) -> anyhow::Result<MasterKey> {
    if let Some(text) = keys::read_secret_file(path, "master key")? {
        return parse_master_key(path, &text);
    }
    if store_has_keys {
        return Err(ConfigError::new(
            "master_key_file",
            format!(
                "master key file {} is missing, but the database holds signing keys sealed \
                 with a master key, or an audit log chained with one; restore that file (or \
                 point PORTCULLIS_MASTER_KEY_FILE at it: every node of a deployment needs the \
                 same one); nothing was changed",
                path.display()
            ),
        )
        .into());
    }
    let key = MasterKey::generate();
    let text = format!("{}\n", key.encode().expose_secret());
    if keys::create_secret_file(path, text.as_bytes())? {
        tracing::info!(path = %path.display(), "generated a new master key");
        return Ok(key);
    }
    // Another process created it first: use theirs.
    let text = keys::read_secret_file(path, "master key")?
        .with_context(|| format!("{} vanished", path.display()))?;
    parse_master_key(path, &text)
}

fn parse_master_key(path: &Path, text: &str) -> anyhow::Result<MasterKey> {
    MasterKey::parse(text).map_err(|error| {
        ConfigError::new("master_key_file", format!("{}: {error}", path.display())).into()
    })
}
