//! MQTT topic filters and the topic index that matches a topic against many
//! filters at a cost that depends on the topic, not on the number of filters.
//!
//! Semantics (SPEC §3): `+` is one level, `#` the rest of the topic and the
//! parent level itself (`a/#` matches `a`). A filter without any wildcard
//! keeps the original iotmonitor's prefix behaviour at level boundaries: it
//! matches the topic itself and every topic below it, which is exactly the
//! MQTT filter `f/#`. Filters are normalised to that form when parsed.

use std::fmt;

/// A validated, normalised MQTT topic filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Filter {
    /// The normalised MQTT filter (wildcard-free filters get `/#`),
    /// allocated to its size (one per configured filter).
    mqtt: Box<str>,
}

/// Why a filter or a topic was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    Empty,
    HashNotLast,
    WildcardNotWholeLevel,
    NulCharacter,
    WildcardInTopic,
    TooLong,
}

/// MQTT's limit on a topic or a filter, in bytes.
pub const MAX_TOPIC_BYTES: usize = 65_535;

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilterError::Empty => "empty topic",
            FilterError::HashNotLast => "'#' must be the last level of a filter",
            FilterError::WildcardNotWholeLevel => "'+' and '#' must be a whole level",
            FilterError::NulCharacter => "topic contains a NUL character",
            FilterError::WildcardInTopic => "a topic (not a filter) cannot contain '+' or '#'",
            FilterError::TooLong => "longer than MQTT's 65,535 bytes",
        })
    }
}

impl Filter {
    /// Parses a filter as written in the configuration.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.is_empty() {
            return Err(FilterError::Empty);
        }
        if text.contains('\0') {
            return Err(FilterError::NulCharacter);
        }
        if text.len() > MAX_TOPIC_BYTES - 2 {
            return Err(FilterError::TooLong); // with the `/#` added below
        }
        let mut wildcard = false;
        let mut levels = text.split('/').peekable();
        while let Some(level) = levels.next() {
            match level {
                "#" if levels.peek().is_some() => return Err(FilterError::HashNotLast),
                "#" | "+" => wildcard = true,
                l if l.contains(['+', '#']) => return Err(FilterError::WildcardNotWholeLevel),
                _ => {}
            }
        }
        let mqtt = if wildcard {
            text.into()
        } else {
            format!("{text}/#").into_boxed_str()
        };
        Ok(Filter { mqtt })
    }

    /// A filter from text that is one already: the [`Filter::as_str`] of a
    /// filter, or an exact topic (a helloTopic, validated with
    /// `validate_topic`), which matches itself only.
    pub fn normalised(text: &str) -> Filter {
        Filter { mqtt: text.into() }
    }

    /// The MQTT filter to subscribe to and to match with.
    pub fn as_str(&self) -> &str {
        &self.mqtt
    }

    /// The part of every matching topic that is known in advance: the
    /// levels before the first wildcard, without the trailing separator when
    /// the wildcard is a `#` (so that `a/#` yields `a`, which also matches).
    pub fn literal_prefix(&self) -> &str {
        let end = self
            .mqtt
            .split('/')
            .take_while(|l| *l != "+" && *l != "#")
            .map(|l| l.len() + 1)
            .sum::<usize>();
        let prefix = &self.mqtt[..end.min(self.mqtt.len())];
        prefix.strip_suffix('/').unwrap_or(prefix)
    }

    /// Reference matcher: does `topic` match this filter? Used for small
    /// per-device lists and as the oracle the index is tested against.
    pub fn matches(&self, topic: &str) -> bool {
        if topic.starts_with('$') && (self.mqtt.starts_with('+') || self.mqtt.starts_with('#')) {
            return false;
        }
        let mut t = topic.split('/');
        for f in self.mqtt.split('/') {
            match f {
                "#" => return true,
                "+" => {
                    if t.next().is_none() {
                        return false;
                    }
                }
                lit => {
                    if t.next() != Some(lit) {
                        return false;
                    }
                }
            }
        }
        t.next().is_none()
    }

    /// Does every topic matched by `other` also match `self`?
    pub fn covers(&self, other: &Filter) -> bool {
        let mut o = other.mqtt.split('/');
        for f in self.mqtt.split('/') {
            match (f, o.next()) {
                ("#", _) => return true,
                (_, None) | (_, Some("#")) => return false,
                ("+", Some(_)) => {}
                (lit, Some(ol)) if lit == ol => {}
                _ => return false,
            }
        }
        o.next().is_none()
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mqtt)
    }
}

