//! STOW-RS: what gets stored, what gets refused and why, idempotency, concurrency.

use dicom_dictionary_std::uids;
use petal::storage::Database;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Engine, TestApp};
use crate::fixtures::{SeriesSpec, multipart, multipart_type, real_pet_files};
use crate::on_both_engines;

/// Posts parts to `path` as a pacs token; returns status, DICOM JSON body and Warning headers.
/// Posts `parts` as one multipart STOW-RS request, as the bearer of `token`.
pub async fn post_instances(app: &TestApp, token: &str, path: &str, parts: &[Vec<u8>]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", multipart_type())
        .header("accept", "application/dicom+json")
        .body(multipart(parts))
        .send()
        .await
        .expect("STOW request")
}

pub async fn stow(app: &TestApp, token: &str, path: &str, parts: &[Vec<u8>]) -> (StatusCode, Value, Vec<String>) {
    let response = post_instances(app, token, path, parts).await;
    let status = response.status();
    let warnings =
        response.headers().get_all("warning").iter().map(|v| v.to_str().unwrap_or_default().to_owned()).collect();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, warnings)
}

fn sequence<'a>(body: &'a Value, tag: &str) -> &'a [Value] {
    body[tag]["Value"].as_array().map(Vec::as_slice).unwrap_or_default()
}

pub fn referenced(body: &Value) -> &[Value] {
    sequence(body, "00081199")
}

fn failed(body: &Value) -> &[Value] {
    sequence(body, "00081198")
}

fn failure_reasons(body: &Value) -> Vec<u64> {
    failed(body).iter().map(|item| item["00081197"]["Value"][0].as_u64().expect("reason")).collect()
}

/// (sop instance uid, sha256) of every indexed instance, sorted.
pub async fn indexed(db: &Database) -> Vec<(String, String)> {
    let sql = "SELECT sop_instance_uid, sha256 FROM instances ORDER BY sop_instance_uid";
    match db {
        Database::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.expect("query"),
        Database::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.expect("query"),
    }
}

async fn a_series_is_stored_once_and_resends_are_safe(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let pacs = app.token(petal::domain::Role::Pacs).await;
    let series = SeriesSpec::new(5);
    let (status, body, _) =
        stow(&app, &pacs, "/dicomweb/studies", &series.instances().expect("synthetic series")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = referenced(&body);
    assert_eq!(items.len(), 5);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["00081150"]["Value"][0], uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE);
        assert_eq!(item["00081155"]["Value"][0], series.sop_instance_uid(i).as_str());
        let url = item["00081190"]["Value"][0].as_str().expect("RetrieveURL");
        assert!(url.starts_with(&format!("{}/dicomweb/studies/{}/series/", app.base_url, series.study_uid)), "{url}");
    }
    assert_eq!(body["00081190"]["Value"][0], format!("{}/dicomweb/studies/{}", app.base_url, series.study_uid));
    assert!(body.get("00081198").is_none(), "no FailedSOPSequence when nothing failed");
    let before = indexed(&app.db).await;
    assert_eq!(before.len(), 5);

    // The same bytes again: success, nothing changes.
    let (status, body, _) =
        stow(&app, &pacs, "/dicomweb/studies", &series.instances().expect("synthetic series")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(referenced(&body).len(), 5);
    assert_eq!(indexed(&app.db).await, before);

    // Different bytes under the same UIDs: a warning, the first copy kept.
    let altered = SeriesSpec { pixel_offset: 1, ..series.clone() };
    let (status, body, warnings) =
        stow(&app, &pacs, "/dicomweb/studies", &altered.instances().expect("synthetic series")[..2]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(referenced(&body)[0]["00081196"]["Value"][0], 0xB006);
    assert!(warnings.iter().any(|w| w.contains("first copy is kept")), "{warnings:?}");
    assert_eq!(indexed(&app.db).await, before, "nothing stored is replaced");

    // DICOM XML when the client asks for it.
    let xml = app
        .client
        .post(app.url("/dicomweb/studies"))
        .bearer_auth(&pacs)
        .header("content-type", multipart_type())
        .header("accept", "application/dicom+xml")
        .body(multipart(&series.instances().expect("synthetic series")[..1]))
        .send()
        .await
        .expect("STOW");
    assert_eq!(xml.headers()["content-type"], "application/dicom+xml");
    let text = xml.text().await.expect("text");
    assert!(text.contains("<NativeDicomModel") && text.contains(&series.sop_instance_uid(0)), "{text}");
    let neither = app
        .client
        .post(app.url("/dicomweb/studies"))
        .bearer_auth(&pacs)
        .header("content-type", multipart_type())
        .header("accept", "text/html")
        .body(multipart(&series.instances().expect("synthetic series")[..1]))
        .send()
        .await
        .expect("STOW");
    assert_eq!(neither.status(), StatusCode::NOT_ACCEPTABLE);

    // Forwarded headers shape the RetrieveURL.
    let response = app
        .client
        .post(app.url("/dicomweb/studies"))
        .bearer_auth(&pacs)
        .header("content-type", multipart_type())
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "pacs-gw.example.org")
        .body(multipart(&series.instances().expect("synthetic series")[..1]))
        .send()
        .await
        .expect("STOW");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["00081190"]["Value"][0],
        format!("https://pacs-gw.example.org/dicomweb/studies/{}", series.study_uid)
    );
    app.stop().await;
}
on_both_engines!(a_series_is_stored_once_and_resends_are_safe);

