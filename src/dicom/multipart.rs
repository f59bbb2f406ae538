//! A streaming reader for `multipart/related` bodies (RFC 2046 §5.1, as PS3.18 uses it): a
//! STOW-RS request's, or a WADO-RS response's for a client.
//!
//! Parts are yielded one at a time while the body is still arriving, so a study is never
//! held in memory whole: only the part being read is. It accepts what real clients send:
//! a preamble or none (dicomweb-client sends a leading CRLF), parts with or without
//! headers and Content-Length, transport padding after delimiters, and a close delimiter
//! with or without a trailing CRLF (Orthanc sends none).

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use memchr::memmem;

/// Largest header block of one part.
const MAX_PART_HEADERS: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MultipartError {
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
    #[error("the request body is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("reading the request body failed: {0}")]
    Body(String),
}

/// One part: its headers (names lower-cased) and its body.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Right after a delimiter line: headers of a part follow.
    PartHeaders,
    /// After the close delimiter.
    Done,
}

pub struct MultipartReader<S> {
    body: S,
    buffer: BytesMut,
    /// `--boundary`.
    delimiter: Vec<u8>,
    /// `\r\n--boundary`, which ends every part body.
    body_end: memmem::Finder<'static>,
    state: State,
    limit: u64,
    received: u64,
    exhausted: bool,
}

