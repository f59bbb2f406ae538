//! Who may do what: roles, bearer tokens and the first admin token.
//!
//! Tokens are 256 random bits shown once; only their SHA-256 is stored, so a stolen
//! database does not yield working tokens. This module knows nothing of HTTP: the API
//! layer turns an `Authorization` header into a call to [`authenticate`], or a web page's
//! session cookie into one to [`session_caller`].

mod bootstrap;
mod session;
mod token;

pub use bootstrap::{AdminBootstrap, ensure_admin_token};
pub use session::{NewSession, end_session, session_caller, start_session};
pub use token::{Caller, IssuedToken, TokenError, authenticate, hash_secret, issue_token};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a token may do. Roles are not ordered: each endpoint lists the roles it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
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
