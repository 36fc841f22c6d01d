//! Surety's policy decision point: Cedar policies decide whether an agent may take an action
//! for a human, now — `allow`, `deny`, or `step_up` (allowed once the human approves).
//!
//! [`Engine::decide`] is a pure function of the request and the loaded policy set: no I/O,
//! no clock (the time arrives in the request). The schema ships in the binary
//! ([`BASE_SCHEMA`]); admins extend it with their own actions, each declared `in` one of the
//! impact groups `read`, `privileged_change`, `transaction`, `data_release` ([`CATALOG`] is
//! the example catalog), and replace the policies ([`DEFAULT_POLICIES`]).
//!
//! **Step-up.** A `forbid` annotated `@step_up("why")` that blocks a request *only because
//! approval evidence is absent* makes the decision `step_up`, not `deny`: the request is
//! evaluated as it is (`context.approved == false`); if it is denied and every policy that
//! denied it is a step-up policy, it is evaluated again as if approved, and if that allows it,
//! the answer is `step_up` with the step-up reasons. Any other forbid, or no permit, is
//! `deny`.
//!
//! **Slicing.** Cedar evaluates every policy of a set, so the cost of a decision grows with
//! the set. The engine indexes policies by what their heads can match — the action (through
//! the schema's action groups) and a principal named exactly — and evaluates only the slice
//! that can apply; a policy whose head cannot match a request cannot change its decision.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid,
    PolicyId, PolicySet, PrincipalConstraint, Request, RestrictedExpression, Schema,
    SchemaFragment, ValidationMode, Validator,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The base schema: entity types, the decision context, the four impact groups.
pub const BASE_SCHEMA: &str = include_str!("../policies/base.cedarschema");
/// The example action catalog (`crm.read_customer`, `payments.transfer`, `iam.grant_role`,
/// `files.share_external`).
pub const CATALOG: &str = include_str!("../policies/catalog.cedarschema");
/// The default policy pack.
pub const DEFAULT_POLICIES: &str = include_str!("../policies/default.cedar");

/// Why a policy set, catalog or request was refused. Messages are Cedar's, made readable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The schema or catalog does not parse or does not fit the base schema.
    #[error("schema: {0}")]
    Schema(String),
    /// A policy does not parse, lacks an `@id`, or repeats one.
    #[error("policies: {0}")]
    Parse(String),
    /// A policy does not validate against the schema.
    #[error("policies do not validate against the schema: {0}")]
    Validation(String),
    /// The request cannot be expressed against the schema (unknown action, malformed
    /// argument…).
    #[error("request: {0}")]
    Request(String),
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action may run.
    Allow,
    /// It may not.
    Deny,
    /// It may run once the principal approves this exact action.
    StepUp,
}

/// A decision with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The answer.
    pub outcome: Outcome,
    /// Why, in words: the `@reason` or `@step_up` of each determining policy, or why none
    /// applied.
    pub reasons: Vec<String>,
    /// The policies that determined it (sorted).
    pub policy_ids: Vec<String>,
    /// The policy-set version that made it.
    pub version: u64,
    /// Policies that failed to evaluate (they are skipped, as Cedar does).
    pub errors: Vec<String>,
}

/// A human as a decision sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HumanFacts {
    /// `hum_…`
    pub id: String,
    /// `admin` or `member`.
    pub role: String,
}

/// What a decision is asked about. Identities come from the verified token, never from what
/// a caller asserts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRequest {
    /// The acting agent (`act.sub`).
    pub agent: String,
    /// Its environment label.
    pub environment: String,
    /// Its owner.
    pub owner: HumanFacts,
    /// The human it acts for (`sub`).
    pub principal: HumanFacts,
    /// The grant (`grant_id`).
    pub grant: String,
    /// The whole chain, current actor first.
    pub chain: Vec<String>,
    /// The token's scopes.
    pub scope: Vec<String>,
    /// The action (a tool name such as `payments.transfer`).
    pub action: String,
    /// The resource's entity type (`Resource`, or one an admin declared) and id.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// The grant's constraints (a JSON object; unknown members are ignored).
    pub constraints: Value,
    /// The action's arguments (a JSON object; unknown members are ignored).
    pub arguments: Value,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// The organisation's own domains.
    pub org_domains: Vec<String>,
    /// Whether a valid approval of exactly this action accompanies the request.
    pub approved: bool,
    /// The federation peer (its issuer) whose agent acts, or empty for this organisation's
    /// own agents.
    #[serde(default)]
    pub peer: String,
}

