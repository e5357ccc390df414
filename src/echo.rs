//! The echo guard, for brokers without MQTT 5 "no local": remembers what
//! the daemon published (outside its own base topic) so that the copy the
//! broker sends back is recognised and dropped instead of counting as
//! device activity or being stored again. Entries the broker never echoes
//! (topics nobody subscribed to) expire.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct EchoGuard {
    pending: HashMap<String, VecDeque<(u64, Instant)>>,
}

fn digest(payload: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

impl EchoGuard {
    /// Notes a publish whose echo is to be dropped.
    pub fn published(&mut self, topic: &str, payload: &[u8], now: Instant) {
        self.pending
            .entry(topic.to_string())
            .or_default()
            .push_back((digest(payload), now));
    }

    /// Is this incoming message the echo of a publish? (Consumes it.)
    pub fn is_echo(&mut self, topic: &str, payload: &[u8]) -> bool {
        let Some(queue) = self.pending.get_mut(topic) else {
            return false;
        };
        let d = digest(payload);
        let Some(at) = queue.iter().position(|(p, _)| *p == d) else {
            return false;
        };
        queue.remove(at);
        if queue.is_empty() {
            self.pending.remove(topic);
        }
        true
    }

    /// Forgets publishes not echoed within the time to live.
    pub fn expire(&mut self, now: Instant) {
        self.pending.retain(|_, q| {
            q.retain(|(_, at)| now.duration_since(*at) < TTL);
            !q.is_empty()
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_each_echo_once_and_expires() {
        let t0 = Instant::now();
        let mut g = EchoGuard::default();
        g.published("a/b", b"1", t0);
        g.published("a/b", b"1", t0);
        g.published("a/c", b"x", t0);
        assert!(!g.is_echo("a/b", b"2"), "another payload is real traffic");
        assert!(g.is_echo("a/b", b"1"));
        assert!(g.is_echo("a/b", b"1"));
        assert!(!g.is_echo("a/b", b"1"), "only as many echoes as publishes");
        assert_eq!(g.len(), 1);
        g.expire(t0 + Duration::from_secs(11));
        assert_eq!(g.len(), 0);
        assert!(!g.is_echo("a/c", b"x"));
    }
}
