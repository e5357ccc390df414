use crate::cmp::{Cmp, MemtableKeyCmp};
use crate::rand::rngs::StdRng;
use crate::rand::{RngCore, SeedableRng};
use crate::types::LdbIterator;

use bytes::Bytes;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::mem::size_of;
use std::ptr::NonNull;
use std::rc::Rc;

const MAX_HEIGHT: usize = 12;
const BRANCHING_FACTOR: u32 = 4;

/// A node in a skipmap contains links to the next node and others that are further away (skips);
/// `skips[0]` is the immediate element after, that is, the element contained in `next`.
///
/// Compact, for a memory table holds tens of thousands of nodes (and `SkipMapIter::current`
/// copies key and value out anyway): 56 bytes and two allocations per node, the node and its
/// key and value in one boxed slice (a memory table's values are empty: its keys hold them),
/// with the links of the 15 nodes in 16 that are one or two levels high held in the node. It
/// was 56 bytes and three allocations (the links on their own), 96 bytes and four before.
struct Node {
    next: Option<Box<Node>>,
    /// The key, then the value.
    data: Box<[u8]>,
    key_len: usize,
    skips: Skips,
}

/// A link to a node (8 bytes: `Option<*mut Node>` takes 16).
type Link = Option<NonNull<Node>>;

/// A node's links, one per level.
enum Skips {
    One([Link; 1]),
    Two([Link; 2]),
    More(Box<[Link]>),
}

impl Skips {
    fn new(height: usize) -> Skips {
        match height {
            1 => Skips::One([None]),
            2 => Skips::Two([None; 2]),
            _ => Skips::More(vec![None; height].into_boxed_slice()),
        }
    }

    /// Bytes allocated outside the node.
    fn heap_size(&self) -> usize {
        match self {
            Skips::More(links) => links.len() * size_of::<Link>(),
            _ => 0,
        }
    }
}

impl std::ops::Deref for Skips {
    type Target = [Link];
    fn deref(&self) -> &Self::Target {
        match self {
            Skips::One(links) => links,
            Skips::Two(links) => links,
            Skips::More(links) => links,
        }
    }
}

impl std::ops::DerefMut for Skips {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Skips::One(links) => links,
            Skips::Two(links) => links,
            Skips::More(links) => links,
        }
    }
}

impl Node {
    fn new(key: Vec<u8>, value: Vec<u8>, height: usize) -> Node {
        let key_len = key.len();
        Node {
            next: None,
            data: join(key, value),
            key_len,
            skips: Skips::new(height),
        }
    }

    fn key(&self) -> &[u8] {
        &self.data[..self.key_len]
    }

    fn value(&self) -> &[u8] {
        &self.data[self.key_len..]
    }
}

/// Key and value in one boxed slice; without a copy when the value is empty.
fn join(mut key: Vec<u8>, value: Vec<u8>) -> Box<[u8]> {
    if !value.is_empty() {
        key.reserve_exact(value.len());
        key.extend_from_slice(&value);
    }
    key.into_boxed_slice()
}

/// Implements the backing store for a `MemTable`. The important methods are `insert()` and
/// `contains()`; in order to get full key and value for an entry, use a `SkipMapIter` instance,
/// `seek()` to the key to look up (this is as fast as any lookup in a skip map), and then call
/// `current()`.
struct InnerSkipMap {
    head: Box<Node>,
    /// The last node inserted (null before the first insert) and its predecessor at every
    /// level (itself on the levels it has): the search for a greater key starts from there
    /// rather than from the head. A batch written in key order then costs a few comparisons
    /// per key instead of a search of the whole map.
    last: *mut Node,
    finger: [*mut Node; MAX_HEIGHT],
    rand: StdRng,
    len: usize,
    // approximation of memory used.
    approx_mem: usize,
    cmp: Rc<Box<dyn Cmp>>,
}

impl Drop for InnerSkipMap {
    // Avoid possible stack overflow caused by dropping many nodes.
    fn drop(&mut self) {
        let mut next_node = self.head.next.take();
        while let Some(mut boxed_node) = next_node {
            next_node = boxed_node.next.take();
        }
    }
}

pub struct SkipMap {
    map: Rc<RefCell<InnerSkipMap>>,
}

impl SkipMap {
    /// Returns a SkipMap that wraps the comparator inside a MemtableKeyCmp.
    pub fn new_memtable_map(cmp: Rc<Box<dyn Cmp>>) -> SkipMap {
        SkipMap::new(Rc::new(Box::new(MemtableKeyCmp(cmp))))
    }

