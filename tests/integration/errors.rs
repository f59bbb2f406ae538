//! Every error, whether from a handler or from the HTTP stack, has the same JSON shape
//! with the request id; bad input gets a status and a reason a person can act on.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Engine, TestApp};
use crate::on_both_engines;

async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let request_id = response.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    let body: Value = response.json().await.expect("json body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["request_id"], request_id.as_str(), "the body quotes the request id");
    assert!(!body["error"]["message"].as_str().expect("message").is_empty());
    body
}

async fn errors_share_one_shape(engine: Engine) {
    let app = TestApp::spawn_with(engine, &["--json-body-limit", "1024"]).await;
    let admin = &app.admin_token;

    let unknown = app.client.get(app.url("/no/such/route")).send().await.expect("request");
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;

    let wrong_method = app.client.put(app.url("/healthz")).send().await.expect("request");
    assert_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    let bad_json = app
        .client
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_error(bad_json, StatusCode::BAD_REQUEST, "bad_request").await;

    let wrong_type =
        app.client.post(app.url("/api/v1/tokens")).bearer_auth(admin).body("name=x").send().await.expect("request");
    let body = assert_error(wrong_type, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(body["error"]["message"].as_str().expect("message").contains("application/json"));

    let too_large = app
        .client
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\", \"role\": \"pacs\"}}", "x".repeat(4096)))
        .send()
        .await
        .expect("request");
    assert_error(too_large, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let nul_in_body = app
        .client
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body(r#"{"name": "a\u0000b", "role": "pacs"}"#)
        .send()
        .await
        .expect("request");
    assert_error(nul_in_body, StatusCode::BAD_REQUEST, "bad_request").await;

    let nul_in_query =
        app.client.get(app.url("/api/v1/patients?patient_id=a%00b")).bearer_auth(admin).send().await.expect("request");
    assert_error(nul_in_query, StatusCode::BAD_REQUEST, "bad_request").await;

    let bad_query =
        app.client.get(app.url("/api/v1/audit?limit=many")).bearer_auth(admin).send().await.expect("request");
    assert_error(bad_query, StatusCode::BAD_REQUEST, "bad_request").await;

    let unknown_patient =
        app.client.get(app.url("/api/v1/patients/pk-nobody")).bearer_auth(admin).send().await.expect("request");
    assert_error(unknown_patient, StatusCode::NOT_FOUND, "not_found").await;
    app.stop().await;
}
on_both_engines!(errors_share_one_shape);

async fn request_ids_are_generated_when_absent(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let a = app.client.get(app.url("/healthz")).send().await.expect("request");
    let b = app.client.get(app.url("/healthz")).send().await.expect("request");
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert!(!id(&a).is_empty());
    assert_ne!(id(&a), id(&b));
    app.stop().await;
}
on_both_engines!(request_ids_are_generated_when_absent);