/// Arguments and constraints Surety understands, with their Cedar types.
const ARGUMENTS: [(&str, Kind); 4] = [
    ("amount", Kind::Long),
    ("currency", Kind::String),
    ("destination_domain", Kind::String),
    ("data_class", Kind::String),
];
const CONSTRAINTS: [(&str, Kind); 5] = [
    ("max_amount", Kind::Long),
    ("currency", Kind::String),
    ("allowed_domains", Kind::StringSet),
    ("data_classes", Kind::StringSet),
    ("step_up", Kind::StringSet),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Long,
    String,
    StringSet,
}

/// The known members of `value` as a Cedar record, their types checked; others are dropped.
fn record(
    field: &str,
    value: &Value,
    members: &[(&str, Kind)],
) -> Result<RestrictedExpression, PolicyError> {
    let empty = serde_json::Map::new();
    let obj = match value {
        Value::Null => &empty,
        Value::Object(o) => o,
        _ => {
            return Err(PolicyError::Request(format!(
                "`{field}` must be a JSON object"
            )));
        }
    };
    let mut fields = Vec::new();
    for (name, kind) in members {
        let Some(v) = obj.get(*name) else { continue };
        let expr = match kind {
            Kind::Long => v.as_i64().map(RestrictedExpression::new_long),
            Kind::String => v
                .as_str()
                .map(|s| RestrictedExpression::new_string(s.to_owned())),
            Kind::StringSet => v.as_array().and_then(|items| {
                items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(|s| RestrictedExpression::new_string(s.to_owned()))
                    })
                    .collect::<Option<Vec<_>>>()
                    .map(RestrictedExpression::new_set)
            }),
        };
        let Some(expr) = expr else {
            let expected = match kind {
                Kind::Long => "a whole number",
                Kind::String => "a string",
                Kind::StringSet => "a list of strings",
            };
            return Err(PolicyError::Request(format!(
                "`{field}.{name}` must be {expected}"
            )));
        };
        fields.push(((*name).to_owned(), expr));
    }
    RestrictedExpression::new_record(fields).map_err(|e| PolicyError::Request(e.to_string()))
}

fn uid(ty: &str, id: &str) -> Result<EntityUid, PolicyError> {
    let ty = cedar_policy::EntityTypeName::from_str(ty)
        .map_err(|e| PolicyError::Request(format!("`{ty}` is not an entity type: {e}")))?;
    Ok(EntityUid::from_type_name_and_id(
        ty,
        cedar_policy::EntityId::new(id),
    ))
}

/// The policies that can apply to one action, split by principal.
#[derive(Debug, Default)]
struct ActionSlice {
    /// Policies whose principal constraint is not an exact principal.
    any_principal: Vec<PolicyId>,
    /// Policies naming one principal exactly.
    by_principal: HashMap<EntityUid, Vec<PolicyId>>,
}

/// An action, and the agent when it has policies of its own.
type SliceKey = (EntityUid, Option<EntityUid>);

/// Most (action, principal) policy sets kept ready.
const SLICE_CACHE_MAX: usize = 65_536;

/// A loaded, validated policy set with its schema, ready to decide.
#[derive(Debug)]
pub struct Engine {
    schema: Schema,
    policies: PolicySet,
    version: u64,
    slices: HashMap<EntityUid, ActionSlice>,
    /// For each action, its entity and its groups' (with their `in` relations): what makes
    /// `action in Action::"transaction"` true.
    lineage: HashMap<EntityUid, Vec<Entity>>,
    /// For each concrete action, the resource types it applies to. Group actions (`read`,
    /// `transaction`…) are not here: they are not decided on their own.
    resource_types: HashMap<EntityUid, HashSet<String>>,
    ready: RwLock<HashMap<SliceKey, Arc<PolicySet>>>,
    authorizer: Authorizer,
}