/// Checks an exact topic (a helloTopic): no wildcard, not empty.
pub fn validate_topic(text: &str) -> Result<(), FilterError> {
    if text.is_empty() {
        Err(FilterError::Empty)
    } else if text.contains('\0') {
        Err(FilterError::NulCharacter)
    } else if text.contains(['+', '#']) {
        Err(FilterError::WildcardInTopic)
    } else if text.len() > MAX_TOPIC_BYTES {
        Err(FilterError::TooLong)
    } else {
        Ok(())
    }
}

/// No node, no value, an empty slot.
const NONE: u32 = u32::MAX;

/// A node of the trie: the edge that leads to it (for a literal child),
/// its `+` child and the heads of its two value lists. A lookup of a
/// literal child reads its slot, then the child itself, which holds both
/// what identifies it and what the walk needs next: a separate edge
/// record was one more cache miss per level in a trie of 10,000 devices.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// The key of its label (`short_key`, `long_key`); [`UNLINKED`] for
    /// the root and the `+` children, which no slot holds.
    key: u64,
    /// Its parent (a literal child's), and in the top bit ([`LITERAL`])
    /// whether it has literal children (else a topic's next level is not
    /// looked up: a cache miss saved at the end of most walks).
    parent: u32,
    plus: u32,
    /// Values of filters that end here (exact level).
    exact: u32,
    /// Values of filters that end with `#` here: they match this level and
    /// everything below it.
    rest: u32,
}

const _: () = assert!(std::mem::size_of::<Node>() == 24);

/// The key of a node no slot holds: no label has it (a long label's key
/// has a length below 2^24 in bits 32 to 55).
const UNLINKED: u64 = u64::MAX;

/// The flag bit of [`Node::parent`]; node positions stay below it.
const LITERAL: u32 = 1 << 31;

impl Node {
    const EMPTY: Node = Node {
        key: UNLINKED,
        parent: 0,
        plus: NONE,
        exact: NONE,
        rest: NONE,
    };

    fn parent(&self) -> u32 {
        self.parent & !LITERAL
    }

    fn literal(&self) -> bool {
        self.parent & LITERAL != 0
    }
}

/// The top byte of the key of a label longer than [`SHORT`] bytes.
const LONG: u64 = 0xFF;
/// Labels of at most this many bytes are held in their node's key.
const SHORT: usize = 7;

/// Up to 8 bytes as a little-endian word, zero-padded, with two loads at
/// most (no copy loop, no `memcpy` call).
fn word(b: &[u8]) -> u64 {
    let n = b.len();
    match n {
        0 => 0,
        1..=3 => {
            u64::from(b[0])
                | u64::from(b[n / 2]) << (8 * (n / 2))
                | u64::from(b[n - 1]) << (8 * (n - 1))
        }
        4..=7 => {
            let lo = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
            let hi = u32::from_le_bytes(b[n - 4..].try_into().expect("4 bytes"));
            u64::from(lo) | u64::from(hi) << (8 * (n - 4))
        }
        _ => u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
    }
}

/// The key of a short label: its bytes and, in the top byte, its length
/// (1 to 7, never `LONG`): equal keys, equal labels. A lookup compares one
/// word and never reads the label text.
fn short_key(label: &[u8]) -> Option<u64> {
    (label.len() <= SHORT).then(|| word(label) | (label.len() as u64) << 56)
}

/// The key of a long label: `LONG`, its length (24 bits: a topic has at
/// most 65,535 bytes) and its position in the label text.
fn long_key(at: u32, len: usize) -> u64 {
    LONG << 56 | (len as u64) << 32 | u64::from(at)
}

