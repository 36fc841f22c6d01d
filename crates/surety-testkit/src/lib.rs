//! Real Surety servers for tests and benchmarks: each [`TestServer`] binds port 0 on
//! loopback, uses a fresh SQLite file (or a fresh PostgreSQL schema), has a first admin
//! with an in-memory device key, and stops when asked or dropped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: failing loudly is the point"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use surety_api::admin::{AgentView, CreateHuman, HumanView, RegisterAgent};
use surety_api::credentials::{CreateGrant, CreateResourceServer, GrantView, ResourceServerView};
use surety_core::clock::{Clock, SystemClock};
use surety_core::human::{Human, Role};
use surety_core::id::{AgentId, HumanId};
use surety_jose::{KeyAlg, PrivateJwk, rfc7523, rfc9449};
use surety_sdk::AdminClient;
use surety_server::serve::Server;
use surety_server::{AppState, Config};
use surety_store::Store;
use surety_store::testing::PgTestSchema;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use surety_store::testing::TEST_DATABASE_URL_ENV;

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the server's temporary data directory.
    Sqlite,
    /// A fresh schema in the database named by `SURETY_TEST_DATABASE_URL`.
    Postgres,
}

/// How to start a test server.
#[derive(Debug)]
pub struct Options {
    /// The database.
    pub backend: Backend,
    /// The clock (system time by default).
    pub clock: Arc<dyn Clock>,
    /// Extra configuration (key, value), applied like command-line flags.
    pub config: Vec<(&'static str, String)>,
    /// Join the deployment of another test server (a second node on its PostgreSQL
    /// database) instead of creating one.
    pub join: Option<Node>,
    /// Name the server `http://localhost:PORT` rather than by its IP address: browsers
    /// accept only domain names as WebAuthn relying parties.
    pub localhost: bool,
}

/// What a second node needs to join a deployment: its issuer, database and key-encryption
/// key, and its first admin. (Clients address every node by the one issuer URL, as behind
/// a load balancer.)
#[derive(Debug, Clone)]
pub struct Node {
    /// The deployment's issuer.
    pub issuer: String,
    /// The shared database.
    pub database_url: String,
    /// The key-encryption key file of the signing keys.
    pub kek_file: std::path::PathBuf,
    /// The deployment's first admin.
    pub admin: Human,
    /// Their device key.
    pub admin_key: serde_json::Value,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            clock: Arc::new(SystemClock),
            config: Vec::new(),
            join: None,
            localhost: false,
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct TestServer {
    /// Bound address.
    pub addr: SocketAddr,
    /// Base URL (`http://127.0.0.1:PORT`), also the issuer.
    pub base: String,
    /// The server's state: store, clock, configuration.
    pub state: AppState,
    /// The first admin.
    pub admin: Human,
    /// The first admin's device key (as a private JWK).
    admin_key: serde_json::Value,
    /// Data directory.
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    pg: Option<PgTestSchema>,
}

impl TestServer {
    /// A SQLite-backed server with default settings.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// A SQLite-backed server whose time only moves when the test moves it.
    pub async fn with_manual_clock() -> (Self, Arc<surety_core::clock::ManualClock>) {
        let clock = Arc::new(surety_core::clock::ManualClock::new(
            OffsetDateTime::now_utc(),
        ));
        let server = Self::start_with(Options {
            clock: clock.clone(),
            ..Options::default()
        })
        .await;
        (server, clock)
    }

    /// A server started with `options`. Panics if PostgreSQL is asked for but not
    /// configured: a test that needs it must check [`postgres_configured`] first.
    pub async fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = if options.localhost {
            format!("http://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        };
        let pg = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                PgTestSchema::create()
                    .await
                    .expect("SURETY_TEST_DATABASE_URL is not set")
                    .expect("cannot create a PostgreSQL test schema"),
            ),
        };
        let mut overrides: Vec<(&str, String)> = vec![
            ("data_dir", dir.path().display().to_string()),
            ("listen", addr.to_string()),
            ("issuer", base.clone()),
            ("log_format", "text".into()),
        ];
        if let Some(pg) = &pg {
            overrides.push(("database_url", pg.url.clone()));
        }
        if let Some(node) = &options.join {
            overrides.push(("database_url", node.database_url.clone()));
            overrides.push(("signing_kek_file", node.kek_file.display().to_string()));
            overrides.push(("issuer", node.issuer.clone()));
        }
        overrides.extend(options.config.iter().map(|(k, v)| (*k, v.clone())));
        let config = Config::load(None, |_| None, &overrides).unwrap();
        let store = surety_server::bootstrap::open_store(&config).await.unwrap();
        let (admin, key) = match &options.join {
            Some(node) => (
                node.admin.clone(),
                PrivateJwk::from_json(&node.admin_key).unwrap(),
            ),
            None => {
                let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
                let admin = surety_server::bootstrap::init_org(
                    store.as_ref(),
                    options.clock.as_ref(),
                    "Test Admin",
                    "admin@example.com",
                    key.public(),
                )
                .await
                .unwrap();
                (admin, key)
            }
        };
        let server = Server::from_listener(listener, config, store, options.clock)
            .await
            .unwrap();
        let state = server.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            base,
            state,
            admin,
            admin_key: key.to_json().unwrap(),
            dir,
            shutdown: Some(tx),
            task: Some(task),
            pg,
        }
    }

    /// What a second node needs to join this deployment (PostgreSQL only).
    #[must_use]
    pub fn node(&self) -> Node {
        Node {
            issuer: self.base.clone(),
            database_url: self
                .pg
                .as_ref()
                .expect("only PostgreSQL deployments have several nodes")
                .url
                .clone(),
            kek_file: self.state.config.kek_path(),
            admin: self.admin.clone(),
            admin_key: self.admin_key.clone(),
        }
    }

