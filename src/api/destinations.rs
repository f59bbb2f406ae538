//! `/api/v1/destinations` (admin, audited): the PACS nodes petal forwards derived series
//! to, by DIMSE or DICOMweb; and `…/{name}/echo`, a short diagnostic (C-ECHO, or a QIDO
//! probe), the one handler that talks to another node.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::extract::{Actor, Json};
use super::{ApiError, AppState};
use crate::domain::{Destination, Endpoint, WebAuth};
use crate::storage::audit::Outcome;
use crate::storage::destinations;

/// Longest an echo waits for the destination.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

/// Fields a destination of each kind may have: anything else (a password, say) is refused
/// rather than silently dropped.
fn allowed_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "dicomweb" => &["name", "kind", "url", "auth", "forward"],
        "dimse" => &["name", "kind", "ae_title", "host", "port", "forward"],
        _ => &[],
    }
}

fn parse(body: Value) -> Result<Destination, ApiError> {
    let Value::Object(fields) = &body else {
        return Err(ApiError::BadRequest("the body must be a JSON object".into()));
    };
    let kind = fields.get("kind").and_then(Value::as_str).unwrap_or_default();
    if allowed_fields(kind).is_empty() {
        return Err(ApiError::BadRequest("`kind` must be `dicomweb` or `dimse`".into()));
    }
    if let Some(unknown) = fields.keys().find(|key| !allowed_fields(kind).contains(&key.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown field `{unknown}` for a `{kind}` destination (secrets are given as files: `bearer_file`, `password_file`)"
        )));
    }
    let destination: Destination =
        serde_json::from_value(body).map_err(|e| ApiError::BadRequest(format!("not a destination: {e}")))?;
    destination.validate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(destination)
}

/// A secret file must be readable by petal now, or the first forward would fail.
fn check_secret_files(destination: &Destination) -> Result<(), ApiError> {
    let files = match &destination.endpoint {
        Endpoint::Dicomweb { auth: Some(WebAuth::BearerFile(path)), .. } => vec![path],
        Endpoint::Dicomweb { auth: Some(WebAuth::Basic { password_file, .. }), .. } => vec![password_file],
        _ => Vec::new(),
    };
    for file in files {
        if let Err(err) = std::fs::File::open(file) {
            return Err(ApiError::Unprocessable(format!(
                "petal cannot read the secret file {}: {err}",
                file.display()
            )));
        }
    }
    Ok(())
}

pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Destination>), ApiError> {
    let destination = parse(body)?;
    check_secret_files(&destination)?;
    let resource = format!("/api/v1/destinations/{}", destination.name);
    if !destinations::create(&state.db, &destination).await? {
        actor.audit(&state.db, "destination.create", &resource, None, Outcome::Failure).await?;
        return Err(ApiError::Conflict(format!("a destination is already named `{}`", destination.name)));
    }
    actor.audit(&state.db, "destination.create", &resource, None, Outcome::Success).await?;
    tracing::info!(destination = %destination.name, kind = destination.kind(), "destination created");
    Ok((StatusCode::CREATED, axum::Json(destination)))
}

pub async fn list(State(state): State<AppState>) -> Result<axum::Json<Vec<Destination>>, ApiError> {
    Ok(axum::Json(destinations::list(&state.db).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let resource = format!("/api/v1/destinations/{name}");
    if !destinations::delete(&state.db, &name).await? {
        actor.audit(&state.db, "destination.delete", &resource, None, Outcome::Failure).await?;
        return Err(ApiError::NotFound(format!("no destination is named `{name}`")));
    }
    actor.audit(&state.db, "destination.delete", &resource, None, Outcome::Success).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The answer of an echo.
#[derive(Debug, Serialize)]
pub struct Echo {
    pub ok: bool,
    pub ms: u64,
    pub detail: String,
}

pub async fn echo(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<axum::Json<Echo>, ApiError> {
    let resource = format!("/api/v1/destinations/{name}/echo");
    let Some(destination) = destinations::get(&state.db, &name).await? else {
        actor.audit(&state.db, "destination.echo", &resource, None, Outcome::Failure).await?;
        return Err(ApiError::NotFound(format!("no destination is named `{name}`")));
    };
    let started = Instant::now();
    let probe = async {
        match &destination.endpoint {
            Endpoint::Dimse { ae_title, host, port } => {
                match state.forwarding.dimse_peer(ae_title, host, *port, ECHO_TIMEOUT).echo().await {
                    Ok(0) => (true, "C-ECHO answered success".to_owned()),
                    Ok(code) => (false, format!("C-ECHO answered 0x{code:04X}")),
                    Err(err) => (false, err.to_string()),
                }
            }
            Endpoint::Dicomweb { url, auth } => {
                crate::jobs::forward::dicomweb::probe(url, auth.as_ref(), ECHO_TIMEOUT).await
            }
        }
    };
    let (ok, detail) = tokio::time::timeout(ECHO_TIMEOUT, probe)
        .await
        .unwrap_or_else(|_| (false, format!("no answer within {} s", ECHO_TIMEOUT.as_secs())));
    let outcome = if ok { Outcome::Success } else { Outcome::Failure };
    actor.audit(&state.db, "destination.echo", &resource, None, outcome).await?;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(axum::Json(Echo { ok, ms, detail }))
}
