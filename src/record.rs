//! A key and its value in one allocation: a message's topic and payload
//! from Paho's receive thread to the main loop, and a write waiting in the
//! store for its commit. One allocation instead of two per message, and a
//! message's record reaches the store as it was received, without a copy.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The key's length (4 bytes, little-endian), the key's bytes, the value's:
/// 16 bytes itself, so that a message (`link::Incoming`) is 24.
#[derive(Clone)]
pub struct Record {
    bytes: Box<[u8]>,
}

const HEADER: usize = 4;

impl Record {
    /// A copy of `key` and `value` (a key is an MQTT topic or one of the
    /// store's own keys: at most 65,535 bytes).
    pub fn new(key: &[u8], value: &[u8]) -> Record {
        let key_len = u32::try_from(key.len()).expect("a key under 4 GiB");
        let mut bytes = Vec::with_capacity(HEADER + key.len() + value.len());
        bytes.extend_from_slice(&key_len.to_le_bytes());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value);
        Record {
            bytes: bytes.into_boxed_slice(),
        }
    }

    fn key_end(&self) -> usize {
        let mut len = [0; HEADER];
        len.copy_from_slice(&self.bytes[..HEADER]);
        HEADER + u32::from_le_bytes(len) as usize
    }

    pub fn key(&self) -> &[u8] {
        &self.bytes[HEADER..self.key_end()]
    }

    pub fn value(&self) -> &[u8] {
        &self.bytes[self.key_end()..]
    }

    /// Key and value together, in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len() - HEADER
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value", &String::from_utf8_lossy(self.value()))
            .finish()
    }
}

/// A record in a set where its key identifies it: hashed and compared by
/// key, and looked up by a key (`Borrow<[u8]>`).
#[derive(Debug)]
pub struct ByKey(pub Record);

impl PartialEq for ByKey {
    fn eq(&self, other: &ByKey) -> bool {
        self.0.key() == other.0.key()
    }
}

impl Eq for ByKey {}

impl Hash for ByKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so that lookups by `&[u8]` find it.
        self.0.key().hash(state);
    }
}

impl Borrow<[u8]> for ByKey {
    fn borrow(&self) -> &[u8] {
        self.0.key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn key_and_value_come_back_apart() {
        let r = Record::new(b"home/a", b"on");
        assert_eq!(
            (r.key(), r.value(), r.size()),
            (&b"home/a"[..], &b"on"[..], 8)
        );
        let empty = Record::new(b"k", b"");
        assert_eq!((empty.key(), empty.value()), (&b"k"[..], &b""[..]));
        assert_eq!(empty.size(), 1);
        assert_eq!(Record::new(b"", b"").size(), 0);
    }

    #[test]
    fn a_set_by_key_keeps_the_latest_value_and_finds_it_by_key() {
        let mut set = HashSet::new();
        set.replace(ByKey(Record::new(b"a/1", b"old")));
        set.replace(ByKey(Record::new(b"a/2", b"x")));
        set.replace(ByKey(Record::new(b"a/1", b"new")));
        assert_eq!(set.len(), 2);
        assert_eq!(set.get(&b"a/1"[..]).unwrap().0.value(), b"new");
        // "a/" + "1x" is not "a/1" + "x": the split is part of the key.
        assert!(!set.contains(&b"a/"[..]));
        assert!(!set.contains(&b"a/1x"[..]));
    }
}
