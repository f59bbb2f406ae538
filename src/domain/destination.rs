//! Destinations: the nodes petal forwards series to by itself (a PACS by DIMSE or by
//! DICOMweb), as an admin declares them. Secrets are never part of a destination: it names
//! the files they are read from (mounted Kubernetes secrets), at the moment of sending.
//!
//! ```
//! use petal::domain::Destination;
//! let json = r#"{"name": "pacs", "kind": "dimse", "ae_title": "ORTHANC", "host": "10.0.0.5", "port": 4242, "forward": ["derived"]}"#;
//! let destination: Destination = serde_json::from_str(json).unwrap();
//! destination.validate().unwrap();
//! assert!(destination.forwards_derived());
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One destination, as created by `POST /api/v1/destinations` and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// Its name in URLs and in the forward state of each series.
    pub name: String,
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// What is forwarded: petal's derived series, and optionally the source series too.
    pub forward: Vec<Forwarded>,
}

/// How a destination is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Endpoint {
    /// STOW-RS to a DICOMweb service root (`http://pacs/dicom-web`).
    Dicomweb {
        url: String,
        #[serde(default)]
        auth: Option<WebAuth>,
    },
    /// C-STORE to a DICOM node.
    Dimse { ae_title: String, host: String, port: u16 },
}

/// How petal authenticates to a DICOMweb destination; secrets come from files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WebAuth {
    /// `Authorization: Bearer <the file's content>`.
    BearerFile(PathBuf),
    /// HTTP basic authentication with the password read from a file.
    Basic { username: String, password_file: PathBuf },
}

/// Which series a destination receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarded {
    /// Every derived series petal writes, re-denoised ones included.
    Derived,
    /// The source series each derived series was made from.
    Source,
}

/// Why a destination is not acceptable, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("the name must be 1 to 64 letters, digits, `.`, `_` or `-`")]
    BadName,
    #[error("`{0}` is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("`{0}` is not an AE title: 1 to 16 characters, no backslash or control characters")]
    BadAeTitle(String),
    #[error("the host is empty")]
    NoHost,
    #[error("the port must be between 1 and 65535")]
    BadPort,
    #[error("`forward` must name at least one of `derived` and `source`")]
    NothingForwarded,
}

impl Destination {
    /// Checks what can be checked without touching the network or the files.
    pub fn validate(&self) -> Result<(), DestinationError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            return Err(DestinationError::BadName);
        }
        if self.forward.is_empty() {
            return Err(DestinationError::NothingForwarded);
        }
        match &self.endpoint {
            Endpoint::Dicomweb { url, .. } => {
                let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
                let has_host = url.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
                if !(scheme_ok && has_host) || url.chars().any(char::is_whitespace) {
                    return Err(DestinationError::BadUrl(url.clone()));
                }
            }
            Endpoint::Dimse { ae_title, host, port } => {
                let trimmed = ae_title.trim();
                let ae_ok = !trimmed.is_empty()
                    && trimmed.len() <= 16
                    && trimmed.chars().all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\');
                if !ae_ok {
                    return Err(DestinationError::BadAeTitle(ae_title.clone()));
                }
                if host.trim().is_empty() {
                    return Err(DestinationError::NoHost);
                }
                if *port == 0 {
                    return Err(DestinationError::BadPort);
                }
            }
        }
        Ok(())
    }

    pub fn forwards_derived(&self) -> bool {
        self.forward.contains(&Forwarded::Derived)
    }

    pub fn forwards_source(&self) -> bool {
        self.forward.contains(&Forwarded::Source)
    }

    /// `dicomweb` or `dimse`, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self.endpoint {
            Endpoint::Dicomweb { .. } => "dicomweb",
            Endpoint::Dimse { .. } => "dimse",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and validates; the error as the admin would read it.
    fn parse(json: &str) -> Result<Destination, Box<dyn std::error::Error>> {
        let destination: Destination = serde_json::from_str(json)?;
        destination.validate()?;
        Ok(destination)
    }

    #[test]
    fn the_three_dicomweb_auth_forms_parse() {
        let none =
            parse(r#"{"name":"a","kind":"dicomweb","url":"https://pacs/dicom-web","auth":null,"forward":["derived"]}"#);
        assert_eq!(
            none.expect("no auth").endpoint,
            Endpoint::Dicomweb { url: "https://pacs/dicom-web".into(), auth: None }
        );
        let bearer =
            parse(r#"{"name":"b","kind":"dicomweb","url":"http://pacs","auth":{"bearer_file":"/s/t"},"forward":["derived","source"]}"#)
                .expect("bearer");
        assert!(matches!(bearer.endpoint, Endpoint::Dicomweb { auth: Some(WebAuth::BearerFile(_)), .. }));
        assert!(bearer.forwards_source());
        let basic = parse(
            r#"{"name":"c","kind":"dicomweb","url":"http://pacs","auth":{"basic":{"username":"u","password_file":"/s/p"}},"forward":["derived"]}"#,
        )
        .expect("basic");
        assert!(matches!(basic.endpoint, Endpoint::Dicomweb { auth: Some(WebAuth::Basic { .. }), .. }));
    }

    #[test]
    fn bad_destinations_say_why() {
        assert!(
            parse(r#"{"name":"x y","kind":"dimse","ae_title":"A","host":"h","port":104,"forward":["derived"]}"#)
                .expect_err("name")
                .to_string()
                .contains("name")
        );
        assert!(
            parse(r#"{"name":"x","kind":"dimse","ae_title":"A","host":"h","port":0,"forward":["derived"]}"#)
                .expect_err("port")
                .to_string()
                .contains("port")
        );
        assert!(
            parse(r#"{"name":"x","kind":"dicomweb","url":"ftp://pacs","forward":["derived"]}"#)
                .expect_err("url")
                .to_string()
                .contains("URL")
        );
        assert!(
            parse(r#"{"name":"x","kind":"dimse","ae_title":"A","host":"h","port":1,"forward":[]}"#)
                .expect_err("forward")
                .to_string()
                .contains("forward")
        );
    }
}
