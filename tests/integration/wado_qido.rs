//! QIDO-RS and WADO-RS edge cases, and study deletion.

use petal::domain::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Engine, TestApp};
use crate::fixtures::SeriesSpec;
use crate::on_both_engines;
use crate::stow::{indexed, stow};

async fn searches_and_retrieves_answer_per_ps3_18(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let series = SeriesSpec::new(3);
    let (status, _, _) =
        stow(&app, &app.admin_token, "/dicomweb/studies", &series.instances().expect("synthetic series")).await;
    assert_eq!(status, StatusCode::OK);
    let reader = app.token(Role::Radiologist).await;
    let get = |path: String, accept: &'static str| {
        app.client.get(app.url(&path)).bearer_auth(&reader).header("accept", accept).send()
    };

    let studies: Value = get("/dicomweb/studies?PatientID=PET-TEST-1".into(), "application/dicom+json")
        .await
        .expect("QIDO")
        .json()
        .await
        .expect("json");
    assert_eq!(studies[0]["00201208"]["Value"][0], 3);
    assert_eq!(studies[0]["00100021"]["Value"][0], "HOSP-A");

    let none = get("/dicomweb/studies?PatientID=nobody".into(), "application/dicom+json").await.expect("QIDO");
    assert_eq!(none.status(), StatusCode::NO_CONTENT, "no match is 204 No Content");
    let unknown = get("/dicomweb/studies?NotAnAttribute=1".into(), "application/dicom+json").await.expect("QIDO");
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(unknown.text().await.expect("text").contains("NotAnAttribute"));
    let by_tag = get("/dicomweb/studies?00100020=PET-TEST-1&includefield=00540081".into(), "*/*").await.expect("QIDO");
    assert_eq!(by_tag.status(), StatusCode::OK);
    let xml = get("/dicomweb/studies".into(), "application/dicom+xml").await.expect("QIDO");
    assert_eq!(xml.status(), StatusCode::NOT_ACCEPTABLE);

    let study_path = format!("/dicomweb/studies/{}", series.study_uid);
    let multipart = get(study_path.clone(), "multipart/related; type=\"application/dicom\"").await.expect("WADO");
    assert_eq!(multipart.status(), StatusCode::OK);
    let content_type = multipart.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert!(content_type.starts_with("multipart/related; type=\"application/dicom\"; boundary="));
    let body = multipart.bytes().await.expect("body");
    for instance in series.instances().expect("synthetic series") {
        assert!(body.windows(instance.len()).any(|w| w == instance.as_slice()), "each part is the stored file");
    }

    let png = get(study_path.clone(), "image/png").await.expect("WADO");
    assert_eq!(png.status(), StatusCode::NOT_ACCEPTABLE);
    let wrong_syntax = get(
        study_path.clone(),
        "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50",
    )
    .await
    .expect("WADO");
    assert_eq!(wrong_syntax.status(), StatusCode::NOT_ACCEPTABLE);
    let single_for_study = get(study_path.clone(), "application/dicom").await.expect("WADO");
    assert_eq!(single_for_study.status(), StatusCode::NOT_ACCEPTABLE, "a study is never one application/dicom body");
    let missing = get("/dicomweb/studies/1.2.3.4.5".into(), "*/*").await.expect("WADO");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad_uid = get("/dicomweb/studies/not-a-uid".into(), "*/*").await.expect("WADO");
    assert_eq!(bad_uid.status(), StatusCode::BAD_REQUEST);

    let metadata: Value = get(format!("{study_path}/metadata"), "application/dicom+json")
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert_eq!(metadata.as_array().expect("array").len(), 3);
    assert!(metadata[0]["7FE00010"]["BulkDataURI"].as_str().is_some());
    assert_eq!(metadata[0]["00541001"]["Value"][0], "BQML");

    // Deletion: admin only, removes rows and blobs, audited; the study is gone afterwards.
    let as_reader = app.client.delete(app.url(&study_path)).bearer_auth(&reader).send().await.expect("delete");
    assert_eq!(as_reader.status(), StatusCode::FORBIDDEN);
    let (deleted, _) = app.admin(reqwest::Method::DELETE, &study_path, None).await;
    assert_eq!(deleted, StatusCode::NO_CONTENT);
    assert!(indexed(&app.db).await.is_empty());
    assert_eq!(crate::stow::blob_count(&app.database.dir.path().join("blobs")), 0, "blobs removed");
    let again = get(study_path.clone(), "*/*").await.expect("WADO");
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let audit = app.admin_json("/api/v1/audit?action=dicom.delete").await;
    assert_eq!(audit["events"][0]["outcome"], "success");
    assert!(audit["events"][0]["patient_key"].as_str().is_some_and(|k| k.starts_with("pk-")));
    app.stop().await;
}
on_both_engines!(searches_and_retrieves_answer_per_ps3_18);

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes.to_vec())).read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("frame");
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

/// Rendering windows real PET in SUV: the hottest voxel of acrin_flt_1 is about SUV 7.2,
/// so it saturates the default 0–6 window and sits near 7.2 % of a 0–100 window.
async fn real_pet_renders_in_suv(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let file = crate::fixtures::real_pet_files()[0].clone();
    let response = app
        .client
        .post(app.url("/dicomweb/studies"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/dicom")
        .body(std::fs::read(&file).expect("read"))
        .send()
        .await
        .expect("STOW");
    let body: Value = response.json().await.expect("json");
    let url = crate::stow::referenced(&body)[0]["00081190"]["Value"][0].as_str().expect("url").to_owned();
    let get = |suffix: &str| {
        app.client.get(format!("{url}{suffix}")).bearer_auth(&app.admin_token).header("accept", "image/png").send()
    };
    let default = get("/rendered").await.expect("rendered").bytes().await.expect("png");
    let (width, height, pixels) = decode_png(&default);
    assert_eq!((width, height), (168, 168));
    assert_eq!(pixels.iter().max(), Some(&255), "SUV above 6 saturates the default window");
    let wide = get("/rendered?window=50,100").await.expect("rendered").bytes().await.expect("png");
    let brightest = f64::from(*decode_png(&wide).2.iter().max().expect("pixels"));
    assert!((brightest - 0.072 * 255.0).abs() < 3.0, "SUVmax ≈ 7.2 → {brightest} of 255");
    let thumbnail = get("/thumbnail").await.expect("thumbnail").bytes().await.expect("png");
    let (w, h, _) = decode_png(&thumbnail);
    assert!(w <= 128 && h <= 128);
    let bad_window = get("/rendered?window=5").await.expect("rendered");
    assert_eq!(bad_window.status(), StatusCode::BAD_REQUEST);
    let frames = app
        .client
        .get(format!("{url}/frames/1"))
        .bearer_auth(&app.admin_token)
        .header("accept", "multipart/related; type=\"application/octet-stream\"")
        .send()
        .await
        .expect("frames");
    assert_eq!(frames.status(), StatusCode::OK);
    assert!(frames.bytes().await.expect("body").len() > 168 * 168 * 2, "one 16-bit frame and its part headers");
    let missing = app
        .client
        .get(format!("{url}/frames/2"))
        .bearer_auth(&app.admin_token)
        .header("accept", "*/*")
        .send()
        .await
        .expect("frames");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
on_both_engines!(real_pet_renders_in_suv);
