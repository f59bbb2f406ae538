//! What every handler may use ([`AppState`]), and the HTTP settings that are the API's own:
//! authentication mode, web-page sessions, limits by kind of traffic.

use std::sync::Arc;
use std::time::Duration;

use super::observability::HttpMetrics;
use crate::blobs::BlobStore;
use crate::inference::InferenceContext;
use crate::storage::Database;

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    pub blobs: BlobStore,
    pub auth: AuthMode,
    pub metrics: Arc<HttpMetrics>,
    /// Whether this process runs jobs (so `/readyz` checks what inference needs).
    pub runs_worker: bool,
    /// The inference engine and base model of a process that runs jobs (reported by `/readyz`).
    pub inference: InferenceContext,
    /// Largest upload (STOW-RS) body; uploads enforce it themselves while streaming.
    pub upload_body_limit: u64,
    /// Which series are training material rather than images to denoise (noted at ingest).
    pub series_rules: crate::dicom::series_kind::DescriptionRules,
    /// Round defaults and the quiet period, for round requests.
    pub learning: crate::jobs::learning::LearningSettings,
    /// Web-page sessions: lifetime and cookie flags.
    pub sessions: SessionSettings,
    /// Forwarding to destinations: for re-sends, and for the echo diagnostic's AE title.
    pub forwarding: crate::jobs::forward::ForwardSettings,
}

/// Limits that differ by kind of traffic.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub request_timeout: Duration,
    pub json_body_limit: usize,
}

/// Whether requests must carry a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Bearer tokens with roles (the only mode for real use).
    Enabled,
    /// Every request acts as admin. For local demos only; warned about at every start.
    Disabled,
}

impl AuthMode {
    pub const ALL: [AuthMode; 2] = [AuthMode::Enabled, AuthMode::Disabled];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Enabled => "enabled",
            AuthMode::Disabled => "disabled",
        }
    }
}

/// A name that is not an authentication mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown authentication mode `{0}`: use enabled or disabled")]
pub struct UnknownAuthMode(String);

impl std::str::FromStr for AuthMode {
    type Err = UnknownAuthMode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        AuthMode::ALL.into_iter().find(|mode| mode.as_str() == text).ok_or_else(|| UnknownAuthMode(text.to_owned()))
    }
}

/// Web-page sessions: a token presented once becomes an HttpOnly session cookie.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// How long a session lasts (never longer than its token).
    pub lifetime: Duration,
    /// Mark the cookie `Secure`.
    pub secure_cookies: bool,
}
