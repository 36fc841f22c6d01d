//! RFC 9396 — OAuth 2.0 Rich Authorization Requests, as CIBA carries them.

use serde_json::json;
use surety_testkit::TestServer;

use crate::api::approvals::bc_authorize;
use crate::support::{CRM, delegation, expect_error, get_json};

#[tokio::test]
async fn rfc9396_s5_an_unknown_type_or_malformed_object_is_invalid_authorization_details() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let agent = d.agent.id.to_string();
    for bad in [
        json!([{"type": "payment_initiation", "locations": [CRM]}]),
        json!([{"locations": [CRM], "action": "payments.transfer"}]),
        json!({"type": "surety_action"}),
        json!([{"type": "surety_action", "locations": [CRM], "action": "payments.transfer", "resource": {"type": "Resource", "id": "a"}, "arguments": "all"}]),
    ] {
        let r = bc_authorize(
            &server,
            &d.key,
            &agent,
            &[
                ("login_hint", server.admin.id.to_string()),
                ("authorization_details", bad.to_string()),
            ],
        )
        .await;
        expect_error(r, 400, "invalid_authorization_details").await;
    }
    server.stop().await;
}

#[tokio::test]
async fn rfc9396_s10_metadata_lists_the_supported_types() {
    let server = TestServer::start().await;
    let meta = get_json(&server, "/.well-known/oauth-authorization-server").await;
    assert_eq!(
        meta["authorization_details_types_supported"],
        json!(["surety_action"])
    );
    server.stop().await;
}
