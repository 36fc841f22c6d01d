//! `surety demo`: the whole story in one command. A throw-away Surety (a temporary data
//! directory, embedded SQLite, loopback ports), a small MCP server of company tools, and
//! `surety gateway` in front of it; then an agent, its owner and an admin go through what
//! Surety is for, each step checking that Surety behaved as stated. Nothing is faked: every
//! step is a real request to the real server, gateway and tools.

mod mcp;
mod phone;
mod story;
mod tools;
mod transcript;

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use surety_core::clock::{Clock, SystemClock};
use surety_jose::{KeyAlg, PrivateJwk};
use surety_sdk::{AdminClient, Profile, keyfile};
use surety_server::Config;
use surety_server::serve::Server;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Globals;
use transcript::Transcript;

/// `surety demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the deployment running once the story is told (until Ctrl-C), and print where
    /// to look: the web UI, the admin's profile for the CLI, a passkey sign-in link for Alice.
    #[arg(long)]
    keep: bool,
}

/// The throw-away deployment.
pub struct World {
    /// Its data directory, removed at the end.
    dir: tempfile::TempDir,
    /// Surety's issuer.
    pub issuer: String,
    /// The gateway's resource for the tools: where agents send MCP requests.
    pub resource: String,
    /// The first admin.
    pub admin: AdminClient,
    /// What the tools executed.
    pub ledger: Arc<tools::Ledger>,
    /// What reached the notification webhook (Alice's phone).
    pub phone: Arc<phone::Inbox>,
    pub http: reqwest::Client,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl World {
    /// A file in the data directory.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Stops the server, the gateway and the tools, and removes the data directory.
    async fn close(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        // Dropping `dir` removes it.
    }
}

fn stopped(rx: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = rx.subscribe();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

async fn loopback() -> anyhow::Result<(TcpListener, u16)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    Ok((l, port))
}

/// The proxy variable that would send the demo's loopback calls to a proxy, if any (HTTP
/// clients honour these variables, and do not exempt loopback unless NO_PROXY says so).
fn proxy_in_the_way() -> Option<&'static str> {
    let set = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .into_iter()
    .find(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))?;
    let no_proxy = std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .unwrap_or_default();
    let exempt = |host: &str| {
        no_proxy
            .split(',')
            .any(|e| e.trim() == host || e.trim() == "*")
    };
    (!(exempt("localhost") && exempt("127.0.0.1"))).then_some(set)
}

/// Set once SIGINT, SIGTERM or SIGHUP arrives; listening starts before anything is created,
/// so an interruption at any point still ends in the clean-up.
fn interruptions() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Starts Surety, the tools and the gateway.
async fn start(t: &mut Transcript) -> anyhow::Result<World> {
    if let Some(var) = proxy_in_the_way() {
        anyhow::bail!(
            "{var} names an HTTP proxy, and NO_PROXY does not exempt localhost and 127.0.0.1: the demo's calls between its own servers would go through the proxy. Run it with NO_PROXY=localhost,127.0.0.1"
        );
    }
    let dir = tempfile::Builder::new().prefix("surety-demo-").tempdir()?;
    let (server_listener, server_port) = loopback().await?;
    let (gateway_listener, gateway_port) = loopback().await?;
    let (tools_listener, tools_port) = loopback().await?;
    let (phone_listener, phone_port) = loopback().await?;
    // `localhost` rather than 127.0.0.1: browsers accept passkeys for a domain name only,
    // and `--keep` invites the user to sign in.
    let issuer = format!("http://localhost:{server_port}");
    let overrides: Vec<(&str, String)> = vec![
        ("data_dir", dir.path().display().to_string()),
        ("listen", format!("127.0.0.1:{server_port}")),
        ("issuer", issuer.clone()),
        ("org_domains", "acme.example".into()),
        ("ciba_interval", "1s".into()),
        // Development mode lets the notification webhook be plain http on loopback (it also
        // relaxes the rules for other URLs Surety is given — ping endpoints, stream push
        // endpoints, federation peers — none of which the demo uses).
        ("dev", "true".into()),
        (
            "approval_webhook_url",
            format!("http://127.0.0.1:{phone_port}/notify"),
        ),
    ];
    // The environment is not read: a SURETY_* variable meant for a real deployment must not
    // change the story.
    let config = Config::load(None, |_| None, &overrides)?;
    let store = surety_server::bootstrap::open_store(&config).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let admin_key = PrivateJwk::generate(KeyAlg::EdDSA)?;
    let admin = surety_server::bootstrap::init_org(
        store.as_ref(),
        clock.as_ref(),
        "Admin",
        "admin@acme.example",
        admin_key.public(),
    )
    .await?;
    keyfile::write(&dir.path().join("admin-device-key.jwk"), &admin_key)?;
    Profile {
        server: issuer.clone(),
        human_id: admin.id,
        key_file: "admin-device-key.jwk".into(),
    }
    .save(&dir.path().join("admin-profile.toml"))?;

    let (stop, _) = watch::channel(false);
    let mut tasks = Vec::new();
    let server = Server::from_listener(server_listener, config, store.clone(), clock).await?;
    let done = stopped(&stop);
    tasks.push(tokio::spawn(async move {
        if let Err(e) = server.run(done).await {
            eprintln!("error: the server stopped: {e}");
        }
        store.close().await;
    }));
    let ledger = Arc::new(tools::Ledger::default());
    let app = tools::router(ledger.clone());
    let done = stopped(&stop);
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(tools_listener, app)
            .with_graceful_shutdown(done)
            .await;
    }));
    let phone = Arc::new(phone::Inbox::default());
    let app = phone::router(phone.clone());
    let done = stopped(&stop);
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(phone_listener, app)
            .with_graceful_shutdown(done)
            .await;
    }));
    let admin = AdminClient::new(&issuer, admin.id, admin_key)?;
    t.setup(format!(
        "Surety       {issuer}  (a throw-away deployment: SQLite in {})",
        dir.path().display()
    ));
    t.setup(format!(
        "MCP server   http://127.0.0.1:{tools_port}/mcp  (tools: {})",
        tools::names().join(", ")
    ));
    t.setup(format!(
        "Phone        http://127.0.0.1:{phone_port}/notify  (Surety's notification webhook: what a phone app would relay to Alice)"
    ));

    // The gateway: registered at Surety as the tools' resource server, with its own key.
    let resource = format!("http://localhost:{gateway_port}/tools");
    let gateway_key = PrivateJwk::generate(KeyAlg::EdDSA)?;
    let rs = admin
        .create_resource_server(&surety_api::credentials::CreateResourceServer {
            audience: resource.clone(),
            public_key: gateway_key.public().to_json(),
            name: Some("ACME tools gateway".into()),
        })
        .await?;
    keyfile::write(&dir.path().join("gateway.jwk"), &gateway_key)?;
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{gateway_port}\"\npublic_url = \"http://localhost:{gateway_port}\"\nissuer = \"{issuer}\"\n\n[[upstream]]\nprefix = \"/tools\"\nurl = \"http://127.0.0.1:{tools_port}/mcp\"\nclient_id = \"{}\"\nkey_file = \"gateway.jwk\"\n",
            rs.id
        ),
    )?;
    let gateway = surety_gateway::GatewayConfig::load(&file)?;
    let (app, _reloader) =
        surety_gateway::server::build(gateway, None).map_err(anyhow::Error::msg)?;
    let done = stopped(&stop);
    tasks.push(tokio::spawn(async move {
        if let Err(e) = surety_gateway::serve_router(app, gateway_listener, done).await {
            eprintln!("error: the gateway stopped: {e}");
        }
    }));
    t.setup(format!(
        "Gateway      {resource}  (surety gateway in front of the MCP server; registered as {})",
        rs.id
    ));
    Ok(World {
        dir,
        issuer,
        resource,
        admin,
        ledger,
        phone,
        http: reqwest::Client::new(),
        stop,
        tasks,
    })
}

