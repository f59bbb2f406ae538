//! Standardised uptake value, body-weight normalised (SUVbw), from the PET header.
//!
//! SUVbw = activity concentration (Bq/ml) × body weight (g) / injected dose (Bq), with the
//! dose decayed from injection to the series start when DecayCorrection is START (the
//! scanner decay-corrected the image to that time). Returns `None` whenever a needed tag
//! is missing or implausible: callers then fall back to a robust per-volume scale.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;

/// The factor that turns Bq/ml into SUVbw for one instance.
pub fn suv_bw_factor(object: &InMemDicomObject) -> Option<f64> {
    let text = |o: &InMemDicomObject, tag: Tag| -> Option<String> {
        let value = o.get(tag)?.to_str().ok()?.trim_matches(['\0', ' ']).to_owned();
        (!value.is_empty()).then_some(value)
    };
    let number = |o: &InMemDicomObject, tag| text(o, tag)?.split('\\').next()?.trim().parse::<f64>().ok();
    if !text(object, tags::UNITS)?.eq_ignore_ascii_case("BQML") {
        return None;
    }
    let weight_kg = number(object, tags::PATIENT_WEIGHT).filter(|w| *w > 0.0)?;
    let info = object.get(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE)?.items()?.first()?;
    let dose_bq = number(info, tags::RADIONUCLIDE_TOTAL_DOSE).filter(|d| *d > 0.0)?;
    let half_life_s = number(info, tags::RADIONUCLIDE_HALF_LIFE).filter(|h| *h > 0.0)?;
    let series_date = text(object, tags::SERIES_DATE).or_else(|| text(object, tags::ACQUISITION_DATE))?;
    let series_time = text(object, tags::SERIES_TIME).or_else(|| text(object, tags::ACQUISITION_TIME))?;
    let start = date_time(&series_date, &series_time)?;
    let injected = match text(info, tags::RADIOPHARMACEUTICAL_START_DATE_TIME) {
        Some(dt) if dt.len() >= 14 => date_time(&dt[..8], &dt[8..])?,
        _ => date_time(&series_date, &text(info, tags::RADIOPHARMACEUTICAL_START_TIME)?)?,
    };
    let decay_correction = text(object, tags::DECAY_CORRECTION).unwrap_or_else(|| "START".into());
    let elapsed_s = (start - injected).num_milliseconds() as f64 / 1000.0;
    let decayed_dose = match decay_correction.as_str() {
        "START" if (0.0..86_400.0).contains(&elapsed_s) => {
            dose_bq * (-elapsed_s * std::f64::consts::LN_2 / half_life_s).exp()
        }
        "ADMIN" => dose_bq,
        _ => return None,
    };
    Some(weight_kg * 1000.0 / decayed_dose)
}

/// Parses DICOM DA (`YYYYMMDD`) and TM (`HHMMSS.FFFFFF`, parts optional) values.
fn date_time(date: &str, time: &str) -> Option<NaiveDateTime> {
    let date = NaiveDate::parse_from_str(date.get(..8)?, "%Y%m%d").ok()?;
    let time = time.split(['+', '-']).next()?;
    let (whole, fraction) = time.split_once('.').unwrap_or((time, ""));
    let field = |range: std::ops::Range<usize>| whole.get(range).map_or(Some(0), |v| v.parse::<u32>().ok());
    let nanos = format!("{fraction:0<9}").get(..9)?.parse::<u32>().ok()?;
    let time = NaiveTime::from_hms_nano_opt(field(0..2)?, field(2..4)?, field(4..6)?, nanos)?;
    Some(date.and_time(time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, PrimitiveValue, VR};

    fn pet_header(units: &str) -> InMemDicomObject {
        let text = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
        let info = InMemDicomObject::from_element_iter([
            text(tags::RADIOPHARMACEUTICAL_START_TIME, VR::TM, "090000"),
            text(tags::RADIONUCLIDE_TOTAL_DOSE, VR::DS, "370000000"),
            text(tags::RADIONUCLIDE_HALF_LIFE, VR::DS, "6586.2"),
        ]);
        InMemDicomObject::from_element_iter([
            text(tags::UNITS, VR::CS, units),
            text(tags::PATIENT_WEIGHT, VR::DS, "70"),
            text(tags::SERIES_DATE, VR::DA, "20260105"),
            text(tags::SERIES_TIME, VR::TM, "100000.000"),
            text(tags::DECAY_CORRECTION, VR::CS, "START"),
            DataElement::new(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE, VR::SQ, DataSetSequence::from(vec![info])),
        ])
    }

    #[test]
    fn suv_factor_decays_the_dose_to_the_series_start() {
        let factor = suv_bw_factor(&pet_header("BQML")).expect("computable");
        // One hour after injection of 370 MBq F-18: dose decayed by 2^(-3600/6586.2).
        let expected = 70_000.0 / (370e6 * (-3600.0 * std::f64::consts::LN_2 / 6586.2).exp());
        assert!((factor - expected).abs() / expected < 1e-9, "{factor} vs {expected}");
    }

    #[test]
    fn other_units_give_no_factor() {
        assert!(suv_bw_factor(&pet_header("CNTS")).is_none());
    }

    #[test]
    fn dicom_times_parse_with_optional_parts() {
        let t = date_time("20260105", "1005").expect("HHMM");
        assert_eq!(t.to_string(), "2026-01-05 10:05:00");
        let t = date_time("20260105", "100530.25").expect("fraction");
        assert_eq!(t.to_string(), "2026-01-05 10:05:30.250");
    }
}
