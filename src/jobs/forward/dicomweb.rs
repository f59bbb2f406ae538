//! Forwarding by DICOMweb: STOW-RS to the destination's service root, a few instances per
//! request, each stored instance sent as it is stored. Secrets are read from their files
//! at each send, so a rotated Kubernetes secret is picked up without a restart, and never
//! logged.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use reqwest::StatusCode;
use serde_json::Value;

use super::SendFailure;
use crate::blobs::BlobStore;
use crate::domain::WebAuth;
use crate::storage::index::StoredInstance;

/// Instances per STOW-RS request: bounds the request size (and petal's memory) while
/// keeping the number of requests small.
const INSTANCES_PER_REQUEST: usize = 16;
/// STOW-RS FailureReason of an instance the destination already holds.
const DUPLICATE_SOP_INSTANCE: u64 = 0x0111;

/// Sends every instance of a series to `url` (a DICOMweb service root).
pub async fn send_series(
    url: &str,
    auth: Option<&WebAuth>,
    timeout: Duration,
    blobs: &BlobStore,
    instances: &[StoredInstance],
) -> Result<(), SendFailure> {
    let client = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout.saturating_mul(4))
        .build()
        .map_err(|e| SendFailure::permanent(format!("building the HTTP client: {e}")))?;
    let endpoint = format!("{}/studies", url.trim_end_matches('/'));
    for batch in instances.chunks(INSTANCES_PER_REQUEST) {
        let boundary = format!("petal-forward-{}", uuid::Uuid::new_v4().simple());
        let body = multipart(blobs, batch, &boundary).await?;
        let mut request = client
            .post(&endpoint)
            .header("content-type", format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"))
            .header("accept", "application/dicom+json")
            .body(body);
        request = authenticate(request, auth)?;
        let response = request.send().await.map_err(|e| SendFailure::transient(format!("POST {endpoint}: {e}")))?;
        judge(&endpoint, response).await?;
    }
    Ok(())
}

/// A QIDO-RS search for one study: whether the service answers, and how.
pub async fn probe(url: &str, auth: Option<&WebAuth>, timeout: Duration) -> (bool, String) {
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(client) => client,
        Err(err) => return (false, format!("building the HTTP client: {err}")),
    };
    let endpoint = format!("{}/studies?limit=1", url.trim_end_matches('/'));
    let request = match authenticate(client.get(&endpoint).header("accept", "application/dicom+json"), auth) {
        Ok(request) => request,
        Err(failure) => return (false, failure.message),
    };
    match request.send().await {
        Ok(response) if response.status() == StatusCode::OK || response.status() == StatusCode::NO_CONTENT => {
            (true, format!("GET {endpoint} answered {}", response.status()))
        }
        Ok(response) => (false, format!("GET {endpoint} answered {}", response.status())),
        Err(err) => (false, format!("GET {endpoint}: {err}")),
    }
}

async fn multipart(blobs: &BlobStore, batch: &[StoredInstance], boundary: &str) -> Result<Bytes, SendFailure> {
    let mut body = BytesMut::new();
    for instance in batch {
        let bytes = blobs
            .get(&instance.blob_key)
            .await
            .map_err(|e| SendFailure::transient(format!("reading a stored instance: {e}")))?;
        body.put_slice(format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
        body.put_slice(&bytes);
        body.put_slice(b"\r\n");
    }
    body.put_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(body.freeze())
}

fn authenticate(
    request: reqwest::RequestBuilder,
    auth: Option<&WebAuth>,
) -> Result<reqwest::RequestBuilder, SendFailure> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map(|secret| secret.trim().to_owned())
            .map_err(|e| SendFailure::permanent(format!("reading the secret file {}: {e}", path.display())))
    };
    Ok(match auth {
        None => request,
        Some(WebAuth::BearerFile(path)) => request.bearer_auth(read(path)?),
        Some(WebAuth::Basic { username, password_file }) => request.basic_auth(username, Some(read(password_file)?)),
    })
}

/// Delivered, retry later, or never, from the STOW-RS response.
async fn judge(endpoint: &str, response: reqwest::Response) -> Result<(), SendFailure> {
    let status = response.status();
    if status == StatusCode::OK {
        return Ok(());
    }
    let transient_status =
        status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS;
    if transient_status {
        return Err(SendFailure::transient(format!("POST {endpoint} answered {status}")));
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status == StatusCode::ACCEPTED || status == StatusCode::CONFLICT {
        let reasons = failure_reasons(&body);
        if reasons.is_empty() && status == StatusCode::ACCEPTED {
            return Ok(()); // stored, with warnings only
        }
        if !reasons.is_empty() && reasons.iter().all(|r| *r == DUPLICATE_SOP_INSTANCE) {
            return Ok(()); // the destination already holds them
        }
        let listed = reasons.iter().map(|r| format!("0x{r:04X}")).collect::<Vec<_>>().join(", ");
        let message = format!("POST {endpoint} answered {status}; instances failed with {listed}");
        return if reasons.iter().any(|r| (0xA700..=0xA7FF).contains(r)) {
            Err(SendFailure::transient(message))
        } else {
            Err(SendFailure::permanent(message))
        };
    }
    Err(SendFailure::permanent(format!("POST {endpoint} answered {status}")))
}

/// FailureReason (0008,1197) of every item of FailedSOPSequence (0008,1198).
fn failure_reasons(body: &Value) -> Vec<u64> {
    body["00081198"]["Value"]
        .as_array()
        .map(|items| items.iter().filter_map(|item| item["00081197"]["Value"][0].as_u64()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::failure_reasons;

    #[test]
    fn failure_reasons_are_read_from_the_failed_sequence() {
        let body = json!({"00081198": {"vr": "SQ", "Value": [
            {"00081197": {"vr": "US", "Value": [272]}},
            {"00081197": {"vr": "US", "Value": [42752]}}
        ]}});
        assert_eq!(failure_reasons(&body), vec![0x0110, 0xA700]);
        assert!(failure_reasons(&json!({})).is_empty());
    }
}