    /// Returns a SkipMap that uses the specified comparator.
    pub fn new(cmp: Rc<Box<dyn Cmp>>) -> SkipMap {
        let mut head = Box::new(Node::new(Vec::new(), Vec::new(), MAX_HEIGHT));
        let headp = head.as_mut() as *mut Node;
        SkipMap {
            map: Rc::new(RefCell::new(InnerSkipMap {
                head,
                last: std::ptr::null_mut(),
                finger: [headp; MAX_HEIGHT],
                rand: StdRng::seed_from_u64(0xdeadbeef),
                len: 0,
                approx_mem: size_of::<Self>() + MAX_HEIGHT * size_of::<Link>(),
                cmp,
            })),
        }
    }

    pub fn len(&self) -> usize {
        self.map.borrow().len
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn approx_memory(&self) -> usize {
        self.map.borrow().approx_mem
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.borrow().contains(key)
    }

    /// inserts a key into the table. key may not be empty.
    pub fn insert(&mut self, key: Vec<u8>, val: Vec<u8>) {
        assert!(!key.is_empty());
        self.map.borrow_mut().insert(key, val, None);
    }

    /// Like `insert`, but if the entry following the key's place is one that `replaces` says
    /// the key replaces, that entry takes the new key and value in place (and keeps its place:
    /// the caller's `replaces` must only accept the key's immediate successor in the order).
    /// Returns whether an entry was replaced.
    pub fn insert_or_replace(
        &mut self,
        key: Vec<u8>,
        val: Vec<u8>,
        replaces: &dyn Fn(&[u8]) -> bool,
    ) -> bool {
        assert!(!key.is_empty());
        self.map.borrow_mut().insert(key, val, Some(replaces))
    }

    pub fn iter(&self) -> SkipMapIter {
        SkipMapIter {
            map: self.map.clone(),
            current: self.map.borrow().head.as_ref() as *const Node,
        }
    }
}

impl InnerSkipMap {
    fn random_height(&mut self) -> usize {
        let mut height = 1;

        while height < MAX_HEIGHT && self.rand.next_u32().is_multiple_of(BRANCHING_FACTOR) {
            height += 1;
        }

        height
    }

    fn contains(&self, key: &[u8]) -> bool {
        if let Some(n) = self.get_greater_or_equal(key) {
            n.key().starts_with(key)
        } else {
            false
        }
    }

    /// Returns the node with key or the next greater one
    /// Returns None if the given key lies past the greatest key in the table.
    fn get_greater_or_equal<'a>(&'a self, key: &[u8]) -> Option<&'a Node> {
        // Start at the highest skip link of the head node, and work down from there
        let mut current = self.head.as_ref() as *const Node;
        let mut level = self.head.skips.len() - 1;

        loop {
            let current_node = unsafe { &*current };
            if let Some(next) = current_node.skips[level] {
                let next = unsafe { &*next.as_ptr() };
                let ord = self.cmp.cmp(next.key(), key);

                match ord {
                    Ordering::Less => {
                        current = next;
                        continue;
                    }
                    Ordering::Equal => return Some(next),
                    Ordering::Greater => {
                        if level == 0 {
                            return Some(next);
                        }
                    }
                }
            }
            if level == 0 {
                break;
            }
            level -= 1;
        }