impl<S, E> MultipartReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    pub fn new(body: S, boundary: &str, limit: u64) -> Self {
        let delimiter = format!("--{boundary}").into_bytes();
        let body_end = memmem::Finder::new(&[b"\r\n".as_slice(), &delimiter].concat()).into_owned();
        MultipartReader {
            body,
            buffer: BytesMut::new(),
            delimiter,
            body_end,
            state: State::Preamble,
            limit,
            received: 0,
            exhausted: false,
        }
    }

    /// Reads more of the body into the buffer; false when the body has ended.
    async fn fill(&mut self) -> Result<bool, MultipartError> {
        if self.exhausted {
            return Ok(false);
        }
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.received += chunk.len() as u64;
                if self.received > self.limit {
                    return Err(MultipartError::TooLarge(self.limit));
                }
                self.buffer.extend_from_slice(&chunk);
                Ok(true)
            }
            Some(Err(err)) => Err(MultipartError::Body(err.to_string())),
            None => {
                self.exhausted = true;
                Ok(false)
            }
        }
    }

    /// Makes sure at least `n` bytes are buffered; false if the body ends first.
    async fn want(&mut self, n: usize) -> Result<bool, MultipartError> {
        while self.buffer.len() < n {
            if !self.fill().await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next part, or `None` after the close delimiter.
    pub async fn next_part(&mut self) -> Result<Option<Part>, MultipartError> {
        if self.state == State::Preamble {
            self.skip_preamble().await?;
        }
        if self.state == State::Done {
            return Ok(None);
        }
        let headers = self.read_headers().await?;
        let body = self.read_body().await?;
        self.after_delimiter().await?;
        Ok(Some(Part { headers, body }))
    }

    async fn skip_preamble(&mut self) -> Result<(), MultipartError> {
        let finder = memmem::Finder::new(&self.delimiter).into_owned();
        let mut searched = 0;
        loop {
            if let Some(at) = finder.find(&self.buffer[searched..]) {
                self.buffer.advance(searched + at + self.delimiter.len());
                return self.after_delimiter().await;
            }
            searched = self.buffer.len().saturating_sub(self.delimiter.len());
            if !self.fill().await? {
                return Err(MultipartError::Malformed("no boundary delimiter found in the body"));
            }
        }
    }

    /// After `--boundary`: `--` closes the body; otherwise padding and a line break open a part.
    async fn after_delimiter(&mut self) -> Result<(), MultipartError> {
        if !self.want(2).await? {
            return Err(MultipartError::Malformed("the body ends right after a delimiter without closing it"));
        }
        if &self.buffer[..2] == b"--" {
            self.state = State::Done;
            self.buffer.clear();
            return Ok(());
        }
        loop {
            if !self.want(1).await? {
                return Err(MultipartError::Malformed("the body ends inside a delimiter line"));
            }
            match self.buffer[0] {
                b' ' | b'\t' => self.buffer.advance(1),
                b'\n' => {
                    self.buffer.advance(1);
                    break;
                }
                b'\r' => {
                    if !self.want(2).await? || self.buffer[1] != b'\n' {
                        return Err(MultipartError::Malformed("a delimiter line does not end with CRLF"));
                    }
                    self.buffer.advance(2);
                    break;
                }
                _ => return Err(MultipartError::Malformed("unexpected text after a boundary delimiter")),
            }
        }
        self.state = State::PartHeaders;
        Ok(())
    }

    async fn read_headers(&mut self) -> Result<Vec<(String, String)>, MultipartError> {
        if !self.want(2).await? {
            return Err(MultipartError::Malformed("the body ends where a part should begin"));
        }
        if &self.buffer[..2] == b"\r\n" {
            self.buffer.advance(2);
            return Ok(Vec::new());
        }
        let finder = memmem::Finder::new(b"\r\n\r\n");
        let end = loop {
            if let Some(end) = finder.find(&self.buffer) {
                break end;
            }
            if self.buffer.len() > MAX_PART_HEADERS {
                return Err(MultipartError::Malformed("a part's headers are too long"));
            }
            if !self.fill().await? {
                return Err(MultipartError::Malformed("the body ends inside a part's headers"));
            }
        };
        let text = std::str::from_utf8(&self.buffer[..end])
            .map_err(|_| MultipartError::Malformed("part headers are not text"))?;
        let headers = text
            .split("\r\n")
            .map(|line| {
                let (name, value) =
                    line.split_once(':').ok_or(MultipartError::Malformed("a part header has no colon"))?;
                Ok((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            })
            .collect();
        self.buffer.advance(end + 4);
        headers
    }

    async fn read_body(&mut self) -> Result<Bytes, MultipartError> {
        let mut searched = 0;
        loop {
            if let Some(at) = self.body_end.find(&self.buffer[searched..]) {
                // The part gets an allocation of its own size and the buffer stays the only
                // owner of its storage (no split anywhere), so its space is reused for the
                // next parts. Split parts kept the buffer shared, and every fill allocated a
                // new one of 128 KiB, just above glibc's initial mmap threshold: the heap
                // fragmented and peak RSS rose by 3–6 MiB (docs/benchmarks.md, "Memory").
                let end = searched + at;
                let body = Bytes::copy_from_slice(&self.buffer[..end]);
                self.buffer.advance(end + 2 + self.delimiter.len());
                return Ok(body);
            }
            searched = self.buffer.len().saturating_sub(self.body_end.needle().len());
            if !self.fill().await? {
                return Err(MultipartError::Malformed("the body ends inside a part (no closing delimiter)"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `body` into chunks of `size` bytes, as a network would.
    fn chunked(body: &[u8], size: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            body.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        futures::stream::iter(chunks)
    }

    async fn parts(body: &[u8], chunk: usize) -> Result<Vec<Part>, MultipartError> {
        let mut reader = MultipartReader::new(chunked(body, chunk), "B0undary", 1 << 20);
        let mut parts = Vec::new();
        while let Some(part) = reader.next_part().await? {
            parts.push(part);
        }
        Ok(parts)
    }

    #[tokio::test]
    async fn reads_the_forms_real_clients_send() {
        let bodies: [&[u8]; 4] = [
            // Orthanc: no preamble, headers with Content-Length, no CRLF after the close delimiter.
            b"--B0undary\r\nContent-Type: application/dicom\r\nContent-Length: 3\r\n\r\nabc\r\n--B0undary\r\nContent-Type: application/dicom\r\n\r\nd\r\nef\r\n--B0undary--",
            // dicomweb-client: a leading CRLF and a trailing CRLF.
            b"\r\n--B0undary\r\nContent-Type: application/dicom\r\n\r\nabc\r\n--B0undary\r\nContent-Type: application/dicom\r\n\r\nd\r\nef\r\n--B0undary--\r\n",
            // A preamble, transport padding, parts without headers, an epilogue.
            b"this is a preamble\r\n--B0undary  \r\n\r\nabc\r\n--B0undary\r\n\r\nd\r\nef\r\n--B0undary--\r\nepilogue",
            // Bare LF after delimiters.
            b"--B0undary\n\r\nabc\r\n--B0undary\n\r\nd\r\nef\r\n--B0undary--",
        ];
        for body in bodies {
            for chunk in [1, 2, 3, 7, 4096] {
                let parts = parts(body, chunk).await.expect("parses");
                assert_eq!(parts.len(), 2, "{}", String::from_utf8_lossy(body));
                assert_eq!(&parts[0].body[..], b"abc");
                assert_eq!(&parts[1].body[..], b"d\r\nef", "a CRLF inside a body is data");
            }
        }
    }

    #[tokio::test]
    async fn headers_are_case_insensitive() {
        let body = b"--B0undary\r\ncontent-TYPE:  application/dicom \r\n\r\nx\r\n--B0undary--";
        let parts = parts(body, 5).await.expect("parses");
        assert_eq!(parts[0].header("content-type"), Some("application/dicom"));
    }

    #[tokio::test]
    async fn broken_bodies_are_refused() {
        assert!(matches!(parts(b"no delimiter at all", 4).await, Err(MultipartError::Malformed(_))));
        assert!(matches!(parts(b"--B0undary\r\n\r\nunterminated part", 4).await, Err(MultipartError::Malformed(_))));
        assert!(parts(b"--B0undary--", 4).await.expect("empty").is_empty());
        let mut reader = MultipartReader::new(chunked(&[b'x'; 100], 10), "B0undary", 50);
        assert!(matches!(reader.next_part().await, Err(MultipartError::TooLarge(50))));
    }
}
