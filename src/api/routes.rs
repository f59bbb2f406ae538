//! The endpoint table: every route, the roles it admits and its kind of traffic.
//!
//! `openapi.yaml` documents the same table; `tests/openapi_drift.rs` fails when the two
//! differ, so the contract and the server cannot drift apart.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post};

use super::{
    AppState, audit, destinations, dicomweb, health, jobs, models, patients, rounds, series, session, tokens, web,
};
use crate::domain::Role;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (probes and metrics).
    Public,
    /// Callers whose token has one of these roles.
    Roles(&'static [Role]),
}

/// What kind of traffic an endpoint carries; decides time and body limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// Health probes and metrics.
    Probe,
    /// Small JSON requests: a time limit and a small body limit.
    Json,
    /// Large request bodies (STOW-RS): no time limit, the upload limit.
    Upload,
    /// Large responses (WADO-RS): no time limit.
    Download,
}

pub const ADMIN: &[Role] = &[Role::Admin];
pub const STORERS: &[Role] = &[Role::Pacs, Role::Admin];
pub const READERS: &[Role] = &[Role::Radiologist, Role::Admin];
pub const ANY_ROLE: &[Role] = &[Role::Pacs, Role::Radiologist, Role::Admin];

pub struct Endpoint {
    pub method: Method,
    /// axum path syntax, which for parameters (`{id}`) is also OpenAPI's.
    pub path: &'static str,
    pub access: Access,
    pub traffic: Traffic,
    pub handler: MethodRouter<AppState>,
}

