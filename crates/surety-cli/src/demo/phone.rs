//! Alice's phone, as far as the demo needs one: the receiver of Surety's notification webhook
//! (`approval_webhook_url`), where a chat bot or phone app would relay each notice. It keeps
//! what arrives; the demo reads a notice only once its signature verifies with the keys
//! Surety publishes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

/// The notices received, as sent (compact JWS).
#[derive(Debug, Default)]
pub struct Inbox(Mutex<Vec<String>>);

/// The receiver's routes: `POST /notify`.
pub fn router(inbox: Arc<Inbox>) -> axum::Router {
    axum::Router::new()
        .route("/notify", post(receive))
        .with_state(inbox)
}

async fn receive(State(inbox): State<Arc<Inbox>>, body: String) -> StatusCode {
    if let Ok(mut notices) = inbox.0.lock() {
        notices.push(body);
    }
    StatusCode::NO_CONTENT
}

impl Inbox {
    /// The claims of the first notice of type `typ` that `wanted` accepts, waiting up to 5 s
    /// for it (notices are sent off the request path). A notice whose signature does not
    /// verify with a key of `jwks` is ignored.
    pub async fn wait_for(
        &self,
        jwks: &Value,
        typ: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let notices = self.0.lock().map(|n| n.clone()).unwrap_or_default();
            if let Some(c) = notices
                .iter()
                .filter_map(|n| verified(n, jwks, typ))
                .find(|c| wanted(c))
            {
                return Some(c);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

/// The claims of `notice` if it is a JWS of type `typ` signed by a key of `jwks`.
fn verified(notice: &str, jwks: &Value, typ: &str) -> Option<Value> {
    let jws = surety_jose::jws::decode(notice, 64 * 1024).ok()?;
    if jws.header.typ.as_deref() != Some(typ) {
        return None;
    }
    let kid = jws.header.kid.clone()?;
    let jwk = jwks["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kid"] == kid.as_str())?;
    jws.verify(&surety_jose::PublicJwk::from_json(jwk).ok()?)
        .ok()?;
    jws.claims().ok()
}
