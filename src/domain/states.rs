//! The states a job, a series and a round go through. Their text is what the database
//! stores (its CHECK constraints list the same words) and what the API shows, so neither
//! changes with these types; storage maps columns to them, the API serialises them.

use std::fmt;
use std::str::FromStr;

/// A word that names no state of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{found}` is not a {kind} state: expected one of {expected}")]
pub struct UnknownState {
    kind: &'static str,
    found: String,
    expected: String,
}

/// Declares a state enum with its words: `as_str`, `Display`, `FromStr`, `TryFrom<String>`
/// (how storage reads a column) and serde as the same words.
macro_rules! states {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($(#[$variant_doc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$variant_doc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|state| state.as_str() == text).ok_or_else(|| UnknownState {
                    kind: $kind,
                    found: text.to_owned(),
                    expected: $name::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownState;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }
    };
}

states! {
    /// Where a job on the shared queue stands.
    JobState, "job" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

states! {
    /// Where a received series stands on its way to a derived series.
    SeriesState, "series" {
        /// Instances are still arriving.
        Receiving = "receiving",
        /// Complete, waiting for its denoise job.
        Complete = "complete",
        Queued = "queued",
        Denoising = "denoising",
        Done = "done",
        Failed = "failed",
        /// Stored and served but not denoised (dynamic, training material, petal's own…).
        NotDenoised = "not_denoised",
    }
}

states! {
    /// Where a learning round stands.
    RoundState, "round" {
        Queued = "queued",
        Running = "running",
        /// Passed the gate; its version is live.
        Activated = "activated",
        /// Failed the gate; its version is kept but not live.
        Rejected = "rejected",
        Cancelled = "cancelled",
        Failed = "failed",
    }
}

states! {
    /// Where the delivery of one series to one destination stands.
    ForwardState, "forward" {
        /// Waiting for its forward job (first try, or a retry after a transient failure).
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        /// Given up: a permanent refusal, or transient failures until the attempt limit.
        Failed = "failed",
    }
}

impl RoundState {
    /// Queued or running: at most one such round per patient.
    pub fn is_active(self) -> bool {
        matches!(self, RoundState::Queued | RoundState::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_word_and_serialises_as_it() {
        for state in RoundState::ALL {
            assert_eq!(state.as_str().parse::<RoundState>(), Ok(*state));
            assert_eq!(serde_json::to_value(state).expect("json"), serde_json::json!(state.as_str()));
        }
        assert_eq!(SeriesState::try_from("not_denoised".to_owned()), Ok(SeriesState::NotDenoised));
        let err = "finished".parse::<JobState>().expect_err("no such state");
        assert_eq!(
            err.to_string(),
            "`finished` is not a job state: expected one of queued, running, succeeded, failed, cancelled"
        );
    }
}
