//! The hand-off from Paho's threads to the main loop: one queue under a
//! mutex, taken by the main loop a whole batch at a time, and a wake-up
//! token on a channel of capacity one that the main loop `select!`s on.
//!
//! - No wake-up per message: a producer sends the token only when the
//!   consumer said it is about to sleep (it found the queue empty). While
//!   the main loop works through a batch, arrivals just queue.
//! - Bounded: messages are counted in bytes, both those queued and those of
//!   the batch the consumer holds. Over the limit, Paho's receive thread
//!   waits until the consumer comes back for the next batch; meanwhile Paho
//!   reads nothing, so the broker's TCP flow control holds the flood back.
//!   Nothing is dropped (until `close`, at shutdown). Other reports
//!   (connected, lost, failures) never wait: they are few.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use crossbeam_channel::{bounded, Receiver, Sender};

use super::failure::Failure;
use super::Incoming;

/// What Paho's threads (and the link's own thread) report.
#[derive(Debug)]
pub(crate) enum Report {
    Message(Incoming),
    Connected,
    Lost,
    ConnectFailed(Failure),
    /// Filters the broker refused in a SUBACK, each with the reason.
    Refused(Vec<(String, String)>),
}

/// Bytes a queued message is counted for: its data plus the bookkeeping
/// around it (queue slot, allocation headers).
pub(crate) fn cost(msg: &Incoming) -> usize {
    msg.topic.len() + msg.payload.len() + std::mem::size_of::<Report>() + 32
}

struct State {
    queue: VecDeque<Report>,
    /// Bytes of the messages queued...
    queued: usize,
    /// ... and of those in the batch the consumer took last.
    taken: usize,
    /// The consumer found nothing and may sleep: the next report sends it
    /// a token.
    idle: bool,
    /// A producer waits for room.
    blocked: bool,
    /// Messages that had to wait for room.
    waits: u64,
    closed: bool,
}

pub(crate) struct Handoff {
    state: Mutex<State>,
    room: Condvar,
    wake: Sender<()>,
    limit: usize,
}

impl Handoff {
    /// A hand-off holding at most about `limit` bytes of messages, and the
    /// receiver of its wake-up tokens.
    pub fn new(limit: usize) -> (Handoff, Receiver<()>) {
        let (wake, rx) = bounded(1);
        let h = Handoff {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued: 0,
                taken: 0,
                idle: true,
                blocked: false,
                waits: 0,
                closed: false,
            }),
            room: Condvar::new(),
            wake,
            limit,
        };
        (h, rx)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the queue half-updated: every
        // critical section here is a few field updates.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Paho's receive thread: queues a message, first waiting while the
    /// limit is reached. After `close` messages are dropped.
    pub fn message(&self, msg: Incoming) {
        let size = cost(&msg);
        let mut s = self.lock();
        if s.queued + s.taken >= self.limit && !s.closed {
            s.waits += 1;
        }
        while s.queued + s.taken >= self.limit && !s.closed {
            s.blocked = true;
            s = self.room.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.closed {
            return;
        }
        s.queued += size;
        s.queue.push_back(Report::Message(msg));
        self.wake_if_idle(s);
    }

    /// Any other report: queued at once.
    pub fn report(&self, report: Report) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        s.queue.push_back(report);
        self.wake_if_idle(s);
    }

    fn wake_if_idle(&self, mut s: MutexGuard<'_, State>) {
        let idle = std::mem::replace(&mut s.idle, false);
        drop(s);
        if idle {
            self.notify();
        }
    }

    /// Makes the main loop come back (at most one token waits).
    pub fn notify(&self) {
        let _ = self.wake.try_send(());
    }

    /// The consumer, done with its previous batch: moves every queued
    /// report into `batch` (empty), in order. When there is none, the
    /// consumer is marked idle: the next report sends a token.
    pub fn take(&self, batch: &mut VecDeque<Report>) {
        debug_assert!(batch.is_empty());
        let mut s = self.lock();
        std::mem::swap(&mut s.queue, batch);
        s.taken = std::mem::take(&mut s.queued);
        if batch.is_empty() {
            s.idle = true;
        }
        if s.blocked && s.taken < self.limit {
            s.blocked = false;
            self.room.notify_all();
        }
    }

    /// Shutdown: waiting producers go on, and messages are dropped from
    /// now on (the main loop stops taking them).
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.queue.clear();
        self.room.notify_all();
    }

    /// How many messages had to wait for room.
    pub fn waits(&self) -> u64 {
        self.lock().waits
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        let s = self.lock();
        s.queued + s.taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn msg(topic: &str, n: usize) -> Incoming {
        Incoming {
            topic: topic.to_string(),
            payload: vec![b'x'; n],
            retained: false,
        }
    }

    fn topics(batch: &mut VecDeque<Report>) -> Vec<String> {
        batch
            .drain(..)
            .map(|r| match r {
                Report::Message(m) => m.topic,
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn one_token_while_the_consumer_works_through_a_batch() {
        let (h, wake) = Handoff::new(1 << 20);
        h.message(msg("a", 1));
        h.message(msg("b", 1));
        assert_eq!(
            wake.try_iter().count(),
            1,
            "one token for the first arrival"
        );
        let mut batch = VecDeque::new();
        h.take(&mut batch);
        assert_eq!(topics(&mut batch), ["a", "b"]);
        // Not idle yet (the batch was not empty): arrivals send nothing.
        h.message(msg("c", 1));
        h.report(Report::Lost);
        assert_eq!(wake.try_iter().count(), 0);
        h.take(&mut batch);
        assert_eq!(topics(&mut batch), ["c", "Lost"]);
        h.take(&mut batch);
        assert!(batch.is_empty());
        // Idle now: the next report wakes the consumer.
        h.report(Report::Connected);
        assert_eq!(wake.try_iter().count(), 1);
    }

    #[test]
    fn a_producer_over_the_limit_waits_for_the_next_batch_and_nothing_is_lost() {
        let limit = 10 * cost(&msg("t", 100));
        let (h, _wake) = Handoff::new(limit);
        let h = Arc::new(h);
        let producer = {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    h.message(msg(&i.to_string(), 100));
                }
            })
        };
        let mut got = Vec::new();
        let mut batch = VecDeque::new();
        let mut max_bytes = 0;
        while got.len() < 1000 {
            h.take(&mut batch);
            max_bytes = max_bytes.max(h.bytes());
            got.extend(topics(&mut batch));
            if batch.is_empty() {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(h.waits() > 0, "the producer never had to wait");
        let want: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        assert_eq!(got, want, "every message, in order");
        assert!(
            max_bytes <= limit + cost(&msg("999", 100)),
            "held {max_bytes} bytes for a limit of {limit}"
        );
    }

    #[test]
    fn close_releases_a_waiting_producer() {
        let (h, _wake) = Handoff::new(1);
        let h = Arc::new(h);
        h.message(msg("first", 10));
        let producer = {
            let h = h.clone();
            std::thread::spawn(move || h.message(msg("second", 10)))
        };
        // The producer cannot finish before close: the limit is reached and
        // nobody takes.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !h.lock().blocked {
            assert!(
                std::time::Instant::now() < deadline,
                "producer never blocked"
            );
            std::thread::yield_now();
        }
        h.close();
        producer.join().unwrap();
        let mut batch = VecDeque::new();
        h.take(&mut batch);
        assert!(batch.is_empty(), "dropped after close");
    }
}
