//! SQLite write transactions that read first: another connection writing in between must
//! make them wait (busy timeout), not fail with "database is locked".

use std::str::FromStr;
use std::time::Duration;

use petal::domain::Role;
use petal::storage::index::delete_study;
use reqwest::StatusCode;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::common::{Engine, TestApp};
use crate::fixtures::SeriesSpec;
use crate::stow::stow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_study_waits_for_a_concurrent_writer() {
    let app = TestApp::spawn_with(Engine::Sqlite, &["--no-worker"]).await;
    let token = app.token(Role::Pacs).await;
    let series = SeriesSpec::new(2);
    let (status, _, _) = stow(&app, &token, "/dicomweb/studies", &series.instances().expect("instances")).await;
    assert_eq!(status, StatusCode::OK);

    // Another connection holds the write lock and commits while the delete is under way.
    let options = SqliteConnectOptions::from_str(&app.database.url).expect("url");
    let mut other = SqliteConnection::connect_with(&options).await.expect("second connection");
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.expect("take the write lock");
    sqlx::query("CREATE TABLE concurrent_writer (x INTEGER)").execute(&mut other).await.expect("write");
    let db = app.db.clone();
    let study = series.study_uid.clone();
    let delete = tokio::spawn(async move { delete_study(&db, &study).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("COMMIT").execute(&mut other).await.expect("commit");

    let deleted = delete.await.expect("join").expect("the delete waits for the writer instead of failing");
    assert_eq!(deleted.map(|keys| keys.len()), Some(2), "both instances' blobs are reported");
    other.close().await.expect("close");
    app.stop().await;
}
