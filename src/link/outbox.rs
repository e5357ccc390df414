//! The outbox: publishes waiting for room in Paho's queue (see `Window`)
//! while the broker takes them slower than the daemon makes them.
//!
//! It holds at most one message per topic: a newer publish on a queued
//! topic takes the queued one's place (same position, latest payload).
//! Everything the daemon repeats is per topic (`B/up`, alerts, hello
//! counts, availability), so the outbox stays bounded by the number of
//! topics however long the broker is slow. A replaced repeat counts as
//! dropped; the others lose nothing: the broker gets the latest value.
//!
//! Alerts leave first: an expiry must not wait behind thousands of
//! hello counts or replays. (Retained facts — availability announcements,
//! QoS 1, which the broker acknowledges 20 at a time by default — wait in
//! an outbox of their own, see `Link::publish`.)
//!
//! Beyond `BUDGET` bytes, the oldest repeats (`B/up`,
//! `B/helloTopicCount/…`) are dropped and counted. Alerts, replayed states
//! and retained messages are never dropped: the daemon pauses what it can
//! pause (replays) while `has_room` is false.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

use foldhash::fast::RandomState;

use crate::monitor::Class;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub topic: Rc<str>,
    pub payload: Box<[u8]>,
    pub retained: bool,
    pub class: Class,
}

impl Pending {
    fn cost(&self) -> usize {
        // The entry, its index slot and their allocation overhead.
        2 * self.topic.len() + self.payload.len() + 80
    }
}

/// Bytes above which `has_room` says no: replays wait.
const HIGH_WATER: usize = 256 << 10;
/// Bytes above which the oldest repeats are dropped.
const BUDGET: usize = 1 << 20;

/// Slots left empty by removals in the middle of the queue beyond which it
/// is compacted (besides more empty slots than queued messages).
const MAX_HOLES: usize = 64;
/// Once empty, a queue that grew beyond this many slots gives its memory
/// back (a burst of 10,000 announcements must not keep 0.6 MB for ever).
const KEEP_SLOTS: usize = 1024;

