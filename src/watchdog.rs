//! Watch deadlines (SPEC §4): each device must show activity on one of its
//! watch filters before its deadline, else it is expired until it does.
//!
//! Times are wall-clock milliseconds since the epoch, passed in by the
//! caller (the main loop reads the clock once per event), so the logic is
//! tested with an injected clock. Deadlines are whole epoch seconds, rounded
//! up: the alert never comes before `last contact + watchTimeOut`, and the
//! payload of `B/expired/<name>` is that deadline.

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    timeout_s: u64,
    /// Epoch milliseconds of the last activity, if any since start.
    last_contact_ms: Option<u64>,
    /// Epoch seconds.
    deadline_s: u64,
}

fn deadline_after(ms: u64, timeout_s: u64) -> u64 {
    (ms + timeout_s * 1000).div_ceil(1000)
}

impl Watch {
    /// A new watch: the first deadline is start time + timeout.
    pub fn new(timeout_s: u64, now_ms: u64) -> Watch {
        Watch {
            timeout_s,
            last_contact_ms: None,
            deadline_s: deadline_after(now_ms, timeout_s),
        }
    }

    /// Activity seen: the deadline moves to now + timeout.
    pub fn contact(&mut self, now_ms: u64) {
        self.last_contact_ms = Some(now_ms);
        self.deadline_s = deadline_after(now_ms, self.timeout_s);
    }

    /// A changed timeout (configuration reload) applies from the last
    /// contact, or from `since_ms` (the start) when there was none.
    pub fn set_timeout(&mut self, timeout_s: u64, since_ms: u64) {
        self.timeout_s = timeout_s;
        self.deadline_s = deadline_after(self.last_contact_ms.unwrap_or(since_ms), timeout_s);
    }

    pub fn timeout_s(&self) -> u64 {
        self.timeout_s
    }

    pub fn deadline_s(&self) -> u64 {
        self.deadline_s
    }

    pub fn last_contact_ms(&self) -> Option<u64> {
        self.last_contact_ms
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.deadline_s * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn first_deadline_is_start_plus_timeout() {
        let w = Watch::new(60, T0);
        assert_eq!(w.deadline_s(), T0 / 1000 + 60);
        assert!(!w.is_expired(T0 + 59_999));
        assert!(w.is_expired(T0 + 60_000));
    }

    #[test]
    fn contact_moves_the_deadline() {
        let mut w = Watch::new(10, T0);
        w.contact(T0 + 9_000);
        assert!(!w.is_expired(T0 + 10_000));
        assert!(!w.is_expired(T0 + 18_999));
        assert!(w.is_expired(T0 + 19_000));
        assert_eq!(w.deadline_s(), T0 / 1000 + 19);
        w.contact(T0 + 30_000);
        assert!(!w.is_expired(T0 + 30_001));
    }

    #[test]
    fn deadline_rounds_up_so_alerts_are_never_early() {
        let w = Watch::new(5, T0 + 300);
        assert_eq!(w.deadline_s(), T0 / 1000 + 6);
        assert!(!w.is_expired(T0 + 5_300));
        assert!(w.is_expired(T0 + 6_000));
    }

    #[test]
    fn changed_timeout_counts_from_last_contact() {
        let mut w = Watch::new(100, T0);
        w.set_timeout(10, T0);
        assert_eq!(w.deadline_s(), T0 / 1000 + 10);
        w.contact(T0 + 50_000);
        w.set_timeout(20, T0);
        assert_eq!(w.deadline_s(), T0 / 1000 + 70);
        assert_eq!(w.timeout_s(), 20);
    }
}
