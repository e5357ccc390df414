//! The topic layout under the base topic `B` (SPEC §4), in one place: what
//! the daemon publishes, and how it recognises its own topics coming back.

/// Topics under one base topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

/// One of the daemon's own topics (`B/…`), as far as an instance needs to
/// tell them apart: messages on them never count as device activity and
/// are never stored as states; with failover, a standby follows the
/// leader's `B/up` and availability, and every instance the lease and the
/// presences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own<'a> {
    Up,
    /// `B/availability/<name>`.
    Availability(&'a str),
    /// `B/leader`.
    Leader,
    /// `B/instances/<rest>`.
    Instance(&'a str),
    /// Anything else of the daemon's (`B/status`, `B/expired/…`, …).
    Other,
}

/// Sub-topics of `B/` that belong to the daemon besides those of [`Own`].
const OTHER_PREFIXES: [&str; 4] = [
    "expired/",
    "helloTopicCount/",
    "startedprocess/",
    "lastseen/",
];

impl Topics {
    pub fn new(base: &str) -> Topics {
        Topics {
            base: base.to_string(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `B/up`: seconds since start, every second.
    pub fn up(&self) -> String {
        format!("{}/up", self.base)
    }

    /// `B/status`: retained `online` (birth), `offline` (last will).
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// `B/expired/<name>`: the missed deadline, every second while expired.
    pub fn expired(&self, name: &str) -> String {
        format!("{}/expired/{name}", self.base)
    }

    /// `B/helloTopicCount/<name>`: hellos seen since start, every second.
    pub fn hello_count(&self, name: &str) -> String {
        format!("{}/helloTopicCount/{name}", self.base)
    }

    /// `B/startedprocess/<name>`: epoch seconds of each agent launch.
    pub fn started(&self, name: &str) -> String {
        format!("{}/startedprocess/{name}", self.base)
    }

    /// `B/availability/<name>`: retained `online`/`offline`.
    pub fn availability(&self, name: &str) -> String {
        format!("{}/availability/{name}", self.base)
    }

    /// `B/lastseen/<name>`: retained RFC 3339 time of the last activity
    /// (with Home Assistant discovery, for its timestamp sensor).
    pub fn last_seen(&self, name: &str) -> String {
        format!("{}/lastseen/{name}", self.base)
    }

    /// `B/leader`: the failover lease, retained, naming the active instance.
    pub fn leader(&self) -> String {
        format!("{}/leader", self.base)
    }

    /// `B/instances/<id>`: an instance's presence (`standby`, `active`,
    /// `offline`), retained.
    pub fn instance(&self, id: &str) -> String {
        format!("{}/instances/{id}", self.base)
    }

    /// `B/instances/<id>/priority`, retained.
    pub fn instance_priority(&self, id: &str) -> String {
        format!("{}/instances/{id}/priority", self.base)
    }

    /// Which of the daemon's own topics `topic` is, if it is one.
    pub fn own<'t>(&self, topic: &'t str) -> Option<Own<'t>> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        Some(match rest {
            "up" => Own::Up,
            "leader" => Own::Leader,
            "status" => Own::Other,
            _ => {
                if let Some(name) = rest.strip_prefix("availability/") {
                    Own::Availability(name)
                } else if let Some(id) = rest.strip_prefix("instances/") {
                    Own::Instance(id)
                } else if OTHER_PREFIXES.iter().any(|p| rest.starts_with(p)) {
                    Own::Other
                } else {
                    return None;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_own_topics() {
        let t = Topics::new("home/monitoring");
        assert_eq!(t.up(), "home/monitoring/up");
        assert_eq!(t.expired("esp"), "home/monitoring/expired/esp");
        assert_eq!(t.hello_count("esp"), "home/monitoring/helloTopicCount/esp");
        assert_eq!(t.started("led"), "home/monitoring/startedprocess/led");
        assert_eq!(t.availability("esp"), "home/monitoring/availability/esp");
        for own in [
            t.up(),
            t.status(),
            t.expired("x"),
            t.hello_count("x"),
            t.started("x"),
            t.availability("x"),
            t.last_seen("x"),
            t.leader(),
            t.instance("a"),
            t.instance_priority("a"),
        ] {
            assert!(t.own(&own).is_some(), "{own}");
        }
        assert_eq!(t.own("home/monitoring/up"), Some(Own::Up));
        assert_eq!(
            t.own("home/monitoring/availability/esp"),
            Some(Own::Availability("esp"))
        );
        assert_eq!(t.own("home/monitoring/leader"), Some(Own::Leader));
        assert_eq!(
            t.own("home/monitoring/instances/a/priority"),
            Some(Own::Instance("a/priority"))
        );
        for other in [
            "home/monitoring",
            "home/monitoringX/up",
            "home/monitoring/upx",
            "home/monitoring/sensors/t",
            "home/up",
        ] {
            assert!(t.own(other).is_none(), "{other}");
        }
    }
}
