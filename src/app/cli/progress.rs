//! Progress bars of the offline commands (on stderr; hidden when it is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `total` steps with elapsed time, ETA and a message slot.
pub fn bar(total: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} ETA {eta} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix.to_owned());
    bar
}

/// A bar that the simulator advances slice by slice.
pub struct SimulationBar(pub ProgressBar);

impl crate::dicom::simulated_study::Progress for SimulationBar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn slice_done(&self) {
        self.0.inc(1);
    }
}
