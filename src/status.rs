//! Renders the daemon's state for operators: the JSON status list and the
//! Prometheus metrics served by the HTTP endpoint.

use serde_json::json;

use crate::store::Health;

/// One device or agent, as seen by the main loop at the time of a request.
pub struct DeviceStatus {
    pub name: String,
    pub agent: bool,
    pub expired: bool,
    /// Epoch seconds of the last activity since start, if any.
    pub last_contact_s: Option<u64>,
    pub deadline_s: u64,
    pub hello_count: u64,
    pub pid: Option<i32>,
    pub restarts: u64,
}

pub struct Counters {
    pub messages: u64,
    pub states_stored: u64,
    pub connected: bool,
    pub uptime_s: u64,
    pub store: Health,
}

/// `GET /status`: `[{"name","kind","expired","lastContact","deadline","helloCount","pid"}]`,
/// plus `enabled` as served by the original 0.2.5+.
pub fn status_json(devices: &[DeviceStatus]) -> String {
    let list: Vec<serde_json::Value> = devices
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "kind": if d.agent { "agent" } else { "device" },
                "enabled": true,
                "expired": d.expired,
                "lastContact": d.last_contact_s,
                "deadline": d.deadline_s,
                "helloCount": d.hello_count,
                "pid": d.pid,
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

/// `GET /metrics`: Prometheus text exposition format 0.0.4.
pub fn metrics(devices: &[DeviceStatus], c: &Counters) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    let per_device = |f: &dyn Fn(&DeviceStatus) -> Option<String>| -> Vec<(String, String)> {
        devices
            .iter()
            .filter_map(|d| {
                f(d).map(|v| {
                    let kind = if d.agent { "agent" } else { "device" };
                    (
                        format!("{{name=\"{}\",kind=\"{kind}\"}}", label(&d.name)),
                        v,
                    )
                })
            })
            .collect()
    };
    family(
        "iotmonitor_device_expired",
        "gauge",
        "1 when the device or agent missed its watch deadline",
        per_device(&|d| Some(u8::from(d.expired).to_string())),
    );
    family(
        "iotmonitor_device_last_contact_timestamp_seconds",
        "gauge",
        "Epoch seconds of the last message on the device's watch topics",
        per_device(&|d| d.last_contact_s.map(|s| s.to_string())),
    );
    family(
        "iotmonitor_device_deadline_timestamp_seconds",
        "gauge",
        "Epoch seconds of the device's current watch deadline",
        per_device(&|d| Some(d.deadline_s.to_string())),
    );
    family(
        "iotmonitor_device_hellos_total",
        "counter",
        "Hello messages seen since start",
        per_device(&|d| Some(d.hello_count.to_string())),
    );
    family(
        "iotmonitor_agent_restarts_total",
        "counter",
        "Agent launches by this daemon",
        per_device(&|d| d.agent.then(|| d.restarts.to_string())),
    );
    let single = |v: String| vec![(String::new(), v)];
    family(
        "iotmonitor_messages_total",
        "counter",
        "MQTT messages received",
        single(c.messages.to_string()),
    );
    family(
        "iotmonitor_states_stored_total",
        "counter",
        "State messages written to the database",
        single(c.states_stored.to_string()),
    );
    family(
        "iotmonitor_broker_connected",
        "gauge",
        "1 when connected to the MQTT broker",
        single(u8::from(c.connected).to_string()),
    );
    family(
        "iotmonitor_uptime_seconds",
        "gauge",
        "Seconds since the daemon started",
        single(c.uptime_s.to_string()),
    );
    family(
        "iotmonitor_store_healthy",
        "gauge",
        "1 when the state database works (writes and log syncs)",
        single(u8::from(c.store.healthy).to_string()),
    );
    family(
        "iotmonitor_store_failures_total",
        "counter",
        "Failed database writes, write retries and log syncs",
        single(c.store.failures.to_string()),
    );
    family(
        "iotmonitor_store_syncs_total",
        "counter",
        "Database log syncs to disk (fdatasync)",
        single(c.store.syncs.to_string()),
    );
    family(
        "iotmonitor_store_pending_writes",
        "gauge",
        "Writes waiting in memory for the database",
        single(c.store.pending.to_string()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(name: &str, agent: bool) -> DeviceStatus {
        DeviceStatus {
            name: name.into(),
            agent,
            expired: agent,
            last_contact_s: (!agent).then_some(1_700_000_000),
            deadline_s: 1_700_000_060,
            hello_count: 2,
            pid: agent.then_some(42),
            restarts: 3,
        }
    }

    #[test]
    fn status_lists_every_field() {
        let v: serde_json::Value =
            serde_json::from_str(&status_json(&[dev("esp", false), dev("led", true)])).unwrap();
        assert_eq!(v[0]["name"], "esp");
        assert_eq!(v[0]["kind"], "device");
        assert_eq!(v[0]["lastContact"], 1_700_000_000);
        assert_eq!(v[0]["pid"], serde_json::Value::Null);
        assert_eq!(v[1]["kind"], "agent");
        assert_eq!(v[1]["expired"], true);
        assert_eq!(v[1]["pid"], 42);
        assert_eq!(v[1]["helloCount"], 2);
        assert_eq!(v[1]["deadline"], 1_700_000_060);
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let c = Counters {
            messages: 10,
            states_stored: 4,
            connected: true,
            uptime_s: 5,
            store: Health {
                healthy: false,
                problem: Some("disk full".into()),
                last_error: Some("disk full".into()),
                failures: 3,
                syncs: 7,
                pending: 12,
            },
        };
        let m = metrics(&[dev("a\"b", false), dev("led", true)], &c);
        assert!(
            m.contains("iotmonitor_device_expired{name=\"a\\\"b\",kind=\"device\"} 0\n"),
            "{m}"
        );
        assert!(m.contains("iotmonitor_agent_restarts_total{name=\"led\",kind=\"agent\"} 3\n"));
        assert!(!m.contains("iotmonitor_agent_restarts_total{name=\"a"));
        assert!(m.contains("iotmonitor_broker_connected 1\n"));
        assert!(m.contains("iotmonitor_store_healthy 0\n"));
        assert!(m.contains("iotmonitor_store_failures_total 3\n"));
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
