//! The event history (`GET /events`, availability strips, event metrics):
//! every [`Event`] recorded, newest last, kept in memory for queries and
//! persisted in the daemon's own database, bounded to the last
//! [`MAX_EVENTS`] events or [`MAX_AGE_MS`], whichever is smaller.
//!
//! On disk an event is one key `0xFF 'h' <sequence number, u64 big-endian>`:
//! an MQTT topic is valid UTF-8, which never holds the byte 0xFF, so these
//! keys can never be states, and they sort after every state. Values are
//! `1 <at_ms u64 BE> <kind length u8> <kind> <subject length u32 BE>
//! <subject> <detail>`, the kind by its stable name. Old events are deleted
//! a few keys at a time ([`History::push`], [`History::prune`]), never by a
//! scan.
//!
//! The history itself does no I/O: the store owns it and hands it a sink
//! for its writes, which go into the store's pending batch (an empty value
//! deletes), so events are committed and synced with the states.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::rc::Rc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::event::{Event, EventKind};

/// At most this many events are kept ...
pub const MAX_EVENTS: usize = 10_000;
/// ... and none older than this (30 days).
pub const MAX_AGE_MS: u64 = 30 * 24 * 3600 * 1000;
/// The key prefix of events in the database.
pub const KEY_PREFIX: [u8; 2] = [0xFF, b'h'];
/// Keys of old events deleted along with each new event, so that a backlog
/// (events beyond the bounds at start-up) shrinks while events arrive.
const DELETES_PER_PUSH: usize = 2;
const FORMAT: u8 = 1;

/// The events of one device or agent around a time, for an availability
/// strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The last event before the start that tells availability (`Expired`,
    /// `Back`, `FirstHeard`): the state at the start of the strip.
    pub before: Option<Event>,
    /// Every event of the subject from the start on, oldest first.
    pub events: Vec<Event>,
}

/// An event as kept in memory: 56 bytes instead of the 72 of a sequence
/// number and an [`Event`], the subject's name shared by its events (one
/// allocation per subject, not one per event), no
/// allocation for the detail most events do not have, and the subject's
/// events linked from newest to oldest through `back` (no list per
/// subject). A restart of a daemon with 10,000 devices records 10,000 of
/// them at once.
struct Kept {
    seq: u64,
    at_ms: u64,
    subject: Rc<str>,
    detail: Option<Box<str>>,
    /// `seq` minus the sequence number of the subject's previous event; 0:
    /// none (or one more than 4 billion events back, no longer kept).
    back: u32,
    kind: EventKind,
}

impl Kept {
    fn event(&self) -> Event {
        Event {
            at_ms: self.at_ms,
            kind: self.kind,
            subject: self.subject.to_string(),
            detail: self.detail.as_deref().unwrap_or_default().to_string(),
        }
    }
}

pub struct History {
    /// Oldest first; sequence numbers grow (gaps are possible: events lost
    /// in a crash, or unreadable ones). Grown to at most `MAX_EVENTS` + 1
    /// (not to the next power of two: 16,384).
    events: VecDeque<Kept>,
    /// The sequence number of each subject's newest event (the older ones
    /// are linked from it, see `Kept::back`), hashed by the subject's name
    /// as that event holds it: 8 bytes a subject (a map keyed by the name
    /// took 24, some 260 KB more for 10,000 devices).
    by_subject: HashTable<u64>,
    hasher: RandomState,
    next_seq: u64,
    /// Keys from here to the oldest kept event are on disk and to delete.
    disk_first: u64,
    /// Events recorded since start, by `EventKind as usize`.
    counts: [u64; EventKind::ALL.len()],
    /// `Expired` events since start, per subject.
    expirations: HashMap<String, u64>,
}

