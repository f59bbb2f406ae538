//! Deleting what other work is still writing: a derived series that finishes after its
//! patient was erased, and an instance being recorded while a patient or a study is
//! deleted. Nothing may come back, and no blob may be left without its index row.

use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use petal::blobs::BlobStore;
use petal::dicom::Uid;
use petal::dicom::series_kind::DescriptionRules;
use petal::domain::Role;
use petal::ingest::{IngestError, Origin, Stored};
use petal::jobs::denoise::completion::store_and_note;
use petal::storage::index::{delete_study, study_patient};
use petal::storage::patients::{self, Erasure};
use reqwest::StatusCode;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::common::{Engine, TestApp};
use crate::fixtures::SeriesSpec;
use crate::learning::walk;
use crate::on_both_engines;
use crate::stow::stow;

/// A server without a worker holding one stored series of two slices.
async fn app_with_a_series(engine: Engine) -> (TestApp, SeriesSpec) {
    let app = TestApp::spawn_with(engine, &["--no-worker"]).await;
    let token = app.token(Role::Pacs).await;
    let series = SeriesSpec::new(2);
    let (status, body, _) = stow(&app, &token, "/dicomweb/studies", &series.instances().expect("instances")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (app, series)
}

fn blob_store(app: &TestApp) -> BlobStore {
    BlobStore::open(&app.database.dir.path().join("blobs").display().to_string()).expect("blob store")
}

/// A second series of the same study, as a denoise job writes it.
fn derived_of(series: &SeriesSpec) -> SeriesSpec {
    SeriesSpec { study_uid: series.study_uid.clone(), ..SeriesSpec::new(2) }
}

/// A denoise job still writing when the admin erases the patient must not bring the
/// patient, the study or a blob back.
async fn a_derived_series_finishing_after_erasure_is_dropped(engine: Engine) {
    let (app, series) = app_with_a_series(engine).await;
    let blobs = blob_store(&app);
    let rules = DescriptionRules::default();
    let study = Uid::parse(&series.study_uid).expect("uid");
    let derived = derived_of(&series);
    let first = Bytes::from(derived.instance(0).expect("instance"));
    let receipt = store_and_note(&app.db, &blobs, first, Origin::Derived { study: &study }, &rules).await;
    assert_eq!(receipt.result.expect("a derived instance joins its existing study"), Stored::New);

    let patient_key = study_patient(&app.db, &series.study_uid).await.expect("query").expect("the study's patient");
    let (erased, _) = app.admin(reqwest::Method::DELETE, &format!("/api/v1/patients/{patient_key}"), None).await;
    assert_eq!(erased, StatusCode::NO_CONTENT);

    let late = Bytes::from(derived.instance(1).expect("instance"));
    let receipt = store_and_note(&app.db, &blobs, late, Origin::Derived { study: &study }, &rules).await;
    assert!(matches!(receipt.result, Err(IngestError::StudyGone(_))), "{:?}", receipt.result);
    assert_eq!(study_patient(&app.db, &series.study_uid).await.expect("query"), None, "the study stays gone");
    let found = patients::list(&app.db, Some(&series.patient_id), None, 10, 0).await.expect("query");
    assert!(found.is_empty(), "the patient stays erased: {found:?}");
    let left = walk(&app.database.dir.path().join("blobs"));
    assert!(left.is_empty(), "blobs left behind: {left:?}");
    app.stop().await;
}
on_both_engines!(a_derived_series_finishing_after_erasure_is_dropped);

/// A connection in the middle of recording one more instance of `series` (PostgreSQL):
/// its transaction holds the instance row, uncommitted, as ingest's does before it commits.
async fn instance_being_recorded(app: &TestApp, series: &SeriesSpec, blob_key: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(&app.database.url).expect("url");
    let mut connection = PgConnection::connect_with(&options).await.expect("second connection");
    sqlx::query("BEGIN").execute(&mut connection).await.expect("begin");
    let inserted = sqlx::query(
        "INSERT INTO instances (sop_instance_uid, series_uid, sop_class_uid, transfer_syntax_uid, blob_key, sha256,
                                size_bytes, metadata, received_at)
         SELECT $1, series_uid, sop_class_uid, transfer_syntax_uid, $2, sha256, size_bytes, metadata, received_at
         FROM instances WHERE series_uid = $3 LIMIT 1",
    )
    .bind(series.sop_instance_uid(2))
    .bind(blob_key)
    .bind(&series.series_uid)
    .execute(&mut connection)
    .await
    .expect("insert");
    assert_eq!(inserted.rows_affected(), 1);
    connection
}

/// Erasing a patient waits for an instance being recorded under them, and names its blob
/// for deletion: without that, the cascade would remove the row and orphan the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_waits_for_an_instance_being_recorded_and_names_its_blob() {
    let (app, series) = app_with_a_series(Engine::Postgres).await;
    let patient_key = study_patient(&app.db, &series.study_uid).await.expect("query").expect("patient");
    let mut writer = instance_being_recorded(&app, &series, "instances/in-flight.dcm").await;

    let db = app.db.clone();
    let erase = tokio::spawn(async move { patients::erase(&db, &patient_key, "test").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!erase.is_finished(), "the erasure waits for the writer");
    sqlx::query("COMMIT").execute(&mut writer).await.expect("commit");

    let Erasure::Erased { blob_keys } = erase.await.expect("join").expect("erase") else {
        panic!("the patient exists and no round runs");
    };
    assert_eq!(blob_keys.len(), 3, "{blob_keys:?}");
    assert!(blob_keys.iter().any(|key| key == "instances/in-flight.dcm"), "{blob_keys:?}");
    writer.close().await.expect("close");
    app.stop().await;
}

/// The same for deleting one study over DICOMweb's admin route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_study_waits_for_an_instance_being_recorded_and_names_its_blob() {
    let (app, series) = app_with_a_series(Engine::Postgres).await;
    let mut writer = instance_being_recorded(&app, &series, "instances/in-flight.dcm").await;

    let db = app.db.clone();
    let study = series.study_uid.clone();
    let delete = tokio::spawn(async move { delete_study(&db, &study).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!delete.is_finished(), "the deletion waits for the writer");
    sqlx::query("COMMIT").execute(&mut writer).await.expect("commit");

    let blob_keys = delete.await.expect("join").expect("delete").expect("the study existed");
    assert_eq!(blob_keys.len(), 3, "{blob_keys:?}");
    assert!(blob_keys.iter().any(|key| key == "instances/in-flight.dcm"), "{blob_keys:?}");
    writer.close().await.expect("close");
    app.stop().await;
}
