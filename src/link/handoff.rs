//! The hand-off from Paho's threads to the main loop: a lock-free queue
//! (an unbounded crossbeam channel that nobody ever blocks on), an "idle"
//! flag, and a wake-up token on a channel of capacity one that the main
//! loop `select!`s on.
//!
//! - No wake-up per message: a producer sends the token only when the
//!   consumer said it is about to sleep (`park`). While the main loop works
//!   through what arrived, arrivals just queue; it takes them in batches
//!   (up to a bound per pass of its loop), and while they keep coming it
//!   comes back on a short timer rather than parking (see `Link::drain`).
//! - No lock on the way: a producer pushes without ever waiting for the
//!   consumer (which can be preempted at any time on a busy machine), and
//!   the consumer pops without waiting for a producer.
//! - Bounded: messages are counted in bytes, both those queued and those
//!   the consumer took but has not released yet (it releases them after
//!   each pass). Over the limit, Paho's receive thread waits until the
//!   consumer releases some (a pass at most); meanwhile Paho reads nothing,
//!   so the broker's TCP flow control holds the flood back. Nothing is
//!   dropped (until `close`, at shutdown). Other reports (connected, lost,
//!   failures) never wait: they are few.
//! - The wait is not in the message callback, which Paho runs holding its
//!   client mutex (its send thread and every publish would wait too: an
//!   alert would leave only once the main loop caught up with a flood),
//!   but in Paho's *receive gate* (vendored patch 0004), which its receive
//!   thread calls before reading each packet, holding no lock of Paho's.
//!   The callback only queues, and marks the hand-off full when it is.

use std::ffi::c_void;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, Once, Weak};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use super::failure::Failure;
use super::Incoming;

/// What Paho's threads (and the link's own thread) report. The rare
/// reports are boxed so that a report is as small as a message (below).
#[derive(Debug)]
pub(crate) enum Report {
    Message(Incoming),
    Connected,
    Lost,
    ConnectFailed(Box<Failure>),
    /// Filters the broker refused in a SUBACK, each with the reason.
    Refused(Box<[(String, String)]>),
}

// The queue allocates its slots in blocks of 31 (a report and a state word
// each). With 24-byte reports a block takes 1,000 bytes, a small request
// for glibc's malloc; from 1,024 bytes on, each block (every 31 messages)
// was a large request, for which malloc first consolidates every free
// chunk of its fast bins: 3 to 4 % of the daemon's CPU time in the flood.
const _: () = assert!(std::mem::size_of::<Report>() <= 24);

/// Bytes a queued message is counted for: its data plus the bookkeeping
/// around it (queue slot, allocation headers).
pub(crate) fn cost(msg: &Incoming) -> usize {
    msg.size() + std::mem::size_of::<Report>() + 24
}

pub(crate) struct Handoff {
    queue: Sender<Report>,
    taken: Receiver<Report>,
    /// Bytes of the messages queued or taken and not released.
    bytes: AtomicUsize,
    limit: usize,
    /// The consumer found nothing and may sleep: the next report sends it
    /// a token.
    idle: AtomicBool,
    wake: Sender<()>,
    /// A producer waits for room (on `room`).
    blocked: AtomicBool,
    room: (Mutex<()>, Condvar),
    /// Messages that had to wait for room.
    waits: AtomicU64,
    closed: AtomicBool,
}

impl Handoff {
    /// A hand-off holding at most about `limit` bytes of messages, and the
    /// receiver of its wake-up tokens.
    pub fn new(limit: usize) -> (Handoff, Receiver<()>) {
        let (wake, rx) = bounded(1);
        let (queue, taken) = unbounded();
        let h = Handoff {
            queue,
            taken,
            bytes: AtomicUsize::new(0),
            limit,
            idle: AtomicBool::new(true),
            wake,
            blocked: AtomicBool::new(false),
            room: (Mutex::new(()), Condvar::new()),
            waits: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        };
        (h, rx)
    }

