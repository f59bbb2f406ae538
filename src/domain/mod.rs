//! The words petal's layers share, below all of them: small types validated on creation,
//! with no database, HTTP or DICOM in sight. Storage maps them to and from its columns;
//! the API to and from JSON.

mod destination;
mod ids;
mod role;
mod states;
mod strength;

pub use destination::{Destination, DestinationError, Endpoint, Forwarded, WebAuth};
pub use ids::{JobId, ModelVersionId, PatientKey, RoundId};
pub use role::{Role, UnknownRole};
pub use states::{ForwardState, JobState, RoundState, SeriesState, UnknownState};
pub use strength::{DenoiseStrength, StrengthError};
