//! What operators see: the facts the main loop hands over for a request
//! ([`Facts`], a snapshot it copies out of its state), rendered here — on
//! the HTTP thread, never on the main loop — as the JSON status list and
//! the Prometheus metrics (the HTML page is `page.rs`).

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::json;

use crate::event::{Event, EventKind};
use crate::monitor::failover::Role;
use crate::monitor::{DeviceView, FailoverView, Verdict};

/// One device or agent at the time of a request: the core's view, plus
/// the supervisor's facts for agents.
#[derive(Debug, Clone)]
pub struct DeviceStatus {
    pub view: DeviceView,
    pub pid: Option<i32>,
    /// Every launch by this daemon.
    pub launches: u64,
    /// Launches after the first: relaunches after a death, restarts for
    /// expiry.
    pub relaunches: u64,
}

impl DeviceStatus {
    pub fn expired(&self) -> bool {
        self.view.verdict == Verdict::Expired
    }
}

/// The broker link.
#[derive(Debug, Clone, Default)]
pub struct BrokerFacts {
    pub url: String,
    pub connected: bool,
    /// Epoch milliseconds of the last connection or loss.
    pub since_ms: Option<u64>,
    pub reconnects: u64,
    /// Subscriptions the broker refused.
    pub refused: Vec<String>,
    /// Repeats (`B/up`, hello counts) dropped while the broker was slow.
    pub dropped: u64,
}

/// The state store.
#[derive(Debug, Clone, Default)]
pub struct StoreFacts {
    pub path: String,
    pub healthy: bool,
    pub last_error: Option<String>,
    pub failures: u64,
    /// Log syncs (fdatasync) since start.
    pub syncs: u64,
    /// States waiting to be written (kept in memory while the disk fails).
    pub pending: u64,
}

/// A device's availability over a window of time, from the history: the
/// state at the window's start (None: unknown) and each change after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strip {
    pub initial: Option<bool>,
    /// (epoch ms, online) in time order.
    pub changes: Vec<(u64, bool)>,
}

/// Everything a status request may show, copied out of the main loop.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Wall-clock epoch milliseconds of the snapshot.
    pub now_ms: u64,
    /// Epoch milliseconds of the daemon's start (as the wall clock reads
    /// now).
    pub start_ms: u64,
    pub uptime_s: u64,
    pub database: StoreFacts,
    pub broker: BrokerFacts,
    pub messages: u64,
    pub states_stored: u64,
    pub devices: Vec<DeviceStatus>,
    /// Recent events, newest first.
    pub events: Vec<Event>,
    /// Events recorded since start, by kind.
    pub event_counts: HashMap<EventKind, u64>,
    /// Per device name: its availability over the last 24 hours.
    pub strips: HashMap<String, Strip>,
    /// With `[failover]`: this instance's role, the leader, the peers.
    pub failover: Option<FailoverView>,
}

/// The name of a failover role, as shown and exported.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Deciding => "deciding",
        Role::Standby => "standby",
        Role::Claiming => "claiming",
        Role::Active => "active",
    }
}

/// `GET /instance`: this instance's part in a failover group.
pub fn instance_json(f: &Facts) -> String {
    let body = match &f.failover {
        None => json!({ "failover": false, "role": "active" }),
        Some(v) => json!({
            "failover": true,
            "id": v.id,
            "priority": v.priority,
            "role": role_name(v.role),
            "leader": v.leader,
            "peers": v.peers.iter().map(|(id, p)| json!({
                "id": id,
                "presence": p.presence,
                "priority": p.priority,
            })).collect::<Vec<_>>(),
            "takeovers": v.takeovers,
            "lastTakeover": v.last_takeover_ms.map(|ms| ms / 1000),
        }),
    };
    let mut body = body.to_string();
    body.push('\n');
    body
}

