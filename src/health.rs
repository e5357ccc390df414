//! `iotmonitor health`: one `GET /healthz` to a running daemon's status
//! page, for container and service-manager health checks. A plain HTTP/1.0
//! request over a `TcpStream` is all it takes: the status page is ours and
//! answers a few bytes.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the answer may take: more than the status page waits for the
/// main loop (5 s) before answering 503 itself, so that its reason comes
/// through. Both together stay within the image's HEALTHCHECK timeout
/// (10 s).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(6);
/// More than any /healthz answer.
const MAX_ANSWER: u64 = 64 * 1024;

/// Where to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Target {
    /// The status page of `[http] bind`. A wildcard bind (0.0.0.0, ::) is
    /// asked on the loopback address.
    pub fn from_bind(bind: SocketAddr) -> Target {
        let ip = match bind.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Target {
            host: ip.to_string(),
            port: bind.port(),
            path: "/healthz".into(),
        }
    }

    /// `http://HOST[:PORT][/PATH]`; the path defaults to `/healthz`.
    pub fn from_url(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("'{url}' is not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            // Not the inside of a bracketed IPv6 address.
            Some((host, port)) if !port.contains(']') => (
                host,
                port.parse()
                    .map_err(|_| format!("'{url}' has an invalid port '{port}'"))?,
            ),
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("'{url}' has no host"));
        }
        Ok(Target {
            host: host.to_string(),
            port,
            path: if path.is_empty() || path == "/" {
                "/healthz".into()
            } else {
                path.to_string()
            },
        })
    }

    /// As a URL, for messages.
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            format!("http://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// Asks `target`: `Ok(reason)` when it answers 200, `Err(reason)`
/// otherwise. Reasons are one line.
pub fn check(target: &Target) -> Result<String, String> {
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let mut last = format!("{} has no address", target.host);
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let io = |e: std::io::Error| format!("no answer from {}: {e}", target.url());
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
    write!(
        stream,
        "GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.path, target.host
    )
    .map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(io)?;
    let (status, body) = parse_answer(&answer).ok_or_else(|| {
        format!(
            "{} did not answer HTTP ({} bytes)",
            target.url(),
            answer.len()
        )
    })?;
    let reason = format!("{} answered {status}: {body}", target.url());
    if status == 200 {
        Ok(reason)
    } else {
        Err(reason)
    }
}

/// The status code and the body on one line (`ok, broker connected`).
fn parse_answer(answer: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .strip_prefix("HTTP/1.")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let body: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let body = if body.is_empty() {
        "(empty)".to_string()
    } else {
        body.join(", ")
    };
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::from_url("http://127.0.0.1:8079").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8079, "/healthz")
        );
        let t = Target::from_url("http://box/status").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("box", 80, "/status")
        );
        let t = Target::from_url("http://[::1]:9000/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        assert_eq!(t.url(), "http://[::1]:9000/healthz");
        for bad in ["https://x", "http://:80", "http://x:port", "127.0.0.1:8079"] {
            assert!(Target::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcard_binds_are_asked_on_loopback() {
        let t = Target::from_bind("0.0.0.0:8079".parse().unwrap());
        assert_eq!(t.url(), "http://127.0.0.1:8079/healthz");
        let t = Target::from_bind("[::]:8079".parse().unwrap());
        assert_eq!(t.url(), "http://[::1]:8079/healthz");
    }

    #[test]
    fn answers() {
        assert_eq!(
            parse_answer(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\nbroker connected\n"),
            Some((200, "ok, broker connected".into()))
        );
        assert_eq!(
            parse_answer(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            Some((503, "(empty)".into()))
        );
        assert_eq!(parse_answer(b"SSH-2.0-OpenSSH\r\n"), None);
    }
}
