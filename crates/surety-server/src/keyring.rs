//! The organisation's signing keys.
//!
//! Keys live in the database so that every node sharing it signs with the same keys; the
//! private halves are sealed (AES-256-GCM) under a key-encryption key (KEK) read from a
//! file on each node (mode 0600, never in the database). The first node to start with an
//! empty database makes the first key. Rotation makes a new key the signer and keeps the
//! old one published in `/jwks` until every token it signed has expired. Each node keeps
//! the keys in memory and re-reads them every `key_refresh_interval`, or at once when it
//! meets a `kid` it does not know.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde_json::{Value, json};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_jose::seal::{KEK_LEN, Kek};
use surety_jose::{KeyAlg, PrivateJwk, PublicJwk, b64};
use surety_store::{SigningKeyRecord, Store, StoreError};
use time::{Duration, OffsetDateTime};
use tokio::sync::RwLock;

/// Why the keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// The KEK file is missing, unreadable, malformed or too widely readable.
    #[error("key-encryption key `{path}`: {reason}")]
    Kek {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A sealed key does not open with this KEK, or is malformed.
    #[error("signing key `{kid}`: {reason}")]
    Sealed {
        /// Which key.
        kid: String,
        /// What is wrong.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key tokens are signed with now.
#[derive(Debug)]
pub struct Signer {
    /// Its id.
    pub kid: String,
    /// The private key.
    pub key: PrivateJwk,
}

#[derive(Debug)]
struct Loaded {
    signer: Arc<Signer>,
    published: Vec<(String, PublicJwk)>,
    loaded_at: OffsetDateTime,
}

/// The signing keys of this node.
#[derive(Debug)]
pub struct KeyRing {
    kek: Kek,
    kek_path: PathBuf,
    refresh: Duration,
    state: RwLock<Loaded>,
}

/// Reads the KEK at `path`, creating it (mode 0600) if it does not exist.
pub fn load_or_create_kek(path: &Path) -> Result<Kek, KeyRingError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |reason: String| KeyRingError::Kek {
        path: path.to_owned(),
        reason,
    };
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::bootstrap::create_private_dir(dir).map_err(|e| err(e.to_string()))?;
        }
        let bytes = Kek::generate().map_err(|e| err(e.to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| err(e.to_string()))?;
        file.write_all(format!("{}\n", b64::encode(&bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| err(e.to_string()))?;
        tracing::info!(path = %path.display(), "created a new key-encryption key for the signing keys");
    }
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(err(format!(
            "is readable by others (mode {:o}); run `chmod 600` on it",
            meta.permissions().mode() & 0o777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let bytes = b64::decode(text.trim())
        .filter(|b| b.len() == KEK_LEN)
        .ok_or_else(|| err(format!("must hold {KEK_LEN} bytes in base64url")))?;
    Kek::from_bytes(&bytes).map_err(|e| err(e.to_string()))
}

/// A new signing key, sealed, as the store keeps it.
fn new_record(
    kek: &Kek,
    alg: KeyAlg,
    now: OffsetDateTime,
) -> Result<SigningKeyRecord, KeyRingError> {
    let sealed_err = |e: surety_jose::JoseError| KeyRingError::Sealed {
        kid: "(new)".into(),
        reason: e.to_string(),
    };
    let key = PrivateJwk::generate(alg).map_err(sealed_err)?;
    let kid = key.thumbprint();
    let private = key.to_json().map_err(sealed_err)?;
    Ok(SigningKeyRecord {
        sealed_private: kek
            .seal(&kid, private.to_string().as_bytes())
            .map_err(sealed_err)?,
        public_jwk: key.public().to_json(),
        alg: key.jws_alg().as_str().into(),
        status: "active".into(),
        created_at: now,
        retired_at: None,
        publish_until: None,
        kid,
    })
}

impl KeyRing {
    /// Loads the keys, making the first one (`alg`) if the database has none.
    pub async fn load(
        store: &dyn Store,
        kek_path: &Path,
        alg: KeyAlg,
        refresh: StdDuration,
        now: OffsetDateTime,
    ) -> Result<Self, KeyRingError> {
        let kek = load_or_create_kek(kek_path)?;
        if store.published_signing_keys(now).await?.is_empty() {
            let record = new_record(&kek, alg, now)?;
            let event = NewEvent::new(
                EventKind::SigningKeyCreated,
                Actor::System,
                &record.kid,
                now,
            )
            .details(json!({"alg": record.alg}));
            store.create_first_signing_key(&record, &[event]).await?;
        }
        let kek_path = kek_path.to_owned();
        let loaded = Self::read(&kek, &kek_path, store, now).await?;
        Ok(Self {
            kek,
            kek_path,
            refresh: Duration::try_from(refresh).unwrap_or(Duration::SECOND * 10),
            state: RwLock::new(loaded),
        })
    }

    async fn read(
        kek: &Kek,
        kek_path: &Path,
        store: &dyn Store,
        now: OffsetDateTime,
    ) -> Result<Loaded, KeyRingError> {
        let records = store.published_signing_keys(now).await?;
        let mut signer = None;
        let mut published = Vec::with_capacity(records.len());
        for r in &records {
            let bad = |reason: String| KeyRingError::Sealed {
                kid: r.kid.clone(),
                reason,
            };
            let public = PublicJwk::from_json(&r.public_jwk).map_err(|e| bad(e.to_string()))?;
            published.push((r.kid.clone(), public));
            // The newest active key signs (records come newest first).
            if signer.is_none() && r.status == "active" {
                let plain = kek.open(&r.kid, &r.sealed_private).map_err(|_| {
                    bad(format!(
                        "the key-encryption key in `{}` does not open it; every node sharing \
                         the database needs the same key-encryption key file",
                        kek_path.display()
                    ))
                })?;
                let jwk: Value = serde_json::from_slice(&plain).map_err(|e| bad(e.to_string()))?;
                let key = PrivateJwk::from_json(&jwk).map_err(|e| bad(e.to_string()))?;
                signer = Some(Arc::new(Signer {
                    kid: r.kid.clone(),
                    key,
                }));
            }
        }
        let signer = signer.ok_or_else(|| KeyRingError::Sealed {
            kid: "-".into(),
            reason: "the database has no active signing key".into(),
        })?;
        Ok(Loaded {
            signer,
            published,
            loaded_at: now,
        })
    }

    async fn reload(&self, store: &dyn Store, now: OffsetDateTime) -> Result<(), KeyRingError> {
        let loaded = Self::read(&self.kek, &self.kek_path, store, now).await?;
        *self.state.write().await = loaded;
        Ok(())
    }

    async fn refresh_if_stale(
        &self,
        store: &dyn Store,
        now: OffsetDateTime,
    ) -> Result<(), KeyRingError> {
        let stale = now - self.state.read().await.loaded_at >= self.refresh;
        if stale {
            self.reload(store, now).await?;
        }
        Ok(())
    }

    /// Makes the next use re-read the keys from the database (another node rotated them, or
    /// this node may have missed the news).
    pub async fn invalidate(&self) {
        self.state.write().await.loaded_at = OffsetDateTime::UNIX_EPOCH;
    }

    /// The key to sign with now.
    pub async fn signer(
        &self,
        store: &dyn Store,
        now: OffsetDateTime,
    ) -> Result<Arc<Signer>, KeyRingError> {
        self.refresh_if_stale(store, now).await?;
        Ok(self.state.read().await.signer.clone())
    }

    /// The published key named `kid`, if any. An unknown `kid` makes the node re-read the
    /// keys at once, so a key made on another node is found on first sight. (The re-read is
    /// one small query; only authenticated callers can present tokens here, and each
    /// presentation already costs the database more than that.)
    pub async fn verification_key(
        &self,
        store: &dyn Store,
        kid: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PublicJwk>, KeyRingError> {
        self.refresh_if_stale(store, now).await?;
        let find = |l: &Loaded| {
            l.published
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, p)| p.clone())
        };
        if let Some(found) = find(&*self.state.read().await) {
            return Ok(Some(found));
        }
        self.reload(store, now).await?;
        Ok(find(&*self.state.read().await))
    }

    /// The JWK Set (RFC 7517 §5) of published keys.
    pub async fn jwks(
        &self,
        store: &dyn Store,
        now: OffsetDateTime,
    ) -> Result<Value, KeyRingError> {
        self.refresh_if_stale(store, now).await?;
        let state = self.state.read().await;
        let keys: Vec<Value> = state
            .published
            .iter()
            .map(|(kid, public)| {
                let mut jwk = public.to_json();
                if let Value::Object(o) = &mut jwk {
                    o.insert("kid".into(), Value::String(kid.clone()));
                    o.insert("use".into(), Value::String("sig".into()));
                    o.insert(
                        "alg".into(),
                        Value::String(public.key_alg().as_str().into()),
                    );
                }
                jwk
            })
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// Makes a new `alg` key the signer; the old one stays published for `keep_published`
    /// (the longest a token it signed can still live). Returns the new kid and the retired.
    pub async fn rotate(
        &self,
        store: &dyn Store,
        alg: KeyAlg,
        actor: Actor,
        keep_published: Duration,
        now: OffsetDateTime,
    ) -> Result<(String, Vec<String>), KeyRingError> {
        let record = new_record(&self.kek, alg, now)?;
        let publish_until = now + keep_published;
        let event =
            NewEvent::new(EventKind::SigningKeyRotated, actor, &record.kid, now).details(json!({
                "alg": record.alg,
                "previous_published_until": publish_until.unix_timestamp(),
            }));
        let retired = store
            .rotate_signing_key(&record, publish_until, &[event])
            .await?;
        self.reload(store, now).await?;
        Ok((record.kid, retired))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_kek_file_is_made_private_and_a_shared_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("signing-kek");
        let first = load_or_create_kek(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The same file gives the same key: what one opens, the other opens.
        let sealed = first.seal("k", b"secret").unwrap();
        assert_eq!(
            load_or_create_kek(&path)
                .unwrap()
                .open("k", &sealed)
                .unwrap(),
            b"secret"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_kek(&path).unwrap_err();
        assert!(err.to_string().contains("readable by others"), "{err}");
        std::fs::write(&path, "not base64url!").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_or_create_kek(&path).is_err());
    }
}
