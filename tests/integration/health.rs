//! Probes and metrics.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Engine, TestApp};
use crate::on_both_engines;

async fn probes_answer_and_metrics_count_requests(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let health = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);

    let ready = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"]["ok"], true);
    assert_eq!(ready["migrations"]["ok"], true);

    for _ in 0..3 {
        app.client.get(app.url("/api/v1/tokens")).send().await.expect("unauthenticated");
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(
        metrics.contains(r#"petal_http_requests_total{method="GET",path="/api/v1/tokens",status="401"} 3"#),
        "requests are counted by method, matched path and status:\n{metrics}"
    );
    assert!(metrics.contains(r#"petal_http_requests_total{method="GET",path="/healthz",status="200"} 1"#));
    assert!(metrics.contains("petal_http_request_duration_seconds_bucket"));
    app.stop().await;
}
on_both_engines!(probes_answer_and_metrics_count_requests);

async fn readiness_fails_when_migrations_are_missing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    // Drop the bookkeeping the readiness check relies on; the server must say not ready.
    match &app.db {
        petal::storage::Database::Sqlite(pool) => {
            sqlx::query("DELETE FROM _sqlx_migrations").execute(pool).await.expect("delete");
        }
        petal::storage::Database::Postgres(pool) => {
            sqlx::query("DELETE FROM _sqlx_migrations").execute(pool).await.expect("delete");
        }
    }
    let ready = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["migrations"]["ok"], false);
    assert_eq!(ready["database"]["ok"], true);
    app.stop().await;
}
on_both_engines!(readiness_fails_when_migrations_are_missing);
