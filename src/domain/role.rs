//! What a token may do: the roles every request is checked against.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a token may do. Roles are not ordered: each endpoint lists the roles it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A PACS or modality: may store instances (STOW-RS) and nothing else.
    Pacs,
    /// A reader: may search and retrieve studies and see their status.
    Radiologist,
    /// Everything, including tokens, rounds, model versions and the audit trail.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Pacs, Role::Radiologist, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pacs => "pacs",
            Role::Radiologist => "radiologist",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`: expected pacs, radiologist or admin")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|role| role.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}