/// The database key of event number `seq`.
pub fn key(seq: u64) -> Vec<u8> {
    let mut k = KEY_PREFIX.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The sequence number of an event key.
pub fn seq_of(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(&KEY_PREFIX[..])?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

pub fn encode(e: &Event) -> Vec<u8> {
    let kind = e.kind.as_str().as_bytes();
    let mut v = Vec::with_capacity(14 + kind.len() + e.subject.len() + e.detail.len());
    v.push(FORMAT);
    v.extend_from_slice(&e.at_ms.to_be_bytes());
    v.push(kind.len() as u8);
    v.extend_from_slice(kind);
    v.extend_from_slice(&(e.subject.len() as u32).to_be_bytes());
    v.extend_from_slice(e.subject.as_bytes());
    v.extend_from_slice(e.detail.as_bytes());
    v
}

pub fn decode(v: &[u8]) -> Option<Event> {
    fn take<'a>(v: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (v.get(..n)?, v.get(n..)?);
        *v = rest;
        Some(head)
    }
    let mut v = v;
    if take(&mut v, 1)? != [FORMAT] {
        return None;
    }
    let at_ms = u64::from_be_bytes(take(&mut v, 8)?.try_into().ok()?);
    let kind_len = take(&mut v, 1)?[0] as usize;
    let kind = EventKind::parse(std::str::from_utf8(take(&mut v, kind_len)?).ok()?)?;
    let subject_len = u32::from_be_bytes(take(&mut v, 4)?.try_into().ok()?) as usize;
    let subject = String::from_utf8(take(&mut v, subject_len)?.to_vec()).ok()?;
    let detail = String::from_utf8(v.to_vec()).ok()?;
    Some(Event {
        at_ms,
        kind,
        subject,
        detail,
    })
}

impl History {
    /// The history as stored: `entries` are (key, value) pairs of the event
    /// key range in key order. Events beyond the bounds at `now_ms` are not
    /// kept; their keys are deleted later, a few at a time.
    pub fn load(entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>, now_ms: u64) -> History {
        let mut h = History::empty();
        let mut first_on_disk = None;
        for (k, v) in entries {
            let Some(seq) = seq_of(&k) else { continue };
            first_on_disk.get_or_insert(seq);
            h.next_seq = h.next_seq.max(seq + 1);
            if let Some(e) = decode(&v) {
                if e.at_ms.saturating_add(MAX_AGE_MS) > now_ms {
                    h.insert(seq, e);
                }
            }
        }
        while h.events.len() > MAX_EVENTS {
            h.pop_front();
        }
        h.disk_first = first_on_disk.unwrap_or(h.next_seq);
        h
    }

    fn empty() -> History {
        History {
            events: VecDeque::new(),
            by_subject: HashTable::new(),
            hasher: RandomState::default(),
            next_seq: 0,
            disk_first: 0,
            counts: [0; EventKind::ALL.len()],
            expirations: HashMap::new(),
        }
    }

    fn insert(&mut self, seq: u64, e: Event) {
        let hash = self.hasher.hash_one(e.subject.as_str());
        let (events, hasher) = (&self.events, &self.hasher);
        let (subject, back) = match self
            .by_subject
            .find_mut(hash, |&s| of_subject(events, s, &e.subject))
        {
            Some(newest) => {
                let last = std::mem::replace(newest, seq);
                (
                    kept(events, last)
                        .expect("a subject's newest event is kept")
                        .subject
                        .clone(),
                    seq.checked_sub(last)
                        .and_then(|d| u32::try_from(d).ok())
                        .unwrap_or_default(),
                )
            }
            None => {
                self.by_subject.insert_unique(hash, seq, |&s| {
                    hasher.hash_one(&*kept(events, s).expect("indexed events are kept").subject)
                });
                (Rc::from(e.subject), 0)
            }
        };
        if self.events.len() == self.events.capacity() {
            let room = (self.events.capacity() * 2).clamp(16, MAX_EVENTS + 1);
            self.events
                .reserve_exact(room.max(self.events.len() + 1) - self.events.len());
        }
        self.events.push_back(Kept {
            seq,
            at_ms: e.at_ms,
            subject,
            detail: (!e.detail.is_empty()).then(|| e.detail.into_boxed_str()),
            back,
            kind: e.kind,
        });
    }

    fn pop_front(&mut self) {
        let Some(kept) = self.events.pop_front() else {
            return;
        };
        // Its subject's newest event gone, the subject has none left.
        let hash = self.hasher.hash_one(&*kept.subject);
        if let Ok(newest) = self.by_subject.find_entry(hash, |&s| s == kept.seq) {
            newest.remove();
        }
    }

    /// Deletes up to `max` keys of events no longer kept.
    fn delete_dropped(&mut self, max: usize, write: &mut dyn FnMut(Vec<u8>, Vec<u8>)) {
        let keep_from = self.events.front().map_or(self.next_seq, |k| k.seq);
        let end = keep_from.min(self.disk_first.saturating_add(max as u64));
        for seq in self.disk_first..end {
            write(key(seq), Vec::new());
        }
        self.disk_first = self.disk_first.max(end);
    }

    /// Records an event: kept in memory at once, written through `write`
    /// (key, value; an empty value deletes), with the deletion of the
    /// oldest event when the history is full.
    pub fn push(&mut self, e: Event, write: &mut dyn FnMut(Vec<u8>, Vec<u8>)) {
        self.counts[e.kind as usize] += 1;
        if e.kind == EventKind::Expired {
            *self.expirations.entry(e.subject.clone()).or_default() += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        write(key(seq), encode(&e));
        self.insert(seq, e);
        while self.events.len() > MAX_EVENTS {
            self.pop_front();
        }
        self.delete_dropped(DELETES_PER_PUSH, write);
    }

    /// Drops events older than the age bound from memory, and deletes at
    /// most `max` keys of dropped events (call it regularly: it never
    /// scans the database).
    pub fn prune(&mut self, now_ms: u64, max: usize, write: &mut dyn FnMut(Vec<u8>, Vec<u8>)) {
        while self
            .events
            .front()
            .is_some_and(|k| k.at_ms.saturating_add(MAX_AGE_MS) <= now_ms)
        {
            self.pop_front();
        }
        self.delete_dropped(max, write);
    }

    fn get(&self, seq: u64) -> Option<&Kept> {
        kept(&self.events, seq)
    }

    /// The events of `subject` still kept, newest first.
    fn of_subject<'a>(&'a self, subject: &str) -> impl Iterator<Item = &'a Kept> + 'a {
        let hash = self.hasher.hash_one(subject);
        let mut next = self
            .by_subject
            .find(hash, |&s| of_subject(&self.events, s, subject))
            .and_then(|&seq| self.get(seq));
        std::iter::from_fn(move || {
            let k = next?;
            next = match k.back {
                0 => None,
                back => self.get(k.seq - u64::from(back)),
            };
            Some(k)
        })
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Up to `limit` events, newest first, of one subject or of all.
    pub fn recent(&self, limit: usize, subject: Option<&str>) -> Vec<Event> {
        match subject {
            None => self
                .events
                .iter()
                .rev()
                .take(limit)
                .map(Kept::event)
                .collect(),
            Some(s) => self.of_subject(s).take(limit).map(Kept::event).collect(),
        }
    }

    /// The events of `subject` from `from_ms` on, and the availability
    /// before (see [`Span`]). Costs the number of events returned, plus the
    /// events skipped back to the last availability one.
    pub fn since(&self, subject: &str, from_ms: u64) -> Span {
        let mut span = Span {
            before: None,
            events: Vec::new(),
        };
        let mut older = self.of_subject(subject);
        for k in older.by_ref() {
            if k.at_ms < from_ms {
                if k.kind.availability().is_some() {
                    span.before = Some(k.event());
                }
                break;
            }
            span.events.push(k.event());
        }
        if span.before.is_none() {
            span.before = older
                .find(|k| k.kind.availability().is_some())
                .map(Kept::event);
        }
        span.events.reverse();
        span
    }

    /// Events recorded since start, per kind (every kind, zeros included).
    pub fn kind_counts(&self) -> impl Iterator<Item = (EventKind, u64)> + '_ {
        EventKind::ALL
            .into_iter()
            .map(|k| (k, self.counts[k as usize]))
    }

    /// `Expired` events recorded since start, per device or agent.
    pub fn expirations(&self) -> &HashMap<String, u64> {
        &self.expirations
    }
}

/// Event number `seq`, if kept: where it is when no number is missing
/// since the oldest kept, else by binary search.
fn kept(events: &VecDeque<Kept>, seq: u64) -> Option<&Kept> {
    let front = events.front()?.seq;
    let at = usize::try_from(seq.checked_sub(front)?).ok()?;
    match events.get(at) {
        Some(k) if k.seq == seq => Some(k),
        _ => {
            let i = events.binary_search_by_key(&seq, |k| k.seq).ok()?;
            Some(&events[i])
        }
    }
}

/// Whether event number `seq` is kept and about `subject`.
fn of_subject(events: &VecDeque<Kept>, seq: u64, subject: &str) -> bool {
    kept(events, seq).is_some_and(|k| &*k.subject == subject)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const DAY: u64 = 24 * 3600 * 1000;

    fn ev(at_ms: u64, kind: EventKind, subject: &str) -> Event {
        Event {
            at_ms,
            kind,
            subject: subject.into(),
            detail: String::new(),
        }
    }

    /// A stand-in for the database: the key range of the history.
    #[derive(Default)]
    struct Disk(BTreeMap<Vec<u8>, Vec<u8>>);

    impl Disk {
        fn sink(&mut self) -> impl FnMut(Vec<u8>, Vec<u8>) + '_ {
            |k, v| {
                if v.is_empty() {
                    self.0.remove(&k);
                } else {
                    self.0.insert(k, v);
                }
            }
        }
        fn load(&self, now_ms: u64) -> History {
            History::load(self.0.clone(), now_ms)
        }
    }

    #[test]
    fn events_round_trip_through_their_encoding() {
        let e = Event {
            at_ms: 1_700_000_000_123,
            kind: EventKind::StoreError,
            subject: "dév/ice".into(),
            detail: "No space left on device (os error 28)".into(),
        };
        assert_eq!(decode(&encode(&e)), Some(e.clone()));
        let bytes = encode(&e);
        for cut in 0..14 {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode(b"\x02garbage"), None);
        assert_eq!(seq_of(&key(42)), Some(42));
        assert!(
            key(0) > "\u{10FFFF}".as_bytes().to_vec(),
            "sorts after topics"
        );
        assert_eq!(seq_of(b"\xffh\x00"), None);
    }

    #[test]
    fn keeps_the_last_events_and_deletes_the_oldest_keys() {
        let mut disk = Disk::default();
        let mut h = History::empty();
        for i in 0..(MAX_EVENTS as u64 + 25) {
            h.push(ev(DAY + i, EventKind::Back, "a"), &mut disk.sink());
        }
        assert_eq!(h.len(), MAX_EVENTS);
        assert_eq!(disk.0.len(), MAX_EVENTS);
        let newest = h.recent(1, None);
        assert_eq!(newest[0].at_ms, DAY + MAX_EVENTS as u64 + 24);
        assert_eq!(h.recent(usize::MAX, Some("a")).len(), MAX_EVENTS);
        assert_eq!(
            h.kind_counts().map(|(_, n)| n).sum::<u64>(),
            MAX_EVENTS as u64 + 25
        );
        let oldest_kept = disk.0.keys().next().and_then(|k| seq_of(k)).unwrap();
        assert_eq!(oldest_kept, 25);
        assert!(
            h.events.capacity() <= MAX_EVENTS + 1,
            "{}",
            h.events.capacity()
        );
    }

    #[test]
    fn subjects_are_shared_and_details_kept() {
        let mut disk = Disk::default();
        let mut h = History::empty();
        for i in 0..3 {
            h.push(ev(DAY + i, EventKind::Back, "a"), &mut disk.sink());
        }
        let mut failed = ev(DAY + 5, EventKind::StoreError, "");
        failed.detail = "disk full".into();
        h.push(failed.clone(), &mut disk.sink());
        let a = &h.of_subject("a").next().unwrap().subject;
        assert_eq!(Rc::strong_count(a), 3, "one name for its three events");
        assert_eq!(h.recent(1, None), [failed.clone()]);
        assert_eq!(disk.load(DAY).recent(1, Some("")), [failed]);
        assert!(h.events.iter().filter(|k| k.detail.is_some()).count() == 1);
    }

    #[test]
    fn old_events_are_pruned_a_few_keys_at_a_time() {
        let mut disk = Disk::default();
        let mut h = History::empty();
        for i in 0..100 {
            h.push(ev(i, EventKind::Expired, "a"), &mut disk.sink());
        }
        h.push(ev(20 * DAY, EventKind::Back, "a"), &mut disk.sink());
        // Events at 0..=50 ms are 30 days old at `now`, later ones younger.
        let now = MAX_AGE_MS + 50;
        h.prune(now, 16, &mut disk.sink());
        assert_eq!(h.len(), 50, "gone from queries at once");
        assert_eq!(disk.0.len(), 101 - 16, "deleted from disk 16 at a time");
        let mut rounds = 1;
        while disk.0.len() > 50 {
            h.prune(now, 16, &mut disk.sink());
            rounds += 1;
        }
        assert_eq!(rounds, 4);
        h.prune(now, 16, &mut disk.sink());
        assert_eq!((h.len(), disk.0.len()), (50, 50), "younger events stay");
    }

    #[test]
    fn history_is_restored_within_its_bounds() {
        let mut disk = Disk::default();
        let mut h = History::empty();
        for i in 0..10 {
            h.push(ev(i * DAY, EventKind::Expired, "old"), &mut disk.sink());
        }
        h.push(ev(35 * DAY, EventKind::Back, "new"), &mut disk.sink());
        let now = 36 * DAY;
        let mut again = disk.load(now);
        // Days 0..=6 are at least 30 days old.
        assert_eq!(again.len(), 4);
        assert_eq!(again.recent(10, Some("new")).len(), 1);
        assert_eq!(
            again.kind_counts().map(|(_, n)| n).sum::<u64>(),
            0,
            "counts are since start"
        );
        // The dropped keys go with the next pushes or prunes; numbering
        // continues after the stored events.
        again.push(ev(now, EventKind::FirstHeard, "x"), &mut disk.sink());
        again.prune(now, 16, &mut disk.sink());
        let seqs: Vec<u64> = disk.0.keys().filter_map(|k| seq_of(k)).collect();
        assert_eq!(seqs, [7, 8, 9, 10, 11]);
        assert_eq!(disk.load(now).recent(1, None)[0].subject, "x");
    }

    #[test]
    fn unreadable_entries_are_skipped_and_deleted_in_turn() {
        let mut disk = Disk::default();
        disk.0.insert(key(0), b"\x07not an event".to_vec());
        disk.0
            .insert(key(1), encode(&ev(DAY, EventKind::Back, "a")));
        let mut h = disk.load(2 * DAY);
        assert_eq!(h.len(), 1);
        for i in 0..MAX_EVENTS as u64 {
            h.push(ev(DAY + i, EventKind::Back, "a"), &mut disk.sink());
        }
        assert!(!disk.0.contains_key(&key(0)));
        assert!(!disk.0.contains_key(&key(1)));
    }

    #[test]
    fn recent_filters_by_subject_newest_first() {
        let mut disk = Disk::default();
        let mut h = History::empty();
        for (i, s) in ["a", "b", "a", "", "a", "b"].iter().enumerate() {
            h.push(ev(i as u64, EventKind::Back, s), &mut disk.sink());
        }
        let at = |v: Vec<Event>| v.iter().map(|e| e.at_ms).collect::<Vec<_>>();
        assert_eq!(at(h.recent(2, Some("a"))), [4, 2]);
        assert_eq!(at(h.recent(10, Some("b"))), [5, 1]);
        assert_eq!(at(h.recent(10, Some(""))), [3]);
        assert!(h.recent(10, Some("zz")).is_empty());
        assert_eq!(at(h.recent(3, None)), [5, 4, 3]);
    }

    #[test]
    fn subject_links_survive_gaps_and_evictions() {
        assert_eq!(std::mem::size_of::<Kept>(), 56);
        // Stored with gaps in the numbering (events lost in a crash).
        let mut disk = Disk::default();
        for (seq, s) in [(3u64, "a"), (4, "b"), (9, "a"), (20, "c"), (21, "a")] {
            disk.0
                .insert(key(seq), encode(&ev(DAY + seq, EventKind::Back, s)));
        }
        let mut h = disk.load(DAY);
        let at = |v: Vec<Event>| v.iter().map(|e| e.at_ms - DAY).collect::<Vec<_>>();
        assert_eq!(at(h.recent(10, Some("a"))), [21, 9, 3]);
        // Interleaved subjects until the stored ones are evicted: each
        // subject's list is the full history filtered by it, and a subject
        // whose events are all gone has no entry left.
        for i in 0..MAX_EVENTS as u64 {
            let s = ["a", "d", "e", "d"][i as usize % 4];
            h.push(ev(DAY + 100 + i, EventKind::Back, s), &mut disk.sink());
            if i == 2 {
                assert_eq!(at(h.recent(3, Some("a"))), [100, 21, 9]);
            }
        }
        let all = h.recent(usize::MAX, None);
        for s in ["a", "b", "c", "d", "e"] {
            let mine: Vec<Event> = all.iter().filter(|e| e.subject == s).cloned().collect();
            assert_eq!(h.recent(usize::MAX, Some(s)), mine, "{s}");
        }
        assert!(h.of_subject("b").next().is_none() && h.of_subject("c").next().is_none());
        assert_eq!(h.by_subject.len(), 3);
        assert_eq!(h.since("a", 0).events.len(), MAX_EVENTS / 4);
    }

    #[test]
    fn since_gives_the_strip_and_the_state_before_it() {
        let mut disk = Disk::default();
        let mut h = History::empty();
        let hour = 3600 * 1000;
        for (at, kind, s) in [
            (hour, EventKind::FirstHeard, "esp"),
            (2 * hour, EventKind::Expired, "esp"),
            (3 * hour, EventKind::AgentRelaunched, "esp"),
            (4 * hour, EventKind::Expired, "other"),
            (26 * hour, EventKind::Back, "esp"),
            (27 * hour, EventKind::Expired, "esp"),
        ] {
            h.push(ev(at, kind, s), &mut disk.sink());
        }
        h.push(
            ev(5 * hour, EventKind::ConfigReloaded, ""),
            &mut disk.sink(),
        );
        let span = h.since("esp", 4 * hour);
        assert_eq!(span.before.map(|e| e.kind), Some(EventKind::Expired));
        let kinds: Vec<EventKind> = span.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Back, EventKind::Expired]);
        let span = h.since("esp", 0);
        assert_eq!(span.before, None);
        assert_eq!(span.events.len(), 5);
        assert_eq!(h.since("nobody", 0).events, []);
        assert_eq!(h.expirations().get("esp"), Some(&2));
        assert_eq!(h.expirations().get("other"), Some(&1));
        let counts: HashMap<EventKind, u64> = h.kind_counts().collect();
        assert_eq!(counts[&EventKind::Expired], 3);
        assert_eq!(counts[&EventKind::Takeover], 0);
    }

    #[test]
    fn the_subject_index_follows_growth_eviction_and_gaps() {
        let mut disk = Disk::default();
        let mut h = History::empty();
        let subject = |i: u64| format!("d{}", (i * 7919) % 4_999);
        let total = 2 * MAX_EVENTS as u64 + 123;
        for i in 0..total {
            h.push(ev(DAY + i, EventKind::Back, &subject(i)), &mut disk.sink());
        }
        // Reloaded with every third event lost (sequence numbers with gaps).
        let mut gappy = Disk::default();
        let mut n = 0;
        for (k, v) in &disk.0 {
            n += 1;
            if n % 3 != 0 {
                gappy.0.insert(k.clone(), v.clone());
            }
        }
        for h in [h, gappy.load(DAY)] {
            let all = h.recent(usize::MAX, None);
            let mut names: Vec<&str> = all.iter().map(|e| e.subject.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(h.by_subject.len(), names.len());
            for s in names {
                let mine: Vec<Event> = all.iter().filter(|e| e.subject == s).cloned().collect();
                assert_eq!(h.recent(usize::MAX, Some(s)), mine, "{s}");
            }
            assert!(h.recent(1, Some("d5000")).is_empty());
        }
    }
}
