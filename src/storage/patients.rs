//! The `patients` table. A patient is a DICOM PatientID *within* its issuer
//! (IssuerOfPatientID), so two hospitals' "12345" are two patients; petal's API names
//! patients by their `patient_key` only.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::deletion::{StudiesOf, deletion_locks};
use super::{Database, StorageError, execute, with_pool};
use crate::domain::{PatientKey, RoundId};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct Patient {
    pub patient_key: PatientKey,
    pub patient_id: String,
    pub issuer: String,
    pub patient_name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The identity and demographics carried by an incoming instance.
#[derive(Debug, Clone, Default)]
pub struct PatientIdentity {
    pub patient_id: String,
    /// Empty when the instance names no issuer.
    pub issuer: String,
    pub patient_name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
}

/// `SELECT` of every column, followed by the rest of the statement.
macro_rules! select_patients {
    ($rest:literal) => {
        concat!(
            "SELECT patient_key, patient_id, issuer, patient_name, birth_date, sex, created_at FROM patients ",
            $rest
        )
    };
}

/// Inserts a patient unless one with this (patient_id, issuer) exists. Binds: key,
/// patient_id, issuer, name, birth date, sex, created_at. Shared with the ingest
/// transaction in `storage::index`, so both create patients the same way.
pub(super) const INSERT_IF_NEW: &str =
    "INSERT INTO patients (patient_key, patient_id, issuer, patient_name, birth_date, sex, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (patient_id, issuer) DO NOTHING";

/// The key of the patient with (patient_id, issuer).
pub(super) const KEY_OF: &str = "SELECT patient_key FROM patients WHERE patient_id = $1 AND issuer = $2";

/// Returns the key of the patient with this identity, creating the row when it is new.
/// Safe under concurrent ingest of the same patient.
pub async fn upsert(db: &Database, identity: &PatientIdentity) -> Result<PatientKey, StorageError> {
    let candidate = PatientKey::generate();
    execute!(
        db,
        INSERT_IF_NEW,
        &candidate,
        &identity.patient_id,
        &identity.issuer,
        &identity.patient_name,
        &identity.birth_date,
        &identity.sex,
        Utc::now()
    )?;
    let key: PatientKey = with_pool!(db, |pool| {
        sqlx::query_scalar(KEY_OF).bind(&identity.patient_id).bind(&identity.issuer).fetch_one(pool).await
    })?;
    Ok(key)
}

pub async fn get(db: &Database, patient_key: &PatientKey) -> Result<Option<Patient>, StorageError> {
    let sql = select_patients!("WHERE patient_key = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(patient_key).fetch_optional(pool).await)?)
}

/// Lists patients, optionally only those with a given DICOM PatientID (and issuer).
pub async fn list(
    db: &Database,
    patient_id: Option<&str>,
    issuer: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Patient>, StorageError> {
    let sql = select_patients!(
        "WHERE ($1 IS NULL OR patient_id = $1) AND ($2 IS NULL OR issuer = $2)
         ORDER BY created_at, patient_key LIMIT $3 OFFSET $4"
    );
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(sql).bind(patient_id).bind(issuer).bind(limit).bind(offset).fetch_all(pool).await
    })?)
}

/// How erasing a patient ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erasure {
    /// Gone: these blobs held the patient's instances, for the caller to delete.
    Erased {
        blob_keys: Vec<String>,
    },
    /// A round is training on the patient's data: cancel it first.
    RoundRunning(RoundId),
    NotFound,
}

/// Erases a patient: their studies (series, instances and processing records cascade),
/// rounds, model versions and active-version pointer, in one transaction. The erasure is
/// recorded (by `patient_key` only), which is also what lets the database delete the
/// patient's otherwise immutable model versions. The base model and the audit trail stay.
/// The patient row is locked before their studies and series (see
/// `deletion_locks`), so a study being added for them is waited for too.
pub async fn erase(db: &Database, patient_key: &PatientKey, erased_by: &str) -> Result<Erasure, StorageError> {
    let now = Utc::now().timestamp_millis();
    let lock_patient = match db {
        Database::Postgres(_) => "SELECT patient_key FROM patients WHERE patient_key = $1 FOR UPDATE",
        Database::Sqlite(_) => "SELECT patient_key FROM patients WHERE patient_key = $1",
    };
    let locks = deletion_locks(db, StudiesOf::Patient);
    let outcome = with_pool!(db, |pool| {
        async {
            let mut tx = pool.begin_with(db.begin_write()).await?;
            let exists: Option<String> =
                sqlx::query_scalar(lock_patient).bind(patient_key).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Ok::<_, sqlx::Error>(Erasure::NotFound);
            }
            for lock in locks {
                sqlx::query(lock).bind(patient_key).execute(&mut *tx).await?;
            }
            let running: Option<RoundId> =
                sqlx::query_scalar("SELECT id FROM rounds WHERE patient_key = $1 AND state = 'running'")
                    .bind(patient_key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = running {
                return Ok(Erasure::RoundRunning(id));
            }
            let blob_keys: Vec<String> = sqlx::query_scalar(
                "SELECT i.blob_key FROM instances i
                 JOIN series se ON se.series_uid = i.series_uid
                 JOIN studies st ON st.study_uid = se.study_uid
                 WHERE st.patient_key = $1",
            )
            .bind(patient_key)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO patient_erasures (patient_key, erased_by, erased_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (patient_key) DO NOTHING",
            )
            .bind(patient_key)
            .bind(erased_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for statement in [
                "DELETE FROM rounds WHERE patient_key = $1",
                "DELETE FROM patient_models WHERE patient_key = $1",
                "DELETE FROM model_versions WHERE patient_key = $1",
                "DELETE FROM studies WHERE patient_key = $1",
                "DELETE FROM patients WHERE patient_key = $1",
            ] {
                sqlx::query(statement).bind(patient_key).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Erasure::Erased { blob_keys })
        }
        .await
    })?;
    Ok(outcome)
}
