//! QIDO-RS: search for studies, series and instances (PS3.18 §10.6), answered in DICOM
//! JSON with the attributes PS3.18 requires per level, plus `includefield`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use serde_json::{Map, Value};

use super::media::parse_accept;
use super::{base_url, path_uid};
use crate::api::extract::Actor;
use crate::api::{ApiError, AppState};
use crate::dicom::json::{resolve_attribute, set_number, set_text, tag_key};
use crate::domain::PatientKey;
use crate::storage::audit::Outcome;
use crate::storage::search::{self, Column, Filter, Level, Match, SearchQuery};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// What the request asked for beyond matching.
struct Request {
    query: SearchQuery,
    include: Include,
    warnings: Vec<String>,
}

enum Include {
    Listed(Vec<Tag>),
    All,
}

pub async fn all_studies(
    state: State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    run(state, actor, headers, raw, Level::Study, Scope::default()).await
}

pub async fn all_series(
    state: State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    run(state, actor, headers, raw, Level::Series, Scope::default()).await
}

pub async fn all_instances(
    state: State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    run(state, actor, headers, raw, Level::Instance, Scope::default()).await
}

pub async fn study_series(
    state: State<AppState>,
    actor: Actor,
    Path(study): Path<String>,
    headers: HeaderMap,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    let scope = Scope { study: Some(path_uid("study UID", &study)?.to_string()), series: None };
    run(state, actor, headers, raw, Level::Series, scope).await
}

pub async fn study_instances(
    state: State<AppState>,
    actor: Actor,
    Path(study): Path<String>,
    headers: HeaderMap,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    let scope = Scope { study: Some(path_uid("study UID", &study)?.to_string()), series: None };
    run(state, actor, headers, raw, Level::Instance, scope).await
}

pub async fn series_instances(
    state: State<AppState>,
    actor: Actor,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    let scope = Scope {
        study: Some(path_uid("study UID", &study)?.to_string()),
        series: Some(path_uid("series UID", &series)?.to_string()),
    };
    run(state, actor, headers, raw, Level::Instance, scope).await
}

/// UIDs fixed by the request path.
#[derive(Default)]
struct Scope {
    study: Option<String>,
    series: Option<String>,
}

async fn run(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    level: Level,
    scope: Scope,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let mut request = parse(raw.as_deref().unwrap_or(""), level)?;
    if let Some(study) = &scope.study {
        request.query.filters.push(Filter::Exact(Column::StudyUid, study.clone()));
    }
    if let Some(series) = &scope.series {
        request.query.filters.push(Filter::Exact(Column::SeriesUid, series.clone()));
    }
    let matches = search::search(&state.db, &request.query).await?;
    let base = base_url(&headers);
    let mut results = Vec::with_capacity(matches.len());
    for found in &matches {
        results
            .push(Value::Object(render(&state, found, level, scope.study.is_none(), &request.include, &base).await?));
    }
    // One audit event per patient whose data the search returned.
    let mut patients: Vec<&PatientKey> = matches.iter().map(|m| &m.patient_key).collect();
    patients.sort_unstable();
    patients.dedup();
    for patient in patients {
        actor.audit(&state.db, "dicom.search", "/dicomweb", Some(patient), Outcome::Success).await?;
    }
    let mut response = if results.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/dicom+json")], Value::Array(results).to_string()).into_response()
    };
    for warning in request.warnings {
        if let Ok(value) = HeaderValue::from_str(&format!("299 petal \"{}\"", warning.replace('"', "'"))) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    Ok(response)
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let accept = parse_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let ok = accept
        .iter()
        .any(|m| matches!(m.essence.as_str(), "application/dicom+json" | "application/json" | "application/*" | "*/*"));
    if ok { Ok(()) } else { Err(ApiError::NotAcceptable("QIDO-RS answers in application/dicom+json".into())) }
}

