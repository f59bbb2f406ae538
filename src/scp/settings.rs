//! How the DIMSE listener behaves, and what a C-STORE needs to store an instance.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::blobs::BlobStore;
use crate::dicom::series_kind::DescriptionRules;
use crate::dimse::allow_list::AllowList;
use crate::storage::Database;

/// What petal does with objects that are not PET (the CT of a PET/CT study, reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherObjects {
    /// Accept them, answer success and drop them (counted as `dropped` in
    /// `petal_dimse_cstore_total`), so a PACS sending a whole PET/CT study reports no error.
    Drop,
    /// Refuse their presentation contexts at negotiation; the sender reports them as not sent.
    Refuse,
}

/// How the DIMSE listener behaves.
#[derive(Debug, Clone)]
pub struct ScpSettings {
    pub listen: SocketAddr,
    /// petal's AE title: associations calling another title are rejected.
    pub ae_title: String,
    /// Calling nodes allowed to open associations.
    pub calling: Arc<AllowList>,
    /// Associations served at once; more are rejected as transient (the sender retries).
    pub max_associations: usize,
    /// Largest PDU petal receives.
    pub max_pdu_length: u32,
    /// Limit for each network read and write, and for the association request.
    pub timeout: Duration,
    /// A data set larger than this aborts the association (memory bound per association).
    pub max_data_set_bytes: u64,
    pub other_objects: OtherObjects,
}

/// What a C-STORE needs to store an instance.
#[derive(Debug, Clone)]
pub struct ScpContext {
    pub db: Database,
    pub blobs: BlobStore,
    /// How series descriptions mark N2N halves and low-count series.
    pub rules: DescriptionRules,
    /// Below this many free bytes in the blob store, C-STORE answers out of resources.
    pub min_free_disk_bytes: u64,
}
