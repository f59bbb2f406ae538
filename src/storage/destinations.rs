//! The `destinations` table: the nodes petal forwards series to. A row holds the
//! destination's JSON (which names secret files, never secrets); the domain type
//! [`Destination`] validates it.

use sqlx::FromRow;

use super::jobs::now_ms;
use super::{Database, StorageError, execute, with_pool};
use crate::domain::{Destination, Endpoint, Forwarded};

/// What a destination's `spec` column holds: everything but its name.
#[derive(serde::Serialize, serde::Deserialize)]
struct Spec {
    #[serde(flatten)]
    endpoint: Endpoint,
    forward: Vec<Forwarded>,
}

#[derive(FromRow)]
struct Row {
    name: String,
    spec: String,
}

impl Row {
    fn into_destination(self) -> Result<Destination, StorageError> {
        let spec: Spec = serde_json::from_str(&self.spec)
            .map_err(|e| StorageError::Corrupt(format!("destination `{}`: {e}", self.name)))?;
        Ok(Destination { name: self.name, endpoint: spec.endpoint, forward: spec.forward })
    }
}

/// Adds a destination; `false` when its name is taken.
pub async fn create(db: &Database, destination: &Destination) -> Result<bool, StorageError> {
    let spec = Spec { endpoint: destination.endpoint.clone(), forward: destination.forward.clone() };
    let spec = serde_json::to_string(&spec).map_err(|e| StorageError::encode("a destination", e))?;
    let inserted = execute!(
        db,
        "INSERT INTO destinations (name, spec, created_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        &destination.name,
        spec,
        now_ms()
    )?;
    Ok(inserted == 1)
}

/// Every destination, by name.
pub async fn list(db: &Database) -> Result<Vec<Destination>, StorageError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as("SELECT name, spec FROM destinations ORDER BY name").fetch_all(pool).await
    })?;
    rows.into_iter().map(Row::into_destination).collect()
}

pub async fn get(db: &Database, name: &str) -> Result<Option<Destination>, StorageError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as("SELECT name, spec FROM destinations WHERE name = $1").bind(name).fetch_optional(pool).await
    })?;
    row.map(Row::into_destination).transpose()
}

/// Removes a destination and the forward states of its series; `false` when none had the name.
pub async fn delete(db: &Database, name: &str) -> Result<bool, StorageError> {
    Ok(execute!(db, "DELETE FROM destinations WHERE name = $1", name)? == 1)
}