/// A trie of filters. Matching walks the topic's levels once, following the
/// literal child, the `+` child and collecting `#` values on the way, so its
/// cost depends on the topic and on the wildcards that can match it, not on
/// how many filters were inserted.
///
/// Compact: a node is 24 bytes; the literal children of all nodes are
/// in one open-addressing table keyed by (parent, level) under a fast
/// non-cryptographic hash (only configured levels are ever inserted, so
/// topics from the network cannot lengthen its probes); a level name of at
/// most 7 bytes is held in its node, each distinct longer one is stored
/// once, in one string; values are linked lists in
/// one array. A device's watch, state and hello topics take about 120
/// bytes (a hash map per node took about a kilobyte).
#[derive(Debug)]
pub struct TopicIndex<V> {
    nodes: Vec<Node>,
    /// Positions in `nodes` of the literal children, by hash of (parent,
    /// label); `NONE`: empty.
    slots: Vec<u32>,
    /// How many slots are taken.
    linked: usize,
    labels: String,
    /// While building (`shrink_to_fit` drops it): the distinct labels, as
    /// (position, length) in `labels` by hash of the label; `NONE`: empty.
    interned: Vec<(u32, u32)>,
    distinct: usize,
    /// Each value with the position of the next one of its list.
    values: Vec<(V, u32)>,
}

impl<V> Default for TopicIndex<V> {
    fn default() -> Self {
        TopicIndex {
            nodes: vec![Node::EMPTY],
            slots: Vec::new(),
            linked: 0,
            labels: String::new(),
            interned: Vec::new(),
            distinct: 0,
            values: Vec::new(),
        }
    }
}

/// FxHash's step: fast, and good enough for tables whose keys all come
/// from the configuration.
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

fn hash(seed: u32, bytes: &[u8]) -> usize {
    let mut h = u64::from(seed);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    h = mix(mix(h, word(chunks.remainder())), bytes.len() as u64);
    // The high bits are the best mixed.
    (h >> 32) as usize
}

/// An open-addressing table with room for one more key than `used`: at
/// most half full.
fn needs_growth(used: usize, len: usize) -> bool {
    2 * (used + 1) > len
}

fn table_len(used: usize) -> usize {
    (2 * (used + 1)).next_power_of_two()
}

impl<V: Clone + PartialEq> TopicIndex<V> {
    pub fn new() -> Self {
        Self::default()
    }

    fn text(&self, at: u32, len: u32) -> &[u8] {
        &self.labels.as_bytes()[at as usize..(at + len) as usize]
    }

    /// The label of a node's key (a short one is copied into `buf`).
    fn label<'a>(&'a self, key: u64, buf: &'a mut [u8; 8]) -> &'a [u8] {
        if key >> 56 == LONG {
            self.text(key as u32, (key >> 32) as u32 & 0xFF_FFFF)
        } else {
            *buf = key.to_le_bytes();
            &buf[..(key >> 56) as usize]
        }
    }

    /// The literal child of `parent` named `label`.
    #[inline]
    fn child(&self, parent: u32, label: &str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let label = label.as_bytes();
        let short = short_key(label);
        let mask = self.slots.len() - 1;
        let mut at = hash(parent, label) & mask;
        loop {
            let slot = self.slots[at];
            if slot == NONE {
                return None;
            }
            let n = &self.nodes[slot as usize];
            if n.parent() == parent
                && match short {
                    Some(key) => n.key == key,
                    None => n.key >> 56 == LONG && self.label(n.key, &mut [0; 8]) == label,
                }
            {
                return Some(slot);
            }
            at = (at + 1) & mask;
        }
    }