        unsafe {
            if (current.is_null() || current == self.head.as_ref())
                || (self.cmp.cmp((*current).key(), key) == Ordering::Less)
            {
                None
            } else {
                Some(&(*current))
            }
        }
    }

    /// Finds the node immediately before the node with key.
    /// Returns None if no smaller key was found.
    fn get_next_smaller<'a>(&'a self, key: &[u8]) -> Option<&'a Node> {
        // Start at the highest skip link of the head node, and work down from there
        let mut current = self.head.as_ref() as *const Node;
        let mut level = self.head.skips.len() - 1;

        loop {
            let current_node = unsafe { &*current };
            if let Some(next) = current_node.skips[level] {
                let next = unsafe { &*next.as_ptr() };
                let ord = self.cmp.cmp(next.key(), key);

                if let Ordering::Less = ord {
                    current = next;
                    continue;
                }
            }

            if level == 0 {
                break;
            }
            level -= 1;
        }

        unsafe {
            if current.is_null() || current == self.head.as_ref() {
                // If we're past the end for some reason or at the head
                None
            } else if self.cmp.cmp((*current).key(), key) != Ordering::Less {
                None
            } else {
                Some(&(*current))
            }
        }
    }

    fn insert(
        &mut self,
        key: Vec<u8>,
        val: Vec<u8>,
        replaces: Option<&dyn Fn(&[u8]) -> bool>,
    ) -> bool {
        assert!(!key.is_empty());

        // The node before the new one at every level.
        let head = self.head.as_mut() as *mut Node;
        let mut prevs: [*mut Node; MAX_HEIGHT] = [head; MAX_HEIGHT];
        let new_height = self.random_height();

        // Every node of the finger precedes a key greater than the last one inserted: such a key
        // is searched from the lowest level where the finger's next node is not before it (and
        // at least from the new node's top level), instead of from the head's top level.
        let ascending = !self.last.is_null()
            && self.cmp.cmp(unsafe { (*self.last).key() }, &key) == Ordering::Less;
        let mut level = MAX_HEIGHT - 1;
        let mut current = head;
        if ascending {
            let mut l = 0;
            while l + 1 < MAX_HEIGHT {
                match unsafe { (&(*self.finger[l]).skips)[l] } {
                    Some(next)
                        if self.cmp.cmp(unsafe { (*next.as_ptr()).key() }, &key)
                            == Ordering::Less =>
                    {
                        l += 1
                    }
                    _ => break,
                }
            }
            level = l.max(new_height - 1);
            current = self.finger[level];
            // Above it, the finger's nodes still precede the key.
            prevs[level + 1..].copy_from_slice(&self.finger[level + 1..]);
        }

        // Find the node after which we want to insert the new node; this is the node with the key
        // immediately smaller than the key to be inserted.
        loop {
            let current_node = unsafe { &*current };
            if let Some(next) = current_node.skips[level] {
                let next = unsafe { &mut *next.as_ptr() };
                // If the wanted position is after the current node
                let ord = self.cmp.cmp(next.key(), &key);

                assert!(ord != Ordering::Equal, "No duplicates allowed");

                if ord == Ordering::Less {
                    current = next;
                    continue;
                }
            }

            prevs[level] = current;

            if level == 0 {
                break;
            } else {
                level -= 1;
            }
        }

        // The entry after the key's place, replaced in place: its links stay, so the order holds.
        if let (Some(replaces), Some(next)) = (replaces, unsafe { (&(*current).skips)[0] }) {
            let node = unsafe { &mut *next.as_ptr() };
            if replaces(node.key()) {
                self.approx_mem = self.approx_mem + key.len() + val.len() - node.data.len();
                node.key_len = key.len();
                node.data = join(key, val);
                (0..MAX_HEIGHT).for_each(|i| {
                    self.finger[i] = if i < node.skips.len() {
                        next.as_ptr()
                    } else {
                        prevs[i]
                    };
                });
                self.last = next.as_ptr();
                return true;
            }
        }

        // Construct new node
        let mut new = Box::new(Node::new(key, val, new_height));
        let newp = new.as_mut() as *mut Node;

        (0..new_height).for_each(|i| {
            let prev = unsafe { &mut *prevs[i] };
            new.skips[i] = prev.skips[i];
            prev.skips[i] = NonNull::new(newp);
        });
        (0..MAX_HEIGHT).for_each(|i| {
            self.finger[i] = if i < new_height { newp } else { prevs[i] };
        });
        self.last = newp;

        let added_mem = size_of::<Node>() + new.skips.heap_size() + new.data.len();
        self.approx_mem += added_mem;
        self.len += 1;

        // Insert new node by first replacing the previous element's next field with None and
        // assigning its value to new.next...
        new.next = unsafe { (*current).next.take() };
        // ...and then setting the previous element's next field to the new node
        unsafe {
            let _ = (*current).next.replace(new);
        };
        false
    }
    /// Runs through the skipmap and prints everything including addresses
    fn dbg_print(&self) {
        let mut current = self.head.as_ref() as *const Node;
        loop {
            let current_node = unsafe { &*current };
            eprintln!(
                "{:?} {:?}/{:?} - {:?}",
                current,
                current_node.key(),
                current_node.value(),
                &current_node.skips[..]
            );
            if let Some(next) = current_node.skips[0] {
                current = next.as_ptr();
            } else {
                break;
            }
        }
    }
}

pub struct SkipMapIter {
    map: Rc<RefCell<InnerSkipMap>>,
    current: *const Node,
}

