//! A stored series' Part 10 files, read back from the blob store in instance order: what
//! a denoise job denoises and what a learning round trains on.

use anyhow::Context;

use crate::blobs::BlobStore;
use crate::storage::{Database, index};

/// The files of `series_uid` (of `study_uid`); empty when the index holds none.
pub async fn read_series_files(
    db: &Database,
    blobs: &BlobStore,
    study_uid: &str,
    series_uid: &str,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let stored = index::instances_in(db, study_uid, Some(series_uid), None).await?;
    let mut files = Vec::with_capacity(stored.len());
    for instance in &stored {
        let bytes = blobs.get(&instance.blob_key).await.with_context(|| format!("reading {}", instance.blob_key))?;
        files.push(bytes.to_vec());
    }
    Ok(files)
}