    /// The position of `label` in the label text, stored once (while
    /// building).
    fn intern(&mut self, label: &str) -> u32 {
        if needs_growth(self.distinct, self.interned.len()) {
            let mut table = vec![(NONE, NONE); table_len(self.distinct)];
            let mask = table.len() - 1;
            for &(at, len) in self.interned.iter().filter(|e| e.0 != NONE) {
                let mut i = hash(0, self.text(at, len)) & mask;
                while table[i].0 != NONE {
                    i = (i + 1) & mask;
                }
                table[i] = (at, len);
            }
            self.interned = table;
        }
        let mask = self.interned.len() - 1;
        let mut i = hash(0, label.as_bytes()) & mask;
        loop {
            let (at, len) = self.interned[i];
            if at == NONE {
                break;
            }
            if self.text(at, len) == label.as_bytes() {
                return at;
            }
            i = (i + 1) & mask;
        }
        let at = self.labels.len() as u32;
        self.labels.push_str(label);
        self.interned[i] = (at, label.len() as u32);
        self.distinct += 1;
        at
    }

    fn add_child(&mut self, parent: u32, label: &str) -> u32 {
        if needs_growth(self.linked, self.slots.len()) {
            let mut slots = vec![NONE; table_len(self.linked)];
            let mask = slots.len() - 1;
            for (i, n) in self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.key != UNLINKED)
            {
                let mut at = hash(n.parent(), self.label(n.key, &mut [0; 8])) & mask;
                while slots[at] != NONE {
                    at = (at + 1) & mask;
                }
                slots[at] = i as u32;
            }
            self.slots = slots;
        }
        let key = short_key(label.as_bytes())
            .unwrap_or_else(|| long_key(self.intern(label), label.len()));
        let child = self.push_node(Node {
            key,
            parent,
            ..Node::EMPTY
        });
        self.nodes[parent as usize].parent |= LITERAL;
        let mask = self.slots.len() - 1;
        let mut at = hash(parent, label.as_bytes()) & mask;
        while self.slots[at] != NONE {
            at = (at + 1) & mask;
        }
        self.slots[at] = child;
        self.linked += 1;
        child
    }

    /// Appends `node`, returning its position.
    fn push_node(&mut self, node: Node) -> u32 {
        let at = self.nodes.len() as u32;
        assert!(at < LITERAL, "a trie of over 2^31 nodes");
        self.nodes.push(node);
        at
    }

    /// Releases the spare capacity left by the inserts, and what only
    /// inserts need (later inserts still work, without sharing labels).
    pub fn shrink_to_fit(&mut self) {
        self.nodes.shrink_to_fit();
        self.labels.shrink_to_fit();
        self.values.shrink_to_fit();
        self.interned = Vec::new();
        self.distinct = 0;
    }

    /// Adds `value` to the list starting at `head` unless it holds it.
    fn push_value(&mut self, head: u32, value: V) -> u32 {
        let mut at = head;
        while at != NONE {
            let (v, next) = &self.values[at as usize];
            if *v == value {
                return head;
            }
            at = *next;
        }
        self.values.push((value, head));
        (self.values.len() - 1) as u32
    }

    /// Adds `value` under `filter`. The same pair twice is stored once.
    pub fn insert(&mut self, filter: &Filter, value: V) {
        let mut node = 0u32;
        for level in filter.as_str().split('/') {
            node = match level {
                "#" => {
                    let head = self.nodes[node as usize].rest;
                    self.nodes[node as usize].rest = self.push_value(head, value);
                    return;
                }
                "+" => match self.nodes[node as usize].plus {
                    NONE => {
                        let n = self.push_node(Node::EMPTY);
                        self.nodes[node as usize].plus = n;
                        n
                    }
                    n => n,
                },
                lit => match self.child(node, lit) {
                    Some(n) => n,
                    None => self.add_child(node, lit),
                },
            };
        }
        let head = self.nodes[node as usize].exact;
        self.nodes[node as usize].exact = self.push_value(head, value);
    }

    /// Calls `f` for every value whose filter matches `topic`. A value
    /// inserted under several matching filters is reported once per filter.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&V)) {
        self.find(topic, &mut |v| {
            f(v);
            false
        });
    }

    /// True when at least one filter matches `topic`.
    pub fn matches_any(&self, topic: &str) -> bool {
        self.find(topic, &mut |_| true)
    }

    /// Calls `f` for the values whose filter matches `topic` until it
    /// returns true; returns whether it did.
    pub fn find(&self, topic: &str, f: &mut impl FnMut(&V) -> bool) -> bool {
        let dollar = topic.starts_with('$');
        self.walk(0, Some(topic), !dollar, f)
    }

    fn list(&self, mut at: u32, f: &mut impl FnMut(&V) -> bool) -> bool {
        while at != NONE {
            let (v, next) = &self.values[at as usize];
            if f(v) {
                return true;
            }
            at = *next;
        }
        false
    }

    fn walk(
        &self,
        node: u32,
        rest: Option<&str>,
        wild_ok: bool,
        f: &mut impl FnMut(&V) -> bool,
    ) -> bool {
        let n = self.nodes[node as usize];
        if wild_ok && self.list(n.rest, f) {
            return true;
        }
        let Some(rest) = rest else {
            return self.list(n.exact, f);
        };
        // A byte search: `split_once('/')` goes through a UTF-8 char
        // searcher, a tenth of the walk's time for levels this short.
        let (level, tail) = match rest.bytes().position(|b| b == b'/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        if let Some(child) = n.literal().then(|| self.child(node, level)).flatten() {
            if self.walk(child, tail, true, f) {
                return true;
            }
        }
        n.plus != NONE && wild_ok && self.walk(n.plus, tail, true, f)
    }
}

