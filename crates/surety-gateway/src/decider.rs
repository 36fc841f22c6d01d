//! Who decides: Surety over HTTP (`surety gateway`, the default), or the Surety server the
//! gateway runs in (`surety serve --gateway`), which skips the HTTP hop and the resource
//! server's own authentication for each question.

use async_trait::async_trait;
use surety_api::decisions::{DecisionInput, DecisionView};
use surety_sdk::{ClientError, ResourceVerifier};

/// Answers the gateway's questions about a token and an action.
#[async_trait]
pub trait Decider: Send + Sync + std::fmt::Debug {
    /// `POST /v1/decisions`, or its in-process equivalent.
    async fn decide(&self, input: &DecisionInput) -> Result<DecisionView, ClientError>;
    /// Whether the token (whose `jti` is `jti`) is still active for this resource.
    async fn is_active(&self, token: &str, jti: &str) -> Result<bool, ClientError>;
}

#[async_trait]
impl Decider for ResourceVerifier {
    async fn decide(&self, input: &DecisionInput) -> Result<DecisionView, ClientError> {
        ResourceVerifier::decide(self, input).await
    }

    async fn is_active(&self, token: &str, jti: &str) -> Result<bool, ClientError> {
        ResourceVerifier::is_active(self, token, jti).await
    }
}
