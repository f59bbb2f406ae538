//! The Native DICOM Model (PS3.19 Annex A) as XML, written from DICOM JSON. Enough for
//! the responses petal builds itself (STOW-RS results): strings, numbers, names, sequences.

use serde_json::{Map, Value};

/// Writes a DICOM JSON data set as a `NativeDicomModel` XML document.
pub fn native_model(dataset: &Map<String, Value>) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<NativeDicomModel xmlns=\"http://dicom.nema.org/PS3.19/models/NativeDICOM\">",
    );
    write_attributes(dataset, &mut out);
    out.push_str("</NativeDicomModel>\n");
    out
}

fn write_attributes(dataset: &Map<String, Value>, out: &mut String) {
    for (tag, attribute) in dataset {
        let vr = attribute["vr"].as_str().unwrap_or("UN");
        out.push_str(&format!("<DicomAttribute tag=\"{}\" vr=\"{}\">", escape(tag), escape(vr)));
        for (i, value) in attribute["Value"].as_array().into_iter().flatten().enumerate() {
            let number = i + 1;
            match (vr, value) {
                ("SQ", Value::Object(item)) => {
                    out.push_str(&format!("<Item number=\"{number}\">"));
                    write_attributes(item, out);
                    out.push_str("</Item>");
                }
                ("PN", Value::Object(name)) => {
                    let alphabetic = name.get("Alphabetic").and_then(Value::as_str).unwrap_or_default();
                    out.push_str(&format!(
                        "<PersonName number=\"{number}\"><Alphabetic><FamilyName>{}</FamilyName></Alphabetic></PersonName>",
                        escape(alphabetic)
                    ));
                }
                (_, Value::String(text)) => {
                    out.push_str(&format!("<Value number=\"{number}\">{}</Value>", escape(text)))
                }
                (_, other) => out.push_str(&format!("<Value number=\"{number}\">{other}</Value>")),
            }
        }
        out.push_str("</DicomAttribute>");
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_sequences_and_values() {
        let dataset = json!({
            "00081190": {"vr": "UR", "Value": ["http://h/a?b&c"]},
            "00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]},
            "00081197": {"vr": "US", "Value": [272]}
        });
        let xml = native_model(dataset.as_object().expect("object"));
        assert!(
            xml.contains("<DicomAttribute tag=\"00081190\" vr=\"UR\"><Value number=\"1\">http://h/a?b&amp;c</Value>")
        );
        assert!(xml.contains(
            "<Item number=\"1\"><DicomAttribute tag=\"00081155\" vr=\"UI\"><Value number=\"1\">1.2.3</Value>"
        ));
        assert!(xml.contains("<Value number=\"1\">272</Value>"));
    }
}
