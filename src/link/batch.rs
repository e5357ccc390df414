//! Publishes on their way from the main loop to the link thread, in order:
//! each topic (NUL-terminated, as Paho's C API takes it) and payload in
//! one buffer shared by the batch. A batch is two allocations however many
//! publishes it holds; Paho copies topic and payload into its own command
//! when the link thread hands it one (see `driver::Driver::publish`).

use std::ffi::CStr;

#[derive(Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    items: Vec<Item>,
}

#[derive(Clone, Copy)]
struct Item {
    /// Topic bytes with their NUL, then the payload's.
    topic_len: u32,
    payload_len: u32,
    qos1: bool,
    retained: bool,
}

/// One publish of a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Publish<'a> {
    pub topic: &'a CStr,
    /// Under 2 GiB (`push`).
    pub payload: &'a [u8],
    /// QoS 1 (else 0).
    pub qos1: bool,
    pub retained: bool,
}

impl Batch {
    /// Appends a publish; false (nothing appended) when the topic holds a
    /// NUL character, which the C API cannot take (no configured topic
    /// can: the configuration refuses them), or when topic or payload is
    /// 2 GiB or more (the C API's lengths are `int`s; MQTT's limit is
    /// 256 MB).
    pub fn push(&mut self, topic: &str, payload: &[u8], qos1: bool, retained: bool) -> bool {
        let (Ok(topic_len), Ok(payload_len)) = (
            u32::try_from(topic.len() + 1),
            i32::try_from(payload.len()).map(i32::unsigned_abs),
        ) else {
            return false;
        };
        if topic.as_bytes().contains(&0) {
            return false;
        }
        self.bytes.reserve(topic.len() + 1 + payload.len());
        self.bytes.extend_from_slice(topic.as_bytes());
        self.bytes.push(0);
        self.bytes.extend_from_slice(payload);
        self.items.push(Item {
            topic_len,
            payload_len,
            qos1,
            retained,
        });
        true
    }

    /// An empty batch with room for as many publishes and bytes as this
    /// one holds.
    pub fn empty_like(&self) -> Batch {
        Batch {
            bytes: Vec::with_capacity(self.bytes.len()),
            items: Vec::with_capacity(self.items.len()),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The publishes, in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = Publish<'_>> {
        let mut at = 0;
        self.items.iter().map(move |item| {
            let topic_end = at + item.topic_len as usize;
            let payload_end = topic_end + item.payload_len as usize;
            let topic = CStr::from_bytes_with_nul(&self.bytes[at..topic_end])
                .expect("push appends a topic without a NUL, then one");
            let payload = &self.bytes[topic_end..payload_end];
            at = payload_end;
            Publish {
                topic,
                payload,
                qos1: item.qos1,
                retained: item.retained,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_come_out_in_order_as_pushed() {
        let mut b = Batch::default();
        assert!(b.is_empty());
        let before = b.empty_like();
        assert!(before.is_empty() && before.bytes.capacity() == 0);
        assert!(b.push("B/up", b"12", false, false));
        assert!(b.push("B/availability/d1", b"online", true, true));
        assert!(b.push("B/empty", b"", false, true));
        assert_eq!(b.len(), 3);
        let next = b.empty_like();
        assert!(next.is_empty());
        assert!(next.bytes.capacity() >= b.bytes.len() && next.items.capacity() >= 3);
        let all: Vec<Publish> = b.iter().collect();
        assert_eq!(
            all,
            [
                Publish {
                    topic: c"B/up",
                    payload: b"12",
                    qos1: false,
                    retained: false
                },
                Publish {
                    topic: c"B/availability/d1",
                    payload: b"online",
                    qos1: true,
                    retained: true
                },
                Publish {
                    topic: c"B/empty",
                    payload: b"",
                    qos1: false,
                    retained: true
                },
            ]
        );
    }

    #[test]
    fn a_topic_with_a_nul_is_refused_and_leaves_the_batch_as_it_was() {
        let mut b = Batch::default();
        assert!(b.push("a", b"\0binary\0", false, false));
        assert!(!b.push("a\0b", b"x", false, false));
        assert_eq!(b.len(), 1);
        let all: Vec<Publish> = b.iter().collect();
        assert_eq!(all[0].topic, c"a");
        assert_eq!(all[0].payload, b"\0binary\0");
    }
}
