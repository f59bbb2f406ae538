//! Media types with parameters (`multipart/related; type="application/dicom"; boundary=x`)
//! and `Accept` negotiation as PS3.18 §8.7 uses them.

/// A parsed media type: lower-case essence and parameters (names lower-cased, values unquoted).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
    /// Quality from `q=`, 1.0 when absent.
    pub quality: f32,
}

impl MediaType {
    pub fn parse(text: &str) -> Option<Self> {
        let mut pieces = split_outside_quotes(text, ';').into_iter();
        let essence = pieces.next()?.trim().to_ascii_lowercase();
        if !essence.contains('/') {
            return None;
        }
        let mut params = Vec::new();
        let mut quality = 1.0;
        for piece in pieces {
            let Some((name, value)) = piece.split_once('=') else { continue };
            let name = name.trim().to_ascii_lowercase();
            let value = unquote(value.trim());
            if name == "q" {
                quality = value.parse().unwrap_or(0.0);
            } else {
                params.push((name, value));
            }
        }
        Some(MediaType { essence, params, quality })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The `type` parameter of a multipart type, lower-cased.
    pub fn part_type(&self) -> Option<String> {
        self.param("type").map(str::to_ascii_lowercase)
    }
}

/// The media ranges of an `Accept` header, best first; `*/*` when the header is absent.
pub fn parse_accept(header: Option<&str>) -> Vec<MediaType> {
    let Some(header) = header.filter(|h| !h.trim().is_empty()) else {
        return vec![MediaType { essence: "*/*".into(), params: Vec::new(), quality: 1.0 }];
    };
    let mut ranges: Vec<MediaType> = split_outside_quotes(header, ',')
        .iter()
        .filter_map(|r| MediaType::parse(r))
        .filter(|m| m.quality > 0.0)
        .collect();
    ranges.sort_by(|a, b| b.quality.total_cmp(&a.quality));
    ranges
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => value.to_owned(),
    }
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                pieces.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_and_unquoted_parameters() {
        let orthanc =
            MediaType::parse("multipart/related; type=\"application/dicom\"; boundary=abc123").expect("media");
        assert_eq!(orthanc.essence, "multipart/related");
        assert_eq!(orthanc.part_type().as_deref(), Some("application/dicom"));
        assert_eq!(orthanc.param("boundary"), Some("abc123"));
        let quoted = MediaType::parse("Multipart/Related; Type=application/dicom; boundary=\"a;b c\"").expect("media");
        assert_eq!(quoted.essence, "multipart/related");
        assert_eq!(quoted.param("boundary"), Some("a;b c"));
        assert!(MediaType::parse("nonsense").is_none());
    }

    #[test]
    fn accept_lists_are_ordered_by_quality() {
        let ranges = parse_accept(Some("application/json;q=0.5, application/dicom+json, */*;q=0"));
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0].essence, "application/dicom+json");
        assert_eq!(parse_accept(None)[0].essence, "*/*");
    }
}
