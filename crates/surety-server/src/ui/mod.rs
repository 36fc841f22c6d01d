//! The approvers' web UI at `/ui/`: server-rendered pages (askama), one small script, no
//! CDN. A human registers a passkey with a one-time link (`surety human invite`), signs in
//! with it, sees the requests waiting for them — agent, chain, principal, the exact action
//! and arguments, why policy asked — and approves or denies each with a *fresh* WebAuthn
//! assertion with user verification.
//!
//! That assertion's challenge is not a bare random value: it is
//! `SHA-256("surety-approval-v1" 0 digest 0 verdict 0 SHA-256(reason) 0 nonce)`, where `digest`
//! is the digest of the request's statement (what the page shows), `reason` what the approver
//! typed, and `nonce` the random challenge webauthn-rs drew. The authenticator signs
//! `clientDataJSON`, which carries that challenge, so the signature binds this human, present
//! and verified, to *this* verdict and reason on *this* statement, as the page asked for them.
//! The evidence kept with the vote is enough to check it again offline.
//!
//! Sessions are random cookies stored as hashes (`HttpOnly`, `SameSite=Strict`, `Secure`
//! over https); state-changing calls are JSON `POST`s that must come from this origin.

use std::convert::Infallible;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use surety_api::approvals::ApprovalView;
use surety_core::access::Caller;
use surety_core::approval::{Approval, ApprovalMethod, ApprovalStatus, Verdict};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::human::HumanStatus;
use surety_core::id::{ApprovalId, HumanId};
use surety_jose::{b64, random_b64, sha256_b64};
use surety_store::{ApprovalFilter, Ceremony, PasskeyRecord};
use tower_http::set_header::SetResponseHeaderLayer;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

mod audit;
mod inventory;

use crate::app::AppState;
use crate::approvals::{self, Evidence};
use crate::error::ApiError;
use crate::extract::{Json, Path};

type Result<T> = std::result::Result<T, ApiError>;

const COOKIE: &str = "surety_session";
/// How long a WebAuthn ceremony may take.
const CEREMONY_TTL: time::Duration = time::Duration::minutes(5);
/// Domain separation of approval challenges.
const CHALLENGE_CONTEXT: &[u8] = b"surety-approval-v1";
const SCRIPT: &str = include_str!("assets/ui.js");
const STYLE: &str = include_str!("assets/ui.css");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
    img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The relying party: this deployment, named by its issuer URL.
#[derive(Debug)]
pub(crate) struct Passkeys(std::result::Result<Webauthn, String>);

impl Passkeys {
    pub(crate) fn new(issuer: &str) -> Self {
        let built = Url::parse(issuer)
            .map_err(|e| e.to_string())
            .and_then(|origin| {
                let host = origin
                    .host_str()
                    .ok_or_else(|| "the issuer has no host".to_owned())?
                    .to_owned();
                if host.parse::<std::net::IpAddr>().is_ok() {
                    return Err(format!(
                        "passkeys need the issuer to be a domain name, not `{host}` (browsers refuse IP addresses as relying party ids; use `localhost` for local use)"
                    ));
                }
                WebauthnBuilder::new(&host, &origin)
                    .and_then(|b| b.rp_name("Surety").build())
                    .map_err(|e| e.to_string())
            });
        Self(built)
    }

    fn get(&self) -> Result<&Webauthn> {
        self.0.as_ref().map_err(|why| {
            ApiError::not_available(format!("passkeys are not available here: {why}"))
        })
    }
}

