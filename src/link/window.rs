//! The window: publishes handed to Paho for one connection and not
//! completed yet (for QoS 0, completed = written to the socket).
//!
//! The main loop counts what it sends; Paho counts completions from its
//! own threads, through the publish callbacks of the link thread
//! (`driver::Driver::publish`). The link keeps at most `MAX_MESSAGES` /
//! `MAX_BYTES` in the window, so Paho's queue stays small while the broker
//! is slow; the rest waits in the outbox. When the outbox waits, the main
//! loop asks for a wake-up, which comes when the window has drained to half
//! (in messages and in bytes), so that it refills in batches, not once per
//! completion.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use super::handoff::Handoff;

pub(crate) const MAX_MESSAGES: u64 = 1000;
pub(crate) const MAX_BYTES: usize = 256 << 10;
/// QoS 1 publishes (retained facts) in Paho's hands: no more than a
/// broker's usual receive maximum (mosquitto's default: 20), beyond which
/// Paho would keep them in its queue until acknowledgements come, and every
/// QoS 0 publish queued behind them (alerts, hello counts) with them. They
/// have a window of their own (see `Link::publish`).
pub(crate) const MAX_QOS1: u64 = 20;

/// Shared with Paho's threads.
pub(crate) struct Counts {
    completed: AtomicU64,
    /// The main loop waits for room: wake it when `completed` reaches
    /// `wake_at`.
    waiting: AtomicBool,
    wake_at: AtomicU64,
    handoff: Arc<Handoff>,
}

impl Counts {
    /// One publish done (written, failed or dropped by Paho).
    pub fn complete(&self) {
        let done = self.completed.fetch_add(1, SeqCst) + 1;
        if self.waiting.load(SeqCst)
            && done >= self.wake_at.load(SeqCst)
            && self.waiting.swap(false, SeqCst)
        {
            self.handoff.notify();
        }
    }
}

/// The main loop's side.
pub(crate) struct Window {
    counts: Arc<Counts>,
    sent: u64,
    /// Completions already accounted for.
    seen: u64,
    /// Sizes of the publishes not seen completed, oldest first (QoS 0
    /// publishes complete in order).
    sizes: VecDeque<usize>,
    bytes: usize,
    /// At most this many publishes not completed.
    max_messages: u64,
}

impl Window {
    /// A window of at most `max_messages` publishes (and `MAX_BYTES`).
    pub fn new(handoff: Arc<Handoff>, max_messages: u64) -> Window {
        Window {
            counts: Arc::new(Counts {
                completed: AtomicU64::new(0),
                waiting: AtomicBool::new(false),
                wake_at: AtomicU64::new(0),
                handoff,
            }),
            sent: 0,
            seen: 0,
            sizes: VecDeque::new(),
            bytes: 0,
            max_messages,
        }
    }

    /// What Paho's side counts completions with.
    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }

    fn update(&mut self) {
        let done = self.counts.completed.load(SeqCst);
        while self.seen < done {
            self.seen += 1;
            if let Some(size) = self.sizes.pop_front() {
                self.bytes -= size;
            }
        }
    }

    pub fn has_room(&mut self) -> bool {
        self.room() > 0
    }

    /// How many more publishes the window takes now.
    pub fn room(&mut self) -> u64 {
        self.update();
        if self.bytes >= MAX_BYTES {
            0
        } else {
            self.max_messages.saturating_sub(self.sent - self.seen)
        }
    }

    pub fn sent(&mut self, size: usize) {
        self.sent += 1;
        self.sizes.push_back(size);
        self.bytes += size;
    }

    /// Asks for a wake-up when the window has drained to half; false when
    /// it already has (then there is room again: no wake-up comes). Cheap
    /// when a wake-up was asked for already (called for every publish
    /// while the outbox waits).
    pub fn wait_for_room(&mut self) -> bool {
        if self.counts.waiting.load(SeqCst) {
            // Asked already: the wake-up comes.
            return true;
        }
        self.update();
        let (mut count, mut bytes) = (self.sent - self.seen, self.bytes);
        let mut target = self.seen;
        for size in &self.sizes {
            if count <= self.max_messages / 2 && bytes <= MAX_BYTES / 2 {
                break;
            }
            count -= 1;
            bytes -= size;
            target += 1;
        }
        self.counts.wake_at.store(target, SeqCst);
        self.counts.waiting.store(true, SeqCst);
        if self.counts.completed.load(SeqCst) >= target {
            self.counts.waiting.store(false, SeqCst);
            return false;
        }
        true
    }

    /// Whether Paho completed every publish it was handed.
    pub fn is_empty(&self) -> bool {
        self.counts.completed.load(SeqCst) >= self.sent
    }

    /// Publishes (and their bytes) not completed yet.
    pub fn in_flight(&self) -> (u64, usize) {
        let done = self.counts.completed.load(SeqCst).min(self.sent);
        let n = self.sent - done;
        let bytes = self.sizes.iter().rev().take(n as usize).sum();
        (n, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_the_main_loop_once_at_half_the_window() {
        let (h, wake) = Handoff::new(1 << 20);
        let mut w = Window::new(Arc::new(h), MAX_MESSAGES);
        for _ in 0..MAX_MESSAGES {
            assert!(w.has_room());
            w.sent(100);
        }
        assert!(!w.has_room());
        assert!(w.wait_for_room());
        let counts = w.counts();
        for _ in 0..MAX_MESSAGES / 2 - 1 {
            counts.complete();
        }
        assert!(wake.try_recv().is_err(), "not yet at half");
        counts.complete();
        assert!(wake.try_recv().is_ok(), "woken at half");
        counts.complete();
        assert!(wake.try_recv().is_err(), "woken once");
        assert!(w.has_room());
        assert_eq!(
            w.in_flight(),
            (MAX_MESSAGES / 2 - 1, 100 * (MAX_MESSAGES as usize / 2 - 1))
        );
    }

    #[test]
    fn no_wake_up_needed_when_completions_came_first() {
        let (h, _wake) = Handoff::new(1 << 20);
        let mut w = Window::new(Arc::new(h), MAX_MESSAGES);
        assert!(w.is_empty());
        for _ in 0..MAX_MESSAGES {
            w.sent(1);
        }
        assert!(!w.is_empty());
        let counts = w.counts();
        for _ in 0..MAX_MESSAGES {
            counts.complete();
        }
        assert!(w.is_empty(), "everything written");
        assert!(!w.wait_for_room(), "room already");
        assert!(w.has_room());
    }

    #[test]
    fn bytes_bound_the_window_too() {
        let (h, wake) = Handoff::new(1 << 20);
        let mut w = Window::new(Arc::new(h), MAX_MESSAGES);
        for _ in 0..4 {
            w.sent(MAX_BYTES / 4);
        }
        assert!(!w.has_room());
        assert!(w.wait_for_room());
        let counts = w.counts();
        counts.complete();
        assert!(wake.try_recv().is_err(), "3/4 of the bytes still in flight");
        counts.complete();
        assert!(wake.try_recv().is_ok(), "woken at half the bytes");
        assert!(w.has_room());
    }
}