/// Parses the query string into filters, paging and `includefield`.
fn parse(raw: &str, level: Level) -> Result<Request, ApiError> {
    let mut query = SearchQuery { level, filters: Vec::new(), limit: DEFAULT_LIMIT, offset: 0 };
    let mut include = Include::Listed(Vec::new());
    let mut warnings = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "limit" => query.limit = parse_count("limit", &value, 1, MAX_LIMIT)?,
            "offset" => query.offset = parse_count("offset", &value, 0, i64::MAX)?,
            "fuzzymatching" => match value.as_ref() {
                "false" => {}
                "true" => warnings.push("fuzzymatching is not supported; matching was exact".to_owned()),
                other => {
                    return Err(ApiError::BadRequest(format!("fuzzymatching must be true or false, not `{other}`")));
                }
            },
            "includefield" => {
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if name == "all" {
                        include = Include::All;
                    } else {
                        let tag = resolve_attribute(name).ok_or_else(|| {
                            ApiError::BadRequest(format!("includefield `{name}` is not a DICOM attribute"))
                        })?;
                        if let Include::Listed(tags) = &mut include {
                            tags.push(tag);
                        }
                    }
                }
            }
            name => {
                let tag = resolve_attribute(name).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "`{name}` is neither a QIDO-RS parameter nor a DICOM attribute keyword or tag"
                    ))
                })?;
                match filter_for(tag, &value, level)? {
                    Some(filter) => query.filters.push(filter),
                    None if value.is_empty() => {}
                    None => warnings.push(format!("{name} is not supported for matching and was ignored")),
                }
            }
        }
    }
    Ok(Request { query, include, warnings })
}

fn parse_count(name: &str, value: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| ApiError::BadRequest(format!("`{name}` must be a whole number from {min} to {max}")))
}

/// The filter for one matching key, `None` when the attribute is not matchable (or the
/// value is empty, which matches everything).
fn filter_for(tag: Tag, value: &str, level: Level) -> Result<Option<Filter>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.contains('\0') {
        return Err(ApiError::BadRequest("matching values must not contain NUL".into()));
    }
    let uid_list = |column| Filter::AnyOf(column, value.split([',', '\\']).map(|v| v.trim().to_owned()).collect());
    let text = |column| {
        if value.contains(['*', '?']) {
            Filter::Wildcard(column, value.to_owned())
        } else {
            Filter::Exact(column, value.to_owned())
        }
    };
    let filter = match tag {
        tags::PATIENT_ID => text(Column::PatientId),
        tags::PATIENT_NAME => Filter::Wildcard(Column::PatientName, value.to_owned()),
        tags::STUDY_INSTANCE_UID => uid_list(Column::StudyUid),
        tags::STUDY_DATE => range_or_exact(Column::StudyDate, value)?,
        tags::STUDY_TIME => range_or_exact(Column::StudyTime, value)?,
        tags::ACCESSION_NUMBER => text(Column::AccessionNumber),
        tags::STUDY_ID => text(Column::StudyId),
        tags::STUDY_DESCRIPTION => Filter::Wildcard(Column::StudyDescription, value.to_owned()),
        tags::REFERRING_PHYSICIAN_NAME => Filter::Wildcard(Column::ReferringPhysician, value.to_owned()),
        tags::MODALITIES_IN_STUDY => {
            Filter::ModalitiesInStudy(value.split([',', '\\']).map(|v| v.trim().to_owned()).collect())
        }
        tags::SERIES_INSTANCE_UID => uid_list(Column::SeriesUid),
        tags::MODALITY => Filter::Exact(Column::Modality, value.to_owned()),
        tags::SERIES_NUMBER => Filter::Number(Column::SeriesNumber, parse_integer("SeriesNumber", value)?),
        tags::SERIES_DESCRIPTION => Filter::Wildcard(Column::SeriesDescription, value.to_owned()),
        tags::SOP_INSTANCE_UID => uid_list(Column::SopInstanceUid),
        tags::SOP_CLASS_UID => uid_list(Column::SopClassUid),
        tags::INSTANCE_NUMBER => Filter::Number(Column::InstanceNumber, parse_integer("InstanceNumber", value)?),
        _ => return Ok(None),
    };
    let column_level = match &filter {
        Filter::Exact(c, _)
        | Filter::Number(c, _)
        | Filter::Wildcard(c, _)
        | Filter::AnyOf(c, _)
        | Filter::Range(c, _, _) => c.level(),
        Filter::ModalitiesInStudy(_) => Level::Study,
    };
    let allowed = match level {
        Level::Study => column_level == Level::Study,
        Level::Series => column_level != Level::Instance,
        Level::Instance => true,
    };
    if !allowed {
        return Err(ApiError::BadRequest(format!("{tag} cannot be matched in a search at this level")));
    }
    Ok(Some(filter))
}

