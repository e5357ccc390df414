//! Why a connection attempt failed, in words an operator can act on.
//!
//! Paho says exactly why only for some failures: a CONNACK refusal (reason
//! code), a timeout, a connection closed before the CONNACK. For others it
//! reports a bare "general failure" (the host name did not resolve, or the
//! TCP connect failed at once) or "TCP/TLS connect failure" (refused,
//! unreachable, or the TLS handshake failed): the errno is lost inside the
//! C library. Those are diagnosed by doing the same steps again, on a
//! thread of the link's own (never the main loop): resolve the host name,
//! then open a plain TCP connection with the connect timeout. If TCP works,
//! what failed was TLS (for `ssl://`) or the broker went away and came back.

use std::fmt;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use paho_mqtt as mqtt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The host name did not resolve.
    Dns(String),
    Refused,
    Unreachable(String),
    Timeout(Duration),
    Tls,
    /// The TCP (and TLS) connection was made, but the broker closed it
    /// before answering the CONNECT: typically a broker that does not
    /// speak the MQTT version asked for.
    Closed,
    /// The broker answered the CONNECT with a refusal.
    Rejected(String),
    /// The broker does not accept this MQTT version.
    Protocol(String),
    Other(String),
}

impl Failure {
    /// Could the broker accept another MQTT version?
    pub fn suggests_other_version(&self) -> bool {
        matches!(self, Failure::Closed | Failure::Protocol(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Dns(e) => write!(f, "DNS lookup failed: {e}"),
            Failure::Refused => write!(
                f,
                "connection refused (no broker listening on that address and port)"
            ),
            Failure::Unreachable(e) => write!(f, "host unreachable: {e}"),
            Failure::Timeout(d) => write!(f, "timed out: no answer within {} s", d.as_secs()),
            Failure::Tls => write!(
                f,
                "TLS handshake failed (server certificate not trusted by caFile, host name \
                 not in the certificate, or client certificate refused)"
            ),
            Failure::Closed => write!(f, "the broker closed the connection before accepting it"),
            Failure::Rejected(why) => write!(f, "refused by the broker: {why}"),
            Failure::Protocol(why) => write!(f, "MQTT version not accepted by the broker: {why}"),
            Failure::Other(e) => write!(f, "{e}"),
        }
    }
}

/// The failure Paho reported, when it says enough; None when the cause
/// has to be found by `diagnose`.
pub(crate) fn classify(e: &mqtt::Error, timeout: Duration) -> Option<Failure> {
    use mqtt::Error as E;
    Some(match e {
        E::TcpConnectTimeout | E::Timeout => Failure::Timeout(timeout),
        E::TcpConnectCompletionFailure | E::SocketError(_) | E::ReceivedDisconnect(_) => {
            Failure::Closed
        }
        E::ConnectReturn(rc) => match rc {
            mqtt::ConnectReturnCode::UnacceptableProtocolVersion => {
                Failure::Protocol(rc.to_string().to_lowercase())
            }
            mqtt::ConnectReturnCode::BadUserNameOrPassword => {
                Failure::Rejected("bad user name or password".into())
            }
            mqtt::ConnectReturnCode::NotAuthorized => Failure::Rejected("not authorized".into()),
            other => Failure::Rejected(other.to_string().to_lowercase()),
        },
        E::ReasonCode(rc, _) => match rc {
            mqtt::ReasonCode::UnsupportedProtocolVersion => {
                Failure::Protocol(rc.to_string().to_lowercase())
            }
            mqtt::ReasonCode::BadUserNameOrPassword => {
                Failure::Rejected("bad user name or password".into())
            }
            mqtt::ReasonCode::NotAuthorized => Failure::Rejected("not authorized".into()),
            other => Failure::Rejected(other.to_string().to_lowercase()),
        },
        E::TcpTlsConnectFailure | E::Failure => return None,
        other => Failure::Other(other.to_string()),
    })
}

/// Where the broker is, from its URI (`tcp://`, `ssl://`, `mqtt://`,
/// `mqtts://`; IPv6 addresses in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Server {
    pub fn parse(uri: &str) -> Option<Server> {
        let (tls, rest) = [
            ("tcp://", false),
            ("mqtt://", false),
            ("ssl://", true),
            ("mqtts://", true),
        ]
        .iter()
        .find_map(|(p, tls)| uri.strip_prefix(p).map(|r| (*tls, r)))?;
        let rest = rest.split('/').next().unwrap_or(rest);
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None => default_port,
            };
            (host, port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().ok()?),
                None => (rest, default_port),
            }
        };
        (!host.is_empty()).then(|| Server {
            host: host.to_string(),
            port,
            tls,
        })
    }
}

