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
