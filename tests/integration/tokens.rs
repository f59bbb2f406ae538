//! Token life cycle through the API and through the `petal token` command.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Engine, TestApp, petal_binary};
use crate::on_both_engines;

async fn tokens_are_created_listed_and_revoked_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let body = json!({"name": "reading-room", "role": "radiologist", "expires_in_seconds": 3600});
    let (_, created) = app.admin(Method::POST, "/api/v1/tokens", Some(&body)).await;
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let id = created["token"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created["token"]["role"], "radiologist");
    assert!(created["token"]["expires_at"].is_string());

    let whoami: Value = app
        .client
        .get(app.url("/api/v1/whoami"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("json");
    assert_eq!(whoami["name"], "reading-room");

    let listed = app.admin_json("/api/v1/tokens").await;
    let listed = listed.as_array().expect("array");
    let entry = listed.iter().find(|t| t["id"] == id.as_str()).expect("listed");
    assert!(entry.get("secret").is_none() && entry.get("token_hash").is_none(), "no secret material is listed");
    assert!(entry["last_used_at"].is_string(), "use is recorded");

    let (revoked, _) = app.admin(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(revoked, StatusCode::NO_CONTENT);
    let after = app.client.get(app.url("/api/v1/whoami")).bearer_auth(&secret).send().await.expect("whoami");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "revocation works on the next request");
    let (again, _) = app.admin(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(again, StatusCode::NOT_FOUND);

    let own_id =
        listed.iter().find(|t| t["name"] == "bootstrap-admin").expect("bootstrap admin")["id"].as_str().expect("id");
    let (own, _) = app.admin(Method::DELETE, &format!("/api/v1/tokens/{own_id}"), None).await;
    assert_eq!(own, StatusCode::CONFLICT, "a token cannot revoke itself");

    let stored = petal::storage::tokens::find_by_hash(&app.db, &petal::auth::hash_secret(&secret)).await.expect("find");
    assert_eq!(stored.map(|t| t.id), Some(id.clone()), "the token is found by the hash of its secret");
    app.stop().await;
}
on_both_engines!(tokens_are_created_listed_and_revoked_at_once);

async fn bad_token_requests_get_reasons(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for body in [
        json!({"name": "", "role": "admin"}),
        json!({"name": "x", "role": "superuser"}),
        json!({"name": "x", "role": "pacs", "expires_in_seconds": 0}),
        json!({"name": "x", "role": "pacs", "colour": "blue"}),
        json!({"name": "tab\there", "role": "pacs"}),
    ] {
        let (code, error) = app.admin(Method::POST, "/api/v1/tokens", Some(&body)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
        assert!(!error["error"]["message"].as_str().expect("message").is_empty());
    }
    app.stop().await;
}
on_both_engines!(bad_token_requests_get_reasons);

/// `petal token create` prints a working token; `revoke` by name stops it.
async fn cli_tokens_work_against_the_server(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let run = |args: &[&str]| {
        let output = Command::new(petal_binary())
            .args(["token", "--database-url", &app.database.url])
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("PETAL_DATABASE_URL")
            .output()
            .expect("run petal token");
        assert!(output.status.success(), "petal token {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf8")
    };
    let secret = run(&["create", "--role", "pacs", "--name", "modality-1", "--expires-in", "30d"]).trim().to_owned();
    let response = app.client.get(app.url("/api/v1/whoami")).bearer_auth(&secret).send().await.expect("whoami");
    assert_eq!(response.status(), StatusCode::OK);
    let listing = run(&["list"]);
    assert!(listing.contains("modality-1") && listing.contains("pacs") && !listing.contains(&secret));
    run(&["revoke", "modality-1"]);
    let response = app.client.get(app.url("/api/v1/whoami")).bearer_auth(&secret).send().await.expect("whoami");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
on_both_engines!(cli_tokens_work_against_the_server);
