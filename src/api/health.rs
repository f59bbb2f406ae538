//! Probes and metrics: `/healthz` (the process lives), `/readyz` (it can serve), `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use super::AppState;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
}

pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize)]
pub struct Readiness {
    status: &'static str,
    database: Check,
    migrations: Check,
    /// The inference engine and base model; "not needed" in a process that runs no jobs.
    inference: Check,
}

#[derive(Serialize)]
pub struct Check {
    ok: bool,
    detail: String,
}

/// Ready when the database answers, every migration this binary knows is applied, and (in a
/// process that runs jobs) the inference engine runs with the base model loaded.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = match state.db.ping().await {
        Ok(()) => Check { ok: true, detail: state.db.engine().to_owned() },
        Err(err) => Check { ok: false, detail: err.to_string() },
    };
    let migrations = match state.db.schema_status().await {
        Ok(s) => Check { ok: s.is_current(), detail: format!("{} of {} applied", s.applied, s.expected) },
        Err(err) => Check { ok: false, detail: err.to_string() },
    };
    let inference = state.inference.readiness();
    let inference = Check { ok: inference.ok, detail: inference.detail };
    let ready = database.ok && migrations.ok && inference.ok;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { status: if ready { "ready" } else { "not_ready" }, database, migrations, inference }))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics.render_with_queue(&state.db).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}
