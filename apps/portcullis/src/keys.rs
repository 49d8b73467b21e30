//! Secret files in the data directory: the HS256 signing key (when
//! `PORTCULLIS_JWT_SECRET` is not set) and the master key. Each is
//! generated once (mode 0600, `create_new`, so two processes starting at
//! once cannot both write one) and reused on every later start; a copy
//! readable by others is tightened with a warning.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretBox;

/// Loads the key file, creating it on first start.
pub fn load_or_create_signing_key(path: &Path) -> anyhow::Result<SecretBox<Vec<u8>>> {
    if let Some(text) = read_secret_file(path, "signing key")? {
        return parse_signing_key(path, &text);
    }
    let key = portcullis_crypto::generate_signing_key();
    if create_secret_file(path, URL_SAFE_NO_PAD.encode(key).as_bytes())? {
        tracing::info!(path = %path.display(), "generated a new signing key");
        return Ok(SecretBox::new(Box::new(key.to_vec())));
    }
    // Another process created it first: use theirs.
    let text = read_secret_file(path, "signing key")?
        .with_context(|| format!("{} vanished", path.display()))?;
    parse_signing_key(path, &text)
}

fn parse_signing_key(path: &Path, text: &str) -> anyhow::Result<SecretBox<Vec<u8>>> {
    let key = URL_SAFE_NO_PAD
        .decode(text.trim())
        .with_context(|| format!("{} is not a base64url key", path.display()))?;
    if key.len() < crate::config::MIN_JWT_SECRET_BYTES {
        bail!("{} holds a key shorter than 32 bytes", path.display());
    }
    Ok(SecretBox::new(Box::new(key)))
}

/// The text of the secret file at `path`, or `None` when there is none.
/// A file others can read (say, restored from a backup with a loose umask)
/// is tightened to 0600 first, and the operator is told, naming `what`:
/// anyone who read it holds the secret.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<Option<String>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    };
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
            "the {what} was readable by other users; its mode is now 0600. \
             If others could read it, replace it: anyone who did holds it"
        );
    }
    Ok(Some(text))
}

/// Writes `contents` to a new file at `path` (mode 0600, synced). `false`
/// when the file already exists: another process created it first.
pub(crate) fn create_secret_file(path: &Path, contents: &[u8]) -> anyhow::Result<bool> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(contents)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(true)
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

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
