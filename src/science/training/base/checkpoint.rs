//! Checkpoints of a base-model training run: the weights so far and where the run stands,
//! swapped in atomically (a run killed mid-write resumes from the previous checkpoint).
//! Adam's moment estimates are not kept: a resumed run re-estimates them within a few dozen
//! steps, which costs far less than storing them for every parameter.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::science::model::directory::StoredModel;

/// One recorded loss.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossPoint {
    pub step: usize,
    pub loss: f64,
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointState {
    /// Steps completed.
    pub step: usize,
    pub losses: Vec<LossPoint>,
    /// Training time so far (s), summed over resumptions.
    pub seconds: f64,
    /// The settings and data the run was started with; a checkpoint of other settings is not resumed.
    pub fingerprint: String,
}

const STATE_FILE: &str = "state.json";

fn paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (dir.join("checkpoint"), dir.join("checkpoint.partial"), dir.join("checkpoint.previous"))
}

/// Writes a checkpoint under `dir/checkpoint/`.
pub fn save(dir: &Path, model: &StoredModel, state: &CheckpointState) -> anyhow::Result<()> {
    let (current, partial, previous) = paths(dir);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    model.save(&partial, None, None).context("writing the checkpoint's weights")?;
    std::fs::write(partial.join(STATE_FILE), serde_json::to_vec(state)?).context("writing the checkpoint's state")?;
    if current.exists() {
        if previous.exists() {
            std::fs::remove_dir_all(&previous).with_context(|| format!("removing {}", previous.display()))?;
        }
        std::fs::rename(&current, &previous).context("setting the last checkpoint aside")?;
    }
    std::fs::rename(&partial, &current).context("putting the new checkpoint in place")?;
    if previous.exists() {
        std::fs::remove_dir_all(&previous).with_context(|| format!("removing {}", previous.display()))?;
    }
    Ok(())
}

/// The latest complete checkpoint in `dir`, if any.
pub fn load(dir: &Path) -> anyhow::Result<Option<(StoredModel, CheckpointState)>> {
    let (current, _, previous) = paths(dir);
    let Some(found) = [current, previous].into_iter().find(|p| p.join(STATE_FILE).is_file()) else {
        return Ok(None);
    };
    let model = StoredModel::load(&found).with_context(|| format!("reading the checkpoint in {}", found.display()))?;
    let state: CheckpointState = serde_json::from_slice(&std::fs::read(found.join(STATE_FILE))?)
        .with_context(|| format!("reading {}", found.join(STATE_FILE).display()))?;
    Ok(Some((model, state)))
}

/// Removes the checkpoints once a run has finished.
pub fn clear(dir: &Path) -> anyhow::Result<()> {
    let (current, partial, previous) = paths(dir);
    for path in [current, partial, previous] {
        if path.exists() {
            std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}