    /// What a second node needs to join this deployment on `database_url` (a PostgreSQL
    /// the test runs itself).
    #[must_use]
    pub fn node_on(&self, database_url: &str) -> Node {
        Node {
            issuer: self.base.clone(),
            database_url: database_url.to_owned(),
            kek_file: self.state.config.kek_path(),
            admin: self.admin.clone(),
            admin_key: self.admin_key.clone(),
        }
    }

    /// The store behind the server.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.state.store
    }

    /// The server's current time.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.state.clock.now()
    }

    /// The public URL of `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A copy of the first admin's device key.
    #[must_use]
    pub fn admin_key(&self) -> PrivateJwk {
        PrivateJwk::from_json(&self.admin_key).unwrap()
    }

    /// An admin API client acting as the first admin.
    #[must_use]
    pub fn admin_client(&self) -> AdminClient {
        AdminClient::new(&self.base, self.admin.id, self.admin_key()).unwrap()
    }

    /// Registers a human with `role`, enrolls a fresh device key for them, and returns the
    /// human, their key and a client acting as them.
    pub async fn enrolled_human(
        &self,
        name: &str,
        email: &str,
        role: Role,
    ) -> (HumanView, PrivateJwk, AdminClient) {
        let created = self
            .admin_client()
            .create_human(&CreateHuman {
                display_name: name.into(),
                email: email.into(),
                role: Some(role),
            })
            .await
            .unwrap();
        let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
        surety_sdk::enroll(&self.base, &created.enrollment.code, &key)
            .await
            .unwrap();
        let client = AdminClient::new(
            &self.base,
            created.human.id,
            PrivateJwk::from_json(&key.to_json().unwrap()).unwrap(),
        )
        .unwrap();
        (created.human, key, client)
    }

    /// A DPoP proof by `key` for `method path`, at the server's current time.
    #[must_use]
    pub fn proof(
        &self,
        key: &PrivateJwk,
        method: &str,
        path: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        rfc9449::create(key, method, &self.url(path), token, nonce, self.now()).unwrap()
    }

    /// A jwt-bearer assertion signed by `key` for human `sub`, at the server's current time.
    #[must_use]
    pub fn assertion(&self, key: &PrivateJwk, sub: &str) -> String {
        rfc7523::create(
            key,
            sub,
            sub,
            &self.url("/oauth2/token"),
            time::Duration::seconds(60),
            self.now(),
        )
        .unwrap()
    }

    /// The audit log's verifier key (`GET /v1/audit/log-key`), trimmed.
    pub async fn log_key(&self) -> String {
        http()
            .get(self.url("/v1/audit/log-key"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .trim()
            .to_owned()
    }

    /// A fresh DPoP nonce, as the token endpoint hands out.
    #[must_use]
    pub fn nonce(&self) -> String {
        self.state.nonces.current(self.now())
    }

    /// Registers an agent owned by the first admin, with a fresh Ed25519 key.
    pub async fn agent(&self, name: &str) -> (AgentView, PrivateJwk) {
        self.agent_owned_by(name, None).await
    }

    /// Registers (as the first admin) an agent owned by `owner` (`None`: the admin), with a
    /// fresh Ed25519 key.
    pub async fn agent_owned_by(
        &self,
        name: &str,
        owner: Option<HumanId>,
    ) -> (AgentView, PrivateJwk) {
        let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
        let agent = self
            .admin_client()
            .register_agent(&RegisterAgent {
                name: name.into(),
                owner,
                public_key: key.public().to_json(),
                purpose: Some("testing".into()),
                environment: None,
                labels: std::collections::BTreeMap::new(),
            })
            .await
            .unwrap();
        (agent, key)
    }

    /// The first admin delegates `scopes` on `resources` to `agent` for one hour, allowing
    /// sub-agents down to `depth`.
    pub async fn grant(
        &self,
        agent: AgentId,
        scopes: &[&str],
        resources: &[&str],
        depth: u32,
    ) -> GrantView {
        self.admin_client()
            .create_grant(&CreateGrant {
                agent,
                principal: None,
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                resources: resources.iter().map(|s| (*s).to_owned()).collect(),
                constraints: Some(serde_json::json!({"max_amount": 100})),
                max_delegation_depth: Some(depth),
                expires_at: None,
                expires_in: Some(3600),
            })
            .await
            .unwrap()
    }

    /// Registers a resource server for `audience` with a fresh key.
    pub async fn resource_server(&self, audience: &str) -> (ResourceServerView, PrivateJwk) {
        let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
        let rs = self
            .admin_client()
            .create_resource_server(&CreateResourceServer {
                audience: audience.into(),
                public_key: key.public().to_json(),
                name: None,
            })
            .await
            .unwrap();
        (rs, key)
    }

    /// A `private_key_jwt` client assertion by `key` for `client_id`, `aud` = the issuer.
    #[must_use]
    pub fn client_assertion(&self, key: &PrivateJwk, client_id: &str) -> String {
        rfc7523::create(
            key,
            client_id,
            client_id,
            &self.base,
            time::Duration::seconds(60),
            self.now(),
        )
        .unwrap()
    }

    /// Stops the server and waits for it to finish; drops the PostgreSQL schema.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.state.store.close().await;
        if let Some(pg) = self.pg.take() {
            pg.drop_schema().await.unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Whether PostgreSQL tests can run.
#[must_use]
pub fn postgres_configured() -> bool {
    std::env::var(TEST_DATABASE_URL_ENV).is_ok()
}

/// A plain HTTP client that follows no redirects.
#[must_use]
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