macro_rules! endpoint_constructors {
    ($($name:ident => $method:ident),* $(,)?) => {
        impl Endpoint {
            $(
                pub fn $name<H, T>(path: &'static str, access: Access, traffic: Traffic, handler: H) -> Self
                where
                    H: Handler<T, AppState>,
                    T: 'static,
                {
                    Endpoint { method: Method::$method, path, access, traffic, handler: $name(handler) }
                }
            )*
        }
    };
}
endpoint_constructors!(get => GET, post => POST, delete => DELETE);

/// Every route petal serves.
pub fn endpoints() -> Vec<Endpoint> {
    use Access::{Public, Roles};
    use Traffic::{Download, Json, Probe, Upload};
    vec![
        Endpoint::get("/", Public, Json, web::index),
        Endpoint::get("/app.js", Public, Json, web::script),
        Endpoint::get("/app.css", Public, Json, web::style),
        Endpoint::get("/healthz", Public, Probe, health::healthz),
        Endpoint::get("/readyz", Public, Probe, health::readyz),
        Endpoint::get("/metrics", Public, Probe, health::metrics),
        Endpoint::get("/api/v1/whoami", Roles(ANY_ROLE), Json, tokens::whoami),
        Endpoint::post("/api/v1/session", Public, Json, session::sign_in),
        Endpoint::get("/api/v1/session", Roles(ANY_ROLE), Json, session::current),
        Endpoint::delete("/api/v1/session", Roles(ANY_ROLE), Json, session::sign_out),
        Endpoint::get("/api/v1/tokens", Roles(ADMIN), Json, tokens::list),
        Endpoint::post("/api/v1/tokens", Roles(ADMIN), Json, tokens::create),
        Endpoint::delete("/api/v1/tokens/{token_id}", Roles(ADMIN), Json, tokens::revoke),
        Endpoint::get("/api/v1/audit", Roles(ADMIN), Json, audit::page),
        Endpoint::get("/api/v1/jobs", Roles(ADMIN), Json, jobs::list),
        Endpoint::get("/api/v1/jobs/{job_id}", Roles(ADMIN), Json, jobs::get),
        Endpoint::get("/api/v1/series/{series_uid}", Roles(READERS), Json, series::get),
        Endpoint::post("/api/v1/series/{series_uid}/denoise", Roles(ADMIN), Json, series::denoise),
        Endpoint::post("/api/v1/series/{series_uid}/forward", Roles(ADMIN), Json, series::forward),
        Endpoint::get("/api/v1/destinations", Roles(ADMIN), Json, destinations::list),
        Endpoint::post("/api/v1/destinations", Roles(ADMIN), Json, destinations::create),
        Endpoint::delete("/api/v1/destinations/{name}", Roles(ADMIN), Json, destinations::delete),
        Endpoint::post("/api/v1/destinations/{name}/echo", Roles(ADMIN), Json, destinations::echo),
        Endpoint::get("/api/v1/instances/{sop_instance_uid}/suv", Roles(READERS), Json, series::instance_suv),
        Endpoint::get("/api/v1/patients", Roles(READERS), Json, patients::list),
        Endpoint::get("/api/v1/patients/{patient_key}", Roles(READERS), Json, patients::get),
        Endpoint::delete("/api/v1/patients/{patient_key}", Roles(ADMIN), Json, patients::erase),
        Endpoint::get("/api/v1/patients/{patient_key}/rounds", Roles(READERS), Json, rounds::for_patient),
        Endpoint::post("/api/v1/patients/{patient_key}/rounds", Roles(ADMIN), Json, rounds::create),
        Endpoint::get("/api/v1/rounds/{round_id}", Roles(READERS), Json, rounds::get),
        Endpoint::post("/api/v1/rounds/{round_id}/cancel", Roles(ADMIN), Json, rounds::cancel),
        Endpoint::get("/api/v1/patients/{patient_key}/models", Roles(READERS), Json, models::for_patient),
        Endpoint::post(
            "/api/v1/patients/{patient_key}/models/{version}/activate",
            Roles(ADMIN),
            Json,
            models::activate,
        ),
        Endpoint::get("/api/v1/models/{version_id}", Roles(READERS), Json, models::get),
        Endpoint::get("/api/v1/models/{version_id}/weights", Roles(ADMIN), Download, models::weights),
        Endpoint::post("/dicomweb/studies", Roles(STORERS), Upload, dicomweb::stow::store_any),
        Endpoint::post("/dicomweb/studies/{study}", Roles(STORERS), Upload, dicomweb::stow::store_in_study),
        Endpoint::get("/dicomweb/studies", Roles(READERS), Json, dicomweb::qido::all_studies),
        Endpoint::get("/dicomweb/series", Roles(READERS), Json, dicomweb::qido::all_series),
        Endpoint::get("/dicomweb/instances", Roles(READERS), Json, dicomweb::qido::all_instances),
        Endpoint::get("/dicomweb/studies/{study}/series", Roles(READERS), Json, dicomweb::qido::study_series),
        Endpoint::get("/dicomweb/studies/{study}/instances", Roles(READERS), Json, dicomweb::qido::study_instances),
        Endpoint::get(
            "/dicomweb/studies/{study}/series/{series}/instances",
            Roles(READERS),
            Json,
            dicomweb::qido::series_instances,
        ),
        Endpoint::get("/dicomweb/studies/{study}", Roles(READERS), Download, dicomweb::wado::study),
        Endpoint::get("/dicomweb/studies/{study}/series/{series}", Roles(READERS), Download, dicomweb::wado::series),
        Endpoint::get(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}",
            Roles(READERS),
            Download,
            dicomweb::wado::instance,
        ),
        Endpoint::get("/dicomweb/studies/{study}/metadata", Roles(READERS), Json, dicomweb::wado::study_metadata),
        Endpoint::get(
            "/dicomweb/studies/{study}/series/{series}/metadata",
            Roles(READERS),
            Json,
            dicomweb::wado::series_metadata,
        ),
        Endpoint::get(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata",
            Roles(READERS),
            Json,
            dicomweb::wado::instance_metadata,
        ),
        Endpoint::delete("/dicomweb/studies/{study}", Roles(ADMIN), Json, dicomweb::wado::delete_study),
        Endpoint::get(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            Roles(READERS),
            Download,
            dicomweb::pixels::frames,
        ),
        Endpoint::get(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/rendered",
            Roles(READERS),
            Download,
            dicomweb::pixels::instance_rendered,
        ),
        Endpoint::get(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/thumbnail",
            Roles(READERS),
            Download,
            dicomweb::pixels::instance_thumbnail,
        ),
        Endpoint::get(
            "/dicomweb/studies/{study}/series/{series}/rendered",
            Roles(READERS),
            Download,
            dicomweb::pixels::series_rendered,
        ),
        Endpoint::get(
            "/dicomweb/studies/{study}/series/{series}/thumbnail",
            Roles(READERS),
            Download,
            dicomweb::pixels::series_thumbnail,
        ),
    ]
}
