//! `/api/v1/jobs`: the job queue's state, for admins watching the workers.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::extract::Query;
use super::{ApiError, AppState};
use crate::domain::{JobId, JobState};
use crate::storage::jobs::{self, Job};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobParams {
    state: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
pub struct JobList {
    jobs: Vec<Job>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<JobParams>,
) -> Result<axum::Json<JobList>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("`limit` must be between 1 and 1000".into()));
    }
    let wanted = match params.state.as_deref().map(str::parse::<JobState>).transpose() {
        Ok(wanted) => wanted,
        Err(_) => {
            let words: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
            let found = params.state.as_deref().unwrap_or_default();
            return Err(ApiError::BadRequest(format!("unknown state `{found}`: use one of {}", words.join(", "))));
        }
    };
    let found = jobs::list(&state.db, wanted, params.kind.as_deref(), limit).await?;
    Ok(axum::Json(JobList { jobs: found }))
}

pub async fn get(State(state): State<AppState>, Path(job_id): Path<String>) -> Result<axum::Json<Job>, ApiError> {
    jobs::get(&state.db, &JobId::from(job_id))
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::NotFound("no job has this id".into()))
}
