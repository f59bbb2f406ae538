//! The words petal's layers share, below all of them: small types validated on creation,
//! with no database, HTTP or DICOM in sight. Storage maps them to and from its columns;
//! the API to and from JSON.

mod role;
mod states;

pub use role::{Role, UnknownRole};
pub use states::{JobState, RoundState, SeriesState, UnknownState};
