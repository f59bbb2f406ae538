//! nema.md: the phantom's figures as a physicist reads them, one table per count level.

use std::fmt::Write;

use super::NemaResults;
use super::measures::sphere_diameters;

/// The Markdown report; `command` is the command line that made it.
pub fn markdown(results: &NemaResults, command: &str) -> String {
    let mut text = String::new();
    let [pixel, _, slice] = results.voxel_mm;
    let _ = writeln!(text, "# NEMA IEC body phantom through OSEM and through petal\n");
    let _ = writeln!(text, "Made by `{command}`.\n");
    let _ = writeln!(
        text,
        "Spheres at {}:1 to the background; {pixel} × {pixel} × {slice} mm voxels; {} mm scanner resolution; \
         {}; {} realizations per count level; model sha256 `{}`. CRC is the mean contrast recovery \
         of a circular ROI of the sphere's diameter on the slice through the spheres' centres; RC_max the \
         hottest voxel over the true activity, RC_A50 the background-adapted 50 % iso-contour's mean over it, SUVpeak the best 1 mL sphere; BV the background variability of 60 ROIs of 10 mm; CoV \
         the voxel noise of the uniform background; lung the residual in the lung insert. Definitions: \
         src/science/evaluation/nema/measures.rs.\n",
        results.contrast,
        results.fwhm_mm,
        results.reconstruction,
        results.realizations,
        &results.model_sha256[..12.min(results.model_sha256.len())]
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
