//! Private keys on disk: a private JWK in a file only its owner can read (mode 0600), like
//! an SSH key. Files readable by anyone else are refused.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use surety_jose::PrivateJwk;

use crate::ClientError;

/// Writes `key` to a new file with mode 0600; refuses to overwrite an existing file.
pub fn write(path: &Path, key: &PrivateJwk) -> Result<(), ClientError> {
    let json =
        serde_json::to_string_pretty(&key.to_json()?).map_err(|e| ClientError::file(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::file(dir, e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                ClientError::file(path, "already exists; refusing to overwrite a key")
            }
            _ => ClientError::file(path, e),
        })?;
    file.write_all(json.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| ClientError::file(path, e))
}

/// Reads a private key, refusing a file that group or others can read or write.
pub fn read(path: &Path) -> Result<PrivateJwk, ClientError> {
    let meta = std::fs::metadata(path).map_err(|e| ClientError::file(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ClientError::file(
            path,
            format!(
                "permissions {mode:o} are too open: a private key must be readable by its owner only (chmod 600)"
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| ClientError::file(path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ClientError::file(path, format!("not JSON: {e}")))?;
    PrivateJwk::from_json(&json).map_err(|e| ClientError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use surety_jose::KeyAlg;

    #[test]
    fn keys_are_written_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.jwk");
        let key = PrivateJwk::generate(KeyAlg::ES256).unwrap();
        write(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(&path).unwrap().public(), key.public());
        assert!(write(&path, &key).is_err(), "never overwrites");
    }

    #[test]
    fn readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.jwk");
        write(&path, &PrivateJwk::generate(KeyAlg::EdDSA).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("too open"), "{err}");
    }
}
