//! The database as every command that uses it opens it.

use anyhow::Context;

use crate::app::config::DatabaseArgs;
use crate::storage::Database;

/// Connects and applies pending migrations, as every command that uses the database does.
pub(super) async fn open_database(args: &DatabaseArgs) -> anyhow::Result<Database> {
    let db = Database::connect(&args.url(), args.db_max_connections).await.context("connecting to the database")?;
    db.migrate().await.context("applying database migrations")?;
    Ok(db)
}
