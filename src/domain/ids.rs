//! The identifiers of petal's own records, each its own type, so that a job id cannot be
//! passed where a round id is expected. They are opaque: made by storage (or read back
//! from a request path) and compared, never parsed for meaning. Storage maps them to their
//! columns (src/storage/ids.rs); in JSON each is its plain string or number.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A job in the queue (a UUID, as text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A new, random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A patient as petal's API names them: one DICOM PatientID within its issuer, behind a key
/// that carries no PHI (`pk-` and a random UUID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PatientKey(String);

impl PatientKey {
    /// A key for a patient petal has not seen.
    pub fn generate() -> Self {
        Self(format!("pk-{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An online-learning round (a database serial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoundId(i64);

/// A model version, the base model's or a patient's (a database serial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelVersionId(i64);

macro_rules! serial_id {
    ($name:ident) => {
        impl $name {
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

serial_id!(RoundId);
serial_id!(ModelVersionId);

macro_rules! text_id {
    ($name:ident) => {
        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(JobId);
text_id!(PatientKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_their_plain_value_in_json_and_text() {
        let job = JobId::from("5b0c".to_owned());
        assert_eq!(serde_json::to_string(&job).expect("json"), "\"5b0c\"");
        assert_eq!(job.to_string(), "5b0c");
        assert_eq!(serde_json::to_string(&RoundId::from(7)).expect("json"), "7");
        assert_eq!(serde_json::from_str::<ModelVersionId>("12").expect("json"), ModelVersionId::from(12));
        assert_ne!(JobId::generate(), JobId::generate());
        let patient = PatientKey::generate();
        assert!(patient.as_str().starts_with("pk-") && patient.as_str().len() == 35, "{patient}");
    }
}
