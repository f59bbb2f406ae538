//! The DICOM index: studies, series and instances (the `patients` module owns patients).
//!
//! Recording instances is one transaction per batch (patient, study, series, instance rows
//! of every instance of a STOW-RS batch), and it is idempotent by SOP Instance UID: a
//! second copy of an instance never replaces the first.
//! An instance petal derived goes only into a study that is still indexed, so a job that
//! finishes after its patient was erased cannot bring the patient back.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sqlx::FromRow;

use super::deletion::{StudiesOf, deletion_locks};
use super::{Database, StorageError, patients, with_pool};
use crate::dicom::ParsedInstance;
use crate::domain::PatientKey;

/// Where an instance already stored lives, and what its bytes hash to.
#[derive(Debug, Clone, FromRow)]
pub struct StoredInstance {
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub series_uid: String,
    pub study_uid: String,
    pub transfer_syntax_uid: String,
    pub blob_key: String,
    pub sha256: String,
    pub size_bytes: i64,
}

/// Result of [`record_instance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The instance is new and now indexed.
    Inserted,
    /// An instance with this SOP Instance UID was indexed before; its hash is given so the
    /// caller can tell an identical re-send from a conflicting one.
    AlreadyPresent { sha256: String, blob_key: String },
    /// The instance was to join an existing study, and that study is no longer indexed
    /// (its patient was erased meanwhile). Nothing was recorded.
    StudyGone,
}

/// Which rows above its series recording an instance may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Received from outside (STOW): the patient and study are created when new.
    CreateStudy,
    /// Made by petal from a stored series: the study must still be indexed. On PostgreSQL
    /// the study row is share-locked until the instance is recorded, so an erasure either
    /// waits for this instance (and removes it with the rest) or has already removed the
    /// study (and this instance is refused).
    ExistingStudy,
}

/// The storage facts of a received instance.
#[derive(Debug, Clone)]
pub struct BlobFacts<'a> {
    pub blob_key: &'a str,
    pub sha256: &'a str,
    pub size_bytes: i64,
}

/// Indexes an instance whose blob is already written, creating its series row (and, when
/// `placement` allows, its patient and study rows) as needed, in one transaction.
pub async fn record_instance(
    db: &Database,
    instance: &ParsedInstance,
    blob: &BlobFacts<'_>,
    placement: Placement,
) -> Result<Recorded, StorageError> {
    let mut recorded = record_instances(db, &[(instance, blob.clone())], placement).await?;
    recorded.pop().ok_or_else(|| StorageError::Corrupt("recording one instance gave no result".to_owned()))
}

