//! QIDO-RS searches over the index: studies, series or instances, with the matching
//! PS3.4 §C.2.2.2 defines (single value, wildcard, UID list, range), paged.

use sqlx::{FromRow, QueryBuilder};

use super::{Database, StorageError, with_pool};
use crate::domain::PatientKey;

/// The level results are returned at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Study,
    Series,
    Instance,
}

/// An indexed attribute that can be matched, with its SQL column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    PatientId,
    PatientName,
    StudyUid,
    StudyDate,
    StudyTime,
    AccessionNumber,
    StudyId,
    StudyDescription,
    ReferringPhysician,
    SeriesUid,
    Modality,
    SeriesNumber,
    SeriesDescription,
    SopInstanceUid,
    SopClassUid,
    InstanceNumber,
}

impl Column {
    fn sql(self) -> &'static str {
        match self {
            Column::PatientId => "p.patient_id",
            Column::PatientName => "p.patient_name",
            Column::StudyUid => "st.study_uid",
            Column::StudyDate => "st.study_date",
            Column::StudyTime => "st.study_time",
            Column::AccessionNumber => "st.accession_number",
            Column::StudyId => "st.study_id",
            Column::StudyDescription => "st.study_description",
            Column::ReferringPhysician => "st.referring_physician",
            Column::SeriesUid => "se.series_uid",
            Column::Modality => "se.modality",
            Column::SeriesNumber => "se.series_number",
            Column::SeriesDescription => "se.series_description",
            Column::SopInstanceUid => "i.sop_instance_uid",
            Column::SopClassUid => "i.sop_class_uid",
            Column::InstanceNumber => "i.instance_number",
        }
    }

    /// The lowest level whose query may match on this column.
    pub fn level(self) -> Level {
        match self {
            Column::SeriesUid | Column::Modality | Column::SeriesNumber | Column::SeriesDescription => Level::Series,
            Column::SopInstanceUid | Column::SopClassUid | Column::InstanceNumber => Level::Instance,
            _ => Level::Study,
        }
    }
}

/// One matching condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Equal to the value.
    Exact(Column, String),
    /// Equal to the integer value.
    Number(Column, i64),
    /// DICOM wildcard (`*`, `?`), matched without regard to case.
    Wildcard(Column, String),
    /// Any of these values (UID list matching).
    AnyOf(Column, Vec<String>),
    /// Within an inclusive range of comparable text (dates, times); open ends allowed.
    Range(Column, Option<String>, Option<String>),
    /// The study has a series of one of these modalities.
    ModalitiesInStudy(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub level: Level,
    pub filters: Vec<Filter>,
    pub limit: i64,
    pub offset: i64,
}

/// One result row; series and instance columns are empty above their level.
#[derive(Debug, Clone, FromRow)]
pub struct Match {
    pub study_uid: String,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub study_id: Option<String>,
    pub study_description: Option<String>,
    pub referring_physician: Option<String>,
    pub patient_key: PatientKey,
    pub patient_id: String,
    pub issuer: String,
    pub patient_name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub series_uid: Option<String>,
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub sop_class_uid: Option<String>,
    pub instance_number: Option<i64>,
    pub rows: Option<i64>,
    pub columns: Option<i64>,
    pub number_of_frames: Option<i64>,
    /// Series in the study (study level).
    pub related_series: Option<i64>,
    /// Instances in the study (study level) or series (series level).
    pub related_instances: Option<i64>,
    /// DICOM JSON of the instance (instance level).
    pub metadata: Option<String>,
}

const STUDY_COLUMNS: &str = "SELECT st.study_uid, st.study_date, st.study_time, st.accession_number, st.study_id,
        st.study_description, st.referring_physician, p.patient_key, p.patient_id, p.issuer, p.patient_name,
        p.birth_date, p.sex, ";

fn select_for(level: Level) -> String {
    let rest = match level {
        Level::Study => {
            "CAST(NULL AS TEXT) AS series_uid, CAST(NULL AS TEXT) AS modality, CAST(NULL AS BIGINT) AS series_number,
             CAST(NULL AS TEXT) AS series_description, CAST(NULL AS TEXT) AS sop_instance_uid,
             CAST(NULL AS TEXT) AS sop_class_uid, CAST(NULL AS BIGINT) AS instance_number, CAST(NULL AS BIGINT) AS rows,
             CAST(NULL AS BIGINT) AS columns, CAST(NULL AS BIGINT) AS number_of_frames,
             (SELECT COUNT(*) FROM series s2 WHERE s2.study_uid = st.study_uid) AS related_series,
             (SELECT COUNT(*) FROM instances i2 JOIN series s2 ON s2.series_uid = i2.series_uid
               WHERE s2.study_uid = st.study_uid) AS related_instances,
             CAST(NULL AS TEXT) AS metadata
             FROM studies st JOIN patients p ON p.patient_key = st.patient_key"
        }
        Level::Series => {
            "se.series_uid, se.modality, se.series_number, se.series_description, CAST(NULL AS TEXT) AS sop_instance_uid,
             CAST(NULL AS TEXT) AS sop_class_uid, CAST(NULL AS BIGINT) AS instance_number, CAST(NULL AS BIGINT) AS rows,
             CAST(NULL AS BIGINT) AS columns, CAST(NULL AS BIGINT) AS number_of_frames,
             CAST(NULL AS BIGINT) AS related_series,
             (SELECT COUNT(*) FROM instances i2 WHERE i2.series_uid = se.series_uid) AS related_instances,
             CAST(NULL AS TEXT) AS metadata
             FROM series se JOIN studies st ON st.study_uid = se.study_uid
             JOIN patients p ON p.patient_key = st.patient_key"
        }
        Level::Instance => {
            "se.series_uid, se.modality, se.series_number, se.series_description, i.sop_instance_uid, i.sop_class_uid,
             i.instance_number, i.rows, i.columns, i.number_of_frames, CAST(NULL AS BIGINT) AS related_series,
             CAST(NULL AS BIGINT) AS related_instances, i.metadata
             FROM instances i JOIN series se ON se.series_uid = i.series_uid
             JOIN studies st ON st.study_uid = se.study_uid JOIN patients p ON p.patient_key = st.patient_key"
        }
    };
    format!("{STUDY_COLUMNS}{rest}")
}

