//! Walks every operation of `openapi.yaml` with no token, each role's token, an expired
//! and a revoked token, and checks 401 / 403 / 2xx exactly as the document's roles say.

use chrono::{Duration, Utc};
use petal::auth::issue_token;
use petal::domain::Role;
use petal::storage::patients::{PatientIdentity, upsert};
use reqwest::{Method, StatusCode};

use crate::common::{Engine, TestApp};
use crate::fixtures::{SeriesSpec, multipart, multipart_type};
use crate::on_both_engines;
use crate::openapi_drift::documented_operations;

/// Which credentials a request carries.
#[derive(Debug, Clone)]
enum Credential {
    None,
    Token(String),
}

/// Builds a request for an operation whose path parameters name real resources, so an
/// admitted caller gets a 2xx.
async fn request_for(app: &TestApp, stored: &SeriesSpec, method: &str, path: &str) -> reqwest::RequestBuilder {
    let series = SeriesSpec::new(1);
    let url = match (method, path) {
        ("POST", "/api/v1/series/{series_uid}/denoise") => {
            // A series that is complete and has no job yet, so an admin's request queues one.
            let (status, _, _) = crate::stow::stow(
                app,
                &app.admin_token,
                "/dicomweb/studies",
                &series.instances().expect("synthetic series"),
            )
            .await;
            assert!(status.is_success(), "fixture series stored");
            petal::storage::series_processing::complete_quiet(&app.db, i64::MAX).await.expect("complete");
            path.replace("{series_uid}", &series.series_uid)
        }
        ("POST", "/api/v1/series/{series_uid}/forward") => path.replace("{series_uid}", &denoised_series(app).await),
        (_, "/api/v1/destinations/{name}" | "/api/v1/destinations/{name}/echo") => {
            let name = format!("walk-{}", uuid::Uuid::new_v4().simple());
            let created = petal::storage::destinations::create(&app.db, &closed_destination(&name)).await;
            assert!(created.expect("destination"), "fixture destination stored");
            path.replace("{name}", &name)
        }
        ("POST", p) if p.starts_with("/dicomweb/") => path.replace("{study}", &series.study_uid),
        ("DELETE", "/dicomweb/studies/{study}") => {
            let (status, _, _) = crate::stow::stow(
                app,
                &app.admin_token,
                "/dicomweb/studies",
                &series.instances().expect("synthetic series"),
            )
            .await;
            assert!(status.is_success(), "fixture study stored");
            path.replace("{study}", &series.study_uid)
        }
        (_, p) if p.starts_with("/dicomweb/") => p
            .replace("{study}", &stored.study_uid)
            .replace("{series}", &stored.series_uid)
            .replace("{instance}", &stored.sop_instance_uid(0))
            .replace("{frames}", "1"),
        (_, "/api/v1/series/{series_uid}") => path.replace("{series_uid}", &stored.series_uid),
        (_, "/api/v1/instances/{sop_instance_uid}/suv") => {
            // A real PET slice, whose header gives SUV (the synthetic series' does not).
            let file = &crate::fixtures::real_pet_files()[0];
            let bytes = std::fs::read(file).expect("real PET file");
            let (status, _, _) =
                crate::stow::stow(app, &app.admin_token, "/dicomweb/studies", std::slice::from_ref(&bytes)).await;
            assert!(status.is_success(), "real PET slice stored");
            let object = dicom_object::from_reader(std::io::Cursor::new(&bytes[128..])).expect("part 10");
            let uid = object.element_by_name("SOPInstanceUID").expect("uid").to_str().expect("text");
            path.replace("{sop_instance_uid}", uid.trim_end_matches('\0'))
        }
        (_, "/api/v1/jobs/{job_id}") => {
            let payload = serde_json::json!({});
            let job = petal::storage::jobs::NewJob {
                kind: "walk",
                priority: 50,
                payload: &payload,
                dedupe_key: None,
                max_attempts: 1,
            };
            let id = petal::storage::jobs::enqueue(&app.db, &job).await.expect("job").expect("new");
            path.replace("{job_id}", id.as_str())
        }
        (_, "/api/v1/tokens/{token_id}") => {
            let victim = issue_token(&app.db, "walk-victim", Role::Pacs, None, "test").await.expect("token");
            path.replace("{token_id}", &victim.record.id)
        }
        (_, "/api/v1/patients/{patient_key}/models/{version}/activate") => {
            let identity =
                PatientIdentity { patient_id: "WALK-2".into(), issuer: "HOSP-A".into(), ..Default::default() };
            let key = upsert(&app.db, &identity).await.expect("patient");
            path.replace("{patient_key}", key.as_str()).replace("{version}", "0")
        }
        (_, "/api/v1/models/{version_id}" | "/api/v1/models/{version_id}/weights") => {
            let model = crate::common::small_model(9);
            let version = petal::storage::models::register_base_model(&app.db, &model, std::path::Path::new("walk"))
                .await
                .expect("version");
            path.replace("{version_id}", &version.to_string())
        }
        ("POST", "/api/v1/patients/{patient_key}/rounds") => {
            // A patient of their own with one stored series, so the round is new and its
            // pair (neighbour sub-sampling of that series) is valid.
            let mut own = SeriesSpec::new(1);
            own.patient_id = format!("WALK-ROUND-{}", uuid::Uuid::new_v4().simple());
            let (status, _, _) =
                crate::stow::stow(app, &app.admin_token, "/dicomweb/studies", &own.instances().expect("series")).await;
            assert!(status.is_success(), "fixture series stored");
            let key =
                petal::storage::index::study_patient(&app.db, &own.study_uid).await.expect("query").expect("patient");
            return app
                .client
                .post(app.url(&path.replace("{patient_key}", key.as_str())))
                .json(&serde_json::json!({"pair": {"kind": "neighbour_subsampling", "series_uid": own.series_uid}}));
        }
        (_, "/api/v1/rounds/{round_id}" | "/api/v1/rounds/{round_id}/cancel") => {
            let patient = format!("WALK-{}", uuid::Uuid::new_v4().simple());
            let round = crate::learning::queued_round(&app.db, &patient).await;
            path.replace("{round_id}", &round.id.to_string())
        }
        (
            _,
            "/api/v1/patients/{patient_key}"
            | "/api/v1/patients/{patient_key}/models"
            | "/api/v1/patients/{patient_key}/rounds",
        ) => {
            let identity =
                PatientIdentity { patient_id: "WALK-1".into(), issuer: "HOSP-A".into(), ..Default::default() };
            let key = upsert(&app.db, &identity).await.expect("patient");
            path.replace("{patient_key}", key.as_str())
        }
        (_, other) => {
            assert!(!other.contains('{'), "add a fixture for the path parameters of {other}");
            other.to_owned()
        }
    };
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let builder = app.client.request(method.clone(), app.url(&url));
    match (method, path) {
        (Method::POST, "/api/v1/tokens") => builder.json(&serde_json::json!({"name": "walk", "role": "pacs"})),
        (Method::POST, "/api/v1/session") => builder.json(&serde_json::json!({"token": app.admin_token})),
        (Method::POST, "/dicomweb/studies" | "/dicomweb/studies/{study}") => builder
            .header("content-type", multipart_type())
            .body(multipart(&series.instances().expect("synthetic series"))),
        (Method::POST, "/api/v1/destinations") => builder.json(
            &serde_json::to_value(closed_destination(&format!("walk-{}", uuid::Uuid::new_v4().simple())))
                .expect("json"),
        ),
        (Method::POST, "/api/v1/series/{series_uid}/forward")
        | (Method::POST, "/api/v1/destinations/{name}/echo")
        | (Method::POST, "/api/v1/series/{series_uid}/denoise")
        | (Method::POST, "/api/v1/patients/{patient_key}/models/{version}/activate")
        | (Method::POST, "/api/v1/rounds/{round_id}/cancel") => builder,
        (Method::POST, other) => panic!("add a request body fixture for POST {other}"),
        _ => builder,
    }
}