/// Indexes instances whose blobs are already written, all in one transaction (one commit
/// for a whole STOW-RS request part batch, instead of one per instance); the results are in
/// the order given.
///
/// Rows are written in one global order (patient, study, series, then SOP Instance UID),
/// so two batches sharing rows wait for each other instead of deadlocking on PostgreSQL.
/// The insert itself decides whether an instance is new: there is no look-up before it.
pub async fn record_instances(
    db: &Database,
    batch: &[(&ParsedInstance, BlobFacts<'_>)],
    placement: Placement,
) -> Result<Vec<Recorded>, StorageError> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| {
            let instance = batch[i].0;
            (
                &instance.patient.patient_id,
                &instance.patient.issuer,
                instance.study_uid.as_str(),
                instance.series_uid.as_str(),
                instance.sop_instance_uid.as_str(),
            )
        };
        key(a).cmp(&key(b))
    });
    let now = Utc::now();
    let lock_study = match db {
        Database::Postgres(_) => "SELECT study_uid FROM studies WHERE study_uid = $1 FOR KEY SHARE",
        // A SQLite write transaction holds the whole file: nothing can erase meanwhile.
        Database::Sqlite(_) => "SELECT study_uid FROM studies WHERE study_uid = $1",
    };
    let inserted: Vec<Option<u64>> = with_pool!(db, |pool| {
        async {
            let mut tx = pool.begin_with(db.begin_write()).await?;
            // Rows above the instances that this transaction has written or found already.
            let mut patient_keys: HashMap<(&str, &str), PatientKey> = HashMap::new();
            let mut studies: HashMap<&str, bool> = HashMap::new();
            let mut series_written: HashSet<&str> = HashSet::new();
            let mut inserted = vec![None; batch.len()];
            for &index in &order {
                let (instance, blob) = &batch[index];
                let (p, st, se, im) = (&instance.patient, &instance.study, &instance.series, &instance.image);
                let study_uid = instance.study_uid.as_str();
                match placement {
                    Placement::ExistingStudy => {
                        let present = match studies.get(study_uid) {
                            Some(present) => *present,
                            None => {
                                let found: Option<String> =
                                    sqlx::query_scalar(lock_study).bind(study_uid).fetch_optional(&mut *tx).await?;
                                studies.insert(study_uid, found.is_some());
                                found.is_some()
                            }
                        };
                        if !present {
                            continue;
                        }
                    }
                    Placement::CreateStudy => {
                        let identity = (p.patient_id.as_str(), p.issuer.as_str());
                        if let Entry::Vacant(slot) = patient_keys.entry(identity) {
                            sqlx::query(patients::INSERT_IF_NEW)
                                .bind(PatientKey::generate())
                                .bind(&p.patient_id)
                                .bind(&p.issuer)
                                .bind(&p.name)
                                .bind(&p.birth_date)
                                .bind(&p.sex)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            let key: PatientKey = sqlx::query_scalar(patients::KEY_OF)
                                .bind(&p.patient_id)
                                .bind(&p.issuer)
                                .fetch_one(&mut *tx)
                                .await?;
                            slot.insert(key);
                        }
                        if !studies.contains_key(study_uid) {
                            sqlx::query(
                                "INSERT INTO studies (study_uid, patient_key, study_date, study_time, accession_number,
                                                      study_id, study_description, referring_physician, created_at)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                                 ON CONFLICT (study_uid) DO NOTHING",
                            )
                            .bind(study_uid)
                            .bind(&patient_keys[&identity])
                            .bind(&st.date)
                            .bind(&st.time)
                            .bind(&st.accession_number)
                            .bind(&st.study_id)
                            .bind(&st.description)
                            .bind(&st.referring_physician)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                            studies.insert(study_uid, true);
                        }
                    }
                }
                if series_written.insert(instance.series_uid.as_str()) {
                    sqlx::query(
                        "INSERT INTO series (series_uid, study_uid, modality, series_number, series_description,
                                             frame_of_reference_uid, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (series_uid) DO NOTHING",
                    )
                    .bind(instance.series_uid.as_str())
                    .bind(study_uid)
                    .bind(&se.modality)
                    .bind(se.number)
                    .bind(&se.description)
                    .bind(&se.frame_of_reference_uid)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let rows = sqlx::query(
                    "INSERT INTO instances (sop_instance_uid, series_uid, sop_class_uid, transfer_syntax_uid,
                                            instance_number, rows, columns, number_of_frames, image_position,
                                            image_orientation, pixel_spacing, slice_thickness, blob_key, sha256,
                                            size_bytes, metadata, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
                     ON CONFLICT (sop_instance_uid) DO NOTHING",
                )
                .bind(instance.sop_instance_uid.as_str())
                .bind(instance.series_uid.as_str())
                .bind(&instance.sop_class_uid)
                .bind(&instance.transfer_syntax_uid)
                .bind(im.instance_number)
                .bind(im.rows)
                .bind(im.columns)
                .bind(im.number_of_frames)
                .bind(&im.image_position)
                .bind(&im.image_orientation)
                .bind(&im.pixel_spacing)
                .bind(im.slice_thickness)
                .bind(blob.blob_key)
                .bind(blob.sha256)
                .bind(blob.size_bytes)
                .bind(instance.metadata.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                inserted[index] = Some(rows);
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(inserted)
        }
        .await
    })?;
    let mut recorded = Vec::with_capacity(batch.len());
    for ((instance, _), inserted) in batch.iter().zip(inserted) {
        recorded.push(match inserted {
            None => Recorded::StudyGone,
            Some(1) => Recorded::Inserted,
            Some(_) => {
                let existing = find_instance(db, instance.sop_instance_uid.as_str())
                    .await?
                    .ok_or_else(|| StorageError::Corrupt("an instance vanished while being recorded".to_owned()))?;
                Recorded::AlreadyPresent { sha256: existing.sha256, blob_key: existing.blob_key }
            }
        });
    }
    Ok(recorded)
}

/// `SELECT` of a stored instance's location, joined to its series, then the rest.
macro_rules! select_stored {
    ($rest:literal) => {
        concat!(
            "SELECT i.sop_instance_uid, i.sop_class_uid, i.series_uid, se.study_uid, i.transfer_syntax_uid,
                    i.blob_key, i.sha256, i.size_bytes
             FROM instances i JOIN series se ON se.series_uid = i.series_uid ",
            $rest
        )
    };
}

pub async fn find_instance(db: &Database, sop_instance_uid: &str) -> Result<Option<StoredInstance>, StorageError> {
    let sql = select_stored!("WHERE i.sop_instance_uid = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(sop_instance_uid).fetch_optional(pool).await)?)
}

/// Instances to retrieve: a whole study, one series of it, or one instance of that series,
/// in series then instance-number order. Empty when nothing matches.
pub async fn instances_in(
    db: &Database,
    study_uid: &str,
    series_uid: Option<&str>,
    sop_instance_uid: Option<&str>,
) -> Result<Vec<StoredInstance>, StorageError> {
    let sql = select_stored!(
        "WHERE se.study_uid = $1 AND ($2 IS NULL OR i.series_uid = $2) AND ($3 IS NULL OR i.sop_instance_uid = $3)
         ORDER BY se.series_number, i.series_uid, i.instance_number, i.sop_instance_uid"
    );
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(sql).bind(study_uid).bind(series_uid).bind(sop_instance_uid).fetch_all(pool).await
    })?)
}

