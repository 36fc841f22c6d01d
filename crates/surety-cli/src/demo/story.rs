//! The eight steps of the story. Each says what happens, shows what Surety answered, and
//! checks that it is what Surety promises; the first check that fails ends the story.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};
use surety_api::admin::{AuditQuery, CreateHuman, RegisterAgent};
use surety_api::approvals::{ApprovalQuery, ApprovalView};
use surety_api::credentials::{CreateGrant, GrantQuery};
use surety_core::agent::AgentStatus;
use surety_core::human::Role;
use surety_core::id::{GrantId, HumanId};
use surety_jose::{KeyAlg, PrivateJwk};
use surety_sdk::{AdminClient, AgentClient, ApprovalAsk, TokenRequest};

use super::World;
use super::mcp::{self, Session};
use super::transcript::Transcript;

const ALICE_EMAIL: &str = "alice@acme.example";
const READ: &str = "crm.read_customer";
const TRANSFER: &str = "payments.transfer";
const GRANT_ROLE: &str = "iam.grant_role";
const SHARE: &str = "files.share_external";
/// JSON-RPC codes the gateway answers (docs/gateway.md).
const DENIED: i64 = -32003;
const WAITING_FOR_APPROVAL: i64 = -32004;

/// The people and agents of the story, as they come to exist.
pub struct Story<'w> {
    w: &'w World,
    alice: Option<(HumanId, AdminClient)>,
    agent: Option<AgentClient>,
    grant: Option<GrantId>,
    /// Who is who, to show names beside ids.
    names: std::collections::HashMap<String, &'static str>,
}

/// The claims of a JWT, read without verifying it (for display: Surety and the gateway
/// verify).
fn claims(jwt: &str) -> anyhow::Result<Value> {
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}