impl Engine {
    /// Loads `catalog` (a schema fragment adding actions and resource types to
    /// [`BASE_SCHEMA`]) and `policies` (Cedar text; each policy needs a unique `@id`),
    /// validating the policies strictly against the schema.
    pub fn new(catalog: &str, policies: &str, version: u64) -> Result<Self, PolicyError> {
        let schema = schema(catalog)?;
        let policies = parse_policies(policies)?;
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let errors: Vec<String> = result.validation_errors().map(|e| format!("{e}")).collect();
            return Err(PolicyError::Validation(errors.join("; ")));
        }
        let slices = index(&schema, &policies)?;
        let lineage = lineage(&schema)?;
        let resource_types = schema
            .actions()
            .map(|a| {
                let types = schema
                    .resources_for_action(a)
                    .into_iter()
                    .flatten()
                    .map(ToString::to_string)
                    .collect::<HashSet<_>>();
                (a.clone(), types)
            })
            .filter(|(_, types)| !types.is_empty())
            .collect();
        Ok(Self {
            resource_types,
            schema,
            policies,
            version,
            slices,
            lineage,
            ready: RwLock::new(HashMap::new()),
            authorizer: Authorizer::new(),
        })
    }

    /// The shipped catalog and default policies, as version 0.
    pub fn shipped() -> Result<Self, PolicyError> {
        Self::new(CATALOG, DEFAULT_POLICIES, 0)
    }

    /// The schema the policies were validated against.
    #[must_use]
    pub fn cedar_schema(&self) -> &Schema {
        &self.schema
    }

    /// The policy-set version.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many policies are loaded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.policies.policies().count()
    }

    /// Whether no policy is loaded (then every decision is `deny`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides `req`, evaluating only the policies whose heads can match it.
    #[must_use]
    pub fn decide(&self, req: &DecisionRequest) -> Decision {
        match self.slice(req) {
            Ok(set) => self.decide_with(&set, req),
            Err(e) => self.refused(e),
        }
    }

    /// Decides `req` against every policy (what [`Engine::decide`] must always agree with).
    #[must_use]
    pub fn decide_unsliced(&self, req: &DecisionRequest) -> Decision {
        match self.slice(req) {
            Ok(_) => self.decide_with(&self.policies, req),
            Err(e) => self.refused(e),
        }
    }

    /// The same engine, numbered `version` (a set validated before it was stored).
    #[must_use]
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    fn refused(&self, e: PolicyError) -> Decision {
        Decision {
            outcome: Outcome::Deny,
            reasons: vec![e.to_string()],
            policy_ids: Vec::new(),
            version: self.version,
            errors: Vec::new(),
        }
    }

    fn slice(&self, req: &DecisionRequest) -> Result<Arc<PolicySet>, PolicyError> {
        let action = uid("Action", &req.action)?;
        let unknown = || {
            PolicyError::Request(format!(
                "unknown action `{}`: declare it in the catalog, in an impact group",
                req.action
            ))
        };
        // Only concrete actions are decided, on the resource types they apply to: a request
        // the schema does not describe could slip past policies written for it.
        let types = self.resource_types.get(&action).ok_or_else(unknown)?;
        if !types.contains(&req.resource_type) {
            return Err(PolicyError::Request(format!(
                "action `{}` does not apply to resources of type `{}`",
                req.action, req.resource_type
            )));
        }
        let slice = self.slices.get(&action).ok_or_else(unknown)?;
        let principal = uid("Agent", &req.agent)?;
        // Agents without policies of their own share their action's set.
        let own = slice.by_principal.get(&principal);
        let key = (action, own.map(|_| principal));
        if let Some(set) = self.ready.read().ok().and_then(|r| r.get(&key).cloned()) {
            return Ok(set);
        }
        let ids = slice.any_principal.iter().chain(own.into_iter().flatten());
        let set = PolicySet::from_policies(ids.filter_map(|id| self.policies.policy(id).cloned()))
            .map_err(|e| PolicyError::Parse(e.to_string()))?;
        let set = Arc::new(set);
        if let Ok(mut ready) = self.ready.write() {
            if ready.len() >= SLICE_CACHE_MAX {
                ready.clear();
            }
            ready.insert(key, set.clone());
        }
        Ok(set)
    }

    /// The Cedar request and entities `req` is decided with (for tools and benchmarks that
    /// call Cedar directly), and the whole policy set.
    pub fn cedar_inputs(
        &self,
        req: &DecisionRequest,
    ) -> Result<(Request, Entities, &PolicySet), PolicyError> {
        let (request, entities) = self.request(req, req.approved)?;
        Ok((request, entities, &self.policies))
    }

    /// The request and entities, built directly as Cedar values (no JSON round trip, no
    /// per-request schema check: they have the schema's shapes by construction, which
    /// `requests_conform_to_the_schema` checks).
    fn request(
        &self,
        req: &DecisionRequest,
        approved: bool,
    ) -> Result<(Request, Entities), PolicyError> {
        let bad = |e: &dyn std::fmt::Display| PolicyError::Request(e.to_string());
        let action = uid("Action", &req.action)?;
        let agent = uid("Agent", &req.agent)?;
        let resource = uid(&req.resource_type, &req.resource_id)?;
        let principal = uid("Human", &req.principal.id)?;
        let owner = uid("Human", &req.owner.id)?;
        let grant = uid("Grant", &req.grant)?;
        let root = uid("Agent", req.chain.last().unwrap_or(&req.agent))?;
        let chain = req
            .chain
            .iter()
            .map(|a| uid("Agent", a).map(RestrictedExpression::new_entity_uid))
            .collect::<Result<Vec<_>, _>>()?;
        let strings = |v: &[String]| {
            RestrictedExpression::new_set(v.iter().cloned().map(RestrictedExpression::new_string))
        };
        let depth = i64::try_from(req.chain.len().saturating_sub(1)).unwrap_or(i64::MAX);
        let context = Context::from_pairs([
            (
                "action_name".to_owned(),
                RestrictedExpression::new_string(req.action.clone()),
            ),
            ("scope".to_owned(), strings(&req.scope)),
            ("depth".to_owned(), RestrictedExpression::new_long(depth)),
            ("chain".to_owned(), RestrictedExpression::new_set(chain)),
            (
                "grant".to_owned(),
                RestrictedExpression::new_entity_uid(grant.clone()),
            ),
            (
                "constraints".to_owned(),
                record("constraints", &req.constraints, &CONSTRAINTS)?,
            ),
            (
                "arguments".to_owned(),
                record("arguments", &req.arguments, &ARGUMENTS)?,
            ),
            ("time".to_owned(), RestrictedExpression::new_long(req.time)),
            ("org_domains".to_owned(), strings(&req.org_domains)),
            (
                "peer".to_owned(),
                RestrictedExpression::new_string(req.peer.clone()),
            ),
            (
                "approved".to_owned(),
                RestrictedExpression::new_bool(approved),
            ),
        ])
        .map_err(|e| bad(&e))?;
        let attrs =
            |pairs: Vec<(&str, RestrictedExpression)>| -> HashMap<String, RestrictedExpression> {
                pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            };
        let text = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let mut entities = vec![
            Entity::new(
                principal.clone(),
                attrs(vec![("role", text(&req.principal.role))]),
                HashSet::new(),
            ),
            Entity::new(
                agent.clone(),
                attrs(vec![
                    ("owner", RestrictedExpression::new_entity_uid(owner.clone())),
                    ("environment", text(&req.environment)),
                ]),
                HashSet::new(),
            ),
            Entity::new(
                grant,
                attrs(vec![
                    (
                        "principal",
                        RestrictedExpression::new_entity_uid(principal.clone()),
                    ),
                    ("agent", RestrictedExpression::new_entity_uid(root)),
                ]),
                HashSet::new(),
            ),
        ];
        if owner != principal {
            entities.push(Entity::new(
                owner,
                attrs(vec![("role", text(&req.owner.role))]),
                HashSet::new(),
            ));
        }
        let mut entities = entities
            .into_iter()
            .collect::<Result<Vec<Entity>, _>>()
            .map_err(|e| bad(&e))?;
        entities.push(Entity::new_no_attrs(resource.clone(), HashSet::new()));
        entities.extend(self.lineage.get(&action).into_iter().flatten().cloned());
        let entities = Entities::from_entities(entities, None).map_err(|e| bad(&e))?;
        let request = Request::new(agent, action, resource, context, None).map_err(|e| bad(&e))?;
        Ok((request, entities))
    }

    /// Checks that what [`Engine::request`] builds conforms to the schema.
    #[cfg(test)]
    fn validate_request(&self, req: &DecisionRequest) -> Result<(), PolicyError> {
        let bad = |e: &dyn std::fmt::Display| PolicyError::Request(e.to_string());
        let (request, entities) = self.request(req, req.approved)?;
        let (Some(p), Some(a), Some(r), Some(context)) = (
            request.principal().cloned(),
            request.action().cloned(),
            request.resource().cloned(),
            request.context().cloned(),
        ) else {
            return Err(PolicyError::Request("incomplete request".into()));
        };
        Request::new(p, a, r, context, Some(&self.schema)).map_err(|e| bad(&e))?;
        let json = entities.to_json_value().map_err(|e| bad(&e))?;
        Entities::from_json_value(json, Some(&self.schema)).map_err(|e| bad(&e))?;
        Ok(())
    }

    fn decide_with(&self, set: &PolicySet, req: &DecisionRequest) -> Decision {
        let evaluate = |approved| -> Result<cedar_policy::Response, PolicyError> {
            let (request, entities) = self.request(req, approved)?;
            Ok(self.authorizer.is_authorized(&request, set, &entities))
        };
        let first = match evaluate(req.approved) {
            Ok(r) => r,
            Err(e) => return self.refused(e),
        };
        let mut ids: Vec<String> = first
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        ids.sort();
        let errors: Vec<String> = first
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        let annotation = |id: &str, key: &str| {
            PolicyId::from_str(id)
                .ok()
                .and_then(|pid| set.annotation(&pid, key).map(str::to_owned))
        };
        let decision = |outcome, reasons| Decision {
            outcome,
            reasons,
            policy_ids: ids.clone(),
            version: self.version,
            errors: errors.clone(),
        };
        // Cedar skips a policy whose evaluation fails. A `forbid` that could not be
        // evaluated might have applied: the request is denied (fail closed).
        let forbids_failed = |r: &cedar_policy::Response| -> Vec<String> {
            r.diagnostics()
                .errors()
                .map(|e| {
                    let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = e;
                    e.policy_id().clone()
                })
                .filter(|id| {
                    set.policy(id)
                        .is_some_and(|p| p.effect() == cedar_policy::Effect::Forbid)
                })
                .map(|id| id.to_string())
                .collect()
        };
        let failed_forbids = forbids_failed(&first);
        if !failed_forbids.is_empty() {
            return Decision {
                outcome: Outcome::Deny,
                reasons: failed_forbids
                    .iter()
                    .map(|id| {
                        format!("forbid `{id}` could not be evaluated, so the request is denied")
                    })
                    .collect(),
                policy_ids: failed_forbids,
                version: self.version,
                errors: errors.clone(),
            };
        }
        if first.decision() == CedarDecision::Allow {
            let reasons = ids
                .iter()
                .filter_map(|id| annotation(id, "reason"))
                .collect();
            return decision(Outcome::Allow, reasons);
        }
        if ids.is_empty() {
            return decision(Outcome::Deny, vec!["no policy permits this action".into()]);
        }
        let step_up: Vec<String> = ids
            .iter()
            .filter_map(|id| annotation(id, "step_up"))
            .collect();
        if !req.approved && step_up.len() == ids.len() {
            // Only step-up policies stood in the way: would approval let it through?
            if let Ok(r) = evaluate(true)
                && r.decision() == CedarDecision::Allow
                && forbids_failed(&r).is_empty()
            {
                return decision(Outcome::StepUp, step_up);
            }
        }
        let reasons = ids
            .iter()
            .map(|id| {
                annotation(id, "reason")
                    .or_else(|| annotation(id, "step_up"))
                    .unwrap_or_else(|| format!("forbidden by `{id}`"))
            })
            .collect();
        decision(Outcome::Deny, reasons)
    }
}

