//! The optional HTTP status endpoint (`[http] bind=...`). Its thread never
//! touches the daemon's state: each request becomes a `Query` sent to the
//! main loop, which answers on a one-shot channel.

use std::net::SocketAddr;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};
use log::{info, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Status,
    Metrics,
    Health,
}

pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

pub struct Request {
    pub query: Query,
    pub reply: Sender<Reply>,
}

/// How long a request waits for the main loop before answering 503.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` and serves requests on a thread of its own.
pub fn spawn(addr: SocketAddr, requests: Sender<Request>) -> anyhow::Result<()> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on http://{addr}: {e}"))?;
    if !addr.ip().is_loopback() {
        warn!("the status page listens on {addr}, beyond this machine");
    }
    info!("status page on http://{addr}/");
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let reply = answer(req.method(), req.url(), &requests);
                let header = tiny_http::Header::from_bytes(
                    &b"Content-Type"[..],
                    reply.content_type.as_bytes(),
                )
                .expect("static header");
                let response = tiny_http::Response::from_string(reply.body)
                    .with_status_code(reply.status)
                    .with_header(header);
                let _ = req.respond(response);
            }
        })?;
    Ok(())
}

fn text(status: u16, body: &str) -> Reply {
    Reply {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_string(),
    }
}

fn answer(method: &tiny_http::Method, url: &str, requests: &Sender<Request>) -> Reply {
    if *method != tiny_http::Method::Get && *method != tiny_http::Method::Head {
        return text(405, "only GET\n");
    }
    let path = url.split('?').next().unwrap_or("");
    let query = match path {
        "/" | "/status" => Query::Status,
        "/metrics" => Query::Metrics,
        "/healthz" => Query::Health,
        _ => return text(404, "not found: try /status, /metrics or /healthz\n"),
    };
    let (tx, rx) = bounded(1);
    if requests.send(Request { query, reply: tx }).is_err() {
        return text(503, "stopping\n");
    }
    rx.recv_timeout(ANSWER_TIMEOUT)
        .unwrap_or_else(|_| text(503, "the main loop did not answer\n"))
}