fn alice_string(id: Option<HumanId>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

/// The agents of an `act` claim, the first actor first (RFC 8693 §4.1 nests the earlier
/// actors inside).
fn actors(act: &Value) -> Vec<String> {
    let mut chain = Vec::new();
    let mut at = act;
    while let Some(sub) = at["sub"].as_str() {
        chain.push(sub.to_owned());
        at = &at["act"];
    }
    chain.reverse();
    chain
}

impl<'w> Story<'w> {
    pub fn new(w: &'w World) -> Self {
        Self {
            w,
            alice: None,
            agent: None,
            grant: None,
            names: std::collections::HashMap::new(),
        }
    }

    /// Alice's id, once she exists.
    pub fn alice_id(&self) -> Option<HumanId> {
        self.alice.as_ref().map(|(id, _)| *id)
    }

    /// `id`, or its name when the story knows it.
    fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .map_or_else(|| id.to_owned(), |n| (*n).to_owned())
    }

    /// `id (name)`.
    fn named(&self, id: &Value) -> String {
        let id = id.as_str().unwrap_or("?");
        match self.names.get(id) {
            Some(n) => format!("{id} ({n})"),
            None => id.to_owned(),
        }
    }

    fn alice(&self) -> anyhow::Result<&AdminClient> {
        self.alice
            .as_ref()
            .map(|(_, c)| c)
            .ok_or_else(|| anyhow::anyhow!("Alice was not enrolled"))
    }

    fn agent(&self) -> anyhow::Result<&AgentClient> {
        self.agent
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the agent was not registered"))
    }

    fn grant(&self) -> anyhow::Result<GrantId> {
        self.grant
            .ok_or_else(|| anyhow::anyhow!("no grant was delegated"))
    }

    /// A fresh token of the agent for the tools.
    async fn token(&self) -> anyhow::Result<String> {
        let request = TokenRequest {
            scope: None,
            resource: Some(self.w.resource.clone()),
        };
        Ok(self
            .agent()?
            .exchange_grant(self.grant()?, &request)
            .await?
            .access_token)
    }

    /// Tells the story; stops at the first step that does not behave.
    pub async fn tell(&mut self, t: &mut Transcript) {
        for n in 1..=8 {
            let outcome = match n {
                1 => self.registered(t).await,
                2 => self.delegated(t).await,
                3 => self.reads(t).await,
                4 => self.transfers(t).await,
                5 => self.shares(t).await,
                6 => self.strays(t).await,
                7 => self.delegates(t).await,
                _ => self.audited(t).await,
            };
            if let Err(e) = outcome {
                t.failed(&e);
                return;
            }
        }
    }

    async fn registered(&mut self, t: &mut Transcript) -> anyhow::Result<()> {
        let w = self.w;
        t.step("An agent is registered: it exists, has an owner and a key, and can do nothing");
        let created = w
            .admin
            .create_human(&CreateHuman {
                display_name: "Alice Martin".into(),
                email: ALICE_EMAIL.into(),
                role: Some(Role::Member),
            })
            .await?;
        let alice_key = PrivateJwk::generate(KeyAlg::EdDSA)?;
        surety_sdk::enroll(&w.issuer, &created.enrollment.code, &alice_key).await?;
        let alice_id = created.human.id;
        let alice = AdminClient::new(&w.issuer, alice_id, alice_key)?;
        t.say(format!(
            "An admin adds Alice ({ALICE_EMAIL}); she enrolls a device key made on her own machine (its private half never leaves it)."
        ));
        let agent_key = PrivateJwk::generate(KeyAlg::EdDSA)?;
        let kid = agent_key.thumbprint();
        let view = alice
            .register_agent(&RegisterAgent {
                name: "invoice-bot".into(),
                owner: None,
                public_key: agent_key.public().to_json(),
                purpose: Some("pays supplier invoices".into()),
                environment: Some("production".into()),
                labels: BTreeMap::from([("team".to_owned(), "finance".to_owned())]),
            })
            .await?;
        t.say("Alice registers invoice-bot, with a key pair of its own (Ed25519): no shared secret, no API key.");
        t.show(format!(
            "agent {}  owner {} (Alice)  status {}  key {kid}",
            view.id, view.owner, view.status
        ));
        let shown = alice.get_agent(view.id).await?;
        t.check(
            shown.owner == alice_id && shown.status == AgentStatus::Active,
            "it exists, active, and Alice answers for it",
        )?;
        t.check(
            shown
                .keys
                .iter()
                .flatten()
                .any(|k| k.kid == kid && k.status.as_str() == "active"),
            "its public key is registered (the private half stays with the agent)",
        )?;
        let grants = alice
            .list_grants(&GrantQuery {
                agent: Some(view.id.to_string()),
                ..GrantQuery::default()
            })
            .await?;
        t.check(
            grants.items.is_empty(),
            "it holds no grant: no authority at all",
        )?;
        let agent = AgentClient::new(&w.issuer, view.id, agent_key)?;
        let refused = agent
            .exchange_grant(
                GrantId::new(time::OffsetDateTime::now_utc()),
                &TokenRequest::default(),
            )
            .await;
        let code = refused
            .as_ref()
            .err()
            .and_then(|e| e.code())
            .map(str::to_owned);
        t.show(format!(
            "token exchange, signed with its key, for a grant it was never given → {}",
            code.as_deref().unwrap_or("a token!")
        ));
        t.check(
            code.as_deref() == Some("invalid_grant"),
            "its key proves who it is, but authority comes only from a grant (invalid_grant)",
        )?;
        let r = mcp::reply(
            w.http
                .post(&w.resource)
                .header("Accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
                .send()
                .await?,
        )
        .await?;
        t.show(format!(
            "MCP request without a token → {} ({})",
            r.status,
            r.challenge.as_deref().unwrap_or("no challenge")
        ));
        t.check(
            r.status == 401,
            "and the gateway lets no request through without one",
        )?;
        self.names.insert(alice_id.to_string(), "Alice");
        self.names.insert(view.id.to_string(), "invoice-bot");
        self.alice = Some((alice_id, alice));
        self.agent = Some(agent);
        Ok(())
    }

    async fn delegated(&mut self, t: &mut Transcript) -> anyhow::Result<()> {
        t.step("Its owner delegates bounded authority: three tools, an amount limit, one hour");
        let alice = self.alice()?;
        let agent = self.agent()?.agent_id();
        let grant = alice
            .create_grant(&CreateGrant {
                agent,
                principal: None,
                scopes: vec![READ.into(), TRANSFER.into(), SHARE.into()],
                resources: vec![self.w.resource.clone()],
                constraints: Some(json!({"max_amount": 5000, "currency": "EUR"})),
                max_delegation_depth: Some(1),
                expires_at: None,
                expires_in: Some(3600),
            })
            .await?;
        t.say("Alice grants invoice-bot, on the tools behind the gateway: reading customers, transfers (EUR, at most 5 000), sharing files.");
        t.say("The default policies add: a transfer above 1 000 needs her approval; so does data leaving acme.example.");
        t.show(format!(
            "grant {}  scopes {}  constraints {}  until {}  status {}",
            grant.id,
            grant.scopes.join(" "),
            grant.constraints,
            crate::output::time(grant.expires_at),
            grant.status
        ));
        t.check(
            grant.status.as_str() == "active" && !grant.scopes.iter().any(|s| s == GRANT_ROLE),
            "the grant is active, and names no other tool (not iam.grant_role)",
        )?;
        let lifetime = grant.expires_at - grant.created_at;
        t.check(
            lifetime <= time::Duration::hours(1),
            "it ends within the hour",
        )?;
        self.grant = Some(grant.id);
        Ok(())
    }

    async fn reads(&mut self, t: &mut Transcript) -> anyhow::Result<()> {
        t.step(
            "The agent reads a customer: allowed, on Alice's behalf, with a token bound to its key",
        );
        let (alice, agent) = (self.alice_id(), self.agent()?);
        let token = self.token().await?;
        let c = claims(&token)?;
        t.say("invoice-bot trades the grant for a 5-minute token (RFC 8693 token exchange, signed with its key, DPoP-bound).");
        t.show(format!(
            "sub {}  act.sub {}  aud {}  cnf.jkt {}  scope \"{}\"  lifetime {} s",
            self.named(&c["sub"]),
            self.named(&c["act"]["sub"]),
            c["aud"].as_str().unwrap_or("?"),
            c["cnf"]["jkt"].as_str().unwrap_or("?"),
            c["scope"].as_str().unwrap_or("?"),
            c["exp"].as_i64().unwrap_or(0) - c["iat"].as_i64().unwrap_or(0),
        ));
        t.check(
            alice.is_some_and(|a| c["sub"] == a.to_string())
                && c["act"]["sub"] == agent.agent_id().to_string(),
            "the token names the human (sub = Alice) and the agent acting for her (act = invoice-bot)",
        )?;
        t.check(
            c["cnf"]["jkt"] == agent.key().thumbprint() && c["aud"] == self.w.resource.as_str(),
            "it is bound to the agent's key and good for the tools' gateway only",
        )?;
        let mut mcp = Session::open(agent, &self.w.resource, &token).await?;
        let tools = mcp.tools().await?;
        t.show(format!("tools/list → {}", tools.join(", ")));
        t.check(
            !tools.iter().any(|x| x == GRANT_ROLE) && tools.iter().any(|x| x == READ),
            "the gateway lists only the tools of its grant (no iam.grant_role)",
        )?;
        let r = mcp
            .call(READ, &json!({"customer_id": "c-42"}), None)
            .await?;
        t.show(format!(
            "tools/call crm.read_customer c-42 → {}",
            r.text().unwrap_or("(no result)")
        ));
        t.check(
            r.text().is_some() && self.w.ledger.calls_of(READ).len() == 1,
            "allowed: the call reached the MCP server",
        )?;
        // The same token with a proof signed by another key: a copy is useless.
        let thief = AgentClient::new(
            &self.w.issuer,
            agent.agent_id(),
            PrivateJwk::generate(KeyAlg::EdDSA)?,
        )?;
        let stolen = mcp::reply(
            thief
                .request(reqwest::Method::POST, &self.w.resource, &token)?
                .header("Accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                    "params": {"name": READ, "arguments": {"customer_id": "c-43"}}}))
                .send()
                .await?,
        )
        .await?;
        t.show(format!(
            "the same token from another key → {} {}",
            stolen.status,
            stolen.challenge.as_deref().unwrap_or("")
        ));
        t.check(
            stolen.status == 401 && self.w.ledger.calls_of(READ).len() == 1,
            "a copy of the token without the agent's private key is refused",
        )
    }

    /// The keys Surety publishes (`/jwks`), to check what it signs.
    async fn jwks(&self) -> anyhow::Result<Value> {
        Ok(self
            .w
            .http
            .get(format!("{}/jwks", self.w.issuer))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Alice's waiting request for `action`.
    async fn waiting(&self, action: &str) -> anyhow::Result<ApprovalView> {
        let list = self
            .alice()?
            .list_approvals(&ApprovalQuery::default())
            .await?;
        list.items
            .into_iter()
            .find(|a| a.action == action && a.status == "pending")
            .ok_or_else(|| anyhow::anyhow!("Alice has no request about {action} waiting"))
    }

    async fn transfers(&mut self, t: &mut Transcript) -> anyhow::Result<()> {
        t.step("A transfer above 1 000 steps up: Alice approves it on her device, once");
        let agent = self.agent()?;
        let token = self.token().await?;
        let mut mcp = Session::open(agent, &self.w.resource, &token).await?;
        let over = json!({"amount": 6000, "currency": "EUR", "to": "acct-7"});
        let r = mcp.call(TRANSFER, &over, None).await?;
        t.show(format!(
            "tools/call payments.transfer 6000 EUR → {}",
            r.outcome()
        ));
        t.check(
            r.error_code() == Some(DENIED)
                && self.w.ledger.calls_of(TRANSFER).is_empty()
                && self.waiting(TRANSFER).await.is_err(),
            "above the grant's limit of 5 000 it is refused outright: no approval can lift it",
        )?;
        let transfer = json!({"amount": 2500, "currency": "EUR", "to": "acct-7"});
        let r = mcp.call(TRANSFER, &transfer, None).await?;
        t.show(format!(
            "tools/call payments.transfer 2500 EUR → {}",
            r.outcome()
        ));
        t.check(
            r.error_code() == Some(WAITING_FOR_APPROVAL)
                && self.w.ledger.calls_of(TRANSFER).is_empty(),
            "the call is held back: it needs Alice's approval (-32004), nothing was transferred",
        )?;
        let details = &r.message["error"]["data"]["authorization_details"];
        let binding = "Pay invoice INV-2041: 2500 EUR to acct-7";
        let asked = agent
            .request_approval(&ApprovalAsk {
                login_hint: ALICE_EMAIL,
                authorization_details: details,
                binding_message: Some(binding),
                requested_expiry: None,
                client_notification_token: None,
            })
            .await?;
        t.say("invoice-bot asks Alice over OpenID CIBA for exactly that action (it leaves aside the request the gateway opened for the first call).");
        let jwks = self.jwks().await?;
        let notice = self
            .w
            .phone
            .wait_for(&jwks, surety_api::approvals::WEBHOOK_TYP, |c| {
                c["binding_message"] == binding
            })
            .await;
        t.show(format!(
            "Alice's phone: \"{}\" — answer in Surety",
            notice
                .as_ref()
                .and_then(|c| c["binding_message"].as_str())
                .unwrap_or("(nothing)")
        ));
        t.check(
            notice.is_some(),
            "Alice's phone is told at once (a notice signed by Surety)",
        )?;
        let list = self
            .alice()?
            .list_approvals(&ApprovalQuery::default())
            .await?;
        let request = list
            .items
            .into_iter()
            .find(|a| a.binding_message == binding)
            .ok_or_else(|| anyhow::anyhow!("Alice does not see the agent's request"))?;
        t.show(format!(
            "Alice sees: {} asks to {} {} — \"{binding}\"",
            request.agent_name, request.action, request.arguments,
        ));
        let answered = self
            .alice()?
            .answer_approval(&request, true, Some("invoice INV-2041 is expected".into()))
            .await?;
        t.say("Alice approves, signing that statement with her device key.");
        t.check(answered.status == "approved", "the request is approved")?;
        let approval = agent
            .poll_approval(&asked.auth_req_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the approval token is not there"))?
            .access_token;
        let a = claims(&approval)?;
        let approved = &a["authorization_details"][0];
        t.show(format!(
            "approval token: {} {} for {}, bound to {}, {} s",
            approved["action"].as_str().unwrap_or("?"),
            approved["arguments"],
            a["aud"].as_str().unwrap_or("?"),
            a["cnf"]["jkt"].as_str().unwrap_or("?"),
            a["exp"].as_i64().unwrap_or(0) - a["iat"].as_i64().unwrap_or(0)
        ));
        t.check(
            approved["arguments"] == transfer && a["cnf"]["jkt"] == agent.key().thumbprint(),
            "invoice-bot holds a one-time approval token for exactly that transfer, bound to its key",
        )?;
        let meta = json!({"surety/approval_token": approval});
        let more = json!({"amount": 2600, "currency": "EUR", "to": "acct-7"});
        let r = mcp.call(TRANSFER, &more, Some(meta.clone())).await?;
        t.show(format!("with it, 2600 EUR → {}", r.outcome()));
        t.check(
            r.error_code() == Some(DENIED) && self.w.ledger.calls_of(TRANSFER).is_empty(),
            "it approves nothing else: another amount is denied",
        )?;
        let r = mcp.call(TRANSFER, &transfer, Some(meta.clone())).await?;
        t.show(format!(
            "with it, 2500 EUR → {}",
            r.text().unwrap_or("(refused)")
        ));
        t.check(
            r.text().is_some()
                && self
                    .w
                    .ledger
                    .calls_of(TRANSFER)
                    .iter()
                    .map(|e| &e.arguments)
                    .eq([&transfer]),
            "the approved transfer goes through, exactly as approved",
        )?;
        let r = mcp.call(TRANSFER, &transfer, Some(meta)).await?;
        t.show(format!("the same token again → {}", r.outcome()));
        t.check(
            r.error_code() == Some(DENIED) && self.w.ledger.calls_of(TRANSFER).len() == 1,
            "a replay is refused: one approval, one transfer",
        )
    }

    async fn shares(&mut self, t: &mut Transcript) -> anyhow::Result<()> {
        t.step("Sharing a file outside the company steps up, and Alice says no");
        let agent = self.agent()?;
        let token = self.token().await?;
        let mut mcp = Session::open(agent, &self.w.resource, &token).await?;
        let share =
            json!({"path": "exports/customers-q3.csv", "destination_domain": "partner.example"});
        let r = mcp.call(SHARE, &share, None).await?;
        let auth_req_id = r.message["error"]["data"]["auth_req_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        t.show(format!(
            "tools/call files.share_external customers-q3.csv → partner.example → {}",
            r.outcome()
        ));
        t.check(
            r.error_code() == Some(WAITING_FOR_APPROVAL) && !auth_req_id.is_empty(),
            "held back: the gateway opened an approval request for Alice",
        )?;
        let request = self.waiting(SHARE).await?;
        t.show(format!(
            "Alice sees: {} asks to {} {} (why: {})",
            request.agent_name,
            request.action,
            request.arguments,
            request.reasons.join("; ")
        ));
        let answered = self
            .alice()?
            .answer_approval(&request, false, Some("customer data stays in-house".into()))
            .await?;
        t.say("Alice denies it, signed with her device key.");
        t.check(answered.status == "denied", "the request is denied")?;
        let r = mcp
            .call(
                SHARE,
                &share,
                Some(json!({"surety/auth_req_id": auth_req_id})),
            )
            .await?;
        t.show(format!(
            "the call again, with the request's id → {}",
            r.outcome()
        ));
        t.check(
            r.error_code() == Some(DENIED) && self.w.ledger.calls_of(SHARE).is_empty(),
            "refused: the file never left",
        )
    }

    async fn strays(&mut self, t: &mut Transcript) -> anyhow::Result<()> {
        t.step("It keeps reaching outside its scope: Surety suspends it, and tells Alice");
        let agent = self.agent()?;
        let id = agent.agent_id();
        let token = self.token().await?;
        let mut mcp = Session::open(agent, &self.w.resource, &token).await?;
        let escalate = json!({"user": "invoice-bot", "role": "admin"});
        let mut codes = Vec::new();
        for _ in 0..5 {
            let r = mcp.call(GRANT_ROLE, &escalate, None).await?;
            codes.push(r.error_code().map_or("allowed".into(), |c| c.to_string()));
        }
        t.say("invoice-bot (say, after a prompt injection) tries to make itself an admin, five times.");
        t.show(format!(
            "tools/call iam.grant_role ×5 → {}",
            codes.join(" ")
        ));
        t.check(
            codes.iter().all(|c| c == "-32003") && self.w.ledger.calls_of(GRANT_ROLE).is_empty(),
            "every attempt is denied: the tool is not in its grant",
        )?;
        let alice = self.alice()?;
        let view = alice.get_agent(id).await?;
        t.show(format!(
            "invoice-bot: {} — {}",
            view.status,
            view.status_reason.as_deref().unwrap_or("")
        ));
        t.check(
            view.status == AgentStatus::Suspended,
            "Surety suspended it on its own",
        )?;
        let old = token;
        let r = mcp
            .call(READ, &json!({"customer_id": "c-42"}), None)
            .await?;
        t.check(
            r.error_code() == Some(DENIED) && self.w.ledger.calls_of(READ).len() == 1,
            "from then on even its allowed tools are refused: its tokens died with it",
        )?;
        let events = self
            .w
            .admin
            .list_audit(&AuditQuery {
                agent: Some(id.to_string()),
                kind: Some("agent.suspended".into()),
                ..AuditQuery::default()
            })
            .await?;
        let event = events.items.first();
        t.show(format!(
            "audit: agent.suspended, trigger {}, owner {}",
            event.map_or("?".into(), |e| e.details["trigger"].to_string()),
            event.map_or("?".into(), |e| self.named(&json!(e.human)))
        ));
        let report = alice
            .inventory_report(&surety_api::inventory::InventoryQuery::default())
            .await?;
        let finding = report
            .items
            .iter()
            .find(|l| l.agent == id && l.finding.kind == "suspended");
        t.show(format!(
            "Alice's inventory: {}",
            finding.map_or("(nothing)".into(), |l| l.finding.detail.clone())
        ));
        t.check(
            event.is_some_and(|e| {
                e.human == self.alice_id()
                    && e.details["trigger"] == "out_of_scope"
                    && e.actor.to_string() == "system"
            }) && finding.is_some(),
            "the suspension is on record as Surety's, for reaching outside the scope; Alice, its owner, is named and sees it in her inventory",
        )?;
        let jwks = self.jwks().await?;
        let notice = self
            .w
            .phone
            .wait_for(&jwks, surety_api::approvals::AGENT_NOTICE_TYP, |c| {
                c["agent"] == id.to_string()
            })
            .await;
        t.show(format!(
            "Alice's phone: {} suspended — {}",
            notice
                .as_ref()
                .and_then(|c| c["agent_name"].as_str())
                .unwrap_or("(nothing)"),
            notice
                .as_ref()
                .and_then(|c| c["reason"].as_str())
                .unwrap_or("")
        ));
        t.check(
            notice.is_some_and(|c| {
                c["owner"] == alice_string(self.alice_id()) && c["trigger"] == "out_of_scope"
            }),
            "Alice is told at once, on her phone",
        )?;
        let back = alice
            .agent_action(
                id,
                "reinstate",
                Some("reviewed: a prompt injection in invoice INV-2050".into()),
            )
            .await?;
        t.say("Alice looks into it and reinstates invoice-bot (only its owner may).");
        let reads = self.w.ledger.calls_of(READ).len();
        let refused = match Session::open(agent, &self.w.resource, &old).await {
            Ok(mut session) => {
                session
                    .call(READ, &json!({"customer_id": "c-42"}), None)
                    .await?
                    .error_code()
                    == Some(DENIED)
            }
            // The gateway may refuse the old token before any call.
            Err(_) => true,
        };
        t.check(
            back.status == AgentStatus::Active
                && refused
                && self.w.ledger.calls_of(READ).len() == reads,
            "invoice-bot is active again, and the tokens it held before stay dead",
        )
    }

    async fn delegates(&mut self, t: &mut Transcript) -> anyhow::Result<()> {
        t.step("A sub-agent gets an attenuated token; the chain shows in the audit trail");
        let w = self.w;
        let reader_key = PrivateJwk::generate(KeyAlg::EdDSA)?;
        let reader = self
            .alice()?
            .register_agent(&RegisterAgent {
                name: "invoice-bot-reader".into(),
                owner: None,
                public_key: reader_key.public().to_json(),
                purpose: Some("looks up customers for invoice-bot".into()),
                environment: Some("production".into()),
                labels: BTreeMap::new(),
            })
            .await?;
        t.say("Alice registers invoice-bot-reader, a sub-agent with its own key and no grant of its own.");
        self.names
            .insert(reader.id.to_string(), "invoice-bot-reader");
        let agent = self.agent()?;
        let parent = self.token().await?;
        let token = agent
            .delegate(&parent, reader.id, Some(READ))
            .await?
            .access_token;
        let (p, c) = (claims(&parent)?, claims(&token)?);
        t.say("invoice-bot hands it part of its authority: a token for reading customers only (RFC 8693, requested_actor).");
        t.show(format!(
            "sub {}  act {}  scope \"{}\"  exp {} (its parent's: {})",
            self.named(&c["sub"]),
            c["act"],
            c["scope"].as_str().unwrap_or("?"),
            c["exp"],
            p["exp"]
        ));
        t.check(
            c["sub"] == p["sub"]
                && c["act"]["sub"] == reader.id.to_string()
                && c["act"]["act"]["sub"] == agent.agent_id().to_string(),
            "the token names the whole chain: Alice → invoice-bot → invoice-bot-reader",
        )?;
        t.check(
            c["scope"] == READ
                && matches!((c["exp"].as_i64(), p["exp"].as_i64()), (Some(c), Some(p)) if c <= p)
                && c["cnf"]["jkt"] == reader_key.thumbprint(),
            "it is narrower (one tool), lives no longer than its parent, and is bound to the sub-agent's key",
        )?;
        let sub = AgentClient::new(&w.issuer, reader.id, reader_key)?;
        let mut mcp = Session::open(&sub, &w.resource, &token).await?;
        let tools = mcp.tools().await?;
        let r = mcp.call(READ, &json!({"customer_id": "c-7"}), None).await?;
        t.show(format!(
            "tools/list → {}; crm.read_customer c-7 → {}",
            tools.join(", "),
            r.text().unwrap_or("(refused)")
        ));
        t.check(
            tools == [READ] && w.ledger.calls_of(READ).len() == 2,
            "the sub-agent sees and may use that one tool",
        )?;
        let transfers = w.ledger.calls_of(TRANSFER).len();
        let r = mcp
            .call(
                TRANSFER,
                &json!({"amount": 50, "currency": "EUR", "to": "acct-9"}),
                None,
            )
            .await?;
        t.check(
            r.error_code() == Some(DENIED) && w.ledger.calls_of(TRANSFER).len() == transfers,
            "a transfer, which its parent may make, is denied to it",
        )?;
        let events = w
            .admin
            .list_audit(&AuditQuery {
                agent: Some(reader.id.to_string()),
                ..AuditQuery::default()
            })
            .await?;
        let expected = vec![agent.agent_id().to_string(), reader.id.to_string()];
        let mut on_record = 0;
        for e in events.items.iter().rev() {
            let chain = actors(&e.details["act"]);
            if chain.is_empty() {
                continue;
            }
            let what = match e.kind.as_str() {
                "decision.made" => format!(
                    "{} {}",
                    e.details["decision"].as_str().unwrap_or("?"),
                    e.details["action"].as_str().unwrap_or("?")
                ),
                _ => format!("scope {}", e.details["scope"].as_str().unwrap_or("?")),
            };
            let people: Vec<String> = e
                .human
                .iter()
                .map(ToString::to_string)
                .chain(chain.iter().cloned())
                .map(|id| self.name(&id))
                .collect();
            t.show(format!("audit {}  {what}  {}", e.kind, people.join(" → ")));
            if chain == expected && e.human == self.alice_id() {
                on_record += 1;
            }
        }
        t.check(
            on_record == 3,
            "the token and both decisions are on record with the whole chain, on Alice's behalf",
        )
    }

    async fn audited(&mut self, t: &mut Transcript) -> anyhow::Result<()> {
        t.step("The audit log is exported and verified offline; one tampered byte is caught");
        let w = self.w;
        let export = w.path("audit.jsonl");
        let written = crate::audit_export::write_export(&w.admin, &export, None, None).await?;
        let key = w
            .http
            .get(format!("{}/v1/audit/log-key", w.issuer))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        t.say(format!(
            "An admin exports the whole log ({} events and its signed checkpoints); an auditor takes the log's public key (here from GET /v1/audit/log-key; in earnest, by another channel).",
            written.size
        ));
        t.show(format!("log key {}", key.trim()));
        let verified = crate::audit_export::verify_export(&export, &key)?;
        t.show(format!(
            "verified offline: {} events, {} signed checkpoint(s), root {}",
            verified.events, verified.checkpoints, verified.root
        ));
        t.check(
            verified.events == written.size && written.size > 0,
            "every event is in the Merkle tree its signed checkpoint commits to",
        )?;
        let text = std::fs::read_to_string(&export)?;
        let (line, at) = text
            .lines()
            .enumerate()
            .find_map(|(n, l)| {
                (l.contains("\"decision.made\"") && l.contains("\"allow\"") && l.contains(TRANSFER))
                    .then(|| {
                        l.find("\"amount\":2500")
                            .map(|i| (n, i + "\"amount\":2".len()))
                    })
                    .flatten()
            })
            .ok_or_else(|| {
                anyhow::anyhow!("the export holds no decision about the 2500 EUR transfer")
            })?;
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[line].replace_range(at..=at, "6");
        let tampered = w.path("audit-tampered.jsonl");
        std::fs::write(&tampered, lines.join("\n") + "\n")?;
        t.say(format!(
            "Someone edits one byte of line {}: the approved transfer now reads 2600 EUR.",
            line + 1
        ));
        let caught = crate::audit_export::verify_export(&tampered, &key);
        t.show(format!(
            "verify → {}",
            caught
                .as_ref()
                .map_or_else(|e| format!("{e:#}"), |_| "verified!".into())
        ));
        t.check(
            caught
                .as_ref()
                .is_err_and(|e| format!("{e:#}").contains("signed root")),
            "the edit is caught: the log no longer matches its signed root",
        )
    }
}