/// The stored DICOM JSON metadata of the same selection as [`instances_in`].
pub async fn metadata_in(
    db: &Database,
    study_uid: &str,
    series_uid: Option<&str>,
    sop_instance_uid: Option<&str>,
) -> Result<Vec<(String, String, String)>, StorageError> {
    let sql = "SELECT i.series_uid, i.sop_instance_uid, i.metadata
               FROM instances i JOIN series se ON se.series_uid = i.series_uid
               WHERE se.study_uid = $1 AND ($2 IS NULL OR i.series_uid = $2) AND ($3 IS NULL OR i.sop_instance_uid = $3)
               ORDER BY se.series_number, i.series_uid, i.instance_number, i.sop_instance_uid";
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(sql).bind(study_uid).bind(series_uid).bind(sop_instance_uid).fetch_all(pool).await
    })?)
}

/// The patient a study belongs to, for auditing.
pub async fn study_patient(db: &Database, study_uid: &str) -> Result<Option<PatientKey>, StorageError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT patient_key FROM studies WHERE study_uid = $1")
            .bind(study_uid)
            .fetch_optional(pool)
            .await
    })?)
}

/// Removes a study's index rows (series and instances cascade) and returns the blob keys
/// that belonged to it, for the caller to delete once the rows are gone.
pub async fn delete_study(db: &Database, study_uid: &str) -> Result<Option<Vec<String>>, StorageError> {
    let locks = deletion_locks(db, StudiesOf::Study);
    let keys: Option<Vec<String>> = with_pool!(db, |pool| {
        async {
            // Reads the blob keys, then deletes: a write transaction from the start.
            let mut tx = pool.begin_with(db.begin_write()).await?;
            for lock in locks {
                sqlx::query(lock).bind(study_uid).execute(&mut *tx).await?;
            }
            let keys: Vec<String> = sqlx::query_scalar(
                "SELECT i.blob_key FROM instances i JOIN series se ON se.series_uid = i.series_uid
                 WHERE se.study_uid = $1",
            )
            .bind(study_uid)
            .fetch_all(&mut *tx)
            .await?;
            let deleted =
                sqlx::query("DELETE FROM studies WHERE study_uid = $1").bind(study_uid).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>((deleted.rows_affected() > 0).then_some(keys))
        }
        .await
    })?;
    Ok(keys)
}