/// A DIMSE destination on a port where nothing listens: an echo answers at once, not ok.
fn closed_destination(name: &str) -> petal::domain::Destination {
    petal::domain::Destination {
        name: name.to_owned(),
        endpoint: petal::domain::Endpoint::Dimse {
            ae_title: "NOBODY".into(),
            host: "127.0.0.1".into(),
            port: crate::processes::free_port(),
        },
        forward: vec![petal::domain::Forwarded::Derived],
    }
}

/// A series with a derived series (recorded through storage, as a denoise job would), so
/// an admin's forward request queues it.
async fn denoised_series(app: &TestApp) -> String {
    use petal::storage::series_processing::{self, Denoised};
    let (source, derived) = (SeriesSpec::new(1), SeriesSpec::new(1));
    for series in [&source, &derived] {
        let instances = series.instances().expect("synthetic series");
        let (status, _, _) = crate::stow::stow(app, &app.admin_token, "/dicomweb/studies", &instances).await;
        assert!(status.is_success(), "fixture series stored");
    }
    series_processing::complete_quiet(&app.db, i64::MAX).await.expect("complete");
    let request = petal::jobs::denoise::completion::DenoisePayload::new(&source.series_uid, "test");
    let queued =
        petal::jobs::denoise::completion::enqueue_denoise(&app.db, &request, false).await.expect("denoise job");
    let petal::jobs::denoise::completion::Enqueued::Queued(job_id) = queued else {
        panic!("the fixture series is queued: {queued:?}")
    };
    let outcome = Denoised {
        derived_series_uid: &derived.series_uid,
        model_version_id: None,
        inference_ms: 0,
        normalisation: "{}",
    };
    assert!(series_processing::mark_done(&app.db, &source.series_uid, &job_id, &outcome).await.expect("done"));
    source.series_uid
}

