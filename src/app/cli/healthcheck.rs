//! `petal healthcheck`: a minimal HTTP/1.1 GET of `/healthz`, for container images that
//! ship no curl. Exit code 0 when the answer is 200, 1 otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::app::config::HealthcheckArgs;

pub async fn run(args: &HealthcheckArgs) -> ExitCode {
    let target = local_target(args.listen);
    match tokio::time::timeout(args.timeout, probe(target)).await {
        Ok(Ok(200)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("petal healthcheck: /healthz at {target} answered {status}");
            ExitCode::FAILURE
        }
        Ok(Err(err)) => {
            eprintln!("petal healthcheck: cannot reach {target}: {err}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("petal healthcheck: no answer from {target} within {:?}", args.timeout);
            ExitCode::FAILURE
        }
    }
}

/// A server listening on every address is reached on loopback.
fn local_target(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port()),
        _ => listen,
    }
}

async fn probe(target: SocketAddr) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(target).await?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..]).await?;
        if n == 0 {
            break;
        }
        read += n;
    }
    parse_status(&head[..read])
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_is_parsed() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.1 503 Service"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn wildcard_addresses_become_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        assert_eq!(local_target(any), "127.0.0.1:8080".parse().expect("addr"));
    }
}