/// Reduces a set of filters to those not covered by another one, so that a
/// broker delivers each message once even when configured filters overlap
/// (`home/#` and `home/esp/#`, or a helloTopic under a watch filter).
pub fn minimal_cover(filters: &[Filter]) -> Vec<Filter> {
    let mut all: Vec<Filter> = filters.to_vec();
    all.sort();
    all.dedup();
    let mut index: TopicIndex<usize> = TopicIndex::new();
    for (i, f) in all.iter().enumerate() {
        index.insert(f, i);
    }
    // Distinct filters never cover each other both ways, so dropping every
    // filter covered by another one keeps exactly the widest ones.
    (0..all.len())
        .filter(|&i| !covered(&index, &all, i))
        .map(|i| all[i].clone())
        .collect()
}

/// Is `list[me]` covered by another filter of `list` (all in `index`)?
/// Every filter covering it matches the topic made of its levels with `+`
/// replaced by a NUL level (which no literal
/// can equal) and without its `#`: those are the candidates, each then
/// checked exactly.
fn covered(index: &TopicIndex<usize>, list: &[Filter], me: usize) -> bool {
    let f = &list[me];
    let probe: Vec<&str> = f
        .as_str()
        .split('/')
        .filter(|l| *l != "#")
        .map(|l| if l == "+" { "\0" } else { l })
        .collect();
    let mut hit = false;
    index.for_each_match(&probe.join("/"), |&i| hit |= i != me && list[i].covers(f));
    hit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(filter: &str, topic: &str) -> bool {
        Filter::parse(filter).unwrap().matches(topic)
    }

    #[test]
    fn mqtt_wildcards() {
        assert!(m("#", "a"));
        assert!(m("#", "a/b/c"));
        assert!(!m("#", "$SYS/x"));
        assert!(m("+/+", "a/b"));
        assert!(!m("+/+", "a"));
        assert!(!m("+/+", "a/b/c"));
        assert!(m("+/+", "/b"));
        assert!(m("a/+/c", "a/b/c"));
        assert!(!m("a/+/c", "a/b/d"));
        assert!(m("a/#", "a"));
        assert!(m("a/#", "a/b"));
        assert!(!m("a/#", "ab"));
        assert!(!m("a/b/#", "a/bc"));
        assert!(m("a/b/#", "a/b"));
        assert!(m("a/+/#", "a/x"));
        assert!(!m("a/+/#", "a"));
    }

    #[test]
    fn wildcard_free_filter_matches_below_at_level_boundaries() {
        assert!(m("home/agents", "home/agents"));
        assert!(m("home/agents", "home/agents/x"));
        assert!(m("home/agents", "home/agents/x/y"));
        assert!(!m("home/agents", "home/agentsX"));
        assert!(!m("home/agents", "home"));
        assert_eq!(Filter::parse("a/b").unwrap().as_str(), "a/b/#");
    }

    #[test]
    fn invalid_filters_are_rejected() {
        assert_eq!(Filter::parse(""), Err(FilterError::Empty));
        assert_eq!(Filter::parse("a/#/b"), Err(FilterError::HashNotLast));
        assert_eq!(
            Filter::parse("a/b#"),
            Err(FilterError::WildcardNotWholeLevel)
        );
        assert_eq!(
            Filter::parse("a+/b"),
            Err(FilterError::WildcardNotWholeLevel)
        );
        assert_eq!(Filter::parse("a\0b"), Err(FilterError::NulCharacter));
        assert!(Filter::parse("a//b").is_ok());
        assert_eq!(validate_topic("a/+"), Err(FilterError::WildcardInTopic));
        assert_eq!(validate_topic(""), Err(FilterError::Empty));
        assert!(validate_topic("home/esp04").is_ok());
    }

    #[test]
    fn literal_prefix_stops_at_first_wildcard() {
        let p = |f: &str| Filter::parse(f).unwrap().literal_prefix().to_string();
        assert_eq!(p("a/b/#"), "a/b");
        assert_eq!(p("a/b"), "a/b");
        assert_eq!(p("a/+/c"), "a");
        assert_eq!(p("#"), "");
        assert_eq!(p("+/x"), "");
    }

    #[test]
    fn index_agrees_with_reference_matcher() {
        let filters = [
            "#", "+", "+/+", "a", "a/#", "a/+", "a/+/c", "a/b/#", "a/bc", "+/b/#", "/", "//x",
            "$SYS/#", "x/+/+/#",
        ];
        let topics = [
            "a", "a/b", "a/bc", "a/b/c", "a/x/c", "b", "b/b", "x/b/z", "/", "", "//x", "$SYS/a",
            "x/1/2", "x/1/2/3", "ab",
        ];
        let mut index = TopicIndex::new();
        let parsed: Vec<Filter> = filters.iter().map(|f| Filter::parse(f).unwrap()).collect();
        for (i, f) in parsed.iter().enumerate() {
            index.insert(f, i);
        }
        for t in topics {
            let mut got = Vec::new();
            index.for_each_match(t, |&i| got.push(i));
            got.sort();
            let want: Vec<usize> = (0..parsed.len())
                .filter(|&i| parsed[i].matches(t))
                .collect();
            assert_eq!(got, want, "topic {t:?}");
        }
    }

    #[test]
    fn short_labels_held_in_their_node_and_long_ones_in_the_text_match_exactly() {
        // Labels of every length around the 7 bytes held in a node and the
        // 8 bytes of a word, sharing prefixes, multi-byte characters too.
        let base = "abcdefghij\u{e9}klmnopq";
        let mut labels: Vec<String> = (1..base.len())
            .filter(|&n| base.is_char_boundary(n))
            .map(|n| base[..n].to_string())
            .collect();
        labels.extend(
            [
                "abcdefg\u{e9}",
                "bcdefgh",
                "a\u{1}",
                "\u{e9}",
                "sensors",
                "sensorz",
            ]
            .map(String::from),
        );
        let mut index = TopicIndex::new();
        for (i, l) in labels.iter().enumerate() {
            index.insert(&Filter::parse(&format!("home/{l}/x")).unwrap(), i);
        }
        index.shrink_to_fit();
        for (i, l) in labels.iter().enumerate() {
            let mut got = Vec::new();
            index.for_each_match(&format!("home/{l}/x"), |&v| got.push(v));
            assert_eq!(got, [i], "label {l:?}");
        }
        // Same bytes as a short label plus a NUL, or one byte more or less.
        for t in [
            "home/abc\0/x",
            "home/ab/x/y",
            "home/abcdefgh\0/x",
            "home/sensor/x",
            "home/x/x",
        ] {
            let mut got = Vec::new();
            index.for_each_match(t, |&v| got.push(v));
            let want: Vec<usize> = (0..labels.len())
                .filter(|&i| {
                    Filter::parse(&format!("home/{}/x", labels[i]))
                        .unwrap()
                        .matches(t)
                })
                .collect();
            assert_eq!(got, want, "topic {t:?}");
        }
    }

    #[test]
    fn every_child_is_found_through_growth_compaction_and_later_inserts() {
        // The table of literal children grows at half full and probes
        // wrap around its end; compaction drops what only inserts need.
        // Each size is checked after every insert up to 300 devices, then
        // 5,000 at once.
        let device = |i: usize| format!("home/d{i}/sensors/#");
        let found = |index: &TopicIndex<usize>, i: usize| {
            let mut got = Vec::new();
            index.for_each_match(&format!("home/d{i}/sensors/t"), |&v| got.push(v));
            got
        };
        let mut index = TopicIndex::new();
        for n in 0..300 {
            index.insert(&Filter::parse(&device(n)).unwrap(), n);
            if n % 2 == 1 {
                index.shrink_to_fit();
            }
            for i in 0..=n {
                assert_eq!(found(&index, i), [i], "device {i} of {}", n + 1);
            }
            assert!(found(&index, n + 1).is_empty());
            assert!(!index.matches_any(&format!("home/d{n}/state")));
        }
        for n in 300..5_000 {
            index.insert(&Filter::parse(&device(n)).unwrap(), n);
        }
        index.shrink_to_fit();
        for i in 0..5_000 {
            assert_eq!(found(&index, i), [i]);
        }
        for i in 5_000..6_000 {
            assert!(found(&index, i).is_empty());
        }
    }

    #[test]
    fn topics_and_filters_longer_than_mqtt_allows_are_rejected() {
        let long = "a".repeat(MAX_TOPIC_BYTES + 1);
        assert_eq!(validate_topic(&long), Err(FilterError::TooLong));
        assert_eq!(Filter::parse(&long), Err(FilterError::TooLong));
        assert!(validate_topic(&long[1..]).is_ok());
        // Room for the `/#` a wildcard-free filter gets.
        assert!(Filter::parse(&long[3..]).is_ok_and(|f| f.as_str().len() == MAX_TOPIC_BYTES));
        assert_eq!(Filter::parse(&long[2..]), Err(FilterError::TooLong));
    }

    #[test]
    fn index_handles_deep_and_odd_topics() {
        let mut index = TopicIndex::new();
        index.insert(&Filter::parse("a/#").unwrap(), 1);
        let deep = "a/".repeat(10_000);
        assert!(index.matches_any(&deep));
        assert!(!index.matches_any("b/".repeat(10_000).as_str()));
        assert!(!index.matches_any("\u{fffd}/\u{1}"));
    }

    #[test]
    fn covers_is_filter_inclusion() {
        let c = |a: &str, b: &str| Filter::parse(a).unwrap().covers(&Filter::parse(b).unwrap());
        assert!(c("#", "a/b"));
        assert!(c("a/#", "a/b/#"));
        assert!(!c("a/+", "a/b/c"));
        assert!(c("a/+/#", "a/b/c"));
        assert!(!c("a/b/#", "a/#"));
        assert!(!c("a/+", "a/#"));
        assert!(!c("+/+", "a/b")); // a/b means a/b/#
        assert!(c("+/#", "a/b"));
    }

    #[test]
    fn minimal_cover_drops_covered_filters() {
        let fs: Vec<Filter> = [
            "home/#",
            "home/esp/#",
            "other/x",
            "other/x/y",
            "+/z/#",
            "q/z/1",
        ]
        .iter()
        .map(|f| Filter::parse(f).unwrap())
        .collect();
        let cover: Vec<String> = minimal_cover(&fs).iter().map(|f| f.to_string()).collect();
        assert_eq!(cover.len(), 3, "{cover:?}");
        assert!(cover.contains(&"home/#".to_string()));
        assert!(cover.contains(&"other/x/#".to_string()));
        assert!(cover.contains(&"+/z/#".to_string()));
    }
}
