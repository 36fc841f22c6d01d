//! A CLI profile: which server, as which human, with which device key file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use surety_core::id::HumanId;

use crate::ClientError;

/// A profile file (TOML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Base URL of the Surety server (its issuer).
    pub server: String,
    /// The human this profile acts as.
    pub human_id: HumanId,
    /// The device key file (private JWK, mode 0600); relative paths are relative to the
    /// profile file's directory.
    pub key_file: PathBuf,
}

impl Profile {
    /// Reads a profile.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|e| ClientError::file(path, e))?;
        let mut profile: Self = toml::from_str(&text).map_err(|e| ClientError::file(path, e))?;
        if profile.key_file.is_relative() {
            let base = path.parent().unwrap_or(Path::new("."));
            profile.key_file = base.join(&profile.key_file);
        }
        Ok(profile)
    }

    /// Writes the profile (mode 0600; it names a key file, so keep it private too).
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = toml::to_string(self).map_err(|e| ClientError::file(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| ClientError::file(dir, e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| ClientError::file(path, e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| ClientError::file(path, e))
    }
}
