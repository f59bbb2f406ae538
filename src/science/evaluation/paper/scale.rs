//! The pinned scale of the paper's experiment as petal runs it on 2 CPU cores: network
//! width, phantom size, step counts, test realizations. Changing any of it changes the
//! results, so it is written into the report and into every cached network's record.

use crate::science::image::Grid;

/// Everything that sizes the experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PaperScale {
    /// Which scale this is ("default" or "quick"), for the report.
    pub name: String,
    pub width_multiplier: f64,
    /// Pixels across each simulated slice, and slices per patient.
    pub size: usize,
    pub slices: usize,
    /// Full-count scan time of every simulated patient (s per bed).
    pub seconds_per_bed: f64,
    /// Training patients of v2-net (seeds `base_seed..base_seed + patients`): those of the
    /// shipped model, v1-net.
    pub base_patients: u64,
    pub base_seed: u64,
    /// How v2-net is trained: the shipped model's recipe, on v2 reconstructions.
    pub recipe: BaseRecipe,
    /// Shares of the counts the training inputs are reconstructed from.
    pub count_levels: Vec<f64>,
    /// Side of the training patches (the paper: 32).
    pub patch: usize,
    /// The "few v2 studies" FT-net and TGD-net are fine-tuned on: the first this many of
    /// the training patients, reconstructed with v2.
    pub fine_tune_studies: u64,
    /// Steps and learning rate of FT-net's and TGD-net's fine-tune (the same for both).
    pub fine_tune_steps: usize,
    pub fine_tune_learning_rate: f64,
    /// Batches whose BatchNorm statistics replace FT-net's and TGD-net's running
    /// statistics after their steps, as the base recipe does for its networks.
    pub fine_tune_batch_norm_batches: usize,
    /// KSE threshold of TGD-net and TGD_N2N-net (the paper: 0.3).
    pub phi: f64,
    /// Steps of the online rounds (TGD_N2N-net, TGD²_N2N-net) on the test patient's N2N
    /// pair (the rounds' other settings are petal's defaults).
    pub n2n_steps: usize,
    /// The test patient is the first seed from here whose phantom has at least
    /// `min_test_lesions` lesions (the first is always in the liver).
    pub test_seed: u64,
    pub min_test_lesions: usize,
    /// Scan time of the test patient (s per bed): each realization holds
    /// `realization_fraction` of it.
    pub test_seconds_per_bed: f64,
    /// R i.i.d. low-count realizations of the test scan, each this share of the counts.
    pub realizations: usize,
    pub realization_fraction: f64,
    /// Bootstrap resamples behind each confidence interval.
    pub bootstrap_resamples: usize,
    /// The KSE thresholds of the sweep (the paper's Fig. 4).
    pub sweep_phis: Vec<f64>,
}

/// The two stages that made the shipped base model (docs/models.md, "The shipped base
/// model"): uniform patches at `petal train-base`'s defaults, then a continuation with half
/// the patches around lesions, lesion voxels weighted in the loss, and BatchNorm statistics
/// averaged over many batches. v2-net repeats them on v2 reconstructions, so v1-net and
/// v2-net differ only in the data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BaseRecipe {
    /// Stage 1: steps of uniform patches (learning rate and decay: train-base's defaults).
    pub uniform_steps: usize,
    /// Stage 2, from stage 1's weights.
    pub lesion_steps: usize,
    pub lesion_learning_rate: f64,
    pub lesion_share: f64,
    pub lesion_weight: f64,
    pub batch_norm_batches: usize,
}

impl BaseRecipe {
    /// models/base's recipe.
    pub fn shipped() -> Self {
        Self {
            uniform_steps: 3300,
            lesion_steps: 600,
            lesion_learning_rate: 3e-4,
            lesion_share: 0.5,
            lesion_weight: 10.0,
            batch_norm_batches: 300,
        }
    }

    /// `petal train-base` flags of stage 1, after the data flags.
    pub fn uniform_stage_flags(&self) -> Vec<String> {
        vec!["--steps".to_owned(), self.uniform_steps.to_string()]
    }

