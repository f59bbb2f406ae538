//! The flags of petal as a DICOM node: its DIMSE listener (`petal serve`: where it listens,
//! who may send, the limits that protect it; off unless `--dimse-listen` is set), and
//! forwarding to destinations (`serve` and `worker`: petal's AE title, retries).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::values::{parse_ae_title, parse_allow_list, parse_byte_size, parse_duration, parse_positive};
use crate::dimse::allow_list::AllowList;

#[derive(Debug, Clone, Args)]
pub struct DimseArgs {
    /// Address and port the DIMSE C-STORE / C-ECHO listener binds (e.g. `0.0.0.0:11112`);
    /// unset, petal speaks DICOMweb only.
    #[arg(long, env = "PETAL_DIMSE_LISTEN")]
    pub dimse_listen: Option<SocketAddr>,
    /// Calling AE titles allowed to send, comma-separated, each optionally pinned to an IP
    /// address (`ORTHANC,SCANNER1@10.0.0.7`); `*` accepts any node (warned about at every
    /// start). Required when DIMSE is on.
    #[arg(long, env = "PETAL_DIMSE_CALLING_AES", value_parser = parse_allow_list)]
    pub dimse_calling_aes: Option<AllowList>,
    /// Associations served at once; more are rejected as transient, so senders retry.
    #[arg(long, env = "PETAL_DIMSE_MAX_ASSOCIATIONS", default_value_t = 8, value_parser = parse_positive)]
    pub dimse_max_associations: usize,
    /// Largest PDU petal receives, in bytes (PS3.8 allows 4096 to 4294967295; dcmtk
    /// defaults to 16384).
    #[arg(long, env = "PETAL_DIMSE_MAX_PDU", default_value_t = 65536, value_parser = clap::value_parser!(u32).range(4096..))]
    pub dimse_max_pdu: u32,
    /// Limit for each network read or write of an association (an idle sender is dropped).
    #[arg(long, env = "PETAL_DIMSE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub dimse_timeout: Duration,
    /// Free space the blob store's disk must keep: below it, C-STORE answers out of
    /// resources (0xA700) and the sender retries later. Bytes, or with KiB, MiB, GiB.
    #[arg(long, env = "PETAL_DIMSE_MIN_FREE_DISK", default_value = "1GiB", value_parser = parse_byte_size)]
    pub dimse_min_free_disk: u64,
    /// Largest data set one C-STORE may carry; a larger one aborts the association.
    #[arg(long, env = "PETAL_DIMSE_MAX_INSTANCE_SIZE", default_value = "1GiB", value_parser = parse_byte_size)]
    pub dimse_max_instance_size: u64,
    /// Objects that are not PET, such as the CT of a PET/CT study: `drop` accepts them,
    /// answers success and keeps nothing (counted in metrics); `refuse` declines their
    /// presentation contexts, so the sender reports them as not sent.
    #[arg(long, env = "PETAL_DIMSE_OTHER_OBJECTS", value_enum, default_value_t = OtherObjectsArg::Drop)]
    pub dimse_other_objects: OtherObjectsArg,
}

/// `--dimse-other-objects`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtherObjectsArg {
    Drop,
    Refuse,
}

/// petal's AE title and how forward jobs retry (`serve` and `worker`).
#[derive(Debug, Clone, Args)]
pub struct ForwardArgs {
    /// petal's AE title: DIMSE senders must call it, and petal calls with it when it
    /// forwards to a DIMSE destination.
    #[arg(long, env = "PETAL_DIMSE_AE_TITLE", default_value = "PETAL", value_parser = parse_ae_title)]
    pub dimse_ae_title: String,
    /// First wait before retrying a forward that failed transiently; doubled on each further
    /// attempt, up to 10 minutes.
    #[arg(long, env = "PETAL_FORWARD_BACKOFF", default_value = "30s", value_parser = parse_duration)]
    pub forward_backoff: Duration,
    /// Attempts before a forward that keeps failing transiently is given up.
    #[arg(long, env = "PETAL_FORWARD_MAX_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..))]
    pub forward_max_attempts: i32,
    /// Limit for connecting to a destination and for each exchange with it.
    #[arg(long, env = "PETAL_FORWARD_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub forward_timeout: Duration,
}
