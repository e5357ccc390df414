//! The optional HTTP endpoint (`[http] bind=...`): the status page for
//! browsers, `/status` and `/events` as JSON, `/metrics` for Prometheus and
//! `/healthz`. Its thread never touches the daemon's state: each request
//! asks the main loop for a [`Facts`] snapshot (over a channel, with a
//! one-shot reply channel) and renders it here, so the main loop only
//! copies facts and never spends its time formatting.

use std::net::SocketAddr;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};
use log::{info, warn};

use crate::status::{self, Facts};

/// What a request needs from the main loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Devices only (`/status`, `/metrics`, `/healthz`).
    Devices,
    /// Devices, recent events and availability strips (the page).
    Page,
    /// Events, newest first, of one device or all.
    Events {
        subject: Option<String>,
        limit: usize,
    },
}

pub struct Request {
    pub want: Want,
    pub reply: Sender<Facts>,
}

/// How long a request waits for the main loop before answering 503.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// `/events` lists this many events unless `limit` says otherwise ...
const EVENTS_DEFAULT: usize = 100;
/// ... and never more than this.
const EVENTS_MAX: usize = 10_000;

struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    /// More headers (`/status` names the failover role and leader).
    headers: Vec<(&'static str, String)>,
}

fn reply(status: u16, content_type: &'static str, body: String) -> Reply {
    Reply {
        status,
        content_type,
        body,
        headers: Vec::new(),
    }
}

fn text(status: u16, body: &str) -> Reply {
    reply(status, "text/plain; charset=utf-8", body.to_string())
}

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
                let accept = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Accept"))
                    .map(|h| h.value.as_str().to_string())
                    .unwrap_or_default();
                let reply = answer(req.method(), req.url(), &accept, &requests);
                let mut response =
                    tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
                let headers = [("Content-Type", reply.content_type.to_string())]
                    .into_iter()
                    .chain(reply.headers);
                for (name, value) in headers {
                    if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                    {
                        response.add_header(h);
                    }
                }
                let _ = req.respond(response);
            }
        })?;
    Ok(())
}

/// Asks the main loop for its facts.
fn ask(requests: &Sender<Request>, want: Want) -> Result<Facts, Reply> {
    let (tx, rx) = bounded(1);
    if requests.send(Request { want, reply: tx }).is_err() {
        return Err(text(503, "stopping\n"));
    }
    rx.recv_timeout(ANSWER_TIMEOUT)
        .map_err(|_| text(503, "the main loop did not answer\n"))
}

/// `/events?device=NAME&limit=N`.
fn events_want(query: &str) -> Want {
    let mut subject = None;
    let mut limit = EVENTS_DEFAULT;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "device" => subject = Some(v.into_owned()),
            "limit" => limit = v.parse().unwrap_or(EVENTS_DEFAULT).min(EVENTS_MAX),
            _ => {}
        }
    }
    Want::Events { subject, limit }
}

fn answer(
    method: &tiny_http::Method,
    url: &str,
    accept: &str,
    requests: &Sender<Request>,
) -> Reply {
    if *method != tiny_http::Method::Get && *method != tiny_http::Method::Head {
        return text(405, "only GET\n");
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let result = match path {
        "/" if accept.contains("text/html") => ask(requests, Want::Page)
            .map(|f| reply(200, "text/html; charset=utf-8", crate::page::render(&f))),
        "/" | "/status" => ask(requests, Want::Devices).map(|f| {
            let mut r = reply(200, "application/json", status::status_json(&f.devices));
            if !f.broker.refused.is_empty() {
                r.headers.push((
                    "X-Iotmonitor-Subscriptions-Refused",
                    f.broker.refused.join(", "),
                ));
            }
            if let Some(v) = &f.failover {
                r.headers
                    .push(("X-Iotmonitor-Role", status::role_name(v.role).into()));
                r.headers
                    .push(("X-Iotmonitor-Leader", v.leader.clone().unwrap_or_default()));
                let peers: Vec<String> = v
                    .peers
                    .iter()
                    .map(|(id, p)| format!("{id}={} (priority {})", p.presence, p.priority))
                    .collect();
                r.headers.push(("X-Iotmonitor-Peers", peers.join(", ")));
                if let Some(t) = v.last_takeover_ms {
                    r.headers
                        .push(("X-Iotmonitor-Last-Takeover", (t / 1000).to_string()));
                }
            }
            r
        }),
        "/instance" => ask(requests, Want::Devices)
            .map(|f| reply(200, "application/json", status::instance_json(&f))),
        "/events" => ask(requests, events_want(query))
            .map(|f| reply(200, "application/json", status::events_json(&f.events))),
        "/metrics" => ask(requests, Want::Devices).map(|f| {
            reply(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                status::metrics(&f),
            )
        }),
        "/healthz" => ask(requests, Want::Devices).map(|f| health(&f)),
        _ => Err(text(
            404,
            "not found: try /, /status, /events, /instance, /metrics or /healthz\n",
        )),
    };
    result.unwrap_or_else(|r| r)
}

/// 200 while the watchdog works and can keep states; 503 while the store
/// fails (states are then only in memory).
fn health(f: &Facts) -> Reply {
    let broker = if f.broker.connected {
        "broker connected"
    } else {
        "broker disconnected"
    };
    if f.database.healthy {
        text(200, &format!("ok\n{broker}\n"))
    } else {
        text(
            503,
            &format!(
                "unhealthy: the database fails ({}), {} states kept in memory\n{broker}\n",
                f.database.last_error.as_deref().unwrap_or("unknown error"),
                f.database.pending
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_query_is_decoded_and_bounded() {
        assert_eq!(
            events_want("device=esp%2001&limit=5"),
            Want::Events {
                subject: Some("esp 01".into()),
                limit: 5
            }
        );
        assert_eq!(
            events_want("limit=99999999"),
            Want::Events {
                subject: None,
                limit: EVENTS_MAX
            }
        );
        assert_eq!(
            events_want(""),
            Want::Events {
                subject: None,
                limit: EVENTS_DEFAULT
            }
        );
    }
}
