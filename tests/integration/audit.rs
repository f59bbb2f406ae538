//! The audit trail: patient reads are recorded with actor and request id, pages work,
//! and the database refuses to edit history.

use petal::domain::Role;
use petal::storage::Database;
use petal::storage::patients::{PatientIdentity, upsert};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Engine, TestApp};
use crate::on_both_engines;

async fn patient_reads_are_audited(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let identity = PatientIdentity { patient_id: "12345".into(), issuer: "HOSP-A".into(), ..Default::default() };
    let key = upsert(&app.db, &identity).await.expect("patient");
    let other =
        upsert(&app.db, &PatientIdentity { issuer: "HOSP-B".into(), ..identity.clone() }).await.expect("patient");
    assert_ne!(key, other, "the same PatientID from two issuers is two patients");
    assert_eq!(upsert(&app.db, &identity).await.expect("again"), key, "upsert is idempotent");

    let reader = app.token(Role::Radiologist).await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/patients/{key}")))
        .bearer_auth(&reader)
        .header("x-request-id", "audit-test-1")
        .send()
        .await
        .expect("read");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "audit-test-1", "the request id is propagated");

    let found: Value = app
        .client
        .get(app.url("/api/v1/patients?patient_id=12345&issuer=HOSP-B"))
        .bearer_auth(&reader)
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert_eq!(found["patients"].as_array().expect("list").len(), 1);
    assert_eq!(found["patients"][0]["patient_key"], other.as_str());

    let page = app.admin_json(&format!("/api/v1/audit?patient_key={key}")).await;
    let events = page["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "patient.read");
    assert_eq!(events[0]["actor"], "test-radiologist");
    assert_eq!(events[0]["request_id"], "audit-test-1");
    assert_eq!(events[0]["outcome"], "success");

    // Paging: newest first, `next_before` continues.
    let first = app.admin_json("/api/v1/audit?limit=1").await;
    let before = first["next_before"].as_i64().expect("more pages");
    let second = app.admin_json(&format!("/api/v1/audit?limit=1&before={before}")).await;
    assert!(second["events"][0]["id"].as_i64().expect("id") < before);

    let edit = match &app.db {
        Database::Sqlite(pool) => {
            sqlx::query("UPDATE audit_events SET actor = 'mallory'").execute(pool).await.map(|_| ())
        }
        Database::Postgres(pool) => {
            sqlx::query("UPDATE audit_events SET actor = 'mallory'").execute(pool).await.map(|_| ())
        }
    };
    assert!(edit.is_err(), "the audit table is append-only");
    let erase = match &app.db {
        Database::Sqlite(pool) => sqlx::query("DELETE FROM audit_events").execute(pool).await.map(|_| ()),
        Database::Postgres(pool) => sqlx::query("DELETE FROM audit_events").execute(pool).await.map(|_| ()),
    };
    assert!(erase.is_err(), "audit events cannot be deleted");
    app.stop().await;
}
on_both_engines!(patient_reads_are_audited);