/// What the demo is, before it starts.
const INTRO: &str = "\
Surety gives each AI agent an identity of its own — a key pair and a human owner — lets that
human delegate bounded authority to it, checks every action it takes at run time, holds
high-impact actions until the human approves them on a device they hold, suspends agents
that misbehave, and keeps a tamper-evident record of all of it.

This demo starts a throw-away Surety, an MCP server with four company tools, and the Surety
gateway in front of it; then Alice, her agent invoice-bot and an auditor go through the story.
Every line marked ✓ is checked against what Surety actually did.
";

/// Where to go once the story is told.
const NEXT: [&str; 3] = [
    "",
    "Next: run Surety for real with `surety serve` and follow the README's walk-through;",
    "docs/ has the integration guide for agent developers and the operator's guides.",
];

/// What `--keep` prints: where to look.
async fn keep_notes(world: &World, story: &story::Story<'_>) -> Vec<String> {
    let mut notes = vec![
        String::new(),
        "The deployment keeps running (Ctrl-C stops it and removes its data):".to_owned(),
        format!("  web UI        {}/ui/", world.issuer),
        format!(
            "  as the admin  export SURETY_PROFILE={}",
            world.path("admin-profile.toml").display()
        ),
        "                surety agent list; surety audit list; surety inventory report".to_owned(),
    ];
    if let Some(alice) = story.alice_id() {
        match world.admin.invite(alice).await {
            Ok(invite) => notes.push(format!(
                "  sign in as Alice with a passkey: open {} (one-time link)",
                invite.url
            )),
            Err(e) => notes.push(format!("  (no passkey invitation for Alice: {e})")),
        }
    }
    notes
}

pub async fn run(g: &Globals, args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut interrupted = interruptions()?;
    let mut t = Transcript::new(g.json);
    t.intro(INTRO);
    let world = tokio::select! {
        w = start(&mut t) => w,
        _ = interrupted.wait_for(|i| *i) => Err(anyhow::anyhow!("interrupted")),
    };
    let world = match world {
        Ok(w) => w,
        Err(e) => {
            t.failed(&e);
            t.finish(started.elapsed().as_secs_f64(), &[]);
            anyhow::bail!("the demo could not start: {e:#}");
        }
    };
    let mut story = story::Story::new(&world);
    tokio::select! {
        () = story.tell(&mut t) => {}
        _ = interrupted.wait_for(|i| *i) => t.failed(&anyhow::anyhow!("interrupted")),
    }
    let mut epilogue: Vec<String> = NEXT.iter().map(|l| (*l).to_owned()).collect();
    let keep = args.keep && !*interrupted.borrow();
    if keep {
        epilogue.extend(keep_notes(&world, &story).await);
    }
    t.finish(started.elapsed().as_secs_f64(), &epilogue);
    if keep {
        let _ = interrupted.wait_for(|i| *i).await;
    }
    drop(story);
    world.close().await;
    anyhow::ensure!(t.ok(), "the demo did not go as stated (see above)");
    Ok(())
}
