//! `GET /api/v1/audit`: the audit trail, newest first, one page at a time.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::extract::Query;
use super::{ApiError, AppState};
use crate::domain::PatientKey;
use crate::storage::audit::{self, AuditEvent, AuditQuery};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Page size, 1..=1000 (default 100).
    limit: Option<i64>,
    /// Only events older than this id: the previous page's `next_before`.
    before: Option<i64>,
    patient_key: Option<String>,
    actor: Option<String>,
    action: Option<String>,
}

#[derive(Serialize)]
pub struct AuditPage {
    events: Vec<AuditEvent>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    next_before: Option<i64>,
}

pub async fn page(
    State(state): State<AppState>,
    Query(params): Query<AuditParams>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("`limit` must be between 1 and 1000".to_owned()));
    }
    let query = AuditQuery {
        before_id: params.before,
        patient_key: params.patient_key.map(PatientKey::from),
        actor: params.actor,
        action: params.action,
        limit,
    };
    let events = audit::page(&state.db, &query).await?;
    let next_before = if events.len() as i64 == limit { events.last().map(|e| e.id) } else { None };
    Ok(axum::Json(AuditPage { events, next_before }))
}