pub(crate) fn routes() -> Router<AppState> {
    let headers =
        |name, value| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/login", get(login_page))
        .route("/ui/enroll", get(enroll_page))
        .route("/ui/approvals", get(inbox_page))
        .route("/ui/approvals/{id}", get(approval_page))
        .route("/ui/inventory", get(inventory::inventory_page))
        .route("/ui/inventory.csv", get(inventory::inventory_csv))
        .route("/ui/agents/{id}", get(inventory::agent_page))
        .route(
            "/ui/api/agents/{id}/{action}",
            post(inventory::agent_action),
        )
        .route("/ui/audit", get(audit::audit_page))
        .route("/ui/logout", post(logout))
        .route("/ui/assets/ui.js", get(script))
        .route("/ui/assets/ui.css", get(style))
        .route("/ui/api/passkeys/register/start", post(register_start))
        .route("/ui/api/passkeys/register/finish", post(register_finish))
        .route("/ui/api/login/start", post(login_start))
        .route("/ui/api/login/finish", post(login_finish))
        .route("/ui/api/approvals/stream", get(stream))
        .route("/ui/api/approvals/{id}/challenge", post(challenge))
        .route("/ui/api/approvals/{id}/decide", post(decide))
        .layer(headers(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(headers(header::X_FRAME_OPTIONS, "DENY"))
        .layer(headers(header::REFERRER_POLICY, "no-referrer"))
        .layer(headers(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
}

// --- sessions ----------------------------------------------------------------------------

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The signed-in human, if any (and still active).
pub(super) async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>> {
    let Some(token) = cookie(headers) else {
        return Ok(None);
    };
    let now = state.clock.now();
    let Some(id) = state
        .store
        .ui_session(&sha256_b64(token.as_bytes()), now)
        .await?
    else {
        return Ok(None);
    };
    Ok(state
        .store
        .get_human(id)
        .await?
        .filter(|h| h.status == HumanStatus::Active)
        .map(|h| Caller {
            id: h.id,
            role: h.role,
        }))
}

async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Caller> {
    session(state, headers)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("sign in first"))
}

/// State-changing calls must come from a page of this deployment (the `Origin` browsers
/// send with every `fetch` POST), on top of the `SameSite=Strict` cookie.
pub(super) fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<()> {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    let ours = Url::parse(&state.issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if origin == Some(ours.as_str()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this call must come from a Surety page of this deployment",
        ))
    }
}

fn set_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

// --- pages -------------------------------------------------------------------------------

pub(super) fn page(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Result<Redirect> {
    Ok(match session(&state, &headers).await? {
        Some(_) => Redirect::to("/ui/approvals"),
        None => Redirect::to("/ui/login"),
    })
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage;

#[derive(Template)]
#[template(path = "enroll.html")]
struct EnrollPage;

async fn login_page() -> Response {
    page(&LoginPage)
}

async fn enroll_page() -> Response {
    page(&EnrollPage)
}

struct Row {
    id: String,
    binding_message: String,
    agent_name: String,
    action: String,
    expires: String,
    status: String,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    nav: inventory::Nav,
    pending: Vec<Row>,
    recent: Vec<Row>,
}

/// A time for a table cell: to the second, in UTC.
pub(super) fn short(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ))
    .unwrap_or_default()
}

pub(super) fn when(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn inbox_page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let Some(me) = session(&state, &headers).await? else {
        return Ok(Redirect::to("/ui/login").into_response());
    };
    let now = state.clock.now();
    let page_request = surety_core::page::PageRequest {
        limit: 200,
        after: None,
    };
    // What waits (pending and unexpired, however old), then the latest of the rest.
    let waiting = ApprovalFilter {
        approver: Some(me.id),
        client: None,
        status: Some(ApprovalStatus::Pending),
        unexpired_at: Some(now),
    };
    let everything = ApprovalFilter {
        status: None,
        unexpired_at: None,
        ..waiting.clone()
    };
    let waiting = state.store.list_approvals(&waiting, &page_request).await?;
    let recent_request = surety_core::page::PageRequest {
        limit: 40,
        after: None,
    };
    let latest = state
        .store
        .list_approvals(&everything, &recent_request)
        .await?;
    let (mut pending, mut recent) = (Vec::new(), Vec::new());
    let row = |a: &Approval, agent_name: String| Row {
        id: a.id.to_string(),
        binding_message: a.binding_message.clone(),
        agent_name,
        action: a.details.action.clone(),
        expires: when(a.expires_at),
        status: a.status_at(now).as_str().to_owned(),
    };
    for a in &waiting.items {
        pending.push(row(a, approvals::agent_name(&state, a.client).await?));
    }
    for a in latest
        .items
        .iter()
        .filter(|a| a.status_at(now) != ApprovalStatus::Pending)
        .take(20)
    {
        recent.push(row(a, approvals::agent_name(&state, a.client).await?));
    }
    Ok(page(&InboxPage {
        nav: inventory::Nav::of(&state, &me).await?,
        pending,
        recent,
    }))
}

#[derive(Template)]
#[template(path = "approval.html")]
struct ApprovalPage {
    a: ApprovalView,
    expires: String,
    resource: String,
    arguments: String,
    can_answer: bool,
}

/// A request the caller may read: its approvers, its principal, admins.
async fn readable(state: &AppState, me: &Caller, id: &str) -> Result<Approval> {
    let id: ApprovalId = id
        .parse()
        .map_err(|e: surety_core::id::InvalidId| ApiError::invalid_request(e.to_string()))?;
    let a = approvals::load(state, id).await?;
    if me.is_admin() || a.principal == me.id || a.approvers.contains(&me.id) {
        Ok(a)
    } else {
        Err(ApiError::not_found(format!("approval `{id}` not found")))
    }
}

async fn approval_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let Some(me) = session(&state, &headers).await? else {
        return Ok(Redirect::to("/ui/login").into_response());
    };
    let a = readable(&state, &me, &id).await?;
    let view = approvals::view(&state, &a).await?;
    let votes = state.store.approval_votes(a.id).await?;
    let can_answer = a.may_vote(me.id, &votes, state.clock.now()).is_ok();
    let resource = format!("{}:{}", a.details.resource_type, a.details.resource_id);
    let arguments = serde_json::to_string_pretty(&view.arguments).unwrap_or_default();
    Ok(page(&ApprovalPage {
        expires: when(view.expires_at),
        a: view,
        resource,
        arguments,
        can_answer,
    }))
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    same_origin(&state, &headers)?;
    if let Some(token) = cookie(&headers) {
        state
            .store
            .end_ui_session(&sha256_b64(token.as_bytes()))
            .await?;
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, "", 0));
    Ok(r)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

// --- ceremonies --------------------------------------------------------------------------

async fn put_ceremony(
    state: &AppState,
    human: HumanId,
    purpose: String,
    data: Value,
) -> Result<String> {
    let id = random_b64(24).map_err(ApiError::internal)?;
    state
        .store
        .put_ceremony(&Ceremony {
            id: id.clone(),
            human: Some(human),
            purpose,
            state: data,
            expires_at: state.clock.now() + CEREMONY_TTL,
        })
        .await?;
    Ok(id)
}

async fn take_ceremony(state: &AppState, id: &str, purpose: &str) -> Result<Ceremony> {
    state
        .store
        .take_ceremony(id, state.clock.now())
        .await?
        .filter(|c| c.purpose == purpose)
        .ok_or_else(|| {
            ApiError::invalid_request("this ceremony is unknown, used or expired; start again")
        })
}

fn to_json(v: &impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

fn from_json<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(ApiError::internal)
}

fn refused(e: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_request(format!("the passkey was not accepted: {e}"))
}

async fn passkeys_of(state: &AppState, human: HumanId) -> Result<Vec<(PasskeyRecord, Passkey)>> {
    let records = state.store.list_passkeys(human).await?;
    records
        .into_iter()
        .map(|r| {
            let p: Passkey = from_json(&r.passkey)?;
            Ok((r, p))
        })
        .collect()
}

#[derive(Deserialize)]
struct CodeBody {
    code: String,
}

#[derive(Deserialize)]
struct RegisterFinish {
    ceremony: String,
    credential: RegisterPublicKeyCredential,
}

async fn register_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CodeBody>,
) -> Result<axum::Json<Value>> {
    same_origin(&state, &headers)?;
    let webauthn = state.passkeys.get()?;
    let code_hash = sha256_b64(body.code.as_bytes());
    let human_id = state
        .store
        .invited_human(&code_hash, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::invalid_request("this link is unknown, used or expired"))?;
    let human = state
        .store
        .get_human(human_id)
        .await?
        .ok_or_else(|| ApiError::internal("an invited human is missing"))?;
    let existing: Vec<_> = passkeys_of(&state, human_id)
        .await?
        .into_iter()
        .map(|(_, p)| p.cred_id().clone())
        .collect();
    let (options, registration) = webauthn
        .start_passkey_registration(
            Uuid::from_bytes(*human_id.uuid().as_bytes()),
            &human.email,
            &human.display_name,
            Some(existing),
        )
        .map_err(ApiError::internal)?;
    let data = json!({"registration": to_json(&registration)?, "code_hash": code_hash});
    let ceremony = put_ceremony(&state, human_id, "register".into(), data).await?;
    Ok(axum::Json(
        json!({"ceremony": ceremony, "options": to_json(&options)?}),
    ))
}