async fn real_pet_slices_are_accepted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let pacs = app.token(petal::domain::Role::Pacs).await;
    for file in real_pet_files() {
        let bytes = std::fs::read(&file).expect("read");
        // As a single application/dicom body, the simplest form a script might use.
        let response = app
            .client
            .post(app.url("/dicomweb/studies"))
            .bearer_auth(&pacs)
            .header("content-type", "application/dicom")
            .body(bytes.clone())
            .send()
            .await
            .expect("STOW");
        assert_eq!(response.status(), StatusCode::OK, "{}", file.display());
        let body: Value = response.json().await.expect("json");
        assert_eq!(referenced(&body).len(), 1);
        let stored = &indexed(&app.db).await;
        assert!(stored.iter().any(|(_, sha)| *sha == sha256_hex(&bytes)), "stored bytes are the bytes sent");
        // Retrieved through WADO-RS, byte for byte.
        let url = referenced(&body)[0]["00081190"]["Value"][0].as_str().expect("RetrieveURL").to_owned();
        let reader = app.token(petal::domain::Role::Radiologist).await;
        let retrieved = app
            .client
            .get(&url)
            .bearer_auth(&reader)
            .header("accept", "application/dicom; transfer-syntax=*")
            .send()
            .await
            .expect("WADO");
        assert_eq!(retrieved.status(), StatusCode::OK);
        assert_eq!(retrieved.bytes().await.expect("bytes").as_ref(), bytes.as_slice(), "{}", file.display());
    }
    app.stop().await;
}
on_both_engines!(real_pet_slices_are_accepted);

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Each hostile input gets its documented status and reason; nothing stored before changes.
async fn hostile_inputs_are_refused_with_reasons(engine: Engine) {
    let app = TestApp::spawn_with(engine, &["--upload-body-limit", "20000"]).await;
    let pacs = app.token(petal::domain::Role::Pacs).await;
    let series = SeriesSpec::new(3);
    let (status, _, _) = stow(&app, &pacs, "/dicomweb/studies", &series.instances().expect("synthetic series")).await;
    assert_eq!(status, StatusCode::OK);
    let before = indexed(&app.db).await;

    let other = SeriesSpec::new(1);
    let good = other.instance(0).expect("synthetic instance");
    // Cut inside the pixel data (the last element), so the file cannot be read whole.
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 100);
    let mut no_pixels = other.dataset(0);
    no_pixels.remove_element(dicom_dictionary_std::tags::PIXEL_DATA);
    let no_pixels = crate::fixtures::write_file(
        no_pixels,
        uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
        &other.sop_instance_uid(0),
    )
    .expect("file");
    let ct = SeriesSpec { sop_class_uid: uids::CT_IMAGE_STORAGE.to_owned(), ..SeriesSpec::new(1) }
        .instance(0)
        .expect("synthetic instance");
    let mut no_sop_uid = other.dataset(0);
    no_sop_uid.remove_element(dicom_dictionary_std::tags::SOP_INSTANCE_UID);
    let no_sop_uid =
        crate::fixtures::write_file(no_sop_uid, uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE, "1.2.3.4")
            .expect("file");

    let table: Vec<(&str, Vec<u8>, &str, u64)> = vec![
        ("truncated DICOM", truncated, "/dicomweb/studies", 0xC000),
        ("not DICOM", b"hello, this is not DICOM".to_vec(), "/dicomweb/studies", 0xC000),
        ("CT, not PET", ct, "/dicomweb/studies", 0x0122),
        ("study UID mismatch", good.clone(), "/dicomweb/studies/1.2.3.999", 0x0110),
        ("no SOP Instance UID", no_sop_uid, "/dicomweb/studies", 0xA900),
        ("no pixel data", no_pixels, "/dicomweb/studies", 0xA900),
    ];
    for (label, part, path, reason) in table {
        let (status, body, warnings) = stow(&app, &pacs, path, &[part]).await;
        assert_eq!(status, StatusCode::CONFLICT, "{label}: {body}");
        assert_eq!(failure_reasons(&body), vec![reason], "{label}");
        assert!(!warnings.is_empty(), "{label}: a Warning header explains the failure");
    }
    // A request that mixes good and bad parts: 202, the good one stored.
    let (status, body, _) = stow(&app, &pacs, "/dicomweb/studies", &[good.clone(), b"junk".to_vec()]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!((referenced(&body).len(), failed(&body).len()), (1, 1));

    let send = |content_type: &str, body: Vec<u8>| {
        app.client
            .post(app.url("/dicomweb/studies"))
            .bearer_auth(&pacs)
            .header("content-type", content_type.to_owned())
            .body(body)
            .send()
    };
    let error_code = |response: reqwest::Response| async move {
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        (status, body["error"]["code"].as_str().unwrap_or_default().to_owned(), body)
    };
    let cases: Vec<(&str, String, Vec<u8>, StatusCode)> = vec![
        ("wrong Content-Type", "text/plain".into(), b"hello".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            "JSON metadata parts",
            "multipart/related; type=\"application/dicom+json\"; boundary=x".into(),
            b"--x--".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "missing boundary",
            "multipart/related; type=\"application/dicom\"".into(),
            multipart(std::slice::from_ref(&good)),
            StatusCode::BAD_REQUEST,
        ),
        ("empty multipart", multipart_type(), multipart(&[]), StatusCode::BAD_REQUEST),
        ("body over the limit", multipart_type(), multipart(&vec![good.clone(); 100]), StatusCode::PAYLOAD_TOO_LARGE),
    ];
    for (label, content_type, body, expected) in cases {
        let (status, code, body) = error_code(send(&content_type, body).await.expect("request")).await;
        assert_eq!(status, expected, "{label}: {}", &body.to_string()[..body.to_string().len().min(300)]);
        assert!(!code.is_empty() && body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{label}");
    }
    let after = indexed(&app.db).await;
    assert!(before.iter().all(|row| after.contains(row)), "nothing stored earlier changed");
    app.stop().await;
}
on_both_engines!(hostile_inputs_are_refused_with_reasons);

/// Eight clients posting the same 48-slice series at once: every instance indexed once,
/// every response lists all 48.
async fn concurrent_stows_of_one_series_index_each_instance_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let pacs = app.token(petal::domain::Role::Pacs).await;
    let series = SeriesSpec::new(48);
    let instances = series.instances().expect("synthetic series");
    let requests = (0..8).map(|_| stow(&app, &pacs, "/dicomweb/studies", &instances));
    let results = futures::future::join_all(requests).await;
    for (status, body, _) in &results {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(referenced(body).len(), 48);
    }
    let rows = indexed(&app.db).await;
    assert_eq!(rows.len(), 48);
    let blobs = blob_count(&app.database.dir.path().join("blobs"));
    assert_eq!(blobs, 48, "no orphan blob is left by the losers of a race");
    app.stop().await;
}
on_both_engines!(concurrent_stows_of_one_series_index_each_instance_once);

pub fn blob_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { blob_count(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

async fn roles_other_than_pacs_and_admin_cannot_store(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let reader = app.token(petal::domain::Role::Radiologist).await;
    let (status, _, _) =
        stow(&app, &reader, "/dicomweb/studies", &SeriesSpec::new(1).instances().expect("synthetic series")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(indexed(&app.db).await.is_empty());
    app.stop().await;
}
on_both_engines!(roles_other_than_pacs_and_admin_cannot_store);