/// `GET /status`: `[{"name","kind","expired","lastContact","deadline","helloCount","pid"}]`,
/// plus `enabled` as served by the original 0.2.5+, and the verdict,
/// timeout and agent launches.
pub fn status_json(devices: &[DeviceStatus]) -> String {
    let list: Vec<serde_json::Value> = devices
        .iter()
        .map(|d| {
            let v = &d.view;
            json!({
                "name": v.name,
                "kind": if v.agent { "agent" } else { "device" },
                "enabled": true,
                "expired": d.expired(),
                "state": v.verdict.as_str(),
                "lastContact": v.last_contact_ms.map(|ms| ms / 1000),
                "deadline": v.deadline_ms / 1000,
                "timeout": v.timeout_s,
                "helloCount": v.hello_count,
                "pid": d.pid,
                "launches": v.agent.then_some(d.launches),
                "lastLaunch": v.last_launch_ms.map(|ms| ms / 1000),
            })
        })
        .collect();
    let mut body = serde_json::Value::Array(list).to_string();
    body.push('\n');
    body
}

/// `GET /events`: the events, newest first.
pub fn events_json(events: &[Event]) -> String {
    let list: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            json!({
                "time": e.at_ms / 1000,
                "timeMs": e.at_ms,
                "kind": e.kind.as_str(),
                "subject": e.subject,
                "detail": e.detail,
            })
        })
        .collect();
    let mut body = serde_json::Value::Array(list).to_string();
    body.push('\n');
    body
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text being written.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{name}{labels} {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }

    /// One sample per device for which `value` has one.
    fn per_device(
        &mut self,
        devices: &[DeviceStatus],
        name: &str,
        kind: &str,
        help: &str,
        value: impl Fn(&DeviceStatus) -> Option<String>,
    ) {
        self.family(name, kind, help);
        for d in devices {
            if let Some(v) = value(d) {
                let labels = device_labels(d);
                self.sample(name, &labels, v);
            }
        }
    }
}

fn device_labels(d: &DeviceStatus) -> String {
    let kind = if d.view.agent { "agent" } else { "device" };
    format!("{{name=\"{}\",kind=\"{kind}\"}}", label(&d.view.name))
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// The process's own figures, from /proc/self (Prometheus' `process_*`).
struct ProcessFacts {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    open_fds: u64,
    max_fds: Option<u64>,
}

fn process_facts() -> Option<ProcessFacts> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after "(comm)": state is field 3; utime 14, stime 15, vsize
    // 23, rss 24 (in pages).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok());
    Some(ProcessFacts {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        resident_bytes: field(24)? * rustix::param::page_size() as u64,
        virtual_bytes: field(23)?,
        open_fds,
        max_fds,
    })
}

