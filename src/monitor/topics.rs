//! The topic layout under the base topic `B` (SPEC §4), in one place: what
//! the daemon publishes, and how it recognises its own topics coming back.

/// Topics under one base topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

/// Sub-topics of `B/` that belong to the daemon: messages on them never
/// count as device activity and are never stored as states.
const OWN_PREFIXES: [&str; 5] = [
    "expired/",
    "helloTopicCount/",
    "startedprocess/",
    "availability/",
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

    /// Is `topic` one of the daemon's own (`B/up`, `B/status`, `B/expired/…`,
    /// …)?
    pub fn is_own(&self, topic: &str) -> bool {
        let Some(rest) = topic
            .strip_prefix(self.base.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return false;
        };
        matches!(rest, "up" | "status") || OWN_PREFIXES.iter().any(|p| rest.starts_with(p))
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
        ] {
            assert!(t.is_own(&own), "{own}");
        }
        for other in [
            "home/monitoring",
            "home/monitoringX/up",
            "home/monitoring/upx",
            "home/monitoring/sensors/t",
            "home/up",
        ] {
            assert!(!t.is_own(other), "{other}");
        }
    }
}
