//! What a study or patient deletion locks before it collects the blob keys it will remove,
//! shared by [`super::index`] (a study) and [`super::patients`] (a whole patient).

use super::Database;

/// Whose studies a deletion removes: `$1` is a study UID or a patient key.
#[derive(Debug, Clone, Copy)]
pub(super) enum StudiesOf {
    Study,
    Patient,
}

/// Selects the studies that `by` names, then their series, each `$lock`ed.
macro_rules! deletion_locks {
    ($studies:literal, $lock:literal) => {
        [
            concat!("SELECT study_uid FROM studies WHERE ", $studies, " ", $lock),
            concat!(
                "SELECT series_uid FROM series WHERE study_uid IN (SELECT study_uid FROM studies WHERE ",
                $studies,
                ") ",
                $lock
            ),
        ]
    };
}

/// What a deletion runs, in its write transaction, before it collects the blob keys of the
/// instances it is about to remove. The keys must name every instance the cascade removes,
/// including one that another transaction is recording at that moment. On PostgreSQL the
/// study rows and then their series rows are locked (parent to child, the order ingest
/// takes them): that waits for any transaction still adding a series or an instance under
/// them and keeps new ones out until the deletion commits; those then fail and drop their
/// blobs. A SQLite write transaction holds the whole file, so there they are plain reads.
pub(super) fn deletion_locks(db: &Database, by: StudiesOf) -> [&'static str; 2] {
    match (db, by) {
        (Database::Postgres(_), StudiesOf::Study) => deletion_locks!("study_uid = $1", "FOR UPDATE"),
        (Database::Postgres(_), StudiesOf::Patient) => deletion_locks!("patient_key = $1", "FOR UPDATE"),
        (Database::Sqlite(_), StudiesOf::Study) => deletion_locks!("study_uid = $1", ""),
        (Database::Sqlite(_), StudiesOf::Patient) => deletion_locks!("patient_key = $1", ""),
    }
}