impl SkipMapIter {
    /// The current key, borrowed: `current()` copies it (and the value).
    pub fn current_key(&self) -> Option<&[u8]> {
        if self.valid() {
            // The node lives as long as the map, which this iterator holds.
            unsafe { Some((*self.current).key()) }
        } else {
            None
        }
    }
}

impl LdbIterator for SkipMapIter {
    fn advance(&mut self) -> bool {
        // we first go to the next element, then return that -- in order to skip the head node
        let r = unsafe {
            (*self.current)
                .next
                .as_ref()
                .map(|next| {
                    self.current = next.as_ref() as *const Node;
                    true
                })
                .unwrap_or(false)
        };
        if !r {
            self.reset();
        }
        r
    }
    fn reset(&mut self) {
        self.current = self.map.borrow().head.as_ref();
    }
    fn seek(&mut self, key: &[u8]) {
        if let Some(node) = self.map.borrow().get_greater_or_equal(key) {
            self.current = node as *const Node;
            return;
        }
        self.reset();
    }
    fn valid(&self) -> bool {
        self.current != self.map.borrow().head.as_ref()
    }
    fn current(&self) -> Option<(Bytes, Bytes)> {
        if self.valid() {
            unsafe {
                Some((
                    Bytes::copy_from_slice((*self.current).key()),
                    Bytes::copy_from_slice((*self.current).value()),
                ))
            }
        } else {
            None
        }
    }
    fn prev(&mut self) -> bool {
        // Going after the original implementation here; we just seek to the node before current().
        if self.valid() {
            if let Some(prev) = self
                .map
                .borrow()
                .get_next_smaller(unsafe { (*self.current).key() })
            {
                self.current = prev as *const Node;
                if !prev.key().is_empty() {
                    return true;
                }
            }
        }
        self.reset();
        false
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::cmp::MemtableKeyCmp;
    use crate::options;
    use crate::test_util::{test_iterator_properties, LdbIteratorIter};
    use crate::types::current_key_val;

    pub fn make_skipmap() -> SkipMap {
        let mut skm = SkipMap::new(options::for_test().cmp);
        let keys = vec![
            "aba", "abb", "abc", "abd", "abe", "abf", "abg", "abh", "abi", "abj", "abk", "abl",
            "abm", "abn", "abo", "abp", "abq", "abr", "abs", "abt", "abu", "abv", "abw", "abx",
            "aby", "abz",
        ];

        for k in keys {
            skm.insert(k.as_bytes().to_vec(), "def".as_bytes().to_vec());
        }
        skm
    }

    #[test]
    fn test_insert_runs_in_any_order() {
        // Ascending runs (the finger), descending keys and jumps back, each key once.
        let mut order: Vec<u32> = Vec::new();
        let mut x: u32 = 12345;
        for run in 0..2000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let start = x % 50_000;
            let len = 1 + (x >> 8) % 40;
            if run % 3 == 0 {
                order.extend((start..start + len).rev());
            } else {
                order.extend(start..start + len);
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        order.retain(|k| seen.insert(*k));
        let mut skm = SkipMap::new(options::for_test().cmp);
        for k in &order {
            skm.insert(format!("{k:08}").into_bytes(), k.to_be_bytes().to_vec());
        }
        assert_eq!(skm.len(), seen.len());
        let mut it = skm.iter();
        let mut got = Vec::new();
        while it.advance() {
            let (k, v) = current_key_val(&it).unwrap();
            assert_eq!(
                String::from_utf8(k).unwrap(),
                format!("{:08}", u32::from_be_bytes(v[..].try_into().unwrap()))
            );
            got.push(u32::from_be_bytes(v[..].try_into().unwrap()));
        }
        assert_eq!(got, seen.into_iter().collect::<Vec<_>>());
        for k in order.iter().step_by(7) {
            assert!(skm.contains(format!("{k:08}").as_bytes()));
        }
        assert_levels_sorted(&skm);
    }

    /// Every level is a sorted sublist of the one below; level 0 holds every entry.
    fn assert_levels_sorted(skm: &SkipMap) {
        let map = skm.map.borrow();
        let mut below: Vec<Vec<u8>> = Vec::new();
        for level in 0..MAX_HEIGHT {
            let mut keys = Vec::new();
            let mut node = map.head.skips[level];
            while let Some(n) = node {
                let n = unsafe { &*n.as_ptr() };
                keys.push(n.key().to_vec());
                node = n.skips[level];
            }
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "level {level}");
            if level > 0 {
                assert!(
                    keys.iter().all(|k| below.binary_search(k).is_ok()),
                    "level {level}"
                );
            } else {
                assert_eq!(keys.len(), skm.len());
            }
            below = keys;
        }
    }

    #[test]
    fn test_insert_or_replace_keeps_one_entry_per_key() {
        // Keys are an 8-digit id then a generation counting down, so a newer generation sorts
        // just before the older ones of its id, as in a memory table. Ids come in ascending
        // runs, descending runs and jumps back; each is written over and over.
        let key = |id: u32, generation: u32| format!("{id:08}{:08}", 99_999_999 - generation);
        let mut generations = std::collections::BTreeMap::new();
        let mut skm = SkipMap::new(options::for_test().cmp);
        let mut x: u32 = 4242;
        let mut replaced = 0;
        for run in 0..3000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let start = x % 2000;
            let ids: Vec<u32> = if run % 3 == 0 {
                (start..start + 1 + (x >> 8) % 30).rev().collect()
            } else {
                (start..start + 1 + (x >> 8) % 30).collect()
            };
            for id in ids {
                let generation = generations.entry(id).and_modify(|g| *g += 1).or_insert(0);
                let k = key(id, *generation).into_bytes();
                let prefix = k[..8].to_vec();
                let value = format!("v{generation}").into_bytes();
                let same_id = |held: &[u8]| held[..8] == prefix[..];
                if skm.insert_or_replace(k, value, &same_id) {
                    replaced += 1;
                }
            }
        }
        assert_eq!(skm.len(), generations.len());
        assert_eq!(
            replaced + skm.len(),
            generations.values().map(|g| *g as usize + 1).sum()
        );
        let mut it = skm.iter();
        let mut newest = generations.iter();
        while it.advance() {
            let (k, v) = current_key_val(&it).unwrap();
            let (id, generation) = newest.next().unwrap();
            assert_eq!(k, key(*id, *generation).into_bytes());
            assert_eq!(v, format!("v{generation}").into_bytes());
        }
        assert!(newest.next().is_none());
        assert_levels_sorted(&skm);
        // The memory count follows what the entries hold now: the same as a map built from the
        // newest entries only, but for the links (their heights were drawn independently).
        let held: usize = generations
            .iter()
            .map(|(id, g)| key(*id, *g).len() + format!("v{g}").len())
            .sum();
        let map = skm.map.borrow();
        let mut links = 0;
        let mut outside = 0;
        let mut node = map.head.skips[0];
        while let Some(n) = node {
            let n = unsafe { &*n.as_ptr() };
            if n.skips.len() > 2 {
                outside += n.skips.len();
            }
            links += n.skips.len();
            node = n.skips[0];
        }
        // Links beyond two levels are allocated on their own, and only those (about one node
        // in sixteen).
        assert!(
            outside > 0 && outside < links / 4,
            "{outside} of {links} links outside"
        );
        let fresh = SkipMap::new(options::for_test().cmp).approx_memory();
        assert_eq!(
            map.approx_mem,
            fresh + held + skm.len() * size_of::<Node>() + outside * size_of::<Link>()
        );
        assert_eq!(size_of::<Node>(), 56);
    }