async fn register_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<RegisterFinish>,
) -> Result<axum::Json<Value>> {
    same_origin(&state, &headers)?;
    let webauthn = state.passkeys.get()?;
    let c = take_ceremony(&state, &body.ceremony, "register").await?;
    let human = c
        .human
        .ok_or_else(|| ApiError::internal("a ceremony without a human"))?;
    let registration: PasskeyRegistration = from_json(&c.state["registration"])?;
    let passkey = webauthn
        .finish_passkey_registration(&body.credential, &registration)
        .map_err(refused)?;
    let now = state.clock.now();
    let cred_id = b64::encode(passkey.cred_id().as_ref());
    let event = NewEvent::new(
        EventKind::HumanPasskeyRegistered,
        Actor::Human(human),
        human,
        now,
    )
    .human(human)
    // The public key goes into the log: passkey answers can then be checked from the log
    // alone, against a key recorded when it was registered.
    .details(json!({"credential_id": cred_id, "public_key": to_json(passkey.get_public_key())?}));
    let code_hash = c.state["code_hash"].as_str().unwrap_or_default();
    let record = PasskeyRecord {
        cred_id,
        human,
        passkey: to_json(&passkey)?,
        created_at: now,
        last_used_at: None,
    };
    state
        .store
        .register_passkey(code_hash, &record, &[event])
        .await?;
    Ok(axum::Json(json!({"ok": true})))
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
}

