//! Creating a deployment: the data directory, the database, and the first admin with a
//! device key generated on the admin's own machine (only its public half arrives here).

use std::sync::Arc;

use serde_json::json;
use surety_core::RuleError;
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::clock::Clock;
use surety_core::human::{Human, NewHuman, Role};
use surety_core::id::{HumanId, PrincipalId};
use surety_jose::PublicJwk;
use surety_store::{Store, StoreError, StoreOptions};

use crate::admin::key_record;
use crate::config::Config;

/// Why a deployment could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The deployment already has humans.
    #[error("already initialized: this database already has an admin")]
    AlreadyInitialized,
    /// The admin's details are malformed.
    #[error("{0}")]
    Invalid(#[from] RuleError),
    /// The data directory could not be prepared.
    #[error("data directory `{path}`: {source}")]
    DataDir {
        /// Which.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Creates the data directory (mode 0700) when the database lives there, then opens and
/// migrates the database.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, BootstrapError> {
    if config.is_embedded() {
        create_private_dir(&config.data_dir).map_err(|source| BootstrapError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
    }
    let store = surety_store::open(&StoreOptions {
        url: config.database_url(),
        max_connections: config.db_max_connections,
    })
    .await?;
    Ok(store)
}

/// Creates `dir` (and parents) readable by its owner only.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Registers the first admin with their device key. Refuses a deployment that has humans.
pub async fn init_org(
    store: &dyn Store,
    clock: &dyn Clock,
    display_name: &str,
    email: &str,
    device_key: &PublicJwk,
) -> Result<Human, BootstrapError> {
    if store.is_initialized().await? {
        return Err(BootstrapError::AlreadyInitialized);
    }
    let now = clock.now();
    let admin =
        NewHuman::parse(display_name, email, Role::Admin)?.into_human(HumanId::new(now), now);
    let key = key_record(device_key, PrincipalId::Human(admin.id), now);
    let events = [
        NewEvent::new(EventKind::OrgInitialized, Actor::System, admin.id, now)
            .human(admin.id)
            .details(json!({"admin": admin.id, "email": admin.email})),
        NewEvent::new(EventKind::HumanCreated, Actor::System, admin.id, now)
            .human(admin.id)
            .details(json!({"email": admin.email, "role": admin.role, "display_name": admin.display_name})),
        NewEvent::new(EventKind::HumanKeyEnrolled, Actor::System, &key.kid, now)
            .human(admin.id)
            .details(json!({"alg": key.alg})),
    ];
    match store.bootstrap(&admin, &key, &events).await {
        Ok(()) => Ok(admin),
        Err(StoreError::AlreadyInitialized) => Err(BootstrapError::AlreadyInitialized),
        Err(e) => Err(e.into()),
    }
}
