//! rounds.md: the results of `petal eval rounds` as a reader checks them, the acceptance
//! figures first, then one row per patient and round.

use std::fmt::Write;

use super::RoundsResults;
use super::case::{CaseResult, JudgedRound, TruthVerdict};

/// The report in Markdown.
pub fn markdown(results: &RoundsResults) -> String {
    let mut out = String::new();
    let s = &results.summary;
    let scale = &results.scale;
    let _ = writeln!(out, "# Online learning judged against the truth\n");
    let _ = writeln!(
        out,
        "Written by `{}` on {} ({}). Base model `{}` (sha256 {}), {} simulated patients of \
         {}×{}×{} at {} s/bed ({} scale). Round settings: `{}`.\n",
        results.command,
        results.date,
        results.machine,
        results.base_model,
        &results.base_sha256[..results.base_sha256.len().min(12)],
        results.cases.len(),
        scale.size,
        scale.size,
        scale.slices,
        scale.seconds_per_bed,
        scale.name,
        serde_json::to_string(&results.settings).unwrap_or_default(),
    );
    let _ = writeln!(
        out,
        "The error is the normalised RMSE of the full-count series over the body against the \
         noiseless reconstruction; a change is (after / before − 1) in percent, negative is \
         better. A rejected round leaves the patient on the parent, so it counts as no change. \
         The truth calls a round better or worse beyond ±1 %.\n"
    );
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| measure | value |\n|---|---|");
    let percent = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:+.2} %"));
    let _ = writeln!(
        out,
        "| domain shift: median change after the default round | {} |",
        percent(s.domain_shift_median_change_percent)
    );
    let _ = writeln!(
        out,
        "| domain shift: median change after the oracle round | {} |",
        percent(s.domain_shift_oracle_median_change_percent)
    );
    let _ = writeln!(out, "| domain shift: worst patient | {} |", percent(s.domain_shift_worst_change_percent));
    let _ = writeln!(out, "| same domain: worst patient | {} |", percent(s.same_domain_worst_change_percent));
    let _ = writeln!(
        out,
        "| largest drift of a lesion's SUVmean from the truth (activated rounds) | {} |",
        s.worst_lesion_drift_points.map_or("–".to_owned(), |v| format!("{v:+.2} points"))
    );
    let _ = writeln!(out, "| gate agrees with the truth | {} of {} rounds |\n", s.gate_agreements, s.rounds);

    let _ = writeln!(out, "## First rounds\n");
    let _ = writeln!(
        out,
        "| patient | case | OSEM error | base error | after | change | oracle | gate | truth | agrees | \
         held-out change: truth | held-out change: gate's estimate | N2N loss change | body mean bias | liver noise | \
         new hot spots | lesion SUVmean bias |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for case in &results.cases {
        first_round_row(&mut out, case);
    }
    let _ = writeln!(out, "\n## Follow-up scans and second rounds\n");
    let _ = writeln!(
        out,
        "The follow-up is a second full-count scan of the same patient. \"Patient model\" is the \
         model after the first round (the parent when that round was rejected).\n"
    );
    let _ = writeln!(
        out,
        "| patient | case | parent's error | patient model's error | change | second round: change | gate | truth | agrees |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for case in &results.cases {
        let Some(f) = &case.follow_up else { continue };
        let r = &f.second_round;
        let _ = writeln!(
            out,
            "| {} | {} | {:.4} | {:.4} | {:+.2} % | {:+.2} % | {} | {} | {} |",
            case.seed,
            case.kind.as_str(),
            f.parent.error,
            f.patient_model.error,
            f.error_change_percent,
            r.error_change_percent,
            gate_word(r),
            truth_word(r.truth),
            if r.gate_agrees { "yes" } else { "**no**" },
        );
    }
    let _ = writeln!(out, "\n## Why rounds were rejected\n");
    for case in &results.cases {
        let second = case.follow_up.as_ref().map(|f| ("second", &f.second_round));
        for (name, round) in std::iter::once(("first", &case.round)).chain(second) {
            if !round.gate.passed {
                let _ = writeln!(
                    out,
                    "- patient {} ({}), {name} round: {}",
                    case.seed,
                    case.kind.as_str(),
                    round.gate.reasons.join("; ")
                );
            }
        }
    }
    out
}

fn first_round_row(out: &mut String, case: &CaseResult) {
    let r = &case.round;
    let estimate = &r.gate.measures.error_change;
    let biases = |m: &super::measures::Measures| {
        m.lesions.iter().map(|l| format!("{:+.1}", l.suv_mean_bias_percent)).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(
        out,
        "| {} | {} | {:.4} | {:.4} | {:.4} | {:+.2} % | {} | {} | {} | {} | {:+.2} % | {:+.2} % [{:+.2}, {:+.2}] | \
         {:+.2} % | {:+.2} → {:+.2} % | {:.1} → {:.1} % | {} → {} | {} → {} |",
        case.seed,
        case.kind.as_str(),
        case.osem.error,
        r.before.error,
        r.after.error,
        r.error_change_percent,
        case.oracle.as_ref().map_or("–".to_owned(), |o| format!("{:+.2} %", o.error_change_percent)),
        gate_word(r),
        truth_word(r.truth),
        if r.gate_agrees { "yes" } else { "**no**" },
        super::case::change_percent(r.after.error_held_out, r.before.error_held_out),
        estimate.change_percent,
        estimate.low_percent,
        estimate.high_percent,
        (r.validation_loss / r.validation_loss_parent - 1.0) * 100.0,
        r.before.body_mean_bias_percent,
        r.after.body_mean_bias_percent,
        r.before.liver_noise_percent,
        r.after.liver_noise_percent,
        r.before.new_hot_spots,
        r.after.new_hot_spots,
        biases(&r.before),
        biases(&r.after),
    );
}

fn gate_word(round: &JudgedRound) -> &'static str {
    if round.gate.passed { "activated" } else { "rejected" }
}

fn truth_word(truth: TruthVerdict) -> &'static str {
    match truth {
        TruthVerdict::Better => "better",
        TruthVerdict::Worse => "worse",
        TruthVerdict::Unchanged => "unchanged",
    }
}