/// `GET /metrics`: Prometheus text exposition format 0.0.4.
pub fn metrics(f: &Facts) -> String {
    let mut m = Exposition { out: String::new() };
    let d = &f.devices;
    m.family(
        "iotmonitor_build_info",
        "gauge",
        "Version and git commit of this iotmonitor",
    );
    m.sample(
        "iotmonitor_build_info",
        &format!(
            "{{version=\"{}\",commit=\"{}\"}}",
            env!("CARGO_PKG_VERSION"),
            env!("IOTMONITOR_GIT_COMMIT")
        ),
        1,
    );
    m.single(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds",
        seconds(f.start_ms),
    );
    if let Some(p) = process_facts() {
        m.single(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds",
            p.cpu_seconds,
        );
        m.single(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes",
            p.resident_bytes,
        );
        m.single(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes",
            p.virtual_bytes,
        );
        m.single(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors",
            p.open_fds,
        );
        if let Some(max) = p.max_fds {
            m.single(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors",
                max,
            );
        }
    }
    m.per_device(
        d,
        "iotmonitor_device_expired",
        "gauge",
        "1 when the device or agent missed its watch deadline",
        |d| Some(u8::from(d.expired()).to_string()),
    );
    m.family(
        "iotmonitor_device_state_seconds",
        "gauge",
        "Seconds the device or agent has been in its current state (online, expired, offline, unknown)",
    );
    for dev in d {
        let v = &dev.view;
        let labels = device_labels(dev);
        let labels = format!(
            "{},state=\"{}\"}}",
            labels.trim_end_matches('}'),
            v.verdict.as_str()
        );
        m.sample(
            "iotmonitor_device_state_seconds",
            &labels,
            seconds(f.now_ms.saturating_sub(v.verdict_since_ms)),
        );
    }
    m.per_device(
        d,
        "iotmonitor_device_expirations_total",
        "counter",
        "Times the device or agent expired since start",
        |d| Some(d.view.expirations.to_string()),
    );
    m.per_device(
        d,
        "iotmonitor_device_watch_timeout_seconds",
        "gauge",
        "The device's watchTimeOut",
        |d| Some(d.view.timeout_s.to_string()),
    );
    m.per_device(
        d,
        "iotmonitor_device_last_contact_timestamp_seconds",
        "gauge",
        "Epoch seconds of the last message on the device's watch topics",
        |d| d.view.last_contact_ms.map(seconds),
    );
    m.per_device(
        d,
        "iotmonitor_device_deadline_timestamp_seconds",
        "gauge",
        "Epoch seconds of the device's current watch deadline",
        |d| Some(seconds(d.view.deadline_ms)),
    );
    m.per_device(
        d,
        "iotmonitor_device_hellos_total",
        "counter",
        "Hello messages seen since start",
        |d| Some(d.view.hello_count.to_string()),
    );
    m.per_device(
        d,
        "iotmonitor_agent_launches_total",
        "counter",
        "Agent launches by this daemon (first launch included)",
        |d| d.view.agent.then(|| d.launches.to_string()),
    );
    m.per_device(
        d,
        "iotmonitor_agent_restarts_total",
        "counter",
        "Agent relaunches by this daemon (after a death or for an expiry; the first launch excluded)",
        |d| d.view.agent.then(|| d.relaunches.to_string()),
    );
    m.family(
        "iotmonitor_events_total",
        "counter",
        "Transitions recorded in the history since start, by kind",
    );
    for kind in EventKind::ALL {
        let n = f.event_counts.get(&kind).copied().unwrap_or(0);
        m.sample(
            "iotmonitor_events_total",
            &format!("{{kind=\"{}\"}}", kind.as_str()),
            n,
        );
    }
    m.single(
        "iotmonitor_messages_total",
        "counter",
        "MQTT messages received",
        f.messages,
    );
    m.single(
        "iotmonitor_states_stored_total",
        "counter",
        "State messages written to the database",
        f.states_stored,
    );
    m.single(
        "iotmonitor_broker_connected",
        "gauge",
        "1 when connected to the MQTT broker",
        u8::from(f.broker.connected),
    );
    m.single(
        "iotmonitor_broker_reconnects_total",
        "counter",
        "Connections to the broker after the first one",
        f.broker.reconnects,
    );
    m.single(
        "iotmonitor_subscriptions_refused",
        "gauge",
        "Subscriptions the broker refused (see /status and the log for the filters)",
        f.broker.refused.len(),
    );
    m.single(
        "iotmonitor_publishes_dropped_total",
        "counter",
        "Repeated publications (B/up, hello counts) dropped while the broker was slow",
        f.broker.dropped,
    );
    if let Some(v) = &f.failover {
        m.family(
            "iotmonitor_failover_role",
            "gauge",
            "1 for this instance's current failover role",
        );
        for role in [Role::Deciding, Role::Standby, Role::Claiming, Role::Active] {
            m.sample(
                "iotmonitor_failover_role",
                &format!("{{role=\"{}\"}}", role_name(role)),
                u8::from(v.role == role),
            );
        }
        m.family(
            "iotmonitor_failover_leader",
            "gauge",
            "1, labelled with the instance holding the lease",
        );
        if let Some(leader) = &v.leader {
            m.sample(
                "iotmonitor_failover_leader",
                &format!("{{leader=\"{}\"}}", label(leader)),
                1,
            );
        }
        m.single(
            "iotmonitor_failover_peers",
            "gauge",
            "Other instances announced standby or active",
            v.peers
                .iter()
                .filter(|(_, p)| matches!(p.presence.as_str(), "standby" | "active"))
                .count(),
        );
        m.single(
            "iotmonitor_failover_takeovers_total",
            "counter",
            "Times this instance became the active one",
            v.takeovers,
        );
        if let Some(t) = v.last_takeover_ms {
            m.single(
                "iotmonitor_failover_last_takeover_timestamp_seconds",
                "gauge",
                "Epoch seconds of this instance's last takeover",
                seconds(t),
            );
        }
    }
    m.single(
        "iotmonitor_store_healthy",
        "gauge",
        "1 when the last database commit succeeded",
        u8::from(f.database.healthy),
    );
    m.single(
        "iotmonitor_store_failures_total",
        "counter",
        "Failed database writes and syncs (states kept in memory and retried)",
        f.database.failures,
    );
    m.single(
        "iotmonitor_store_syncs_total",
        "counter",
        "Syncs of the database log to the disk (at most one a second while states are written)",
        f.database.syncs,
    );
    m.single(
        "iotmonitor_store_pending_writes",
        "gauge",
        "States waiting to be written to the database (kept in memory while the disk fails)",
        f.database.pending,
    );
    m.out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn dev(name: &str, agent: bool) -> DeviceStatus {
        DeviceStatus {
            view: DeviceView {
                name: name.into(),
                agent,
                verdict: if agent {
                    Verdict::Expired
                } else {
                    Verdict::Online
                },
                timeout_s: 60,
                last_contact_ms: (!agent).then_some(1_700_000_000_500),
                deadline_ms: 1_700_000_060_000,
                hello_count: 2,
                expirations: 1,
                verdict_since_ms: 1_700_000_000_000,
                last_launch_ms: agent.then_some(1_699_999_990_000),
            },
            pid: agent.then_some(42),
            launches: 3,
            relaunches: 2,
        }
    }

    #[test]
    fn status_lists_every_field() {
        let v: serde_json::Value =
            serde_json::from_str(&status_json(&[dev("esp", false), dev("led", true)])).unwrap();
        assert_eq!(v[0]["name"], "esp");
        assert_eq!(v[0]["kind"], "device");
        assert_eq!(v[0]["state"], "online");
        assert_eq!(v[0]["lastContact"], 1_700_000_000);
        assert_eq!(v[0]["pid"], serde_json::Value::Null);
        assert_eq!(v[1]["kind"], "agent");
        assert_eq!(v[1]["expired"], true);
        assert_eq!(v[1]["pid"], 42);
        assert_eq!(v[1]["helloCount"], 2);
        assert_eq!(v[1]["deadline"], 1_700_000_060);
        assert_eq!(v[1]["launches"], 3);
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let facts = Facts {
            now_ms: 1_700_000_100_000,
            start_ms: 1_700_000_000_000,
            messages: 10,
            states_stored: 4,
            broker: BrokerFacts {
                connected: true,
                ..Default::default()
            },
            devices: vec![dev("a\"b", false), dev("led", true)],
            event_counts: [(EventKind::Expired, 5)].into_iter().collect(),
            ..Default::default()
        };
        let m = metrics(&facts);
        assert!(
            m.contains("iotmonitor_device_expired{name=\"a\\\"b\",kind=\"device\"} 0\n"),
            "{m}"
        );
        assert!(m.contains("iotmonitor_agent_launches_total{name=\"led\",kind=\"agent\"} 3\n"));
        assert!(m.contains("iotmonitor_agent_restarts_total{name=\"led\",kind=\"agent\"} 2\n"));
        assert!(!m.contains("iotmonitor_agent_restarts_total{name=\"a"));
        assert!(m.contains("iotmonitor_broker_connected 1\n"));
        assert!(m.contains("iotmonitor_events_total{kind=\"expired\"} 5\n"));
        assert!(m.contains("iotmonitor_events_total{kind=\"back\"} 0\n"));
        assert!(m.contains(
            "iotmonitor_device_state_seconds{name=\"led\",kind=\"agent\",state=\"expired\"} 100.000\n"
        ));
        assert!(m.contains("iotmonitor_build_info{version=\""));
        assert!(m.contains("process_start_time_seconds 1700000000.000\n"));
        assert!(m.contains("process_resident_memory_bytes "));
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn events_are_listed_newest_first_as_given() {
        let events = [Event {
            at_ms: 1_700_000_000_123,
            kind: EventKind::Expired,
            subject: "esp".into(),
            detail: String::new(),
        }];
        let v: serde_json::Value = serde_json::from_str(&events_json(&events)).unwrap();
        assert_eq!(v[0]["kind"], "expired");
        assert_eq!(v[0]["subject"], "esp");
        assert_eq!(v[0]["time"], 1_700_000_000);
    }
}