/// Finds out why a connection to `server` failed when Paho did not say:
/// resolves the host and opens a TCP connection (blocking: call it off the
/// main loop).
pub(crate) fn diagnose(server: &Server, timeout: Duration) -> Failure {
    let addrs: Vec<_> = match (server.host.as_str(), server.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return Failure::Dns(format!("{}: {e}", server.host)),
    };
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(_) if server.tls => return Failure::Tls,
            Ok(_) => {
                return Failure::Other(
                    "TCP connection failed (the broker accepts connections again)".into(),
                )
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => from_io(&e, timeout),
        None => Failure::Dns(format!("{}: no address", server.host)),
    }
}

fn from_io(e: &io::Error, timeout: Duration) -> Failure {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Failure::Refused,
        io::ErrorKind::TimedOut => Failure::Timeout(timeout),
        _ => match e.raw_os_error() {
            Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => Failure::Unreachable(e.to_string()),
            _ => Failure::Other(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const T: Duration = Duration::from_secs(3);

    #[test]
    fn paho_errors_that_say_why() {
        let c = |e| classify(&e, T);
        assert_eq!(c(mqtt::Error::TcpConnectTimeout), Some(Failure::Timeout(T)));
        assert_eq!(
            c(mqtt::Error::TcpConnectCompletionFailure),
            Some(Failure::Closed)
        );
        assert_eq!(
            c(mqtt::Error::ConnectReturn(
                mqtt::ConnectReturnCode::NotAuthorized
            )),
            Some(Failure::Rejected("not authorized".into()))
        );
        assert_eq!(
            c(mqtt::Error::ConnectReturn(
                mqtt::ConnectReturnCode::BadUserNameOrPassword
            )),
            Some(Failure::Rejected("bad user name or password".into()))
        );
        let v5 = |rc| mqtt::Error::ReasonCode(rc, mqtt::Properties::new());
        assert_eq!(
            c(v5(mqtt::ReasonCode::NotAuthorized)),
            Some(Failure::Rejected("not authorized".into()))
        );
        let protocol = c(v5(mqtt::ReasonCode::UnsupportedProtocolVersion)).unwrap();
        assert!(protocol.suggests_other_version(), "{protocol}");
        assert!(!Failure::Refused.suggests_other_version());
        assert_eq!(c(mqtt::Error::TcpTlsConnectFailure), None);
        assert_eq!(c(mqtt::Error::Failure), None);
    }

    #[test]
    fn server_addresses() {
        let s = |u| Server::parse(u);
        assert_eq!(
            s("tcp://localhost:1884"),
            Some(Server {
                host: "localhost".into(),
                port: 1884,
                tls: false
            })
        );
        assert_eq!(
            s("mqtts://broker").map(|s| (s.port, s.tls)),
            Some((8883, true))
        );
        assert_eq!(s("mqtt://broker").map(|s| s.port), Some(1883));
        assert_eq!(
            s("ssl://[::1]:8884").map(|s| (s.host, s.port)),
            Some(("::1".into(), 8884))
        );
        assert_eq!(s("ws://x"), None);
        assert_eq!(s("tcp://:1883"), None);
    }

    #[test]
    fn diagnoses_refused_and_reachable_tls() {
        let server = |port, tls| Server {
            host: "127.0.0.1".into(),
            port,
            tls,
        };
        // A port just freed: nothing listens there, unless a test running
        // in parallel took it meanwhile (then another one is tried).
        let refused = (0..5).any(|_| {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            diagnose(&server(port, false), T) == Failure::Refused
        });
        assert!(refused, "a closed port is reported as refused");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        assert_eq!(diagnose(&server(open, true), T), Failure::Tls);
    }

    #[test]
    fn io_errors() {
        let e = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        assert!(matches!(from_io(&e, T), Failure::Unreachable(_)));
        let e = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(from_io(&e, T), Failure::Timeout(T));
    }
}
