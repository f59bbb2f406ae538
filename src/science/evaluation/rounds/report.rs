//! rounds.md: the results of `petal eval rounds` as a reader checks them, the acceptance
//! figures first, then one row per patient and round.

use std::fmt::Write;

use super::case::{CaseResult, JudgedRound, TruthVerdict};
use super::{LESION_DRIFT_POINTS, RoundsResults};

/// The report in Markdown.
pub fn markdown(results: &RoundsResults) -> String {
    let mut out = String::new();
    let s = &results.summary;
    let scale = &results.scale;
    let _ = writeln!(out, "# Online learning judged against the truth\n");
    let _ = writeln!(
        out,
        "Written by `{}` on {} ({}). Base model `{}` (sha256 {}), {} cases of {} simulated \
         patients of {}×{}×{} at {} s/bed ({} scale). Round settings: `{}`.\n",
        results.command,
        results.date,
        results.machine,
        results.base_model,
        &results.base_sha256[..results.base_sha256.len().min(12)],
        results.cases.len(),
        results.cases.iter().map(|c| c.seed).collect::<std::collections::BTreeSet<_>>().len(),
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
         The truth calls a round better or worse beyond ±1 %. The training loss is the N2N loss \
         of the round's own batches (network units), averaged over its first and its last tenth \
         of steps.\n"
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
         new hot spots | lesion SUVmean bias | training loss |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
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
        "| patient | case | parent's error | patient model's error | change | second round: change | gate | truth | agrees | \
         training loss |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for case in &results.cases {
        let Some(f) = &case.follow_up else { continue };
        let r = &f.second_round;
        let _ = writeln!(
            out,
            "| {} | {} | {:.4} | {:.4} | {:+.2} % | {:+.2} % | {} | {} | {} | {} |",
            case.seed,
            case.kind.as_str(),
            f.parent.error,
            f.patient_model.error,
            f.error_change_percent,
            r.error_change_percent,
            gate_word(r),
            truth_word(r.truth),
            if r.gate_agrees { "yes" } else { "**no**" },
            training_loss(r),
        );
    }
    lesion_drifts(&mut out, results);
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

/// Every lesion an activated first round moved further from the truth than
/// [`LESION_DRIFT_POINTS`], with the input's own bias beside it: one noisy realization
/// cannot tell a round that restored contrast the parent smoothed away (its output nears the
/// input's value, noise and all) from one that biased the lesion.
fn lesion_drifts(out: &mut String, results: &RoundsResults) {
    let _ = writeln!(out, "\n## Lesions moved further from the truth\n");
    let _ = writeln!(
        out,
        "Lesions whose SUVmean an activated first round moved more than {LESION_DRIFT_POINTS} points further \
         from the truth. \"Toward the input\" means the new output lies between the parent's and the input's \
         (the full-count OSEM series, whose own noise sets its bias).\n"
    );
    let mut rows = 0;
    for case in results.cases.iter().filter(|c| c.round.gate.passed) {
        for after in &case.round.after.lesions {
            let (Some(before), Some(input)) = (case.round.before.lesion(after.label), case.osem.lesion(after.label))
            else {
                continue;
            };
            let drift = after.suv_mean_bias_percent.abs() - before.suv_mean_bias_percent.abs();
            if drift <= LESION_DRIFT_POINTS {
                continue;
            }
            if rows == 0 {
                let _ = writeln!(
                    out,
                    "| patient | case | lesion | organ | voxels | SUVmean bias: input | parent | after | further by | toward the input |"
                );
                let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
            }
            rows += 1;
            let (low, high) = (before.suv_mean.min(input.suv_mean), before.suv_mean.max(input.suv_mean));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:+.1} % | {:+.1} % | {:+.1} % | {:.1} points | {} |",
                case.seed,
                case.kind.as_str(),
                after.label,
                after.organ,
                after.voxels,
                input.suv_mean_bias_percent,
                before.suv_mean_bias_percent,
                after.suv_mean_bias_percent,
                drift,
                if (low..=high).contains(&after.suv_mean) { "yes" } else { "no" },
            );
        }
    }
    if rows == 0 {
        let _ = writeln!(out, "None.");
    }
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
         {:+.2} % | {:+.2} → {:+.2} % | {:.1} → {:.1} % | {} → {} | {} → {} | {} |",
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
        training_loss(r),
    );
}

/// The round's training loss, the mean of its first and of its last tenth of steps.
fn training_loss(round: &JudgedRound) -> String {
    format!("{:.4} → {:.4}", round.training_loss_start, round.training_loss_end)
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
