//! The `audit_events` table: an append-only record of who read or changed what.
//!
//! Rows name the actor (a token name), never a patient by name or DICOM PatientID: the
//! patient is referred to by petal's own `patient_key`. The database refuses updates and
//! deletes on this table (see the migrations).

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Database, StorageError, execute, with_pool};
use crate::domain::PatientKey;

/// Whether the audited action was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    /// Token name of the caller.
    pub actor: &'a str,
    /// Dotted verb, e.g. `token.create` or `patient.read`.
    pub action: &'a str,
    /// What was acted on, e.g. `/api/v1/patients/{key}` or a token id.
    pub resource: &'a str,
    pub patient_key: Option<&'a PatientKey>,
    pub outcome: Outcome,
    pub request_id: Option<&'a str>,
    /// What the action was asked to do beyond its resource, as `key=value` pairs (e.g.
    /// `strength=standard`); `None` where the resource says it all.
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub patient_key: Option<PatientKey>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

pub async fn append(db: &Database, event: &NewAuditEvent<'_>) -> Result<(), StorageError> {
    execute!(
        db,
        "INSERT INTO audit_events (at, actor, action, resource, patient_key, outcome, request_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        Utc::now(),
        event.actor,
        event.action,
        event.resource,
        event.patient_key,
        event.outcome.as_str(),
        event.request_id,
        event.detail
    )?;
    Ok(())
}

/// Filters for paging through the trail, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events older than this id (the `next_before` of the previous page).
    pub before_id: Option<i64>,
    pub patient_key: Option<PatientKey>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub limit: i64,
}

pub async fn page(db: &Database, query: &AuditQuery) -> Result<Vec<AuditEvent>, StorageError> {
    // NULL parameters switch a filter off, so one statement serves every combination.
    let sql = "SELECT id, at, actor, action, resource, patient_key, outcome, request_id, detail
               FROM audit_events
               WHERE ($1 IS NULL OR id < $1)
                 AND ($2 IS NULL OR patient_key = $2)
                 AND ($3 IS NULL OR actor = $3)
                 AND ($4 IS NULL OR action = $4)
               ORDER BY id DESC
               LIMIT $5";
    let rows = with_pool!(db, |pool| {
        sqlx::query_as(sql)
            .bind(query.before_id)
            .bind(query.patient_key.as_ref())
            .bind(query.actor.as_deref())
            .bind(query.action.as_deref())
            .bind(query.limit)
            .fetch_all(pool)
            .await
    })?;
    Ok(rows)
}
