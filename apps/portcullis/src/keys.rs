//! The HS256 signing key: from the settings, or generated once into the data
//! directory (mode 0600) and reused on every later start.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretBox};

/// Loads the key file, creating it on first start. Creation uses
/// `create_new` so two processes starting at once cannot both write a key.
pub fn load_or_create_signing_key(path: &Path) -> anyhow::Result<SecretBox<Vec<u8>>> {
    match read_key(path) {
        Ok(key) => return Ok(key),
        Err(error) if is_not_found(&error) => {}
        Err(error) => return Err(error),
    }
    let key = portcullis_crypto::generate_signing_key();
    let encoded = URL_SAFE_NO_PAD.encode(key);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(encoded.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new signing key");
            Ok(SecretBox::new(Box::new(key.to_vec())))
        }
        // Another process created it first: use theirs.
        Err(error) if error.kind() == ErrorKind::AlreadyExists => read_key(path),
        Err(error) => Err(error).with_context(|| format!("cannot create {}", path.display())),
    }
}

fn read_key(path: &Path) -> anyhow::Result<SecretBox<Vec<u8>>> {
    let text = fs::read_to_string(path)?;
    restrict_to_owner(path)?;
    let key = URL_SAFE_NO_PAD
        .decode(text.trim())
        .with_context(|| format!("{} is not a base64url key", path.display()))?;
    if key.len() < crate::config::MIN_JWT_SECRET_BYTES {
        bail!("{} holds a key shorter than 32 bytes", path.display());
    }
    let secret = SecretBox::new(Box::new(key));
    debug_assert!(!secret.expose_secret().is_empty());
    Ok(secret)
}

/// A key file others can read (say, restored from a backup with a loose
/// umask) is tightened to 0600 before use, and the operator is told: the
/// key signs every token, so anyone who read it may have forged some.
fn restrict_to_owner(path: &Path) -> anyhow::Result<()> {
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "the signing key was readable by other users; its mode is now 0600. \
             If others could read it, replace it: anyone who did can sign tokens"
        );
    }
    Ok(())
}

fn is_not_found(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == ErrorKind::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_readable_by_others_is_tightened_to_0600_and_still_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        let first = load_or_create_signing_key(&path).expect("created");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let again = load_or_create_signing_key(&path).expect("reused");
        assert_eq!(first.expose_secret(), again.expose_secret());
        let mode = fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_key_is_generated_once_with_mode_0600_and_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        let first = load_or_create_signing_key(&path).expect("created");
        let mode = fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_or_create_signing_key(&path).expect("reused");
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert_eq!(first.expose_secret().len(), 32);
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        fs::write(&path, "short").expect("write");
        assert!(load_or_create_signing_key(&path).is_err());
        assert_eq!(fs::read_to_string(&path).expect("read"), "short");
    }
}