    #[test]
    fn test_insert() {
        let skm = make_skipmap();
        assert_eq!(skm.len(), 26);
        skm.map.borrow().dbg_print();
    }

    #[test]
    #[should_panic]
    fn test_no_dupes() {
        let mut skm = make_skipmap();
        // this should panic
        skm.insert("abc".as_bytes().to_vec(), "def".as_bytes().to_vec());
        skm.insert("abf".as_bytes().to_vec(), "def".as_bytes().to_vec());
    }

    #[test]
    fn test_contains() {
        let skm = make_skipmap();
        assert!(skm.contains(b"aby"));
        assert!(skm.contains(b"abc"));
        assert!(skm.contains(b"abz"));
        assert!(!skm.contains(b"ab{"));
        assert!(!skm.contains(b"123"));
        assert!(!skm.contains(b"aaa"));
        assert!(!skm.contains(b"456"));
    }

    #[test]
    fn test_find() {
        let skm = make_skipmap();
        assert_eq!(
            skm.map.borrow().get_greater_or_equal(b"abf").unwrap().key(),
            b"abf"
        );
        assert!(skm.map.borrow().get_greater_or_equal(b"ab{").is_none());
        assert_eq!(
            skm.map.borrow().get_greater_or_equal(b"aaa").unwrap().key(),
            b"aba"
        );
        assert_eq!(
            skm.map.borrow().get_greater_or_equal(b"ab").unwrap().key(),
            b"aba"
        );
        assert_eq!(
            skm.map.borrow().get_greater_or_equal(b"abc").unwrap().key(),
            b"abc"
        );
        assert!(skm.map.borrow().get_next_smaller(b"ab0").is_none());
        assert_eq!(
            skm.map.borrow().get_next_smaller(b"abd").unwrap().key(),
            b"abc"
        );
        assert_eq!(
            skm.map.borrow().get_next_smaller(b"ab{").unwrap().key(),
            b"abz"
        );
    }

