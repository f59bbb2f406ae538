//! The `patients` table. A patient is a DICOM PatientID *within* its issuer
//! (IssuerOfPatientID), so two hospitals' "12345" are two patients; petal's API names
//! patients by their `patient_key` only.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Database, StorageError, with_pool};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct Patient {
    pub patient_key: String,
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

/// A fresh key for a patient petal has not seen.
pub(super) fn new_key() -> String {
    format!("pk-{}", uuid::Uuid::new_v4().simple())
}

/// Returns the key of the patient with this identity, creating the row when it is new.
/// Safe under concurrent ingest of the same patient.
pub async fn upsert(db: &Database, identity: &PatientIdentity) -> Result<String, StorageError> {
    let candidate = new_key();
    with_pool!(db, |pool| {
        sqlx::query(INSERT_IF_NEW)
            .bind(&candidate)
            .bind(&identity.patient_id)
            .bind(&identity.issuer)
            .bind(&identity.patient_name)
            .bind(&identity.birth_date)
            .bind(&identity.sex)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    let key: String = with_pool!(db, |pool| {
        sqlx::query_scalar(KEY_OF).bind(&identity.patient_id).bind(&identity.issuer).fetch_one(pool).await
    })?;
    Ok(key)
}

pub async fn get(db: &Database, patient_key: &str) -> Result<Option<Patient>, StorageError> {
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