fn parse_integer(name: &str, value: &str) -> Result<i64, ApiError> {
    value.trim().parse().map_err(|_| ApiError::BadRequest(format!("{name} must be an integer")))
}

/// `20260101`, `20260101-20261231`, `-20261231` or `20260101-`.
fn range_or_exact(column: Column, value: &str) -> Result<Filter, ApiError> {
    let valid = |part: &str| part.is_empty() || part.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match value.split_once('-') {
        None if valid(value) => Ok(Filter::Exact(column, value.to_owned())),
        Some((from, to)) if valid(from) && valid(to) => {
            let bound = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            Ok(Filter::Range(column, bound(from), bound(to)))
        }
        _ => Err(ApiError::BadRequest(format!("`{value}` is not a date or time, or a range of them (A-B)"))),
    }
}

/// The DICOM JSON of one result at `level`.
async fn render(
    state: &AppState,
    found: &Match,
    level: Level,
    with_study: bool,
    include: &Include,
    base: &str,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let study_url = format!("{base}/studies/{}", found.study_uid);
    if level == Level::Study || with_study {
        set_text(&mut out, tags::STUDY_DATE, found.study_date.as_deref());
        set_text(&mut out, tags::STUDY_TIME, found.study_time.as_deref());
        set_text(&mut out, tags::ACCESSION_NUMBER, found.accession_number.as_deref());
        set_text(&mut out, tags::REFERRING_PHYSICIAN_NAME, found.referring_physician.as_deref());
        set_text(&mut out, tags::STUDY_DESCRIPTION, found.study_description.as_deref());
        set_text(&mut out, tags::PATIENT_NAME, found.patient_name.as_deref());
        set_text(&mut out, tags::PATIENT_ID, Some(&found.patient_id));
        set_text(
            &mut out,
            tags::ISSUER_OF_PATIENT_ID,
            Some(&found.issuer).filter(|i| !i.is_empty()).map(String::as_str),
        );
        set_text(&mut out, tags::PATIENT_BIRTH_DATE, found.birth_date.as_deref());
        set_text(&mut out, tags::PATIENT_SEX, found.sex.as_deref());
        set_text(&mut out, tags::STUDY_ID, found.study_id.as_deref());
    }
    set_text(&mut out, tags::STUDY_INSTANCE_UID, Some(&found.study_uid));
    if level == Level::Study {
        let modalities = search::modalities_in_study(&state.db, &found.study_uid).await?;
        let values: Vec<&str> = modalities.iter().map(String::as_str).collect();
        out.insert(tag_key(tags::MODALITIES_IN_STUDY), crate::dicom::json::attribute("CS", &values));
        set_number(&mut out, tags::NUMBER_OF_STUDY_RELATED_SERIES, found.related_series);
        set_number(&mut out, tags::NUMBER_OF_STUDY_RELATED_INSTANCES, found.related_instances);
        set_text(&mut out, tags::RETRIEVE_URL, Some(&study_url));
    }
    let series_url = found.series_uid.as_ref().map(|s| format!("{study_url}/series/{s}"));
    if level != Level::Study {
        set_text(&mut out, tags::MODALITY, found.modality.as_deref());
        set_text(&mut out, tags::SERIES_DESCRIPTION, found.series_description.as_deref());
        set_text(&mut out, tags::SERIES_INSTANCE_UID, found.series_uid.as_deref());
        set_number(&mut out, tags::SERIES_NUMBER, found.series_number);
    }
    if level == Level::Series {
        set_number(&mut out, tags::NUMBER_OF_SERIES_RELATED_INSTANCES, found.related_instances);
        set_text(&mut out, tags::RETRIEVE_URL, series_url.as_deref());
    }
    if level == Level::Instance {
        set_text(&mut out, tags::SOP_CLASS_UID, found.sop_class_uid.as_deref());
        set_text(&mut out, tags::SOP_INSTANCE_UID, found.sop_instance_uid.as_deref());
        set_number(&mut out, tags::INSTANCE_NUMBER, found.instance_number);
        set_number(&mut out, tags::ROWS, found.rows);
        set_number(&mut out, tags::COLUMNS, found.columns);
        set_number(&mut out, tags::NUMBER_OF_FRAMES, found.number_of_frames.or(Some(1)));
        let url =
            series_url.map(|s| format!("{s}/instances/{}", found.sop_instance_uid.as_deref().unwrap_or_default()));
        set_text(&mut out, tags::RETRIEVE_URL, url.as_deref());
    }
    include_fields(state, found, level, include, &mut out).await?;
    Ok(out)
}