fn order_for(level: Level) -> &'static str {
    match level {
        Level::Study => " ORDER BY st.study_date, st.study_time, st.study_uid",
        Level::Series => " ORDER BY st.study_uid, se.series_number, se.series_uid",
        Level::Instance => {
            " ORDER BY st.study_uid, se.series_number, se.series_uid, i.instance_number, i.sop_instance_uid"
        }
    }
}

/// Translates a DICOM wildcard into a SQL `LIKE` pattern (escape character `\`).
fn like_pattern(wildcard: &str) -> String {
    let mut pattern = String::with_capacity(wildcard.len());
    for c in wildcard.to_lowercase().chars() {
        match c {
            '*' => pattern.push('%'),
            '?' => pattern.push('_'),
            '%' | '_' | '\\' => {
                pattern.push('\\');
                pattern.push(c);
            }
            other => pattern.push(other),
        }
    }
    pattern
}

/// Runs a search. Filters on a column below the query's level must have been refused
/// by the caller.
pub async fn search(db: &Database, query: &SearchQuery) -> Result<Vec<Match>, StorageError> {
    let select = select_for(query.level);
    let rows = with_pool!(db, |pool| {
        let mut builder = QueryBuilder::new(select.as_str());
        builder.push(" WHERE 1 = 1");
        for filter in &query.filters {
            match filter {
                Filter::Exact(column, value) => {
                    builder.push(format!(" AND {} = ", column.sql())).push_bind(value.clone());
                }
                Filter::Number(column, value) => {
                    builder.push(format!(" AND {} = ", column.sql())).push_bind(*value);
                }
                Filter::Wildcard(column, value) => {
                    builder
                        .push(format!(" AND LOWER({}) LIKE ", column.sql()))
                        .push_bind(like_pattern(value))
                        .push(" ESCAPE '\\'");
                }
                Filter::AnyOf(column, values) => {
                    builder.push(format!(" AND {} IN (", column.sql()));
                    let mut list = builder.separated(", ");
                    for value in values {
                        list.push_bind(value.clone());
                    }
                    builder.push(")");
                }
                Filter::Range(column, from, to) => {
                    if let Some(from) = from {
                        builder.push(format!(" AND {} >= ", column.sql())).push_bind(from.clone());
                    }
                    if let Some(to) = to {
                        builder.push(format!(" AND {} <= ", column.sql())).push_bind(to.clone());
                    }
                }
                Filter::ModalitiesInStudy(modalities) => {
                    builder.push(
                        " AND EXISTS (SELECT 1 FROM series ms WHERE ms.study_uid = st.study_uid AND ms.modality IN (",
                    );
                    let mut list = builder.separated(", ");
                    for modality in modalities {
                        list.push_bind(modality.clone());
                    }
                    builder.push("))");
                }
            }
        }
        builder.push(order_for(query.level));
        builder.push(" LIMIT ").push_bind(query.limit).push(" OFFSET ").push_bind(query.offset);
        builder.build_query_as::<Match>().fetch_all(pool).await
    })?;
    Ok(rows)
}

/// The distinct modalities of a study's series.
pub async fn modalities_in_study(db: &Database, study_uid: &str) -> Result<Vec<String>, StorageError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT DISTINCT modality FROM series WHERE study_uid = $1 ORDER BY modality")
            .bind(study_uid)
            .fetch_all(pool)
            .await
    })?)
}

/// DICOM JSON of one instance of the study (or of the series), to answer `includefield`
/// for attributes the index does not keep.
pub async fn representative_metadata(
    db: &Database,
    study_uid: &str,
    series_uid: Option<&str>,
) -> Result<Option<String>, StorageError> {
    let sql = "SELECT i.metadata FROM instances i JOIN series se ON se.series_uid = i.series_uid
               WHERE se.study_uid = $1 AND ($2 IS NULL OR i.series_uid = $2)
               ORDER BY i.instance_number, i.sop_instance_uid LIMIT 1";
    Ok(with_pool!(db, |pool| sqlx::query_scalar(sql).bind(study_uid).bind(series_uid).fetch_optional(pool).await)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_become_like_patterns_with_escapes() {
        assert_eq!(like_pattern("Doe*"), "doe%");
        assert_eq!(like_pattern("D?e"), "d_e");
        assert_eq!(like_pattern("50%_off\\"), "50\\%\\_off\\\\");
    }
}