    #[test]
    fn test_empty_skipmap_find_memtable_cmp() {
        // Regression test: Make sure comparator isn't called with empty key.
        let cmp: Rc<Box<dyn Cmp>> = Rc::new(Box::new(MemtableKeyCmp(options::for_test().cmp)));
        let skm = SkipMap::new(cmp);

        let mut it = skm.iter();
        it.seek(b"abc");
        assert!(!it.valid());
    }

    #[test]
    fn test_skipmap_iterator_0() {
        let skm = SkipMap::new(options::for_test().cmp);
        let mut i = 0;

        for (_, _) in LdbIteratorIter::wrap(&mut skm.iter()) {
            i += 1;
        }

        assert_eq!(i, 0);
        assert!(!skm.iter().valid());
    }

    #[test]
    fn test_skipmap_iterator_init() {
        let skm = make_skipmap();
        let mut iter = skm.iter();

        assert!(!iter.valid());
        iter.next();
        assert!(iter.valid());
        iter.reset();
        assert!(!iter.valid());

        iter.next();
        assert!(iter.valid());
        iter.prev();
        assert!(!iter.valid());
    }

    #[test]
    fn test_skipmap_iterator() {
        let skm = make_skipmap();
        let mut i = 0;

        for (k, v) in LdbIteratorIter::wrap(&mut skm.iter()) {
            assert!(!k.is_empty());
            assert!(!v.is_empty());
            i += 1;
        }
        assert_eq!(i, 26);
    }

    #[test]
    fn test_skipmap_iterator_seek_valid() {
        let skm = make_skipmap();
        let mut iter = skm.iter();

        iter.next();
        assert!(iter.valid());
        assert_eq!(current_key_val(&iter).unwrap().0, "aba".as_bytes().to_vec());
        iter.seek(b"abz");
        assert_eq!(
            current_key_val(&iter).unwrap(),
            ("abz".as_bytes().to_vec(), "def".as_bytes().to_vec())
        );
        // go back to beginning
        iter.seek(b"aba");
        assert_eq!(
            current_key_val(&iter).unwrap(),
            (b"aba".to_vec(), b"def".to_vec())
        );

        iter.seek(b"");
        assert!(iter.valid());
        iter.prev();
        assert!(!iter.valid());

        while iter.advance() {}
        assert!(!iter.valid());
        assert!(!iter.prev());
        assert_eq!(current_key_val(&iter), None);
    }

    #[test]
    fn test_skipmap_behavior() {
        let mut skm = SkipMap::new(options::for_test().cmp);
        let keys = vec!["aba", "abb", "abc", "abd"];
        for k in keys {
            skm.insert(k.as_bytes().to_vec(), "def".as_bytes().to_vec());
        }
        test_iterator_properties(skm.iter());
    }

    #[test]
    fn test_skipmap_iterator_prev() {
        let skm = make_skipmap();
        let mut iter = skm.iter();

        iter.next();
        assert!(iter.valid());
        iter.prev();
        assert!(!iter.valid());
        iter.seek(b"abc");
        iter.prev();
        assert_eq!(
            current_key_val(&iter).unwrap(),
            ("abb".as_bytes().to_vec(), "def".as_bytes().to_vec())
        );
    }

    #[test]
    fn test_skipmap_iterator_concurrent_insert() {
        time_test!();
        // Asserts that the map can be mutated while an iterator exists; this is intentional.
        let mut skm = make_skipmap();
        let mut iter = skm.iter();

        assert!(iter.advance());
        skm.insert("abccc".as_bytes().to_vec(), "defff".as_bytes().to_vec());
        // Assert that value inserted after obtaining iterator is present.
        for (k, _) in LdbIteratorIter::wrap(&mut iter) {
            if k == "abccc".as_bytes() {
                return;
            }
        }
        panic!("abccc not found in map.");
    }
}