    /// Paho's receive thread: queues a message (never waits: the receive
    /// gate does, before the next packet). After `close` messages are
    /// dropped.
    pub fn message(&self, msg: Incoming) {
        if self.closed.load(SeqCst) {
            return;
        }
        let c = cost(&msg);
        if self.bytes.fetch_add(c, SeqCst) + c >= self.limit {
            FULL.store(true, SeqCst);
        }
        self.push(Report::Message(msg));
    }

    /// Paho's receive thread, before it reads the next packet: waits while
    /// the limit is reached (until the consumer releases, or `close`).
    pub fn wait_for_room(&self) {
        if self.bytes.load(SeqCst) < self.limit || self.closed.load(SeqCst) {
            return;
        }
        self.waits.fetch_add(1, SeqCst);
        let (lock, cv) = &self.room;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        // Set before looking at `bytes`, which `release` changes before
        // looking at `blocked`: one of the two sees the other.
        self.blocked.store(true, SeqCst);
        while self.bytes.load(SeqCst) >= self.limit && !self.closed.load(SeqCst) {
            guard = cv.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        self.blocked.store(false, SeqCst);
    }

    /// Any other report: queued at once.
    pub fn report(&self, report: Report) {
        if !self.closed.load(SeqCst) {
            self.push(report);
        }
    }

    fn push(&self, report: Report) {
        let _ = self.queue.send(report);
        // Pushed before looking at `idle`, which the consumer sets before
        // looking at the queue: one of the two sees the other.
        fence(SeqCst);
        if self.idle.load(SeqCst) && self.idle.swap(false, SeqCst) {
            self.notify();
        }
    }

    /// Makes the main loop come back (at most one token waits).
    pub fn notify(&self) {
        let _ = self.wake.try_send(());
    }

    /// The consumer: the next report, in order.
    pub fn try_next(&self) -> Option<Report> {
        self.taken.try_recv().ok()
    }

    /// The consumer, about to sleep: marks itself idle, so that the next
    /// report sends a token. Returns a report that arrived meanwhile (then
    /// it is not idle after all).
    pub fn park(&self) -> Option<Report> {
        self.idle.store(true, SeqCst);
        fence(SeqCst);
        let r = self.taken.try_recv().ok()?;
        self.idle.store(false, SeqCst);
        Some(r)
    }

    /// The consumer handed on messages of `bytes` (see `cost`): a waiting
    /// producer may go on.
    pub fn release(&self, bytes: usize) {
        let left = self.bytes.fetch_sub(bytes, SeqCst) - bytes;
        if left < self.limit && self.blocked.load(SeqCst) {
            self.wake_producer();
        }
    }

    fn wake_producer(&self) {
        let (lock, cv) = &self.room;
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        cv.notify_all();
    }

    /// Shutdown: a waiting producer goes on, and messages and reports are
    /// dropped from now on (the main loop stops taking them).
    pub fn close(&self) {
        self.closed.store(true, SeqCst);
        self.wake_producer();
    }

    /// How many messages had to wait for room.
    pub fn waits(&self) -> u64 {
        self.waits.load(SeqCst)
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes.load(SeqCst)
    }
}

/// Some hand-off reached its limit since the receive gate last looked.
static FULL: AtomicBool = AtomicBool::new(false);
/// The hand-offs of the process (one per link), for the receive gate.
static HANDOFFS: Mutex<Vec<Weak<Handoff>>> = Mutex::new(Vec::new());

extern "C" {
    /// Vendored patch 0004: Paho's receive thread calls `gate(context)`
    /// before reading each packet, holding none of Paho's locks.
    fn MQTTAsync_setReceiveGate(
        gate: Option<unsafe extern "C" fn(*mut c_void)>,
        context: *mut c_void,
    );
}

/// Paho's receive gate: waits while a hand-off is full. Paho has one
/// receive thread for all its clients, so a full hand-off holds them all
/// back, as a callback waiting for room did.
unsafe extern "C" fn receive_gate(_context: *mut c_void) {
    if !FULL.load(SeqCst) {
        return;
    }
    FULL.store(false, SeqCst);
    let handoffs: Vec<Arc<Handoff>> = HANDOFFS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for h in handoffs {
        h.wait_for_room();
    }
}

/// Makes Paho's receive thread wait for room in `handoff` when it is full
/// (installs the receive gate with the first hand-off).
pub(crate) fn register(handoff: &Arc<Handoff>) {
    static GATE: Once = Once::new();
    GATE.call_once(|| {
        // SAFETY: a function valid for the whole run, with no context;
        // set before the first client is created (the first link's).
        unsafe { MQTTAsync_setReceiveGate(Some(receive_gate), std::ptr::null_mut()) }
    });
    let mut all = HANDOFFS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|h| h.strong_count() > 0);
    all.push(Arc::downgrade(handoff));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn msg(topic: &str, n: usize) -> Incoming {
        Incoming::new(topic, &vec![b'x'; n], false)
    }

