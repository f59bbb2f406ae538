//! `/api/v1/tokens` (admin) and `/api/v1/whoami`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};

use super::extract::{Actor, Json};
use super::{ApiError, AppState};
use crate::auth;
use crate::domain::Role;
use crate::storage::audit::Outcome;
use crate::storage::tokens::{self as token_store, TokenRecord};

#[derive(Serialize)]
pub struct WhoAmI {
    name: String,
    role: Role,
}

pub async fn whoami(actor: Actor) -> axum::Json<WhoAmI> {
    axum::Json(WhoAmI { name: actor.caller.name, role: actor.caller.role })
}

pub async fn list(State(state): State<AppState>) -> Result<axum::Json<Vec<TokenRecord>>, ApiError> {
    Ok(axum::Json(token_store::list(&state.db).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    role: Role,
    /// Lifetime in seconds; none means the token does not expire.
    expires_in_seconds: Option<i64>,
}

#[derive(Serialize)]
pub struct CreatedToken {
    token: TokenRecord,
    /// The secret, shown this once.
    secret: String,
}

/// Longest lifetime accepted (ten years), so the expiry stays a representable date.
const MAX_LIFETIME_SECONDS: i64 = 10 * 366 * 86_400;

pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Json(request): Json<CreateToken>,
) -> Result<(StatusCode, axum::Json<CreatedToken>), ApiError> {
    let name = request.name.as_str();
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(|c| c.is_ascii_control()) {
        return Err(ApiError::BadRequest(
            "`name` must be 1 to 100 characters, not all blank, without control characters".to_owned(),
        ));
    }
    let expires_at = match request.expires_in_seconds {
        None => None,
        Some(s) if (1..=MAX_LIFETIME_SECONDS).contains(&s) => Some(Utc::now() + Duration::seconds(s)),
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "`expires_in_seconds` must be between 1 and {MAX_LIFETIME_SECONDS}"
            )));
        }
    };
    let issued = auth::issue_token(&state.db, name, request.role, expires_at, &actor.caller.name).await?;
    actor.audit(&state.db, "token.create", &issued.record.id, None, Outcome::Success).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedToken { token: issued.record, secret: issued.secret })))
}

pub async fn revoke(
    State(state): State<AppState>,
    actor: Actor,
    Path(token_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if actor.caller.token_id.as_deref() == Some(token_id.as_str()) {
        return Err(ApiError::Conflict(
            "a token cannot revoke itself: use another admin token or `petal token revoke`".to_owned(),
        ));
    }
    if token_store::revoke(&state.db, &token_id, Utc::now()).await? {
        actor.audit(&state.db, "token.revoke", &token_id, None, Outcome::Success).await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no active token has this id".to_owned()))
    }
}
