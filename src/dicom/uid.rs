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
    #[error(
        "the UID root is too long: UIDs under it would have fewer than 16 random digits (use a root of 47 characters or less)"
    )]
    RootTooLong,
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

    /// A new UID under `root` (petal's configurable UID root): the root, a dot, and a random
    /// number as long as the 64-character limit allows (at most 38 digits, ~126 bits).
    ///
    /// ```
    /// use petal::dicom::Uid;
    /// let root = Uid::parse("1.2.826.0.1.3680043.10.999").unwrap();
    /// let uid = Uid::generate_under(&root).unwrap();
    /// assert!(uid.as_str().starts_with("1.2.826.0.1.3680043.10.999."));
    /// assert!(uid.as_str().len() <= 64 && Uid::parse(uid.as_str()).is_ok());
    /// ```
    pub fn generate_under(root: &Uid) -> Result<Uid, UidError> {
        let room = 64usize.saturating_sub(root.0.len() + 1).min(38);
        if room < 16 {
            // Fewer than ~53 random bits would make collisions plausible.
            return Err(UidError::RootTooLong);
        }
        let random = uuid::Uuid::new_v4().as_u128() % 10u128.pow(room as u32);
        // No leading zero: the component is random digits below 10^room, made non-zero.
        Uid::parse(&format!("{}.{}", root.0, random.max(1)))
    }

    /// The UID under `root` that `name` always gives (a hash of it, as long as
    /// [`Self::generate_under`]'s numbers): for work that may be repeated, such as a retried
    /// job, and must produce the same UIDs again.
    ///
    /// ```
    /// use petal::dicom::Uid;
    /// let root = Uid::parse("2.25").unwrap();
    /// let a = Uid::derived_under(&root, "job 7 / series").unwrap();
    /// assert_eq!(a, Uid::derived_under(&root, "job 7 / series").unwrap());
    /// assert_ne!(a, Uid::derived_under(&root, "job 8 / series").unwrap());
    /// ```
    pub fn derived_under(root: &Uid, name: &str) -> Result<Uid, UidError> {
        use sha2::{Digest, Sha256};
        let room = 64usize.saturating_sub(root.0.len() + 1).min(38);
        if room < 16 {
            return Err(UidError::RootTooLong);
        }
        let digest = Sha256::digest(name.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let number = u128::from_be_bytes(bytes) % 10u128.pow(room as u32);
        Uid::parse(&format!("{}.{}", root.0, number.max(1)))
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
