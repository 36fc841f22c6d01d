use serde_json::Value;
use surety_testkit::{TestServer, http};

use crate::support::expect_error;

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    for path in ["/healthz", "/readyz"] {
        let r = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers().contains_key("x-request-id"),
            "every answer carries a request id"
        );
    }
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let server = TestServer::start().await;
    server.store().close().await;
    let r = http().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        http()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let server = TestServer::start().await;
    http().get(server.url("/healthz")).send().await.unwrap();
    let r = http().get(server.url("/metrics")).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(text.contains("surety_http_requests_total{"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "{text}");
    assert!(
        text.contains("surety_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let server = TestServer::start().await;
    let doc: Value = http()
        .get(server.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/oauth2/token",
        "/v1/enroll",
        "/v1/me",
        "/v1/humans",
        "/v1/humans/{id}",
        "/v1/humans/{id}/deactivate",
        "/v1/agents",
        "/v1/agents/{id}",
        "/v1/agents/{id}/keys",
        "/v1/agents/{id}/suspend",
        "/v1/audit",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["dpop"]["scheme"],
        "DPoP"
    );
    assert!(doc["components"]["schemas"]["AgentView"].is_object());
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let server = TestServer::start().await;
    let r = http()
        .get(server.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    let r = http().delete(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn request_ids_are_echoed() {
    let server = TestServer::start().await;
    let r = http()
        .get(server.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
}
