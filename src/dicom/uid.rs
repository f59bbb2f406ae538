//! DICOM unique identifiers (PS3.5 §9): validated once, on parse.

use std::fmt;

/// A syntactically valid DICOM UID: at most 64 characters, dot-separated numeric
/// components without leading zeros.
///
/// ```
/// use petal::dicom::Uid;
/// assert!(Uid::parse("1.2.840.10008.5.1.4.1.1.128").is_ok());
/// assert!(Uid::parse("1.02.3").is_err());
/// // Trailing NUL or space padding from an even-length DICOM value is removed.
/// assert_eq!(Uid::parse("1.2.3\0").unwrap().as_str(), "1.2.3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Uid(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    #[error("the UID is empty")]
    Empty,
    #[error("the UID is longer than 64 characters")]
    TooLong,
    #[error("the UID has a character other than digits and dots")]
    BadCharacter,
    #[error("the UID has an empty component or a component with a leading zero")]
    BadComponent,
}

impl Uid {
    pub fn parse(text: &str) -> Result<Self, UidError> {
        let text = text.trim_end_matches(['\0', ' ']).trim_start();
        if text.is_empty() {
            return Err(UidError::Empty);
        }
        if text.len() > 64 {
            return Err(UidError::TooLong);
        }
        if !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(UidError::BadCharacter);
        }
        if text.split('.').any(|c| c.is_empty() || (c.len() > 1 && c.starts_with('0'))) {
            return Err(UidError::BadComponent);
        }
        Ok(Uid(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Uid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_uids() {
        assert_eq!(Uid::parse(""), Err(UidError::Empty));
        assert_eq!(Uid::parse(&"1.".repeat(40)), Err(UidError::TooLong));
        assert_eq!(Uid::parse("1.2.a"), Err(UidError::BadCharacter));
        assert_eq!(Uid::parse("1..2"), Err(UidError::BadComponent));
        assert_eq!(Uid::parse("1.2."), Err(UidError::BadComponent));
        assert_eq!(Uid::parse("1.0.2").map(|u| u.0), Ok("1.0.2".to_owned()));
    }
}
