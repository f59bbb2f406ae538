//! nema.md: the phantom's figures as a physicist reads them, one table per count level.

use std::fmt::Write;

use super::NemaResults;
use super::measures::sphere_diameters;

/// EARL's FDG-PET/CT accreditation windows ("EARL 18F standards 1", specifications of January
/// 2017, for a 10:1 sphere-to-background fill) for RC_A50, smallest sphere first: (lowest,
/// highest) measured over true activity.
pub const EARL1_RC_A50: [(f64, f64); 6] =
    [(0.27, 0.43), (0.44, 0.60), (0.57, 0.73), (0.63, 0.78), (0.72, 0.85), (0.76, 0.89)];
/// The same for RC_max.
pub const EARL1_RC_MAX: [(f64, f64); 6] =
    [(0.34, 0.57), (0.59, 0.85), (0.73, 1.01), (0.83, 1.09), (0.91, 1.13), (0.95, 1.16)];

/// `value` with a mark saying whether it lies in `window`.
fn against(value: f64, (low, high): (f64, f64)) -> String {
    let mark = if (low..=high).contains(&value) { "in" } else { "**out**" };
    format!("{value:.3} {mark}")
}

/// The Markdown report; `command` is the command line that made it.
pub fn markdown(results: &NemaResults, command: &str) -> String {
    let mut text = String::new();
    let [pixel, _, slice] = results.voxel_mm;
    let _ = writeln!(text, "# NEMA IEC body phantom through OSEM and through petal\n");
    let _ = writeln!(text, "Made by `{command}`.\n");
    let _ = writeln!(
        text,
        "Spheres at {}:1 to the background; {pixel} × {pixel} × {slice} mm voxels; {} mm scanner resolution; \
         {}; {} realizations per count level; model sha256 `{}` at strength {}. CRC is the mean contrast recovery \
         of a circular ROI of the sphere's diameter on the slice through the spheres' centres; RC_max the \
         hottest voxel over the true activity, RC_A50 the background-adapted 50 % iso-contour's mean over it, SUVpeak the best 1 mL sphere; BV the background variability of 60 ROIs of 10 mm; CoV \
         the voxel noise of the uniform background; lung the residual in the lung insert. Definitions: \
         src/science/evaluation/nema/measures.rs.\n",
        results.contrast,
        results.fwhm_mm,
        results.reconstruction,
        results.realizations,
        &results.model_sha256[..12.min(results.model_sha256.len())],
        results.strength
    );
    let _ = writeln!(
        text,
        "EARL's accreditation windows (EARL 18F standards 1, specifications of January 2017) are \
         defined for spheres filled at 10:1; this run fills them at {}:1, so read the in/out marks with that \
         in mind.\n",
        results.contrast
    );
    let reference = &results.noiseless_osem;
    let _ = writeln!(
        text,
        "OSEM of noiseless data recovers CRC {} (spheres 10 → 37 mm); its background reads SUV {:.3}.\n",
        reference.crc.iter().map(|c| format!("{c:.3}")).collect::<Vec<_>>().join(" / "),
        reference.background_mean
    );
    let _ = writeln!(
        text,
        "![CRC against sphere diameter](nema-crc.png)\n\nCRC against sphere diameter (mm), one panel per count \
         level (percent at the top right): grey OSEM of noiseless data, blue OSEM, red petal, green OSEM \
         filtered to petal's voxel noise.\n"
    );
    let _ = writeln!(
        text,
        "![The slice through the spheres](nema-slices.png)\n\nThe slice through the spheres, first \
         realization; a row per count level: OSEM, petal, OSEM filtered to petal's noise, OSEM of noiseless data.\n"
    );
    for level in &results.levels {
        let _ = writeln!(text, "## {:.0} % of the counts\n", level.fraction * 100.0);
        let _ = writeln!(
            text,
            "| sphere | CRC OSEM | CRC petal | petal / OSEM | CRC OSEM + {:.1} mm Gaussian (petal's voxel CoV) | RC_max OSEM / petal | RC_A50 OSEM / petal | SUVpeak OSEM / petal | SUVmax repeatability OSEM / petal |",
            level.matched_filter_fwhm_mm
        );
        let _ = writeln!(text, "|---|---|---|---|---|---|---|---|---|");
        for (k, diameter) in sphere_diameters().iter().enumerate() {
            let (osem, petal, filter) = (&level.osem.mean, &level.petal.mean, &level.matched_filter.mean);
            let _ = writeln!(
                text,
                "| {diameter} mm | {:.3} | {:.3} | {:.2} | {:.3} | {:.3} / {:.3} | {:.3} / {:.3} | {:.2} / {:.2} | {:.1} % / {:.1} % |",
                osem.crc[k],
                petal.crc[k],
                petal.crc[k] / osem.crc[k],
                filter.crc[k],
                osem.rc_max[k],
                petal.rc_max[k],
                osem.rc_a50[k],
                petal.rc_a50[k],
                osem.suv_peak[k],
                petal.suv_peak[k],
                level.osem.suv_max_repeatability_percent[k],
                level.petal.suv_max_repeatability_percent[k],
            );
        }
        let (osem, petal, filter) = (&level.osem.mean, &level.petal.mean, &level.matched_filter.mean);
        let _ = writeln!(text);
        let _ = writeln!(
            text,
            "| sphere | EARL 1 RC_max | OSEM | petal | EARL 1 RC_A50 | OSEM | petal |\n|---|---|---|---|---|---|---|"
        );
        for (k, diameter) in sphere_diameters().iter().enumerate() {
            let (max_window, a50_window) = (EARL1_RC_MAX[k], EARL1_RC_A50[k]);
            let _ = writeln!(
                text,
                "| {diameter} mm | {:.2}–{:.2} | {} | {} | {:.2}–{:.2} | {} | {} |",
                max_window.0,
                max_window.1,
                against(osem.rc_max[k], max_window),
                against(petal.rc_max[k], max_window),
                a50_window.0,
                a50_window.1,
                against(osem.rc_a50[k], a50_window),
                against(petal.rc_a50[k], a50_window),
            );
        }
        let _ = writeln!(text);
        let _ = writeln!(text, "| background | OSEM | petal | OSEM + Gaussian | noiseless OSEM |");
        let _ = writeln!(text, "|---|---|---|---|---|");
        let _ = writeln!(
            text,
            "| BV (60 ROIs of 10 mm) | {:.1} % | {:.1} % | {:.1} % | {:.1} % |",
            osem.background_variability_percent,
            petal.background_variability_percent,
            filter.background_variability_percent,
            reference.background_variability_percent
        );
        let _ = writeln!(
            text,
            "| voxel CoV | {:.1} % | {:.1} % | {:.1} % | {:.1} % |",
            osem.background_cov_percent,
            petal.background_cov_percent,
            filter.background_cov_percent,
            reference.background_cov_percent
        );
        let _ = writeln!(
            text,
            "| mean (SUV; truth 1) | {:.3} | {:.3} ({:+.1} % against OSEM) | {:.3} | {:.3} |",
            osem.background_mean,
            petal.background_mean,
            100.0 * (petal.background_mean / osem.background_mean - 1.0),
            filter.background_mean,
            reference.background_mean
        );
        let _ = writeln!(
            text,
            "| false hot spots (≥ SUV {:.2}, ≥ 2 voxels) | {:.1} | {:.1} | {:.1} | {:.1} |",
            results.false_hot_spot_level,
            osem.false_hot_spots,
            petal.false_hot_spots,
            filter.false_hot_spots,
            reference.false_hot_spots
        );
        let _ = writeln!(
            text,
            "| lung insert residual | {:.1} % | {:.1} % | {:.1} % | {:.1} % |\n",
            osem.lung_residual_percent,
            petal.lung_residual_percent,
            filter.lung_residual_percent,
            reference.lung_residual_percent
        );
    }
    text
}
