//! The TLS connector: rustls on aws-lc-rs, the one crypto provider of the
//! workspace, verifying the server's certificate against the configured
//! roots.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::PostgresError;

/// A connector trusting the certificates of `ca_file` (PEM) when given,
/// else the operating system's roots.
///
/// The provider is passed explicitly instead of relying on rustls' process
/// default, so that nothing depends on which crate installed one first and
/// no second provider can sneak in.
pub(crate) fn connector(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, PostgresError> {
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    };
    let config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| PostgresError::Tls(error.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Every certificate of a PEM file; an empty or unreadable file is an error,
/// so that a typo in the path never silently means "trust nothing".
fn roots_from_file(path: &Path) -> Result<RootCertStore, PostgresError> {
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| PostgresError::Tls(format!("{}: {error}", path.display())))?;
    for certificate in certificates {
        let certificate = certificate
            .map_err(|error| PostgresError::Tls(format!("{}: {error}", path.display())))?;
        roots
            .add(certificate)
            .map_err(|error| PostgresError::Tls(format!("{}: {error}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(PostgresError::Tls(format!(
            "{}: no certificate in the file",
            path.display()
        )));
    }
    Ok(roots)
}

/// The operating system's trusted roots. Certificates it cannot parse are
/// skipped (a system store often holds a few); none at all is an error only
/// once TLS is used, which a server without TLS (`sslmode=prefer` against a
/// plain server) never does, so an empty store is logged, not refused.
fn system_roots() -> Result<RootCertStore, PostgresError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        tracing::warn!(
            errors = loaded.errors.len(),
            "no trusted root certificates found in the system store; \
             a TLS connection to the database will fail unless a CA file is configured"
        );
    }
    Ok(roots)
}