    /// Up to `max` reports (topics, or report names), and their bytes;
    /// parks when there are none left.
    fn take(h: &Handoff, max: usize) -> (Vec<String>, usize) {
        let mut bytes = 0;
        let mut out = Vec::new();
        while out.len() < max {
            let Some(r) = h.try_next().or_else(|| h.park()) else {
                break;
            };
            out.push(match r {
                Report::Message(m) => {
                    bytes += cost(&m);
                    m.topic().to_string()
                }
                other => format!("{other:?}"),
            });
        }
        (out, bytes)
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
        let (got, ab) = take(&h, 2);
        assert_eq!(got, ["a", "b"]);
        h.release(ab);
        // The consumer did not find the queue empty: not idle, so arrivals
        // send nothing.
        h.message(msg("c", 1));
        h.report(Report::Lost);
        assert_eq!(wake.try_iter().count(), 0);
        let (got, c) = take(&h, 10);
        assert_eq!(got, ["c", "Lost"]);
        h.release(c);
        assert_eq!(h.bytes(), 0);
        // It found the queue empty: idle now, the next report wakes it.
        h.report(Report::Connected);
        assert_eq!(wake.try_iter().count(), 1);
    }

    #[test]
    fn a_producer_over_the_limit_waits_for_a_release_and_nothing_is_lost() {
        let limit = 10 * cost(&msg("t", 100));
        let (h, _wake) = Handoff::new(limit);
        let h = Arc::new(h);
        let producer = {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    h.wait_for_room();
                    h.message(msg(&i.to_string(), 100));
                }
            })
        };
        let mut got = Vec::new();
        let mut max_bytes = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        // Nothing released yet: the producer reaches the limit and waits
        // (a consumer keeping pace from the start may never make it wait).
        while h.waits() == 0 {
            assert!(Instant::now() < deadline, "the producer never had to wait");
            std::thread::yield_now();
        }
        while got.len() < 1000 {
            assert!(Instant::now() < deadline, "stuck at {}", got.len());
            max_bytes = max_bytes.max(h.bytes());
            let (t, bytes) = take(&h, 3);
            got.extend(t);
            h.release(bytes);
            if bytes == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
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
            std::thread::spawn(move || {
                h.wait_for_room();
                h.message(msg("second", 10))
            })
        };
        // The producer cannot finish before close: the limit is reached and
        // nothing is released.
        let deadline = Instant::now() + Duration::from_secs(10);
        while h.waits() == 0 {
            assert!(Instant::now() < deadline, "producer never blocked");
            std::thread::yield_now();
        }
        h.close();
        producer.join().unwrap();
        let (got, _) = take(&h, 10);
        assert_eq!(got, ["first"], "the second is dropped after close");
    }
}
