//! Watch deadlines (SPEC §4): each device must show activity on one of its
//! watch filters before its deadline, else it is expired until it does.
//!
//! Times are monotonic milliseconds ([`crate::clock::Now::mono_ms`]) passed
//! in by the caller, so a wall-clock step neither causes nor suppresses an
//! alert, and the logic is tested with an injected clock. Deadlines are
//! rounded up to a whole second of that clock (which falls on a whole epoch
//! second): the alert never comes before `last contact + watchTimeOut`, and
//! the tick just after each second sees it at once.

use crate::clock::MaybeMs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    timeout_s: u64,
    /// Monotonic milliseconds of the last activity, if any since start.
    last_contact: MaybeMs,
    /// Monotonic milliseconds, a whole second.
    deadline: u64,
}

fn deadline_after(ms: u64, timeout_s: u64) -> u64 {
    (ms + timeout_s * 1000).div_ceil(1000) * 1000
}

impl Watch {
    /// A new watch: the first deadline is start time + timeout.
    pub fn new(timeout_s: u64, now: u64) -> Watch {
        Watch {
            timeout_s,
            last_contact: MaybeMs::NEVER,
            deadline: deadline_after(now, timeout_s),
        }
    }

    /// Activity seen: the deadline moves to now + timeout.
    pub fn contact(&mut self, now: u64) {
        self.last_contact = MaybeMs::at(now);
        self.deadline = deadline_after(now, self.timeout_s);
    }

    /// A changed timeout (configuration reload) applies from the last
    /// contact, or from `since` (the start) when there was none.
    pub fn set_timeout(&mut self, timeout_s: u64, since: u64) {
        self.timeout_s = timeout_s;
        self.deadline = deadline_after(self.last_contact.get().unwrap_or(since), timeout_s);
    }

    pub fn timeout_s(&self) -> u64 {
        self.timeout_s
    }

    pub fn deadline(&self) -> u64 {
        self.deadline
    }

    pub fn last_contact(&self) -> Option<u64> {
        self.last_contact.get()
    }

    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 7_000;

    #[test]
    fn first_deadline_is_start_plus_timeout() {
        let w = Watch::new(60, T0);
        assert_eq!(w.deadline(), T0 + 60_000);
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
        assert_eq!(w.deadline(), T0 + 19_000);
        w.contact(T0 + 30_000);
        assert!(!w.is_expired(T0 + 30_001));
    }

    #[test]
    fn deadline_rounds_up_so_alerts_are_never_early() {
        let w = Watch::new(5, T0 + 300);
        assert_eq!(w.deadline(), T0 + 6_000);
        assert!(!w.is_expired(T0 + 5_300));
        assert!(w.is_expired(T0 + 6_000));
    }

    #[test]
    fn changed_timeout_counts_from_last_contact() {
        let mut w = Watch::new(100, T0);
        w.set_timeout(10, T0);
        assert_eq!(w.deadline(), T0 + 10_000);
        w.contact(T0 + 50_000);
        w.set_timeout(20, T0);
        assert_eq!(w.deadline(), T0 + 70_000);
        assert_eq!(w.timeout_s(), 20);
    }
}
