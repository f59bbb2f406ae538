//! The model registry table on both engines: base models registered once however many
//! processes start, weights stored and read back byte for byte, and rows that can never be
//! rewritten or deleted.

use petal::science::model::directory::StoredModel;
use petal::storage::Database;
use petal::storage::models::{self, ModelSource, NewModelVersion};

use crate::common::{Engine, TestDatabase, small_model};
use crate::on_both_engines;

fn new_version<'a>(model: &'a StoredModel, config: &'a str, weights: &'a [u8]) -> NewModelVersion<'a> {
    NewModelVersion {
        name: "base",
        source: ModelSource::Base,
        sha256: &model.sha256,
        config,
        weights,
        parent_id: None,
        patient_key: None,
        report: None,
        created_by: None,
    }
}

async fn base_models_register_once_and_never_change(engine: Engine) {
    let test_db = TestDatabase::create(engine).await;
    let db = Database::connect(&test_db.url, 5).await.expect("connect");
    db.migrate().await.expect("migrate");
    let model = small_model(3);
    let config = serde_json::to_string(&model.config).expect("config json");
    let weights = model.weights.to_safetensors().expect("safetensors");

    // Several processes starting together register the same base model.
    let new = new_version(&model, &config, &weights);
    let registrations = futures::future::join_all((0..4).map(|_| models::register_base(&db, &new))).await;
    let ids: Vec<petal::domain::ModelVersionId> = registrations.into_iter().map(|r| r.expect("register").id).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one row for one base model: {ids:?}");

    let version = models::get(&db, ids[0]).await.expect("get").expect("present");
    assert_eq!(version.sha256, model.sha256);
    assert!(version.device_uid.starts_with("2.25.") && version.device_uid.len() <= 64, "{}", version.device_uid);
    let stored = models::weights(&db, ids[0]).await.expect("weights").expect("present");
    let back = StoredModel::from_parts(serde_json::from_str(&version.config).expect("config"), &stored).expect("load");
    assert_eq!(back, model, "weights and config come back exactly");

    // Immutable: the triggers refuse to rewrite or delete a version.
    assert!(execute(&db, "UPDATE model_versions SET sha256 = 'x'").await.is_err(), "the hash was rewritten");
    assert!(execute(&db, "UPDATE model_versions SET weights = config").await.is_err(), "weights were rewritten");
    assert!(execute(&db, "DELETE FROM model_versions").await.is_err(), "a version was deleted");
    assert!(models::get(&db, ids[0]).await.expect("get").is_some());
    db.close().await;
}
on_both_engines!(base_models_register_once_and_never_change);

async fn execute(db: &Database, sql: &'static str) -> Result<(), sqlx::Error> {
    match db {
        Database::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    }
}