async fn status_of(
    app: &TestApp,
    stored: &SeriesSpec,
    method: &str,
    path: &str,
    credential: &Credential,
) -> StatusCode {
    let mut request = request_for(app, stored, method, path).await;
    if let Credential::Token(secret) = credential {
        request = request.bearer_auth(secret);
    }
    request.send().await.expect("request").status()
}

async fn every_route_admits_exactly_its_roles(engine: Engine) {
    // Roles only: no worker, so nothing but the requests changes what is queued.
    let app = TestApp::spawn_with(engine, &["--no-worker"]).await;
    assert!(app.admin_token.starts_with("petal_"), "the bootstrap admin token was written");

    let expired = issue_token(&app.db, "expired", Role::Admin, Some(Utc::now() - Duration::hours(1)), "test")
        .await
        .expect("token")
        .secret;
    let revoked_token = issue_token(&app.db, "revoked", Role::Admin, None, "test").await.expect("token");
    let (revoke, _) =
        app.admin(reqwest::Method::DELETE, &format!("/api/v1/tokens/{}", revoked_token.record.id), None).await;
    assert_eq!(revoke, StatusCode::NO_CONTENT);
    let role_tokens: Vec<(Role, String)> = {
        let mut tokens = Vec::new();
        for role in Role::ALL {
            tokens.push((role, app.token(role).await));
        }
        tokens
    };

    let stored = SeriesSpec::new(2);
    let (status, _, _) =
        crate::stow::stow(&app, &app.admin_token, "/dicomweb/studies", &stored.instances().expect("synthetic series"))
            .await;
    assert!(status.is_success());

    let operations = documented_operations();
    assert!(operations.len() >= 10, "the walk covers the whole document");
    for (method, path, roles) in operations {
        let public = roles.is_empty();
        let anonymous = status_of(&app, &stored, &method, &path, &Credential::None).await;
        if public {
            assert!(anonymous.is_success(), "{method} {path} without a token: {anonymous}");
        } else {
            assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{method} {path} without a token");
        }
        for (label, secret) in [("expired", &expired), ("revoked", &revoked_token.secret)] {
            let status = status_of(&app, &stored, &method, &path, &Credential::Token(secret.clone())).await;
            if public {
                assert!(status.is_success(), "{method} {path} with an {label} token: {status}");
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with a {label} token");
            }
        }
        for (role, secret) in &role_tokens {
            let status = status_of(&app, &stored, &method, &path, &Credential::Token(secret.clone())).await;
            if public || roles.contains(role.as_str()) {
                assert!(status.is_success(), "{method} {path} as {role}: {status}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} as {role}");
            }
        }
    }
    app.stop().await;
}
on_both_engines!(every_route_admits_exactly_its_roles);

async fn unauthorized_answers_say_how_to_authenticate(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let response = app.client.get(app.url("/api/v1/tokens")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "missing_token");

    let response =
        app.client.get(app.url("/api/v1/tokens")).header("authorization", "Basic abc").send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let pacs = app.token(Role::Pacs).await;
    let response = app.client.get(app.url("/api/v1/tokens")).bearer_auth(&pacs).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().expect("message").contains("admin"));
    app.stop().await;
}
on_both_engines!(unauthorized_answers_say_how_to_authenticate);

async fn disabled_auth_acts_as_admin(engine: Engine) {
    let app = TestApp::spawn_with(engine, &["--auth", "disabled"]).await;
    assert!(app.admin_token.is_empty(), "no admin token is created when auth is off");
    let response = app.client.get(app.url("/api/v1/whoami")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["name"], "auth-disabled");
    app.stop().await;
}
on_both_engines!(disabled_auth_acts_as_admin);
