//! The stored states a filter matches, found by seeking in the database
//! rather than reading it: a *filter-guided skip scan*.
//!
//! Keys are topics in byte order. Literal levels of the filter extend the
//! prefix to seek to; a `#` reads the keys under the prefix; a `+` lists the
//! distinct values of its level under the prefix by seeking past each one
//! (`<prefix><value>0`, since `0` follows `/`) and goes on with each value.
//! So `+/dev42/state/#` over 100,000 states under `home/`, `tele/` and
//! `stat/` costs a few seeks per first level, not a read of every key.
//!
//! A seek costs as much as reading about ten keys (4 to 10 µs in a release
//! build: every table of level 0 is searched), so a `+` in the first level
//! over many distinct first levels (one per device: `dev42/state/x` with
//! `+/state/…`-like filters) would cost more than a full read. The
//! [`LevelIndex`] keeps, in memory, the distinct first levels and the
//! hashes of the distinct (first, second) level pairs: a `+` in the first
//! level is enumerated from memory, and when the second level of the
//! filter is literal, only the first levels that have it are visited (one
//! seek each). About 40 bytes per distinct first level and 10 per distinct
//! pair (300 KB for 10,000 devices under 3 first levels); deleted topics
//! stay in it (costing one seek each) until the next start.
//!
//! One subtlety: the keys of a level value are not contiguous. `v`, then
//! `v!x` and `v.x` (bytes below `/`), then `v/…`: after the leaf `v` the scan
//! goes on just after it, and skips the subtree of `v` when it reaches it
//! (the values whose subtree may still come are a chain of prefixes).

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::ops::Deref;

use foldhash::fast::{FixedState, RandomState};
use rusty_leveldb::{DBIterator, LdbIterator};

use crate::filter::Filter;

use super::META;

/// The first levels of the stored topics, and their first two levels as
/// hashed pairs (see the module doc).
#[derive(Default)]
pub struct LevelIndex {
    firsts: HashSet<Box<[u8]>, RandomState>,
    pairs: HashSet<u64, RandomState>,
}

fn pair(first: &[u8], second: &[u8]) -> u64 {
    // A fixed seed: the same pair always gives the same hash.
    FixedState::default().hash_one((first, second))
}

impl LevelIndex {
    /// Adds a stored topic.
    pub fn add(&mut self, topic: &[u8]) {
        let mut levels = topic.splitn(3, |&b| b == b'/');
        let first = levels.next().unwrap_or_default();
        if !self.firsts.contains(first) {
            self.firsts.insert(first.into());
        }
        if let Some(second) = levels.next() {
            self.pairs.insert(pair(first, second));
        }
    }

    pub fn first_levels(&self) -> usize {
        self.firsts.len()
    }
}

/// Calls `visit(key, value)` for every stored state matching `filter`
/// (each once, not in key order), using `index` for a `+` in the first
/// level when given. Returns the number of iterator moves (seeks and
/// steps), a measure of the work done.
pub fn matching(
    it: &mut DBIterator,
    filter: &Filter,
    index: Option<&LevelIndex>,
    visit: &mut dyn FnMut(&[u8], &[u8]),
) -> usize {
    let mut walk = Walk {
        it,
        levels: filter.as_str().split('/').collect(),
        filter,
        index,
        visit,
        moves: 0,
    };
    walk.level(&mut Vec::new(), 0);
    walk.moves
}

struct Walk<'a> {
    it: &'a mut DBIterator,
    levels: Vec<&'a str>,
    filter: &'a Filter,
    index: Option<&'a LevelIndex>,
    visit: &'a mut dyn FnMut(&[u8], &[u8]),
    moves: usize,
}