#[derive(Default)]
pub(crate) struct Outbox {
    /// In order of first arrival; slot `i` holds sequence number
    /// `front_seq + i`, `None` once removed (the front slot is never
    /// empty). 40 bytes a message, where a `BTreeMap` by sequence number
    /// took about 80: a flood that makes 10,000 devices heard at once
    /// queues 10,000 availability announcements.
    queue: VecDeque<Option<Pending>>,
    front_seq: u64,
    queued: usize,
    by_topic: HashMap<Rc<str>, u64, RandomState>,
    /// Sequence numbers of the queued repeats ...
    repeats: BTreeSet<u64>,
    /// ... and alerts.
    alerts: BTreeSet<u64>,
    bytes: usize,
    dropped_repeats: u64,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    pub fn len(&self) -> usize {
        self.queued
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn has_room(&self) -> bool {
        self.bytes < HIGH_WATER
    }

    pub fn dropped_repeats(&self) -> u64 {
        self.dropped_repeats
    }

    pub fn push(&mut self, topic: &str, payload: &[u8], retained: bool, class: Class) {
        if let Some(&seq) = self.by_topic.get(topic) {
            let p = self.queue[(seq - self.front_seq) as usize]
                .as_mut()
                .expect("indexed entry queued");
            self.bytes -= p.cost();
            if p.class == Class::Repeat {
                self.dropped_repeats += 1;
                if class != Class::Repeat {
                    self.repeats.remove(&seq);
                }
            } else if class == Class::Repeat {
                self.repeats.insert(seq);
            }
            if class == Class::Alert {
                self.alerts.insert(seq);
            } else {
                self.alerts.remove(&seq);
            }
            if p.payload.len() == payload.len() {
                p.payload.copy_from_slice(payload);
            } else {
                p.payload = payload.into();
            }
            p.retained = retained;
            p.class = class;
            self.bytes += p.cost();
        } else {
            let seq = self.front_seq + self.queue.len() as u64;
            let p = Pending {
                topic: Rc::from(topic),
                payload: payload.into(),
                retained,
                class,
            };
            self.bytes += p.cost();
            self.by_topic.insert(p.topic.clone(), seq);
            if class == Class::Repeat {
                self.repeats.insert(seq);
            }
            if class == Class::Alert {
                self.alerts.insert(seq);
            }
            self.queue.push_back(Some(p));
            self.queued += 1;
        }
        while self.bytes > BUDGET {
            let Some(seq) = self.repeats.pop_first() else {
                break;
            };
            self.remove(seq);
            self.dropped_repeats += 1;
        }
    }

    fn remove(&mut self, seq: u64) -> Option<Pending> {
        let p = self.queue[(seq - self.front_seq) as usize].take()?;
        self.queued -= 1;
        self.by_topic.remove(&p.topic);
        self.repeats.remove(&seq);
        self.alerts.remove(&seq);
        self.bytes -= p.cost();
        while self.queue.front().is_some_and(Option::is_none) {
            self.queue.pop_front();
            self.front_seq += 1;
        }
        if self.queued == 0 && self.queue.capacity() > KEEP_SLOTS {
            self.queue = VecDeque::new();
            self.by_topic = HashMap::default();
        }
        let holes = self.queue.len() - self.queued;
        if holes > MAX_HOLES.max(self.queued) {
            self.compact();
        }
        Some(p)
    }

    /// Renumbers the queued messages without the empty slots between them
    /// (same order, so alerts and repeats keep theirs).
    fn compact(&mut self) {
        self.queue.retain(Option::is_some);
        self.repeats.clear();
        self.alerts.clear();
        for (i, p) in self.queue.iter().flatten().enumerate() {
            let seq = self.front_seq + i as u64;
            *self
                .by_topic
                .get_mut(&p.topic)
                .expect("queued entry indexed") = seq;
            match p.class {
                Class::Repeat => {
                    self.repeats.insert(seq);
                }
                Class::Alert => {
                    self.alerts.insert(seq);
                }
                Class::Replay | Class::Retained => {}
            }
        }
    }

    /// The oldest alert, else the oldest message.
    pub fn pop(&mut self) -> Option<Pending> {
        let seq = match self.alerts.first() {
            Some(&seq) => seq,
            None if self.queued > 0 => self.front_seq,
            None => return None,
        };
        self.remove(seq)
    }

    /// Drops every repeat (the connection is gone: they are stale by the
    /// time it is back).
    pub fn drop_repeats(&mut self) {
        while let Some(seq) = self.repeats.pop_first() {
            self.remove(seq);
            self.dropped_repeats += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(o: &mut Outbox) -> Vec<(String, String)> {
        std::iter::from_fn(|| o.pop())
            .map(|p| {
                let payload = String::from_utf8(p.payload.into_vec()).unwrap();
                (p.topic.to_string(), payload)
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn one_message_per_topic_at_its_first_place_with_the_latest_payload() {
        let mut o = Outbox::default();
        o.push("b/up", b"1", false, Class::Repeat);
        o.push("b/expired/x", b"100", false, Class::Alert);
        o.push("b/availability/x", b"offline", true, Class::Retained);
        o.push("b/up", b"2", false, Class::Repeat);
        o.push("b/availability/x", b"online", true, Class::Retained);
        o.push("dev/st", b"on", false, Class::Replay);
        assert_eq!(o.len(), 4);
        assert_eq!(o.dropped_repeats(), 1, "b/up 1 replaced by 2");
        assert_eq!(
            drain(&mut o),
            pairs(&[
                ("b/expired/x", "100"),
                ("b/up", "2"),
                ("b/availability/x", "online"),
                ("dev/st", "on"),
            ])
        );
        assert_eq!(o.bytes(), 0);
        assert!(o.is_empty());
    }

    #[test]
    fn over_budget_the_oldest_repeats_go_and_nothing_else() {
        let mut o = Outbox::default();
        let big = vec![b'x'; 1000];
        // Alerts and replays well past the budget: all kept.
        for i in 0..2000 {
            o.push(&format!("b/expired/{i}"), &big, false, Class::Alert);
            o.push(
                &format!("b/helloTopicCount/{i}"),
                b"1",
                false,
                Class::Repeat,
            );
        }
        o.push("dev/st", &big, false, Class::Replay);
        assert!(o.bytes() > BUDGET, "only repeats may be dropped");
        assert!(!o.has_room());
        let kept: Vec<(String, String)> = drain(&mut o);
        assert_eq!(
            kept.iter()
                .filter(|(t, _)| t.starts_with("b/expired/"))
                .count(),
            2000
        );
        assert!(kept.iter().any(|(t, _)| t == "dev/st"));
        assert!(
            !kept
                .iter()
                .any(|(t, _)| t.starts_with("b/helloTopicCount/")),
            "repeats dropped while over budget"
        );
        assert_eq!(o.dropped_repeats(), 2000);
    }

    #[test]
    fn oldest_repeats_are_dropped_first() {
        let mut o = Outbox::default();
        let n = BUDGET / 200;
        for i in 0..n {
            o.push(
                &format!("b/helloTopicCount/{i}"),
                &[b'1'; 80],
                false,
                Class::Repeat,
            );
        }
        let dropped = o.dropped_repeats() as usize;
        assert!(dropped > 0, "budget never reached");
        let first = o.pop().unwrap();
        assert_eq!(&*first.topic, format!("b/helloTopicCount/{dropped}"));
        o.push("b/helloTopicCount/0", b"2", false, Class::Repeat);
        assert_eq!(
            o.by_topic.len(),
            o.len(),
            "index and queue agree after drops"
        );
    }

    #[test]
    fn slots_emptied_while_stalled_are_reclaimed_in_order() {
        let mut o = Outbox::default();
        o.push("b/availability/first", b"online", true, Class::Retained);
        // The broker is stalled: every second a round of hello counts over
        // budget (the oldest dropped, a slot emptied behind the first
        // message each time) and an alert.
        let big = [b'7'; 300];
        for round in 0..20 {
            for i in 0..4000 {
                o.push(
                    &format!("b/helloTopicCount/{i}"),
                    &big,
                    false,
                    Class::Repeat,
                );
            }
            o.push(&format!("b/expired/{round}"), b"1", false, Class::Alert);
            assert!(
                o.queue.len() <= 2 * o.len() + MAX_HOLES + 1,
                "{} slots for {} messages",
                o.queue.len(),
                o.len()
            );
            for (i, p) in o.queue.iter().enumerate() {
                if let Some(p) = p {
                    assert_eq!(o.by_topic[&p.topic], o.front_seq + i as u64);
                }
            }
        }
        assert!(o.dropped_repeats() > 0);
        let popped = drain(&mut o);
        let alerts: Vec<String> = (0..20).map(|r| format!("b/expired/{r}")).collect();
        let first: Vec<String> = popped[..20].iter().map(|(t, _)| t.clone()).collect();
        assert_eq!(first, alerts, "alerts first, in order");
        assert_eq!(popped[20].0, "b/availability/first");
        let repeats: std::collections::HashSet<&str> =
            popped[21..].iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(repeats.len(), popped.len() - 21, "one message per topic");
        assert!(o.queue.is_empty() && o.by_topic.is_empty() && o.bytes() == 0);
        assert!(o.queue.capacity() <= KEEP_SLOTS, "memory given back");
        assert!(o.by_topic.capacity() <= KEEP_SLOTS);
    }

    #[test]
    fn a_lost_connection_drops_the_repeats_only() {
        let mut o = Outbox::default();
        o.push("b/up", b"1", false, Class::Repeat);
        o.push("b/startedprocess/a", b"1", false, Class::Alert);
        o.push("b/helloTopicCount/d", b"3", false, Class::Repeat);
        o.drop_repeats();
        assert_eq!(o.dropped_repeats(), 2);
        assert_eq!(drain(&mut o), pairs(&[("b/startedprocess/a", "1")]));
    }
}
