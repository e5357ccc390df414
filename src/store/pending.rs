//! The writes waiting for the next commit: the latest per key (an empty
//! value deletes), each a [`Record`] as it came (a state message's own
//! allocation, moved from the hand-off without a copy).

use std::collections::HashSet;

use foldhash::fast::RandomState;

use crate::record::{ByKey, Record};

#[derive(Default)]
pub(super) struct Pending {
    writes: HashSet<ByKey, RandomState>,
}

impl Pending {
    /// Replaces the pending write of the same key, if any.
    pub fn insert(&mut self, write: Record) {
        self.writes.replace(ByKey(write));
    }

    #[cfg(test)]
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.writes.get(key).map(|w| w.0.value())
    }

    /// (key, value) pairs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.writes.iter().map(|w| (w.0.key(), w.0.value()))
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Forgets every write; keeps the table's memory unless it grew beyond
    /// `keep` writes (after an outage or a flood).
    pub fn clear(&mut self, keep: usize) {
        if self.writes.capacity() > keep {
            self.writes = HashSet::default();
        } else {
            self.writes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_write_of_a_key_wins() {
        let mut p = Pending::default();
        p.insert(Record::new(b"a", b"1"));
        p.insert(Record::new(b"b", b"2"));
        p.insert(Record::new(b"a", b""));
        assert_eq!(p.len(), 2);
        assert_eq!(p.get(b"a"), Some(&b""[..]));
        let mut all: Vec<_> = p.iter().collect();
        all.sort();
        assert_eq!(all, [(&b"a"[..], &b""[..]), (&b"b"[..], &b"2"[..])]);
        p.clear(0);
        assert!(p.is_empty() && p.get(b"b").is_none());
    }
}
