//! Value parsers for flags that are more than a plain string or number: durations, UIDs,
//! round settings as JSON, and the names of roles, modes and reconstruction versions.

use std::time::Duration;

use crate::api::AuthMode;
use crate::domain::Role;

pub(super) fn parse_uid(text: &str) -> Result<crate::dicom::Uid, String> {
    let uid = crate::dicom::Uid::parse(text).map_err(|e| format!("`{text}`: {e}"))?;
    crate::dicom::Uid::generate_under(&uid).map_err(|e| format!("`{text}`: {e}"))?;
    Ok(uid)
}

pub(super) fn parse_round_defaults(text: &str) -> Result<crate::science::training::n2n_round::RoundSettings, String> {
    let settings: crate::science::training::n2n_round::RoundSettings =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object of round settings: {e}"))?;
    settings.validate().map_err(|e| e.to_string())?;
    Ok(settings)
}

/// Patient seeds as `A..B` (B excluded), or `acceptance` / `sweep` for the pinned sets of
/// `petal eval rounds`.
pub(super) fn seed_range_parser(text: &str) -> Result<std::ops::Range<u64>, String> {
    use crate::science::evaluation::rounds::{ACCEPTANCE_SEEDS, SWEEP_SEEDS};
    match text.trim() {
        "acceptance" => return Ok(ACCEPTANCE_SEEDS),
        "sweep" => return Ok(SWEEP_SEEDS),
        _ => {}
    }
    let bounds =
        text.split_once("..").and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
    match bounds {
        Some((start, end)) if start < end => Ok(start..end),
        _ => Err(format!("`{text}` is not A..B with A < B (or `acceptance`, `sweep`)")),
    }
}

/// An AE title (1 to 16 characters, no backslash or control characters).
pub(super) fn parse_ae_title(text: &str) -> Result<String, String> {
    crate::dimse::allow_list::parse_ae_title(text).map_err(|e| e.to_string())
}

/// The calling nodes allowed to open DIMSE associations.
pub(super) fn parse_allow_list(text: &str) -> Result<crate::dimse::allow_list::AllowList, String> {
    crate::dimse::allow_list::AllowList::parse(text).map_err(|e| e.to_string())
}

/// A size in bytes: a whole number, optionally followed by KiB, MiB or GiB (or K, M, G,
/// also powers of 1024).
pub(super) fn parse_byte_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("`{text}` is not a size: write bytes, or a number with KiB, MiB or GiB")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("`{text}` is not a size: write bytes, or a number with KiB, MiB or GiB"))
}

/// A confidence level between 0.5 and 0.999.
pub(super) fn parse_confidence(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(c) if (0.5..=0.999).contains(&c) => Ok(c),
        _ => Err(format!("`{text}` is not a confidence between 0.5 and 0.999")),
    }
}

/// Parses a whole number of at least 1.
pub(super) fn parse_positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{text}` is not a whole number of at least 1")),
    }
}

/// `enabled` (bearer tokens with roles, the only mode for real use) or `disabled` (every
/// request acts as admin; local demos only, warned about at every start).
pub(super) fn auth_mode_parser() -> impl clap::builder::TypedValueParser<Value = AuthMode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(AuthMode::ALL.map(AuthMode::as_str))
        .try_map(|name| name.parse::<AuthMode>())
}

/// `pacs`, `radiologist` or `admin`, listed as the possible values in `--help`.
pub(super) fn role_parser() -> impl clap::builder::TypedValueParser<Value = Role> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Role::ALL.map(Role::as_str)).try_map(|name| name.parse::<Role>())
}

/// `v1` or `v2`, listed as the possible values in `--help`.
pub(super) fn recon_version_parser()
-> impl clap::builder::TypedValueParser<Value = crate::science::simulation::ReconVersion> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["v1", "v2"])
        .try_map(|name| name.parse::<crate::science::simulation::ReconVersion>())
}

/// Parses `90d`, `12h`, `30m`, `45s`, `250ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| format!("`{text}` is not a duration such as 30s, 15m, 12h or 90d"))?;
    let seconds = match unit {
        "" | "s" => return Ok(Duration::from_secs(value)),
        "ms" => return Ok(Duration::from_millis(value)),
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit `{unit}` in `{text}`: use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs(value * seconds))
}