#[derive(Deserialize)]
struct AssertionBody {
    ceremony: String,
    credential: PublicKeyCredential,
}

/// Turns webauthn-rs' random challenge (the nonce) into the challenge to sign.
type Commit<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;

/// Starts an assertion by `human`'s passkeys; `commit`, if given, replaces the random
/// challenge by one bound to it (see the module docs). Returns the options for the browser
/// and the state to keep.
fn start_assertion(
    webauthn: &Webauthn,
    passkeys: &[Passkey],
    commit: Option<Commit<'_>>,
) -> Result<(Value, Value, Option<String>)> {
    if passkeys.is_empty() {
        return Err(ApiError::invalid_request(
            "no passkey is registered for this account: ask for an invite link",
        ));
    }
    let (options, auth) = webauthn
        .start_passkey_authentication(passkeys)
        .map_err(ApiError::internal)?;
    let mut options = to_json(&options)?;
    let mut auth = to_json(&auth)?;
    let Some(commit) = commit else {
        return Ok((options, auth, None));
    };
    let nonce = auth["ast"]["challenge"]
        .as_str()
        .and_then(b64::decode)
        .ok_or_else(|| ApiError::internal("unexpected WebAuthn state"))?;
    let challenge = b64::encode(&commit(&nonce));
    auth["ast"]["challenge"] = json!(challenge);
    options["publicKey"]["challenge"] = json!(challenge);
    Ok((options, auth, Some(b64::encode(&nonce))))
}

/// Finishes an assertion: signature, origin, challenge, counter, and user verification.
/// Stores the passkey's new counter. Returns the passkey used.
async fn finish_assertion(
    state: &AppState,
    human: HumanId,
    auth: &Value,
    credential: &PublicKeyCredential,
) -> Result<Passkey> {
    let webauthn = state.passkeys.get()?;
    let auth: PasskeyAuthentication = from_json(auth)?;
    let result = webauthn
        .finish_passkey_authentication(credential, &auth)
        .map_err(refused)?;
    if !result.user_verified() {
        return Err(refused("user verification (biometrics or PIN) is required"));
    }
    let now = state.clock.now();
    for (record, mut passkey) in passkeys_of(state, human).await? {
        if passkey.cred_id() == result.cred_id() {
            passkey.update_credential(&result);
            state
                .store
                .touch_passkey(&record.cred_id, &to_json(&passkey)?, now)
                .await?;
            return Ok(passkey);
        }
    }
    Err(refused("the passkey is not registered to this account"))
}

