//! Program assembly in one place: from the parsed flags ([`super::config`]) to the settings
//! each part is built with (inference, the worker, the pipeline, learning, the gate).

use super::config::{
    DimseArgs, ForwardArgs, HttpArgs, InferenceArgs, JobArgs, LearningArgs, OtherObjectsArg, PipelineArgs, SessionArgs,
};
use crate::api::{HttpLimits, SessionSettings};

impl LearningArgs {
    pub fn gate_limits(&self) -> crate::science::training::gate::GateLimits {
        crate::science::training::gate::GateLimits {
            max_validation_loss_ratio: self.gate_max_validation_loss_ratio,
            body_mean_percent: self.gate_body_mean_percent,
            uniform_mean_percent: self.gate_uniform_mean_percent,
            hot_spot_max_percent: self.gate_hot_spot_max_percent,
            max_error_change_percent: self.gate_max_error_change_percent,
            confidence: self.gate_confidence,
            hot_spot_peak_points: self.gate_hot_spot_peak_points,
            noise_share_percent: self.gate_noise_share_percent,
        }
    }
}

impl PipelineArgs {
    pub fn rules(&self) -> crate::dicom::series_kind::DescriptionRules {
        let clean =
            |markers: &[String]| markers.iter().map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()).collect();
        crate::dicom::series_kind::DescriptionRules {
            n2n_half: clean(&self.n2n_markers),
            low_count: clean(&self.low_count_markers),
        }
    }

    pub fn learning_settings(&self) -> crate::jobs::learning::LearningSettings {
        crate::jobs::learning::LearningSettings {
            auto_rounds: self.learning.auto_rounds,
            round_defaults: self.learning.round_defaults.clone(),
            quiet_period: self.series_quiet_period,
            gate: self.learning.gate_limits(),
            redenoise_after_round: self.learning.redenoise_after_round,
            progress_interval: self.learning.round_progress_interval,
        }
    }

    pub fn completion(&self) -> crate::jobs::denoise::completion::CompletionSettings {
        crate::jobs::denoise::completion::CompletionSettings {
            quiet_period: self.series_quiet_period,
            rules: self.rules(),
        }
    }

    pub fn naming(&self) -> crate::jobs::denoise::denoise_job::DerivedNaming {
        crate::jobs::denoise::denoise_job::DerivedNaming {
            uid_root: self.derived.uid_root.clone(),
            label: self.derived.series_label.clone(),
            series_number_offset: self.derived.series_number_offset,
            strength: self.derived.strength,
        }
    }
}

impl JobArgs {
    pub fn settings(&self) -> crate::jobs::worker::WorkerSettings {
        crate::jobs::worker::WorkerSettings {
            poll_interval: self.job_poll_interval,
            lease: self.job_lease,
            heartbeat: self.job_heartbeat,
            ..crate::jobs::worker::WorkerSettings::default()
        }
    }
}

impl InferenceArgs {
    pub fn settings(&self) -> crate::inference::InferenceSettings {
        crate::inference::InferenceSettings {
            ort_dylib_path: self.ort_dylib_path.clone(),
            base_model: self.base_model.clone(),
            intra_threads: match self.inference_threads {
                0 => crate::inference::available_cores(),
                n => n,
            },
            batch_windows: self.inference_batch,
            session_cache: self.inference_sessions,
        }
    }
}

impl HttpArgs {
    pub fn limits(&self) -> HttpLimits {
        HttpLimits { request_timeout: self.request_timeout, json_body_limit: self.json_body_limit }
    }
}

impl SessionArgs {
    pub fn settings(&self) -> SessionSettings {
        SessionSettings { lifetime: self.session_lifetime, secure_cookies: self.secure_cookies }
    }
}

impl DimseArgs {
    /// The DIMSE listener's settings; `None` when DIMSE is off. Refuses a listener without
    /// an allow-list: a hospital network must name who may send.
    pub fn settings(&self, ae_title: &str) -> anyhow::Result<Option<crate::scp::ScpSettings>> {
        let Some(listen) = self.dimse_listen else { return Ok(None) };
        let Some(calling) = self.dimse_calling_aes.clone() else {
            anyhow::bail!(
                "DIMSE is on (PETAL_DIMSE_LISTEN={listen}) but no calling AE titles are allowed: set \
                 PETAL_DIMSE_CALLING_AES to the AE titles of your scanners and PACS (e.g. `ORTHANC,SCANNER1@10.0.0.7`), \
                 or `*` to accept any node"
            );
        };
        Ok(Some(crate::scp::ScpSettings {
            listen,
            ae_title: ae_title.to_owned(),
            calling: std::sync::Arc::new(calling),
            max_associations: self.dimse_max_associations,
            max_pdu_length: self.dimse_max_pdu,
            timeout: self.dimse_timeout,
            max_data_set_bytes: self.dimse_max_instance_size,
            other_objects: match self.dimse_other_objects {
                OtherObjectsArg::Drop => crate::scp::OtherObjects::Drop,
                OtherObjectsArg::Refuse => crate::scp::OtherObjects::Refuse,
            },
        }))
    }
}

/// Largest PDU petal accepts from a destination it forwards to.
const FORWARD_MAX_PDU: u32 = 65536;

impl ForwardArgs {
    pub fn settings(&self) -> crate::jobs::forward::ForwardSettings {
        crate::jobs::forward::ForwardSettings {
            max_attempts: self.forward_max_attempts,
            timeout: self.forward_timeout,
            calling_ae_title: self.dimse_ae_title.clone(),
            max_pdu_length: FORWARD_MAX_PDU,
        }
    }

    /// The forward lane's worker: the shared timing, with forwarding's own backoff.
    pub fn worker_settings(&self, shared: &crate::jobs::worker::WorkerSettings) -> crate::jobs::worker::WorkerSettings {
        crate::jobs::worker::WorkerSettings {
            backoff: self.forward_backoff,
            max_backoff: std::time::Duration::from_secs(600).max(self.forward_backoff),
            ..shared.clone()
        }
    }
}
