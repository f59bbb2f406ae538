//! `petal eval rounds`: online learning judged against the truth (the science lives in
//! [`crate::science::evaluation::rounds`]). Each patient's case is cached in the work folder
//! with what it was made from; running the command again reuses every case made from the
//! same base model, settings, gate limits and scale, so a run cut short resumes.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::progress::bar;
use crate::app::config::{EvalRoundsArgs, RoundCase};
use crate::science::evaluation::rounds::case::{CaseKind, CasePlan, CaseResult, evaluate};
use crate::science::evaluation::rounds::patient::Patient;
use crate::science::evaluation::rounds::{ACCEPTANCE_SEEDS, RoundsResults, RoundsScale, Summary, report};
use crate::science::model::directory::StoredModel;
use crate::science::simulation::ReconVersion;
use crate::science::training::gate::GateLimits;
use crate::science::training::n2n_round::Flow;

/// The OSEM version the shipped base model was trained on (models/base/report.md).
const BASE_RECON: ReconVersion = ReconVersion::V1;

/// Bumped when what a case measures or how the gate judges changes, so older cached cases
/// are made again.
const CASE_FORMAT: u32 = 4;

/// A cached case and what it was made from.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedCase {
    made_from: String,
    result: CaseResult,
}

pub fn run(args: &EvalRoundsArgs) -> anyhow::Result<()> {
    let scale = if args.quick {
        RoundsScale::quick()
    } else {
        let default = RoundsScale::default_scale();
        RoundsScale::resized(
            args.size.map_or(default.size, usize::from),
            args.slices.map_or(default.slices, usize::from),
        )
    };
    let settings = scale.settings(&args.settings);
    settings.validate()?;
    let limits = GateLimits::default();
    let seeds = args.seeds.clone().unwrap_or(ACCEPTANCE_SEEDS);
    let base = StoredModel::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let command = std::iter::once("petal".to_owned()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ");
    let work = args.work.clone().unwrap_or_else(|| PathBuf::from(format!("eval-rounds-{}", scale.name)));
    let out = args.out.clone().unwrap_or_else(|| {
        if scale == RoundsScale::default_scale() { PathBuf::from("docs/results") } else { work.join("results") }
    });
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let plan = CasePlan { beyond_first_round: !args.first_rounds_only };
    let made_from = serde_json::to_string(&(CASE_FORMAT, &base.sha256, &settings, &limits, &scale, BASE_RECON, plan))?;

    let mut cases = Vec::new();
    for seed in seeds {
        let kinds = match args.case {
            None => vec![CaseKind::DomainShift, CaseKind::SameDomain],
            Some(RoundCase::DomainShift) => vec![CaseKind::DomainShift],
            Some(RoundCase::SameDomain) => vec![CaseKind::SameDomain],
        };
        for kind in kinds {
            let path = work.join(format!("case-{seed}-{}.json", kind.as_str().replace(' ', "-")));
            if let Some(cached) = cached(&path, &made_from) {
                println!("eval rounds: patient {seed} ({}): reusing {}", kind.as_str(), path.display());
                cases.push(cached);
                continue;
            }
            println!("eval rounds: patient {seed} ({}): simulating", kind.as_str());
            let started = std::time::Instant::now();
            let patient = Patient::simulate(seed, scale.grid(), kind.patient_recon(BASE_RECON), scale.seconds_per_bed);
            let mut observer = progress_observer(format!("patient {seed}, {}", kind.as_str()));
            let result = evaluate(&base, &patient, kind, &settings, &limits, plan, &mut observer)
                .with_context(|| format!("patient {seed} ({})", kind.as_str()))?;
            let record = CachedCase { made_from: made_from.clone(), result };
            std::fs::write(&path, serde_json::to_vec_pretty(&record)?)
                .with_context(|| format!("writing {}", path.display()))?;
            let r = &record.result.round;
            println!(
                "eval rounds: patient {seed} ({}): error {:.4} → {:.4} ({:+.2} %), gate {}, oracle {}, {:.0} s",
                kind.as_str(),
                r.before.error,
                r.after.error,
                r.error_change_percent,
                if r.gate.passed { "passed" } else { "rejected" },
                record.result.oracle.as_ref().map_or("–".to_owned(), |o| format!("{:+.2} %", o.error_change_percent)),
                started.elapsed().as_secs_f64()
            );
            cases.push(record.result);
        }
    }
    let results = RoundsResults {
        command,
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: crate::app::bench::machine(),
        scale,
        base_model: args.model.display().to_string(),
        base_sha256: base.sha256.clone(),
        settings: settings.clone(),
        limits,
        summary: Summary::of(&cases),
        cases,
    };
    write_results(&results, &out)?;
    println!("eval rounds: results in {}", out.join("rounds.md").display());
    Ok(())
}

fn cached(path: &Path, made_from: &str) -> Option<CaseResult> {
    let bytes = std::fs::read(path).ok()?;
    let cached: CachedCase = serde_json::from_slice(&bytes).ok()?;
    (cached.made_from == made_from).then_some(cached.result)
}

/// A progress bar over every round of a case, as a round observer.
fn progress_observer(name: String) -> impl FnMut(usize, usize, f64) -> Flow {
    let progress = bar(0, &name);
    move |step, total, loss| {
        progress.set_length(total as u64);
        progress.set_position(step as u64);
        progress.set_message(format!("loss {loss:.5}"));
        Flow::Continue
    }
}

fn write_results(results: &RoundsResults, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(out.join(name), bytes).with_context(|| format!("writing {}", out.join(name).display()))
    };
    write("rounds.md", report::markdown(results).as_bytes())?;
    write("rounds.json", &serde_json::to_vec_pretty(results)?)?;
    Ok(())
}