async fn login_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<EmailBody>,
) -> Result<axum::Json<Value>> {
    same_origin(&state, &headers)?;
    let webauthn = state.passkeys.get()?;
    let human = state
        .store
        .human_by_email(body.email.trim())
        .await?
        .ok_or_else(|| {
            ApiError::invalid_request(
                "no passkey is registered for this account: ask for an invite link",
            )
        })?;
    let passkeys: Vec<Passkey> = passkeys_of(&state, human)
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let (options, auth, _) = start_assertion(webauthn, &passkeys, None)?;
    let ceremony = put_ceremony(&state, human, "login".into(), json!({"auth": auth})).await?;
    Ok(axum::Json(
        json!({"ceremony": ceremony, "options": options}),
    ))
}

async fn login_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<AssertionBody>,
) -> Result<Response> {
    same_origin(&state, &headers)?;
    let c = take_ceremony(&state, &body.ceremony, "login").await?;
    let human = c
        .human
        .ok_or_else(|| ApiError::internal("a ceremony without a human"))?;
    finish_assertion(&state, human, &c.state["auth"], &body.credential).await?;
    let now = state.clock.now();
    let token = random_b64(32).map_err(ApiError::internal)?;
    let ttl = crate::auth::to_time(state.config.ui_session_ttl);
    state
        .store
        .create_ui_session(&sha256_b64(token.as_bytes()), human, now, now + ttl)
        .await?;
    let mut r = axum::Json(json!({"ok": true})).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&state, &token, ttl.whole_seconds()),
    );
    Ok(r)
}

/// The challenge an approval assertion signs: bound to the statement's digest and the
/// verdict, with webauthn-rs' random challenge as nonce.
fn approval_challenge(digest: &str, verdict: Verdict, reason: &str, nonce: &[u8]) -> Vec<u8> {
    let reason = sha256_b64(reason.as_bytes());
    let mut input = Vec::with_capacity(CHALLENGE_CONTEXT.len() + digest.len() + 128);
    for part in [
        CHALLENGE_CONTEXT,
        digest.as_bytes(),
        verdict.as_str().as_bytes(),
        reason.as_bytes(),
    ] {
        input.extend_from_slice(part);
        input.push(0);
    }
    input.extend_from_slice(nonce);
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input)
        .as_ref()
        .to_vec()
}

#[derive(Deserialize)]
struct DecisionBody {
    decision: String,
    /// Signed with the verdict: the reason recorded is the one the passkey approved.
    #[serde(default)]
    reason: Option<String>,
}

/// A reason as recorded: trimmed, at most 500 characters, absent when empty.
fn clean_reason(reason: Option<String>) -> Option<String> {
    reason
        .map(|r| r.trim().chars().take(500).collect::<String>())
        .filter(|r| !r.is_empty())
}

async fn challenge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<DecisionBody>,
) -> Result<axum::Json<Value>> {
    same_origin(&state, &headers)?;
    let me = signed_in(&state, &headers).await?;
    let webauthn = state.passkeys.get()?;
    let verdict: Verdict = body
        .decision
        .parse()
        .map_err(|e: surety_core::FieldError| ApiError::invalid_request(e.to_string()))?;
    let a = readable(&state, &me, &id).await?;
    let votes = state.store.approval_votes(a.id).await?;
    a.may_vote(me.id, &votes, state.clock.now())?;
    let digest = approvals::digest(&a);
    let passkeys: Vec<Passkey> = passkeys_of(&state, me.id)
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let reason = clean_reason(body.reason);
    let signed_reason = reason.clone().unwrap_or_default();
    let commit = |nonce: &[u8]| approval_challenge(&digest, verdict, &signed_reason, nonce);
    let (options, auth, nonce) = start_assertion(webauthn, &passkeys, Some(&commit))?;
    let data = json!({
        "auth": auth,
        "approval": a.id.to_string(),
        "verdict": verdict.as_str(),
        "digest": digest,
        "reason": reason,
        "nonce": nonce,
    });
    let ceremony = put_ceremony(&state, me.id, "approve".into(), data).await?;
    Ok(axum::Json(
        json!({"ceremony": ceremony, "options": options}),
    ))
}

