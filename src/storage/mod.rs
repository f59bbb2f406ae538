//! The storage layer: the only place that speaks SQL.
//!
//! petal runs on PostgreSQL in production and on an embedded SQLite file by default. Both
//! sit behind [`Database`]; each table family has its own module (`tokens`, `audit`,
//! `patients`), whose queries are written once in the SQL both engines accept (`$1`
//! placeholders work in both) and run through [`with_pool!`]. Where the engines truly
//! differ (locking, schema) the module says so and matches on the variant.

pub mod audit;
mod deletion;
pub mod destinations;
pub mod forwards;
mod ids;
pub mod index;
pub mod jobs;
pub mod models;
pub mod patients;
pub mod rounds;
pub mod search;
pub mod series_processing;
pub mod sessions;
pub mod tokens;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Runs one expression against whichever pool is in use; `$pool` is bound to it.
///
/// The expression is compiled once per engine, so a query that one engine cannot type
/// fails the build rather than at run time.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::storage::Database::Sqlite($pool) => $body,
            $crate::storage::Database::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs one statement with its binds, in order, on whichever pool is in use; evaluates to
/// `Result<u64, sqlx::Error>`, the number of rows it changed.
macro_rules! execute {
    ($db:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::storage::with_pool!($db, |pool| sqlx::query($sql)$(.bind($bind))*.execute(pool).await.map(|r| r.rows_affected()))
    };
}
pub(crate) use execute;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL scheme `{0}`: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    #[error("creating the directory for the SQLite file {path}: {source}")]
    SqliteDirectory { path: String, source: std::io::Error },
    #[error("a stored value is not valid: {0}")]
    Corrupt(String),
    /// A value could not be encoded to be written (nothing stored is wrong).
    #[error("cannot encode {what} for the database: {source}")]
    Encode { what: &'static str, source: Box<dyn std::error::Error + Send + Sync> },
}

impl StorageError {
    /// Whether the database could not be reached (stopped, restarting, out of connections),
    /// so the same request may succeed when repeated later; engine codes stay in here.
    pub fn is_unavailable(&self) -> bool {
        let StorageError::Database(error) = self else { return false };
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // PostgreSQL: connection exceptions (08…) and operator intervention (57P…, e.g.
            // the server shutting down or starting up).
            sqlx::Error::Database(database) => {
                database.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P"))
            }
            _ => false,
        }
    }

    /// The error of encoding `what` for a write.
    pub fn encode(what: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Encode { what, source: Box::new(source) }
    }
}

/// A connection pool to petal's database, PostgreSQL or SQLite.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which migrations a database has and lacks, for `/readyz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SchemaStatus {
    pub applied: usize,
    pub expected: usize,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        self.applied >= self.expected
    }
}

impl Database {
    /// Connects to `url`; a SQLite file (and its directory) is created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StorageError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Database::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|source| StorageError::SqliteDirectory { path: dir.display().to_string(), source })?;
            }
            let pool = SqlitePoolOptions::new().max_connections(max_connections).connect_with(options).await?;
            Ok(Database::Sqlite(pool))
        } else {
            let scheme = url.split(':').next().unwrap_or_default().to_owned();
            Err(StorageError::UnsupportedUrl(scheme))
        }
    }

    /// `postgres` or `sqlite`, for logs and `/readyz`.
    pub fn engine(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// The statement that opens a transaction which will write. On SQLite a deferred
    /// transaction that reads first and writes later fails at once with SQLITE_BUSY (no
    /// busy wait) when another connection wrote in between; IMMEDIATE takes the write lock
    /// up front, waiting out the busy timeout instead.
    pub(crate) fn begin_write(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "BEGIN IMMEDIATE",
            Database::Postgres(_) => "BEGIN",
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Database::Sqlite(_) => &SQLITE_MIGRATIONS,
            Database::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies pending migrations. On PostgreSQL sqlx holds an advisory lock meanwhile,
    /// so processes starting together apply each migration once; on SQLite the file's
    /// write lock serialises them.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        with_pool!(self, |pool| self.migrator().run(pool).await)?;
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StorageError> {
        execute!(self, "SELECT 1")?;
        Ok(())
    }

    /// How many of the migrations this binary knows are applied.
    pub async fn schema_status(&self) -> Result<SchemaStatus, StorageError> {
        let expected = self.migrator().iter().filter(|m| m.migration_type.is_up_migration()).count();
        let applied: Result<i64, sqlx::Error> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(pool).await
        });
        let applied = match applied {
            Ok(n) => usize::try_from(n).unwrap_or(0),
            // No bookkeeping table yet: nothing applied.
            Err(sqlx::Error::Database(_)) => 0,
            Err(other) => return Err(other.into()),
        };
        Ok(SchemaStatus { applied, expected })
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}
