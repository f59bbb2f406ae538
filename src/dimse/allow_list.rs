//! Which DICOM nodes may open an association with petal: the calling AE titles of
//! `PETAL_DIMSE_CALLING_AES`, each optionally pinned to an address (`AE@host`), or `*` for
//! any node.
//!
//! ```
//! use petal::dimse::allow_list::AllowList;
//! let list = AllowList::parse("ORTHANC, SCANNER1@10.0.0.7").unwrap();
//! let here: std::net::IpAddr = "10.0.0.7".parse().unwrap();
//! let elsewhere: std::net::IpAddr = "10.0.0.8".parse().unwrap();
//! assert!(list.allows("ORTHANC", elsewhere));
//! assert!(list.allows("SCANNER1", here));
//! assert!(!list.allows("SCANNER1", elsewhere));
//! assert!(!list.allows("OTHER", here));
//! ```

use std::net::IpAddr;

/// One allowed calling AE title, maybe pinned to an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedNode {
    ae_title: String,
    address: Option<IpAddr>,
}

/// The calling AE titles petal accepts associations from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowList {
    /// `*`: any calling AE title from any address (warned about at every start).
    Any,
    Nodes(Vec<AllowedNode>),
}

/// Why an allow-list or an AE title is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllowListError {
    #[error(
        "the list of calling AE titles is empty: name the nodes that may send (e.g. `ORTHANC,SCANNER1@10.0.0.7`), or `*` for any"
    )]
    Empty,
    #[error("`{0}` is not an AE title: 1 to 16 characters, no backslash or control characters, not only spaces")]
    BadAeTitle(String),
    #[error("`{0}` in `AE@host` is not an IP address")]
    BadAddress(String),
}

impl AllowList {
    /// Parses a comma-separated list of `AE` and `AE@address` entries, or `*`.
    pub fn parse(text: &str) -> Result<Self, AllowListError> {
        let entries: Vec<&str> = text.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
        if entries.is_empty() {
            return Err(AllowListError::Empty);
        }
        if entries.contains(&"*") {
            return Ok(AllowList::Any);
        }
        let nodes = entries
            .into_iter()
            .map(|entry| {
                let (ae, address) = match entry.rsplit_once('@') {
                    Some((ae, host)) => {
                        let address =
                            host.trim().parse::<IpAddr>().map_err(|_| AllowListError::BadAddress(host.to_owned()))?;
                        (ae, Some(address))
                    }
                    None => (entry, None),
                };
                Ok(AllowedNode { ae_title: parse_ae_title(ae)?, address })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowList::Nodes(nodes))
    }

    /// Whether `calling_ae_title`, connecting from `peer`, may open an association.
    pub fn allows(&self, calling_ae_title: &str, peer: IpAddr) -> bool {
        match self {
            AllowList::Any => true,
            AllowList::Nodes(nodes) => {
                let calling = calling_ae_title.trim();
                nodes.iter().any(|node| {
                    node.ae_title == calling && node.address.is_none_or(|pinned| same_address(pinned, peer))
                })
            }
        }
    }
}

/// An AE title as PS3.5 allows it: 1–16 characters of the default repertoire without
/// backslash or control characters, leading and trailing spaces not significant.
pub fn parse_ae_title(text: &str) -> Result<String, AllowListError> {
    let trimmed = text.trim();
    let valid = !trimmed.is_empty()
        && trimmed.len() <= 16
        && trimmed.chars().all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\');
    if valid { Ok(trimmed.to_owned()) } else { Err(AllowListError::BadAeTitle(text.to_owned())) }
}

/// Compares addresses with IPv4-mapped IPv6 addresses seen as their IPv4 form.
fn same_address(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_anywhere_allows_every_node() {
        let list = AllowList::parse("A, *").expect("parse");
        assert_eq!(list, AllowList::Any);
        assert!(list.allows("ANYONE", "192.0.2.1".parse().expect("ip")));
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(AllowList::parse(" , "), Err(AllowListError::Empty));
        assert_eq!(AllowList::parse("A@scanner.local"), Err(AllowListError::BadAddress("scanner.local".to_owned())));
        assert!(matches!(AllowList::parse("WAY_TOO_LONG_AE_TITLE"), Err(AllowListError::BadAeTitle(_))));
        assert!(matches!(AllowList::parse("A\\B"), Err(AllowListError::BadAeTitle(_))));
    }

    #[test]
    fn a_pinned_address_matches_its_ipv4_mapped_form() {
        let list = AllowList::parse("PACS@127.0.0.1").expect("parse");
        assert!(list.allows("PACS ", "::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!list.allows("pacs", "127.0.0.1".parse().expect("ip")));
    }
}
