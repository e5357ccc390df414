//! The summary `--check` prints: one line per section, then the devices
//! and agents. Passwords are never part of it.

use std::fmt::Write;

use super::Config;
use crate::filter::Filter;

impl Config {
    /// What this configuration does, section by section.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let m = &self.mqtt;
        let broker = match self.broker_listen {
            Some(_) => "the embedded broker (see [broker])".to_string(),
            None => m.server_address.clone(),
        };
        let credentials = match (&m.user, &m.password) {
            (Some(u), Some(_)) => format!("user '{u}' with a password"),
            (Some(u), None) => format!("user '{u}' without password"),
            (None, _) => "anonymous".to_string(),
        };
        let retain = if m.retain_states {
            "retained"
        } else {
            "not retained"
        };
        let _ = writeln!(
            out,
            "[mqtt] broker {broker} as client id '{}', {credentials}, base topic {}, states replayed {retain}, keepAlive {} s",
            m.client_id, m.base_topic, m.keep_alive
        );
        if let Some(tls) = self.tls_line() {
            let _ = writeln!(out, "[mqtt] TLS: {tls}");
        }
        let _ = match self.http_bind {
            Some(addr) => writeln!(out, "[http] status page on http://{addr}/"),
            None => writeln!(out, "[http] off (no status page)"),
        };
        let _ = match &self.homeassistant {
            Some(ha) => writeln!(
                out,
                "[homeassistant] discovery on, under {}/binary_sensor/",
                ha.prefix
            ),
            None => writeln!(out, "[homeassistant] discovery off"),
        };
        let _ = match self.broker_listen {
            Some(addr) => writeln!(out, "[broker] embedded broker, devices connect to {addr}"),
            None => writeln!(out, "[broker] off (external broker)"),
        };
        let _ = match &self.failover {
            Some(f) => writeln!(out, "[failover] on, priority {}", f.priority),
            None => writeln!(out, "[failover] off (single instance)"),
        };
        let agents = self.devices.iter().filter(|d| d.is_agent()).count();
        let _ = writeln!(
            out,
            "{} devices, {agents} of them agents",
            self.devices.len()
        );
        let list = |fs: &[Filter]| fs.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
        for d in &self.devices {
            let _ = write!(
                out,
                "  {} {}: timeout {} s, watch [{}], state [{}], hello {}",
                if d.is_agent() { "agent " } else { "device" },
                d.name,
                d.watch_timeout,
                list(&d.watch_topics),
                list(&d.state_topics),
                d.hello_topic.as_deref().unwrap_or("-"),
            );
            if let Some(exec) = &d.exec {
                let _ = write!(out, ", exec {exec:?}");
            }
            if d.restart_on_expire {
                let _ = write!(out, ", restarted when expired");
            }
            out.push('\n');
        }
        out
    }

    /// The TLS files in use, when the broker URL asks for TLS or a file is
    /// configured.
    fn tls_line(&self) -> Option<String> {
        let m = &self.mqtt;
        let tls = &m.tls;
        if !m.uses_tls()
            && tls.ca_file.is_none()
            && tls.cert_file.is_none()
            && tls.key_file.is_none()
        {
            return None;
        }
        let mut line = match &tls.ca_file {
            Some(ca) => format!("server checked against CA file {}", ca.display()),
            None => "server checked against the system's trust store".to_string(),
        };
        if let Some(cert) = &tls.cert_file {
            let _ = write!(line, ", client certificate {}", cert.display());
        }
        if let Some(key) = &tls.key_file {
            let _ = write!(line, ", key file {}", key.display());
            if tls.key_password.is_some() {
                line.push_str(" with a password");
            }
        }
        if self.broker_listen.is_some() {
            line.push_str(" (unused: the daemon talks to the embedded broker)");
        } else if !m.uses_tls() {
            line.push_str(" (unused: serverAddress is not ssl:// or mqtts://)");
        }
        Some(line)
    }
}
