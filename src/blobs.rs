//! Blob storage for DICOM instances, through the `object_store` crate: a local directory
//! by default, any S3-compatible bucket in production. Keys are petal's own (derived from
//! UIDs), never file names a client chose.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store: {0}")]
    Store(#[from] object_store::Error),
    #[error("creating the blob directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("blob store location `{0}` is not a directory path or an s3://bucket/prefix URL")]
    BadLocation(String),
}

/// Where instances live, shared by every API replica and worker.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Human-readable location for logs (no credentials).
    location: String,
    /// The directory of a local store, whose free space bounds what may still be received.
    local_root: Option<std::path::PathBuf>,
}

impl BlobStore {
    /// Opens `location`: `s3://bucket/prefix` (AWS_* variables give region, endpoint and
    /// credentials) or a local directory, created when missing.
    pub fn open(location: &str) -> Result<Self, BlobError> {
        let mut local_root = None;
        let store: Arc<dyn ObjectStore> = if location.starts_with("s3://") {
            let url = url::Url::parse(location).map_err(|_| BlobError::BadLocation(location.to_owned()))?;
            let bucket = url.host_str().ok_or_else(|| BlobError::BadLocation(location.to_owned()))?;
            let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build()?;
            let prefix = url.path().trim_matches('/');
            if prefix.is_empty() { Arc::new(s3) } else { Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)) }
        } else if location.contains("://") {
            return Err(BlobError::BadLocation(location.to_owned()));
        } else {
            std::fs::create_dir_all(location)
                .map_err(|source| BlobError::Directory { path: location.to_owned(), source })?;
            local_root = Some(std::path::PathBuf::from(location));
            Arc::new(LocalFileSystem::new_with_prefix(location)?)
        };
        Ok(BlobStore { store, location: location.to_owned(), local_root })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Bytes an unprivileged writer may still use on the local store's file system; `None`
    /// for an object store (a bucket has no floor) or when the file system cannot say.
    pub fn free_bytes(&self) -> Option<u64> {
        let stats = rustix::fs::statvfs(self.local_root.as_deref()?).ok()?;
        Some(stats.f_bavail.saturating_mul(stats.f_frsize))
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.store.put(&ObjectPath::from(key), PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        Ok(self.store.get(&ObjectPath::from(key)).await?.bytes().await?)
    }

    /// Removes a blob; a blob that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_store_round_trips_and_deletes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path().join("blobs").to_str().expect("utf8")).expect("open");
        store.put("a/b/c.dcm", Bytes::from_static(b"DICM")).await.expect("put");
        assert_eq!(store.get("a/b/c.dcm").await.expect("get"), Bytes::from_static(b"DICM"));
        store.delete("a/b/c.dcm").await.expect("delete");
        store.delete("a/b/c.dcm").await.expect("second delete is fine");
        assert!(store.get("a/b/c.dcm").await.is_err());
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(matches!(BlobStore::open("gs://bucket"), Err(BlobError::BadLocation(_))));
    }
}
