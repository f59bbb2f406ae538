//! DIMSE, the DICOM network protocol that scanners and PACS speak (PS3.7, PS3.8), on top of
//! `dicom-ul`'s associations: command sets, whole messages from P-DATA fragments, the
//! syntaxes petal negotiates, the allow-list of calling nodes, and petal as a service user
//! (C-ECHO, C-STORE to a PACS).
//!
//! Protocol only: what a received instance becomes is the business of [`crate::scp`], the
//! service provider that feeds ingest.

pub mod allow_list;
pub mod command;
pub mod message;
pub mod scu;
pub mod syntaxes;