/// Deepest bracket nesting accepted in policy or schema text: far beyond what a person
/// writes, far below what could exhaust the parser's stack.
pub const MAX_NESTING: usize = 64;

fn check_nesting(src: &str) -> Result<(), PolicyError> {
    let mut depth = 0usize;
    for c in src.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(PolicyError::Parse(format!(
                        "brackets nest deeper than {MAX_NESTING} levels"
                    )));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The base schema extended by `catalog`.
pub fn schema(catalog: &str) -> Result<Schema, PolicyError> {
    check_nesting(catalog).map_err(|e| PolicyError::Schema(e.to_string()))?;
    let fragment = |src: &str| {
        SchemaFragment::from_cedarschema_str(src)
            .map(|(f, _warnings)| f)
            .map_err(|e| PolicyError::Schema(format!("{e}")))
    };
    Schema::from_schema_fragments([fragment(BASE_SCHEMA)?, fragment(catalog)?])
        .map_err(|e| PolicyError::Schema(format!("{e}")))
}

/// Parses Cedar text; each policy's id is its `@id` annotation, which must be present and
/// unique, so that decisions name policies the way their authors do.
pub fn parse_policies(src: &str) -> Result<PolicySet, PolicyError> {
    check_nesting(src)?;
    let parsed = PolicySet::from_str(src).map_err(|e| PolicyError::Parse(format!("{e}")))?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for p in parsed.policies() {
        let id = p
            .annotation("id")
            .ok_or_else(|| PolicyError::Parse(format!("a policy has no `@id` annotation: {p}")))?
            .to_owned();
        if !seen.insert(id.clone()) {
            return Err(PolicyError::Parse(format!("`@id(\"{id}\")` is used twice")));
        }
        out.push(p.new_id(PolicyId::new(id)));
    }
    if parsed.templates().next().is_some() {
        return Err(PolicyError::Parse("templates are not supported".into()));
    }
    PolicySet::from_policies(out).map_err(|e| PolicyError::Parse(e.to_string()))
}

/// For every action of the schema, its entity and those of the groups it is in.
fn lineage(schema: &Schema) -> Result<HashMap<EntityUid, Vec<Entity>>, PolicyError> {
    let actions = schema
        .action_entities()
        .map_err(|e| PolicyError::Schema(e.to_string()))?;
    let mut out = HashMap::new();
    for action in schema.actions() {
        let mut uids = vec![action.clone()];
        uids.extend(actions.ancestors(action).into_iter().flatten().cloned());
        let entities = uids
            .iter()
            .filter_map(|u| actions.get(u).cloned())
            .collect();
        out.insert(action.clone(), entities);
    }
    Ok(out)
}

/// For every action of the schema, the policies whose heads can match it: those whose
/// action constraint is `any`, names the action, or names a group it belongs to.
fn index(
    schema: &Schema,
    policies: &PolicySet,
) -> Result<HashMap<EntityUid, ActionSlice>, PolicyError> {
    let actions = schema
        .action_entities()
        .map_err(|e| PolicyError::Schema(e.to_string()))?;
    let mut slices: HashMap<EntityUid, ActionSlice> = HashMap::new();
    for action in schema.actions() {
        let mut lineage: BTreeSet<EntityUid> = actions
            .ancestors(action)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        lineage.insert(action.clone());
        let slice = slices.entry(action.clone()).or_default();
        for p in policies.policies() {
            let applies = match p.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => &a == action,
                ActionConstraint::In(list) => list.iter().any(|a| lineage.contains(a)),
            };
            if !applies {
                continue;
            }
            match p.principal_constraint() {
                PrincipalConstraint::Eq(who) => {
                    slice
                        .by_principal
                        .entry(who)
                        .or_default()
                        .push(p.id().clone());
                }
                _ => slice.any_principal.push(p.id().clone()),
            }
        }
    }
    Ok(slices)
}

#[cfg(test)]
mod tests;