impl Walk<'_> {
    /// Moves to the first key at or after `key`.
    fn seek(&mut self, key: &[u8]) {
        self.moves += 1;
        if key.is_empty() {
            self.it.seek_to_first();
        } else {
            self.it.seek(key);
        }
    }

    fn current(&self) -> Option<(impl Deref<Target = [u8]>, impl Deref<Target = [u8]>)> {
        if !self.it.valid() {
            return None;
        }
        self.it.current().filter(|(k, _)| k.first() != Some(&META))
    }

    fn offer(&mut self, key: &[u8], value: &[u8]) {
        if std::str::from_utf8(key).is_ok_and(|t| self.filter.matches(t)) {
            (self.visit)(key, value);
        }
    }

    /// Levels `0..i` are fixed: `prefix` is their topic, with a trailing `/`
    /// (empty for `i == 0`).
    fn level(&mut self, prefix: &mut Vec<u8>, i: usize) {
        let last = i + 1 == self.levels.len();
        match self.levels[i] {
            "#" => {
                // `a/#` matches `a` itself too.
                if let Some(parent) = prefix.strip_suffix(b"/") {
                    self.exact(parent);
                }
                self.under(prefix);
            }
            "+" => match self.index {
                Some(index) if i == 0 => self.indexed_firsts(index, last),
                _ => self.values(prefix, i, last),
            },
            literal => {
                let len = prefix.len();
                prefix.extend_from_slice(literal.as_bytes());
                if last {
                    self.exact(prefix);
                } else {
                    prefix.push(b'/');
                    self.level(prefix, i + 1);
                }
                prefix.truncate(len);
            }
        }
    }

    fn exact(&mut self, topic: &[u8]) {
        self.seek(topic);
        if let Some((k, v)) = self.current() {
            if *k == *topic {
                self.offer(&k, &v);
            }
        }
    }

    fn under(&mut self, prefix: &[u8]) {
        self.seek(prefix);
        let mut entry = self.current();
        while let Some((k, v)) = entry {
            if !k.starts_with(prefix) {
                break;
            }
            self.offer(&k, &v);
            self.moves += 1;
            self.it.advance();
            entry = self.current();
        }
    }

    /// A `+` at level 0, from the index: every first level, or those
    /// having the literal second level of the filter.
    fn indexed_firsts(&mut self, index: &LevelIndex, last: bool) {
        let second = self
            .levels
            .get(1)
            .copied()
            .filter(|l| !matches!(*l, "+" | "#"));
        for first in &index.firsts {
            if second.is_some_and(|s| !index.pairs.contains(&pair(first, s.as_bytes()))) {
                continue;
            }
            let mut prefix = first.to_vec();
            if last {
                self.exact(&prefix);
            } else {
                prefix.push(b'/');
                self.level(&mut prefix, 1);
            }
        }
    }

    /// A `+` at level `i`: every distinct value of that level under `prefix`.
    fn values(&mut self, prefix: &[u8], i: usize, last: bool) {
        let mut cursor = prefix.to_vec();
        // Values met at their leaf whose subtree (`<value>/…`) may follow.
        let mut chain: Vec<Vec<u8>> = Vec::new();
        loop {
            self.seek(&cursor);
            let Some((k, v)) = self.current() else {
                break;
            };
            let Some(rest) = k.strip_prefix(prefix) else {
                break;
            };
            let len = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
            let value = &rest[..len];
            let leaf = len == rest.len();
            chain.retain(|c| value.starts_with(c));
            cursor.truncate(prefix.len());
            cursor.extend_from_slice(value);
            let seen = chain.iter().any(|c| c == value);
            let mut next = cursor.clone();
            next.push(if leaf { 0 } else { b'0' });
            if !seen {
                if last {
                    if leaf {
                        self.offer(&k, &v);
                    }
                } else {
                    cursor.push(b'/');
                    self.level(&mut cursor, i + 1);
                }
                if leaf {
                    chain.push(value.to_vec());
                }
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusty_leveldb::{Options, WriteBatch, DB};
    use std::collections::BTreeSet;

    fn db(keys: &[&str]) -> (tempfile::TempDir, DB) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = DB::open(dir.path().join("db"), Options::default()).unwrap();
        let mut b = WriteBatch::default();
        for k in keys {
            b.put(k.as_bytes(), b"v");
        }
        b.put(&[META, b'h', 0], b"meta");
        db.write(b, false).unwrap();
        (dir, db)
    }

    fn found(db: &mut DB, filter: &str, index: Option<&LevelIndex>) -> (BTreeSet<String>, usize) {
        let f = Filter::parse(filter).unwrap();
        let mut it = db.new_iter().unwrap();
        let mut out = BTreeSet::new();
        let moves = matching(&mut it, &f, index, &mut |k, _| {
            assert!(
                out.insert(String::from_utf8(k.to_vec()).unwrap()),
                "visited twice"
            );
        });
        (out, moves)
    }

    const KEYS: &[&str] = &[
        "a", "a!x", "a.b/c", "a/b", "a/b/c", "a/b!", "a/b.x/c", "a/b/c/d", "a/bc", "a/", "a//",
        "/x", "/", "$SYS/a", "b/b/c", "b/x/c", "b/b", "bb/b/c", "c", "c/b/c/d", "v", "v!", "v!/b",
        "v/b", "v/b/c",
    ];

    #[test]
    fn finds_what_the_reference_matcher_finds() {
        let (_d, mut db) = db(KEYS);
        let mut index = LevelIndex::default();
        for k in KEYS {
            index.add(k.as_bytes());
        }
        for filter in [
            "#", "+", "+/#", "+/b", "+/b/#", "+/b/c", "+/+", "+/+/c", "+/+/+/#", "a/+", "a/+/c",
            "a/#", "a/b/#", "+/", "/+", "+/+/c/d", "v/+/#", "$SYS/#",
        ] {
            let f = Filter::parse(filter).unwrap();
            let want: BTreeSet<String> = KEYS
                .iter()
                .filter(|k| f.matches(k))
                .map(|k| k.to_string())
                .collect();
            assert_eq!(found(&mut db, filter, None).0, want, "{filter}");
            assert_eq!(found(&mut db, filter, Some(&index)).0, want, "{filter}");
        }
    }

    #[test]
    fn a_leading_wildcard_seeks_instead_of_reading_everything() {
        let mut keys = Vec::new();
        for first in ["home", "tele", "stat"] {
            for d in 0..300 {
                for s in 0..5 {
                    keys.push(format!("{first}/dev{d}/state/s{s}"));
                }
            }
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (_d, mut db) = db(&refs);
        let (hits, moves) = found(&mut db, "+/dev42/state/#", None);
        assert_eq!(hits.len(), 15);
        assert!(moves < 40, "{moves} iterator moves for 4,500 keys");
    }

    #[test]
    fn the_index_visits_only_first_levels_with_the_second_level() {
        let mut keys = Vec::new();
        for d in 0..1000 {
            for s in 0..5 {
                keys.push(format!("site{d}/dev{d}/state/s{s}"));
            }
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (_d, mut db) = db(&refs);
        let (hits, moves) = found(&mut db, "+/dev42/state/#", None);
        assert_eq!(hits.len(), 5);
        assert!(moves > 2000, "without the index: {moves} moves");
        let mut index = LevelIndex::default();
        for k in &keys {
            index.add(k.as_bytes());
        }
        assert_eq!(index.first_levels(), 1000);
        let (again, moves) = found(&mut db, "+/dev42/state/#", Some(&index));
        assert_eq!(again, hits);
        assert!(moves < 10, "with the index: {moves} moves");
    }
}
