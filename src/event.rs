//! What happened, for operators: every transition the daemon sees (a
//! device expiring or coming back, an agent launched or dying, the broker
//! link lost or regained, a reload, a storage fault) becomes an [`Event`].
//! The monitor core and the daemon produce them; the history keeps them
//! (persisted, bounded) for `/events`, the status page and the metrics.

use serde::Serialize;

/// The kinds of transitions recorded in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A device or agent missed its watch deadline.
    Expired,
    /// An expired device or agent was heard again.
    Back,
    /// A device or agent was heard for the first time since start.
    FirstHeard,
    /// An agent was launched (first launch by this daemon).
    AgentLaunched,
    /// An agent was launched again after it died.
    AgentRelaunched,
    /// An agent was killed and relaunched because it expired.
    AgentRestarted,
    /// A running agent disappeared.
    AgentDied,
    BrokerLost,
    BrokerRegained,
    ConfigReloaded,
    /// The state store failed (details in `detail`).
    StoreError,
    /// The state store works again after a failure.
    StoreRecovered,
    /// This instance became the active one (failover).
    Takeover,
    /// This instance stopped being the active one (failover).
    Deposed,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::Expired,
        EventKind::Back,
        EventKind::FirstHeard,
        EventKind::AgentLaunched,
        EventKind::AgentRelaunched,
        EventKind::AgentRestarted,
        EventKind::AgentDied,
        EventKind::BrokerLost,
        EventKind::BrokerRegained,
        EventKind::ConfigReloaded,
        EventKind::StoreError,
        EventKind::StoreRecovered,
        EventKind::Takeover,
        EventKind::Deposed,
    ];

    /// The stable name used in JSON, metrics labels and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Expired => "expired",
            EventKind::Back => "back",
            EventKind::FirstHeard => "first_heard",
            EventKind::AgentLaunched => "agent_launched",
            EventKind::AgentRelaunched => "agent_relaunched",
            EventKind::AgentRestarted => "agent_restarted",
            EventKind::AgentDied => "agent_died",
            EventKind::BrokerLost => "broker_lost",
            EventKind::BrokerRegained => "broker_regained",
            EventKind::ConfigReloaded => "config_reloaded",
            EventKind::StoreError => "store_error",
            EventKind::StoreRecovered => "store_recovered",
            EventKind::Takeover => "takeover",
            EventKind::Deposed => "deposed",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the event says a device or agent went down (red) or up
    /// (green), for availability strips; None for other kinds.
    pub fn availability(self) -> Option<bool> {
        match self {
            EventKind::Expired => Some(false),
            EventKind::Back | EventKind::FirstHeard => Some(true),
            _ => None,
        }
    }
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Wall-clock epoch milliseconds when it happened.
    pub at_ms: u64,
    pub kind: EventKind,
    /// The device or agent name; empty for daemon-wide events.
    pub subject: String,
    /// Free text for people (e.g. the error of a store failure).
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }
}