async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<AssertionBody>,
) -> Result<axum::Json<Value>> {
    same_origin(&state, &headers)?;
    let me = signed_in(&state, &headers).await?;
    let c = take_ceremony(&state, &body.ceremony, "approve").await?;
    let a = readable(&state, &me, &id).await?;
    if c.human != Some(me.id) || c.state["approval"].as_str() != Some(a.id.to_string().as_str()) {
        return Err(ApiError::invalid_request(
            "this ceremony was started for another request or person",
        ));
    }
    // The statement must still be the one the challenge committed to.
    let digest = approvals::digest(&a);
    if c.state["digest"].as_str() != Some(digest.as_str()) {
        return Err(ApiError::conflict("the request changed; reload the page"));
    }
    let verdict: Verdict = c.state["verdict"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(ApiError::internal)?;
    let passkey = finish_assertion(&state, me.id, &c.state["auth"], &body.credential).await?;
    // The reason is the one committed to in the challenge, not whatever comes now.
    let reason = c.state["reason"].as_str().map(str::to_owned);
    let evidence = Evidence {
        method: ApprovalMethod::Passkey,
        proof: json!({
            "credential_id": b64::encode(passkey.cred_id().as_ref()),
            "public_key": to_json(passkey.get_public_key())?,
            "assertion": to_json(&body.credential)?,
            "challenge": {
                "context": String::from_utf8_lossy(CHALLENGE_CONTEXT),
                "digest": digest,
                "verdict": verdict.as_str(),
                "reason_sha256": sha256_b64(reason.as_deref().unwrap_or_default().as_bytes()),
                "nonce": c.state["nonce"],
            },
            "origin": state.issuer.as_ref(),
        }),
    };
    let settled = approvals::answer(&state, a.id, me.id, verdict, reason, evidence).await?;
    let status = settled.status_at(state.clock.now());
    let message = match status {
        ApprovalStatus::Pending => "Recorded; more approvers must answer.".to_owned(),
        other => format!("The request is {other}."),
    };
    Ok(axum::Json(
        json!({"status": status.as_str(), "message": message}),
    ))
}

async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let me = signed_in(&state, &headers).await?;
    let events = crate::admin::approvals::notices(&state, me, false).await?;
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_challenges_bind_the_digest_the_verdict_and_the_nonce() {
        let base = approval_challenge("d1", Verdict::Approve, "ok", b"n");
        assert_eq!(base.len(), 32);
        assert_eq!(base, approval_challenge("d1", Verdict::Approve, "ok", b"n"));
        assert_ne!(base, approval_challenge("d2", Verdict::Approve, "ok", b"n"));
        assert_ne!(base, approval_challenge("d1", Verdict::Deny, "ok", b"n"));
        assert_ne!(
            base,
            approval_challenge("d1", Verdict::Approve, "ok!", b"n")
        );
        assert_ne!(base, approval_challenge("d1", Verdict::Approve, "ok", b"m"));
    }

    #[test]
    fn passkeys_refuse_an_ip_address_issuer_and_accept_a_domain() {
        assert!(Passkeys::new("http://127.0.0.1:8080").get().is_err());
        assert!(Passkeys::new("http://localhost:8080").get().is_ok());
        assert!(Passkeys::new("https://surety.example").get().is_ok());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; surety_session=abc; b=2"),
        );
        assert_eq!(cookie(&h), Some("abc"));
        let mut other = HeaderMap::new();
        other.insert(
            header::COOKIE,
            HeaderValue::from_static("surety_sessionx=1"),
        );
        assert_eq!(cookie(&other), None);
    }
}