    /// `petal train-base` flags of stage 2, going on from the model in `stage_one`.
    pub fn lesion_stage_flags(&self, stage_one: &std::path::Path) -> Vec<String> {
        [
            ("--init-from", stage_one.display().to_string()),
            ("--steps", self.lesion_steps.to_string()),
            ("--lesion-share", self.lesion_share.to_string()),
            ("--batch-norm-batches", self.batch_norm_batches.to_string()),
            ("--learning-rate", self.lesion_learning_rate.to_string()),
            ("--lesion-weight", self.lesion_weight.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }
}

impl PaperScale {
    /// The documented default: about 90 minutes on 2 cores from an empty work folder.
    pub fn default_scale() -> Self {
        Self {
            name: "default".into(),
            width_multiplier: 0.25,
            size: 96,
            slices: 32,
            seconds_per_bed: 120.0,
            base_patients: 6,
            base_seed: 1000,
            recipe: BaseRecipe::shipped(),
            count_levels: vec![0.1, 0.25, 0.5, 1.0],
            patch: crate::science::training::DEFAULT_PATCH,
            fine_tune_studies: 2,
            fine_tune_steps: 300,
            fine_tune_learning_rate: 1e-3,
            fine_tune_batch_norm_batches: 300,
            phi: 0.3,
            n2n_steps: 200,
            test_seed: 2000,
            min_test_lesions: 3,
            // Each 10 % realization then holds the counts of a 60 s/bed scan: inside the
            // range the networks were trained on (10 % to 100 % of 120 s/bed). At 10 % of a
            // 120 s/bed scan (the lowest training level) OSEM alone had a liver CoV of 86 %
            // on v2 data and every network a lesion bias of −44 % to −71 %, far from the
            // noise of the paper's test data (network CoVs of 6–9 %).
            test_seconds_per_bed: 600.0,
            realizations: 10,
            realization_fraction: 0.1,
            bootstrap_resamples: 2000,
            sweep_phis: vec![0.3, 0.4, 0.5, 0.6],
        }
    }

    /// A smoke run of a few minutes (the test suite's): the shipped network, tiny phantoms,
    /// a handful of steps. Its numbers mean nothing; it proves the whole path runs.
    pub fn quick() -> Self {
        Self {
            name: "quick".into(),
            size: 32,
            slices: 8,
            base_patients: 2,
            recipe: BaseRecipe { uniform_steps: 12, lesion_steps: 6, batch_norm_batches: 4, ..BaseRecipe::shipped() },
            count_levels: vec![0.25, 1.0],
            patch: 16,
            fine_tune_studies: 1,
            fine_tune_steps: 6,
            fine_tune_batch_norm_batches: 4,
            n2n_steps: 6,
            min_test_lesions: 2,
            realizations: 3,
            realization_fraction: 0.2,
            bootstrap_resamples: 200,
            ..Self::default_scale()
        }
    }

    pub fn grid(&self) -> Grid {
        Grid::new(self.size, self.slices)
    }

    /// Checks that the scale can run; the message says what to change.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.realizations >= 2, "at least two realizations are needed for a CoV");
        anyhow::ensure!(
            self.realizations as f64 * self.realization_fraction <= 1.0 + 1e-9,
            "{} realizations of {} of the counts do not fit in one scan",
            self.realizations,
            self.realization_fraction
        );
        anyhow::ensure!(self.patch <= self.size, "patches of {} do not fit {}-pixel slices", self.patch, self.size);
        anyhow::ensure!(
            self.fine_tune_studies >= 1 && self.fine_tune_studies <= self.base_patients,
            "the fine-tune studies are some of the training patients"
        );
        anyhow::ensure!(self.slices >= 4, "at least 4 slices (a round holds some out)");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_scales_are_valid() {
        PaperScale::default_scale().validate().expect("default");
        PaperScale::quick().validate().expect("quick");
        let crowded = PaperScale { realizations: 11, ..PaperScale::default_scale() };
        assert!(crowded.validate().is_err());
    }
}