/// Adds `includefield` attributes from the instance's own metadata (instance level) or a
/// representative instance of the series or study.
async fn include_fields(
    state: &AppState,
    found: &Match,
    level: Level,
    include: &Include,
    out: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    if matches!(include, Include::Listed(tags) if tags.is_empty()) {
        return Ok(());
    }
    let metadata = match level {
        Level::Instance => found.metadata.clone(),
        Level::Series => {
            search::representative_metadata(&state.db, &found.study_uid, found.series_uid.as_deref()).await?
        }
        Level::Study => search::representative_metadata(&state.db, &found.study_uid, None).await?,
    };
    let Some(Value::Object(source)) = metadata.and_then(|m| serde_json::from_str(&m).ok()) else {
        return Ok(());
    };
    match include {
        Include::All => {
            for (key, value) in source {
                out.entry(key).or_insert(value);
            }
        }
        Include::Listed(tags) => {
            for tag in tags {
                let key = tag_key(*tag);
                if let Some(value) = source.get(&key) {
                    out.entry(key).or_insert_with(|| value.clone());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_become_filters() {
        let request = parse("PatientName=Doe*&StudyDate=20260101-20261231&limit=5&includefield=00081030", Level::Study)
            .unwrap_or_else(|_| panic!("parses"));
        assert_eq!(request.query.limit, 5);
        assert_eq!(request.query.filters[0], Filter::Wildcard(Column::PatientName, "Doe*".into()));
        assert_eq!(
            request.query.filters[1],
            Filter::Range(Column::StudyDate, Some("20260101".into()), Some("20261231".into()))
        );
        assert!(matches!(request.include, Include::Listed(ref t) if t == &[tags::STUDY_DESCRIPTION]));
    }

    #[test]
    fn unknown_attributes_and_wrong_levels_are_refused() {
        assert!(parse("NoSuchThing=1", Level::Study).is_err());
        assert!(parse("SOPInstanceUID=1.2", Level::Study).is_err(), "an instance key in a study search");
        assert!(parse("limit=0", Level::Study).is_err());
        assert!(parse("StudyDate=2026-01-01-2026", Level::Study).is_err());
        let ignored = parse("PatientWeight=80", Level::Study).unwrap_or_else(|_| panic!("parses"));
        assert_eq!(ignored.warnings.len(), 1, "a known but unindexed attribute is ignored with a warning");
    }
}
