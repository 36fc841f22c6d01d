//! Decisions about a federation peer's agent: the same Cedar policy set, with the foreign
//! chain in the context (`context.peer` = the peer's issuer, `context.chain` = its agents)
//! and the federation grant's constraints in place of a grant's.
//!
//! A step-up is approved at the agent's home organisation, by its own human: the answer's
//! `authorization_details` name the action at this resource server; the agent asks its home
//! organisation to approve exactly that (CIBA there), and presents the one-time approval
//! token it gets as `approval_token`. It is verified here with the peer's keys — for this
//! resource server, principal, chain and key — and used once.

use serde_json::json;
use surety_api::decisions::StepUp;
use surety_core::approval::ActionDetails;
use surety_policy::{Decision, DecisionRequest, Engine, HumanFacts, Outcome};
use surety_store::ResourceServer;

use super::{Asked, Decided, Result, decision_event, outcome_name, refusal, step_up_details};
use crate::app::AppState;
use crate::error::ApiError;
use crate::federation::token::{FederatedToken, verify, verify_peer_approval};
use crate::oauth::access_token::Inactive;

/// The role a peer's human has in decisions here.
const FOREIGN_ROLE: &str = "foreign";
/// The environment label of a peer's agent.
const FOREIGN_ENVIRONMENT: &str = "federated";

pub(super) async fn decide(
    state: &AppState,
    rs: &ResourceServer,
    asked: &Asked<'_>,
    engine: &Engine,
) -> Result<Decided> {
    let now = state.clock.now();
    let token = match verify(state, asked.token).await {
        Ok(t) => Some(t),
        Err(Inactive::Error(e)) => return Err(e),
        Err(_) => None,
    };
    let mut request = None;
    let mut approval = None;
    let mut decision = match &token {
        None => refusal("the agent's token is not active", engine.version()),
        Some(t) if t.claims.aud != rs.audience => refusal(
            "the agent's token was not issued for this resource server",
            engine.version(),
        ),
        Some(t) => {
            if let Some(named) = asked.named_agent
                && named != t.chain[0]
            {
                return Err(ApiError::invalid_request(format!(
                    "the subject `{}` is not the agent of the token",
                    named.chars().take(64).collect::<String>()
                )));
            }
            let mut r = facts(state, t, asked, now);
            let mut invalid = None;
            if let Some(evidence) = asked.approval_token {
                match verify_peer_approval(state, evidence, t, &rs.audience).await {
                    Ok(claims) => {
                        let same = claims
                            .authorization_details
                            .as_ref()
                            .and_then(|d| ActionDetails::parse(d).ok())
                            .is_some_and(|d| {
                                d.matches(
                                    asked.action,
                                    asked.resource_type,
                                    asked.resource_id,
                                    asked.arguments,
                                    &rs.audience,
                                )
                            });
                        if same {
                            r.approved = true;
                            approval = Some(claims);
                        } else {
                            invalid = Some(
                                "it approves another action, resource or arguments".to_owned(),
                            );
                        }
                    }
                    Err(why) => invalid = Some(why),
                }
            }
            let d = match invalid {
                Some(why) => refusal(
                    &format!("the approval token is not valid for this request: {why}"),
                    engine.version(),
                ),
                None => engine.decide(&r),
            };
            request = Some(r);
            d
        }
    };
    // The approval is used by the decision it allows, once.
    if decision.outcome == Outcome::Allow
        && let Some(a) = &approval
    {
        let until = time::OffsetDateTime::from_unix_timestamp(a.exp).unwrap_or(now);
        if !state
            .remember(
                format!(
                    "fed-approval:{}",
                    surety_jose::sha256_b64(format!("{}\n{}", a.iss, a.jti).as_bytes())
                ),
                until,
            )
            .await?
        {
            decision = refusal("the approval was already used", decision.version);
        }
    }
    let step_up = (decision.outcome == Outcome::StepUp).then(|| StepUp {
        // No grant id: the grant the agent's home organisation will find is its own.
        authorization_details: step_up_details(rs, asked, None),
        binding_message: format!("{} on {}", asked.action, asked.resource_id)
            .chars()
            .take(surety_core::approval::MAX_BINDING_MESSAGE)
            .collect(),
        auth_req_id: None,
        expires_in: None,
        approval_status: None,
    });
    let id = record(
        state,
        rs,
        asked,
        token.as_ref(),
        request.as_ref(),
        &decision,
        approval.as_ref().map(|a| a.jti.as_str()),
    )
    .await?;
    Ok(Decided {
        decision,
        id,
        step_up,
    })
}

/// What the policies see about a peer's agent.
fn facts(
    state: &AppState,
    t: &FederatedToken,
    asked: &Asked<'_>,
    now: time::OffsetDateTime,
) -> DecisionRequest {
    // The foreign agent's owner is not known here: its principal, who delegated, stands in.
    let principal = HumanFacts {
        id: t.claims.sub.clone(),
        role: FOREIGN_ROLE.into(),
    };
    // Foreign identities are named with their issuer, so that no policy written for one of
    // this organisation's agents or humans can apply to them.
    let foreign = |id: &str| format!("{id}@{}", t.peer);
    let principal = HumanFacts {
        id: foreign(&principal.id),
        ..principal
    };
    DecisionRequest {
        agent: foreign(&t.chain[0]),
        environment: FOREIGN_ENVIRONMENT.into(),
        owner: principal.clone(),
        principal,
        grant: t.grant.id.to_string(),
        chain: t.chain.iter().map(|a| foreign(a)).collect(),
        scope: t.claims.scope.split(' ').map(str::to_owned).collect(),
        action: asked.action.to_owned(),
        resource_type: asked.resource_type.to_owned(),
        resource_id: asked.resource_id.to_owned(),
        // The stricter of the home grant's limits and the federation grant's.
        constraints: surety_core::federation::stricter(
            t.claims
                .constraints
                .as_ref()
                .unwrap_or(&serde_json::Value::Null),
            &t.grant.constraints,
        ),
        arguments: asked.arguments.clone(),
        time: now.unix_timestamp(),
        org_domains: state.config.org_domain_list(),
        approved: false,
        peer: t.peer.clone(),
    }
}

/// Records the decision in the audit log before it is answered.
async fn record(
    state: &AppState,
    rs: &ResourceServer,
    asked: &Asked<'_>,
    token: Option<&FederatedToken>,
    request: Option<&DecisionRequest>,
    decision: &Decision,
    approval: Option<&str>,
) -> Result<String> {
    let now = state.clock.now();
    let event = decision_event(
        asked,
        decision,
        rs,
        surety_core::id::EventId::new(now),
        now,
        json!({
            "peer": token.map(|t| &t.peer),
            "sub_id": token.map(|t| &t.claims.sub_id),
            "token_jti": token.map(|t| &t.claims.jti),
            "grant_id": token.map(|t| &t.claims.grant_id),
            "act": token.map(|t| &t.claims.act),
            "request": request,
            "peer_approval_jti": approval,
        }),
    );
    let id = event.id.to_string();
    metrics::counter!("surety_decisions_total", "decision" => outcome_name(decision.outcome))
        .increment(1);
    state.store.append_events(&[event]).await?;
    Ok(id)
}
