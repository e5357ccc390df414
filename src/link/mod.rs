//! The MQTT link: one Paho asynchronous client, driven so that the main
//! loop never waits on the network nor on Paho, gets what arrives in
//! batches, and holds bounded memory both ways.
//!
//! ```text
//!  main loop ── Link (this file: connection states, back-off, outbox,
//!      │         subscriptions, echo guard)
//!      │ Command (unbounded channel, bounded by the window)
//!      ▼
//!  link thread (driver.rs) ── the only caller of Paho
//!      │
//!  Paho's threads ── callbacks ──► Handoff (handoff.rs) ──► Link::drain
//!                           lock-free queue + wake token       (batches)
//! ```
//!
//! Parts, one job each: `handoff` (Paho → main loop, bounded, no wake-up
//! per message), `driver` (main loop → Paho), `window` (publishes in Paho's
//! hands), `outbox` (publishes waiting for the window, by class),
//! `subscriptions` (the filter set and its diff), `failure` (why a
//! connection failed).
//!
//! # No deadlock with a bounded hand-off
//!
//! The hand-off is bounded (`Limits::handoff_bytes`): when it is full,
//! Paho's receive thread waits until the main loop releases what it handed
//! on (after each pass of its loop). It waits in Paho's *receive gate*
//! (vendored patch 0004), before reading the next packet, holding none of
//! Paho's locks: Paho's send thread keeps sending meanwhile (an alert is
//! not held up by a flood the main loop has not caught up with). The
//! message callback itself, which Paho runs holding its global
//! `mqttasync_mutex` (taken by every Paho entry point: `MQTTAsync_send`,
//! `MQTTAsync_subscribeMany`, `MQTTAsync_connect`, `MQTTAsync_destroy`,
//! …), never waits. The rule **the main loop never calls Paho** stays: it
//! sends commands to the link thread, and waiting for the mutex is that
//! thread's business. The only waits are then: receive thread → main loop
//! (room, holding nothing), link thread → Paho's threads (mutex), main
//! loop → nothing (its sends are on an unbounded channel, bounded in
//! practice by the window; its `select!` has the wake channel). No cycle.
//! At shutdown the main loop closes the hand-off first (the receive thread
//! stops waiting, later messages are dropped), then gives the link thread
//! a bounded time to publish `offline` and disconnect (the one time it
//! waits for that thread, with a timeout).
//!
//! # No wake-up per message
//!
//! Paho's thread wakes the main loop only when the loop said it would
//! sleep (it found the hand-off empty). While messages keep coming, the
//! loop does not sleep on the hand-off: `drain` asks to be back 1 ms later
//! (`next_due`), so a stream costs about one wake-up per millisecond
//! rather than one per message; a message after a quiet spell wakes the
//! loop at once.
//!
//! # Publishing while the broker is slow
//!
//! At most `window::MAX_MESSAGES` / `MAX_BYTES` QoS 0 publishes are in
//! Paho's hands (counted until Paho completes them); the rest wait in the
//! outbox, one per topic (see `outbox` for what is dropped: only repeats).
//! `has_room` tells the main loop to pause what it can pause (replays).
//! QoS 1 publishes (retained facts) have a window (`window::MAX_QOS1`) and
//! an outbox of their own (see `Link::publish`).
//!
//! # A dead link is noticed within 1.5 × keepAlive
//!
//! Paho sends a PINGREQ only after a keep-alive interval K without
//! receiving anything (our `B/up` every second keeps the "sent" side busy),
//! then gives up when no answer came 1.5 × K later
//! (`MQTTProtocol_keepalive`), checking every K/10 (at least every cycle
//! of its receive thread, ≤ 1 s): a link that dies just after a PINGRESP
//! is noticed only after 2.5 × K + 2 × (K/10 + 1 s). The link therefore
//! announces K = 2/5 of the configured `keepAlive` (8 s for the default
//! 20 s): it notices a dead link within 2.7 × K + 2 s = 1.08 × keepAlive +
//! 2 s ≤ 1.5 × keepAlive (keepAlive ≥ 5 s), and the broker, which drops a
//! client silent for 1.5 × K, publishes the last will after
//! 0.6 × keepAlive plus its own check period (measured with mosquitto
//! 2.0: 13 s by default, 32 s before). No extra traffic but two small
//! packets per K while idle, no probe topic, any broker. As before, a
//! link so congested by the daemon's own publishes that the PINGREQ waits
//! behind them for 1.5 × K while nothing at all is received counts as
//! dead (with device traffic coming in, Paho sees it alive).
//!
//! # Connecting
//!
//! Attempts run on their own timer (`next_due`), with back-off, each
//! series starting with MQTT 5 and falling back to 3.1.1 at once when the
//! broker closes the connection or refuses the protocol version (a broker
//! replaced by an older one is followed). Failures are named (refused,
//! DNS, TLS, credentials, timeout: see `failure`); one log line per
//! event.

mod batch;
mod driver;
mod failure;
mod handoff;
mod outbox;
mod subscriptions;
mod window;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use log::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::config::MqttConfig;
use crate::echo::EchoGuard;
use batch::Batch;
use driver::{Command, Fact, V311, V5};
use failure::Failure;
use handoff::{Handoff, Report};
use outbox::Outbox;
use subscriptions::{chunks, Subscriptions};
use window::Window;

use crate::monitor::Class;
use crate::record::Record;

/// A message received from the broker: its topic and payload in one
/// allocation (a [`Record`], handed to the store as it is when the message
/// is a state). 24 bytes, so that the hand-off's queue blocks stay under
/// glibc's large-request size (see `handoff.rs`).
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Key: the topic (UTF-8: `new` takes a `&str`), value: the payload.
    record: Record,
    /// Set by the broker on retained messages sent at subscribe time.
    pub retained: bool,
}

impl Incoming {
    pub fn new(topic: &str, payload: &[u8], retained: bool) -> Incoming {
        Incoming {
            record: Record::new(topic.as_bytes(), payload),
            retained,
        }
    }

    pub fn topic(&self) -> &str {
        // The key was a `&str` (`new`): only the payload may be any bytes.
        std::str::from_utf8(self.record.key()).unwrap_or_default()
    }

    pub fn payload(&self) -> &[u8] {
        self.record.value()
    }

    /// Topic and payload together, in bytes.
    pub fn size(&self) -> usize {
        self.record.size()
    }

    /// The record to store: key = topic, value = payload.
    pub fn into_record(self) -> Record {
        self.record
    }
}

/// What the main loop hears from the link.
#[derive(Debug)]
pub enum LinkEvent {
    /// (Re)connected, birth published: publish what must precede the
    /// subscriptions, then call `subscribe_all`.
    Connected,
    /// The connection is gone (logged once); the next attempt is due at
    /// `next_due`.
    Lost,
    Message(Incoming),
    /// The broker refused these filters (SUBACK failure: ACL, quota…).
    SubscriptionsRefused(Vec<String>),
    /// Another process uses the daemon's client id (the broker drops each
    /// connection for the other; logged). `newer`: this process started
    /// after that one.
    TakenOver {
        newer: bool,
    },
}

/// What the daemon publishes when it connects and what the broker publishes
/// for it when it vanishes (retained birth / last will).
pub struct Presence {
    /// The daemon's own topics start with this (`B/`): never echo-guarded,
    /// the daemon ignores them anyway.
    pub base: String,
    pub topic: String,
    pub online: &'static str,
    pub offline: &'static str,
    /// With failover: a topic where the link announces, retained, a token
    /// of this process at each connection, to notice another process
    /// connecting with the same client id (`LinkEvent::TakenOver`).
    pub owner: Option<String>,
}

/// Memory bounds of the link.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of received messages waiting for the main loop, beyond which
    /// Paho stops reading from the broker until the main loop catches up.
    /// 512 KiB by default: in a backlog drain at 10,000 devices 0.55 MB
    /// less peak RSS than 1 MiB at no measured CPU cost; at 256 KiB the
    /// receive thread waited at its gate during a live flood (more CPU).
    pub handoff_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            handoff_bytes: 512 << 10,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Repeats (`B/up`, hello counts) dropped or replaced by a newer one
    /// while the broker was slow or away.
    pub dropped_repeats: u64,
    /// Publishes waiting in the outbox.
    pub outbox_messages: usize,
    pub outbox_bytes: usize,
    /// Publishes handed to Paho and not written yet.
    pub in_flight_messages: u64,
    pub in_flight_bytes: usize,
    /// Successful connections since start.
    pub connections: u64,
    /// Received messages for which Paho had to wait until the main loop
    /// caught up (the hand-off was full).
    pub handoff_waits: u64,
}

const RECONNECT_MIN: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// While messages stream in, the main loop takes them this often rather
/// than being woken by each (a wake-up costs more than the message).
const LINGER: Duration = Duration::from_millis(1);
/// Bytes a publish is counted for in the window beyond topic and payload
/// (Paho's command, token and packet).
const PUBLISH_OVERHEAD: usize = 200;
/// Publishes handed to the link thread in one command at most (see
/// `Link::submit`).
const PUBLISH_BATCH: usize = 64;

/// For a TLS broker, loads OpenSSL, which is not linked (PATCHES.md of the
/// vendored paho-mqtt-sys): a missing libssl is then this error rather
/// than Paho C stopping the program at its first OpenSSL call. Nothing to
/// do for a plain broker.
pub fn load_tls(cfg: &MqttConfig) -> anyhow::Result<()> {
    if cfg.uses_tls() {
        paho_mqtt_sys::load_openssl()
            .map_err(|why| anyhow::anyhow!("{} needs OpenSSL, but {why}", cfg.server_address))?;
    }
    Ok(())
}

/// The MQTT keep-alive announced to the broker for a configured
/// `keepAlive` (seconds): 2/5 of it (see the module doc).
pub fn announced_keep_alive(keep_alive: u64) -> Duration {
    Duration::from_secs((keep_alive * 2 / 5).max(1))
}

enum State {
    /// The next attempt is due then.
    Disconnected {
        next: Instant,
    },
    /// An attempt with this MQTT version is under way; with 3.1.1, why
    /// MQTT 5 failed just before.
    Connecting {
        version: u32,
        v5: Option<Failure>,
    },
    Connected,
}

pub struct Link {
    commands: Sender<Command>,
    /// Publishes made since the last `submit`: they go to the link thread
    /// as one command (one wake-up of that thread, one channel slot).
    batch: Batch,
    handoff: Arc<Handoff>,
    wake: Receiver<()>,
    /// While messages stream in, when `drain` looks at the hand-off again.
    recheck: Option<Instant>,
    uri: String,
    client_id: String,
    presence: Presence,
    state: State,
    backoff: Backoff,
    /// The MQTT version of the last connection.
    version: u32,
    subscriptions: Subscriptions,
    /// QoS 0 publishes in Paho's hands, and those waiting for room.
    window: Window,
    outbox: Outbox,
    /// QoS 1 publishes (retained facts) in Paho's hands, and those waiting
    /// for room: apart, so that the few acknowledged at a time never hold
    /// up an alert (see `publish`).
    facts_window: Window,
    facts: Outbox,
    /// With MQTT 3.1.1 only: drops the broker's copies of our publishes.
    echoes: EchoGuard,
    connections: u64,
    /// This process's token on `presence.owner` (start time in epoch ms and
    /// pid), and whether the last token seen there was ours (None: none
    /// seen yet).
    token: String,
    owner_seen: Option<bool>,
}

impl Link {
    pub fn new(cfg: &MqttConfig, presence: Presence) -> anyhow::Result<Link> {
        Link::with_limits(cfg, presence, Limits::default())
    }

    /// A link with other memory bounds than the defaults (tests of the
    /// hand-off under load). Starts the link thread; it connects at the
    /// first `poll`.
    pub fn with_limits(
        cfg: &MqttConfig,
        presence: Presence,
        limits: Limits,
    ) -> anyhow::Result<Link> {
        let (handoff, wake) = Handoff::new(limits.handoff_bytes);
        let handoff = Arc::new(handoff);
        handoff::register(&handoff);
        let keep_alive = announced_keep_alive(cfg.keep_alive);
        let commands = driver::spawn(cfg, keep_alive, &presence, handoff.clone())?;
        Ok(Link {
            commands,
            batch: Batch::default(),
            window: Window::new(handoff.clone(), window::MAX_MESSAGES),
            facts_window: Window::new(handoff.clone(), window::MAX_QOS1),
            handoff,
            wake,
            recheck: None,
            uri: cfg.server_address.clone(),
            client_id: cfg.client_id.clone(),
            presence,
            state: State::Disconnected {
                next: Instant::now(),
            },
            backoff: Backoff::new(RECONNECT_MIN, RECONNECT_MAX),
            version: V5,
            subscriptions: Subscriptions::default(),
            outbox: Outbox::default(),
            facts: Outbox::default(),
            echoes: EchoGuard::default(),
            connections: 0,
            token: format!("{} {}", crate::clock::wall_ms(), std::process::id()),
            owner_seen: None,
        })
    }

    /// A token arrives here when events wait (or room opened for the
    /// outbox): `select!` on it, then call `drain`.
    pub fn wake(&self) -> &Receiver<()> {
        &self.wake
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected)
    }

    /// When the link wants the main loop back (the next connection
    /// attempt, or a look at the hand-off while messages stream in): the
    /// main loop wakes then and calls `poll`.
    pub fn next_due(&self) -> Option<Instant> {
        let attempt = match self.state {
            State::Disconnected { next } => Some(next),
            _ => None,
        };
        match (attempt, self.recheck) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        }
    }

    /// Does what is due: starts a connection attempt, or leaves a wake
    /// token for `drain`. Never waits.
    pub fn poll(&mut self, now: Instant) {
        if self.recheck.is_some_and(|at| at <= now) {
            self.recheck = None;
            self.handoff.notify();
        }
        if let State::Disconnected { next } = self.state {
            if next <= now {
                debug!("connecting to {}", self.uri);
                self.state = State::Connecting {
                    version: V5,
                    v5: None,
                };
                self.command(Command::Connect(V5));
            }
        }
    }

    /// Sends `cmd` to the link thread, after the publishes made before it.
    fn command(&mut self, cmd: Command) {
        self.submit();
        // Fails only when the link thread is gone (it panicked): the link
        // then stays disconnected, which the daemon reports.
        let _ = self.commands.send(cmd);
    }

    /// Hands the publishes made since the last call to the link thread.
    /// The main loop calls it before it sleeps (`drain` does too); a batch
    /// also leaves by itself once `PUBLISH_BATCH` long, and before any
    /// other command.
    pub fn submit(&mut self) {
        if !self.batch.is_empty() {
            // The next batch starts with the room this one took (no
            // reallocation as it fills).
            let next = self.batch.empty_like();
            let _ = self
                .commands
                .send(Command::Publish(std::mem::replace(&mut self.batch, next)));
        }
    }

    /// Hands the main loop up to `max` events (appended to `out`), in
    /// order, after moving waiting publishes to Paho as room allows. The
    /// batch ends early after `Connected`, so that the main loop reacts to
    /// it before what follows. When events are left, a wake token is left
    /// too, so the main loop's next `select!` returns at once.
    pub fn drain(&mut self, out: &mut Vec<LinkEvent>, max: usize, now: Instant) {
        self.pump();
        self.submit();
        self.recheck = None;
        // Bytes of the messages handed on, for the hand-off's bound.
        let mut handed = 0;
        let mut got = false;
        let mut more = true;
        while out.len() < max {
            let report = match self.handoff.try_next() {
                Some(r) => r,
                // Reports keep coming: look again in a moment instead of
                // being woken by the next one.
                None if got => {
                    self.recheck = Some(now + LINGER);
                    more = false;
                    break;
                }
                // Quiet: sleep until a report wakes us.
                None => match self.handoff.park() {
                    Some(r) => r,
                    None => {
                        more = false;
                        break;
                    }
                },
            };
            got = true;
            match report {
                Report::Message(m)
                    if self
                        .presence
                        .owner
                        .as_deref()
                        .is_some_and(|o| o == m.topic()) =>
                {
                    handed += handoff::cost(&m);
                    if let Some(newer) = self.owner_token(m.payload()) {
                        out.push(LinkEvent::TakenOver { newer });
                    }
                }
                Report::Message(m) => {
                    handed += handoff::cost(&m);
                    out.push(LinkEvent::Message(m));
                }
                Report::Connected => {
                    if self.on_connected() {
                        out.push(LinkEvent::Connected);
                        break;
                    }
                }
                Report::Lost => {
                    if self.on_lost(now) {
                        out.push(LinkEvent::Lost);
                    }
                }
                Report::ConnectFailed(f) => self.on_connect_failed(*f, now),
                Report::Refused(refused) => {
                    let list: Vec<String> = refused
                        .iter()
                        .map(|(f, why)| format!("{f} ({why})"))
                        .collect();
                    warn!(
                        "the broker refused {} subscription(s): {}",
                        refused.len(),
                        list.join(", ")
                    );
                    out.push(LinkEvent::SubscriptionsRefused(
                        refused.into_vec().into_iter().map(|(f, _)| f).collect(),
                    ));
                }
            }
        }
        if handed > 0 {
            self.handoff.release(handed);
        }
        if more {
            self.handoff.notify();
        }
    }

    fn on_connected(&mut self) -> bool {
        let version = match &self.state {
            State::Connecting { version, .. } => *version,
            State::Connected => return false,
            State::Disconnected { .. } => self.version,
        };
        self.state = State::Connected;
        self.version = version;
        self.backoff.reset();
        self.connections += 1;
        self.window = Window::new(self.handoff.clone(), window::MAX_MESSAGES);
        self.facts_window = Window::new(self.handoff.clone(), window::MAX_QOS1);
        self.command(Command::Window(
            self.window.counts(),
            self.facts_window.counts(),
        ));
        if version == V5 {
            info!("connected to {}", self.uri);
        } else {
            warn!(
                "connected to {} with MQTT 3.1.1: the broker does not speak MQTT 5, so the \
                 daemon's own publications are filtered out by their content",
                self.uri
            );
        }
        let (topic, online) = (self.presence.topic.clone(), self.presence.online);
        self.send(&topic, online.as_bytes(), true, Class::Retained);
        if let Some(owner) = self.presence.owner.clone() {
            // Without "no local": the token another process with our
            // client id announced comes back to us (see `owner_token`).
            self.command(Command::SubscribeAll(owner.clone()));
            let token = self.token.clone();
            self.send(&owner, token.as_bytes(), true, Class::Retained);
        }
        true
    }

    /// A token on the owner topic. The retained token a connection finds
    /// first is the last one announced under this client id: ours, a dead
    /// process's (before ours came back once), or — when ours had come
    /// back on an earlier connection — a live process's that connected with
    /// our client id meanwhile (the broker drops each connection for the
    /// other in turn). In that last case, returns whether this process is
    /// the newer of the two.
    fn owner_token(&mut self, payload: &[u8]) -> Option<bool> {
        let ours = payload == self.token.as_bytes();
        let taken = !ours && self.owner_seen == Some(true);
        self.owner_seen = Some(ours);
        if taken {
            error!(
                "another process connected to {} with the client id '{}' (the broker drops \
                 each connection for the other): two programs must not share a client id",
                self.uri, self.client_id
            );
        }
        let started = |t: &[u8]| -> Option<(u64, u64)> {
            let (ms, pid) = std::str::from_utf8(t).ok()?.split_once(' ')?;
            Some((ms.parse().ok()?, pid.parse().ok()?))
        };
        taken.then(|| started(self.token.as_bytes()) > started(payload))
    }

    fn on_lost(&mut self, now: Instant) -> bool {
        if !self.is_connected() {
            return false;
        }
        // Repeats are stale by the time the broker is back; the rest is
        // sent after the next birth.
        self.outbox.drop_repeats();
        self.retry_later(now, &format!("connection to {} lost", self.uri));
        true
    }

    fn on_connect_failed(&mut self, failure: Failure, now: Instant) {
        let State::Connecting { version, v5 } = &mut self.state else {
            return;
        };
        if *version == V5 && failure.suggests_other_version() {
            debug!(
                "MQTT 5 connect to {} failed ({failure}): trying MQTT 3.1.1",
                self.uri
            );
            self.state = State::Connecting {
                version: V311,
                v5: Some(failure),
            };
            self.command(Command::Connect(V311));
            return;
        }
        let why = match v5.take() {
            Some(v5) if v5 != failure => format!("{v5} (with MQTT 3.1.1: {failure})"),
            _ => failure.to_string(),
        };
        self.retry_later(now, &format!("cannot connect to {}: {why}", self.uri));
    }

    fn retry_later(&mut self, now: Instant, why: &str) {
        let delay = self.backoff.next_delay();
        warn!("{why}; retrying in {} s", delay.as_secs());
        self.state = State::Disconnected { next: now + delay };
    }

    /// Subscribes to every filter (after a connection). The caller sends
    /// its first publications before: a broker handles a connection's
    /// packets in order, and thousands of filters take it a while.
    pub fn subscribe_all(&mut self) {
        if !self.is_connected() {
            return;
        }
        let all = self.subscriptions.all();
        let n: usize = all.iter().map(Vec::len).sum();
        for chunk in all {
            self.command(Command::Subscribe(chunk));
        }
        debug!("subscribing to {n} filters");
    }

    /// Sets the filters to subscribe to: subscribes the new ones and
    /// unsubscribes the ones gone when connected; all of them on connect.
    /// O(n) in the number of filters.
    pub fn set_filters(&mut self, filters: Vec<String>) {
        let change = self.subscriptions.replace(filters);
        if !self.is_connected() {
            return;
        }
        for chunk in chunks(change.removed) {
            self.command(Command::Unsubscribe(chunk));
        }
        for chunk in chunks(change.added) {
            self.command(Command::Subscribe(chunk));
        }
    }

    /// Publishes (QoS 0, retained facts QoS 1). Never waits: the message
    /// goes to Paho when its window has room, else to its outbox (where
    /// only repeats may be dropped, see `Class`). While disconnected it is
    /// dropped at once (returns false): the daemon republishes what matters
    /// on connect.
    ///
    /// QoS 1 and QoS 0 publishes have a window and an outbox each. Paho
    /// sends a client's publishes in order, and holds a QoS 1 publish
    /// beyond the broker's receive maximum (20 with mosquitto) until
    /// acknowledgements come: in one window, 10,000 availability
    /// announcements (a flood making every device heard at once) held up
    /// every alert and hello count queued behind them, and kept the count
    /// rounds and replays waiting for the outbox to drain. With at most
    /// `MAX_QOS1` in Paho's hands, none waits there; the others wait in
    /// their own outbox, one per topic, bounded by the configured devices.
    /// The order between a QoS 1 and a QoS 0 publish is not kept: they are
    /// never on the same topic.
    pub fn publish(&mut self, topic: &str, payload: &[u8], retained: bool, class: Class) -> bool {
        if !self.is_connected() {
            return false;
        }
        let (outbox, window) = self.lane(class == Class::Retained);
        if outbox.is_empty() && window.has_room() {
            self.send(topic, payload, retained, class);
        } else {
            outbox.push(topic, payload, retained, class);
            self.pump();
        }
        true
    }

    /// False while the QoS 0 outbox holds more than it should: the main
    /// loop pauses replays until it drains.
    pub fn has_room(&self) -> bool {
        self.outbox.has_room()
    }

    /// How many retained facts (QoS 1) go to Paho at once if published now:
    /// none while disconnected or while some wait in their outbox.
    pub fn fact_room(&mut self) -> usize {
        if !self.is_connected() || !self.facts.is_empty() {
            return 0;
        }
        self.facts_window.room() as usize
    }

    /// Whether a QoS 0 publish now would wait in the outbox behind others
    /// (while disconnected, publishes are dropped: none waits).
    pub fn is_backlogged(&self) -> bool {
        self.is_connected() && !self.outbox.is_empty()
    }

    /// Whether nothing is left to write: disconnected, or no publish waits
    /// in an outbox or in Paho's queue.
    pub fn is_idle(&self) -> bool {
        !self.is_connected()
            || (self.outbox.is_empty()
                && self.window.is_empty()
                && self.facts.is_empty()
                && self.facts_window.is_empty())
    }

    /// The outbox and window of QoS 1 publishes (retained facts), or of
    /// QoS 0 ones.
    fn lane(&mut self, qos1: bool) -> (&mut Outbox, &mut Window) {
        if qos1 {
            (&mut self.facts, &mut self.facts_window)
        } else {
            (&mut self.outbox, &mut self.window)
        }
    }

    /// Moves outbox messages to Paho while their window has room; when one
    /// is full, asks for a wake-up once it has drained to half.
    fn pump(&mut self) {
        if !self.is_connected() {
            return;
        }
        for qos1 in [false, true] {
            loop {
                let (outbox, window) = self.lane(qos1);
                if outbox.is_empty() {
                    break;
                }
                if !window.has_room() && window.wait_for_room() {
                    // Full: the wake-up comes once it has drained to half.
                    break;
                }
                if let Some(p) = outbox.pop() {
                    self.send(&p.topic, &p.payload, p.retained, p.class);
                }
            }
        }
    }

    /// Retained facts go at QoS 1 (a broker keeps them for every newcomer:
    /// they must arrive), everything else at QoS 0 as the original.
    fn send(&mut self, topic: &str, payload: &[u8], retained: bool, class: Class) {
        let qos1 = class == Class::Retained;
        if !self.batch.push(topic, payload, qos1, retained) {
            warn!(
                "cannot publish to {topic:?}: a NUL character in the topic, or a payload of \
                 2 GiB or more (dropped)"
            );
            return;
        }
        self.lane(qos1)
            .1
            .sent(topic.len() + payload.len() + PUBLISH_OVERHEAD);
        if self.version != V5 && !topic.starts_with(&self.presence.base) {
            self.echoes.published(topic, payload, Instant::now());
        }
        if self.batch.len() >= PUBLISH_BATCH {
            self.submit();
        }
    }

    /// Holds `topic` = `payload` (retained) on a connection of its own,
    /// client id `<clientid>-<key>`, whose last will sets `will` (an empty
    /// will clears it): the broker undoes the fact when the daemon dies.
    /// With `renew`, the fact is published again at each reconnection of
    /// that connection and holding it again changes nothing; without, it is
    /// published at the first connection and at each `hold` (a claim that
    /// must not overwrite what others published meanwhile).
    pub fn hold(
        &mut self,
        key: &'static str,
        topic: String,
        payload: &[u8],
        will: &[u8],
        renew: bool,
    ) {
        self.command(Command::Hold(Fact {
            key,
            topic,
            payload: payload.to_vec(),
            will: will.to_vec(),
            renew,
        }));
    }

    /// Lets go of a held fact: publishes `last` first when given, then
    /// closes its connection cleanly (its last will is not published).
    pub fn release(&mut self, key: &'static str, last: Option<&[u8]>) {
        self.command(Command::Release {
            key,
            last: last.map(<[u8]>::to_vec),
        });
    }

    /// Is this incoming message the broker's copy of one of our publishes
    /// (only possible without MQTT 5)?
    pub fn is_echo(&mut self, msg: &Incoming) -> bool {
        self.version != V5 && self.echoes.is_echo(msg.topic(), msg.payload())
    }

    /// Once a second: forgets publishes the broker never echoed.
    pub fn expire_echoes(&mut self, now: Instant) {
        self.echoes.expire(now);
    }

    pub fn stats(&self) -> LinkStats {
        let (qos0, qos0_bytes) = self.window.in_flight();
        let (qos1, qos1_bytes) = self.facts_window.in_flight();
        LinkStats {
            dropped_repeats: self.outbox.dropped_repeats(),
            outbox_messages: self.outbox.len() + self.facts.len(),
            outbox_bytes: self.outbox.bytes() + self.facts.bytes(),
            in_flight_messages: qos0 + qos1,
            in_flight_bytes: qos0_bytes + qos1_bytes,
            connections: self.connections,
            handoff_waits: self.handoff.waits(),
        }
    }

    /// Publishes the offline presence (when connected) and disconnects,
    /// waiting at most about `timeout` (used once, at shutdown). Messages
    /// arriving from now on are dropped.
    pub fn shutdown(&mut self, timeout: Duration) {
        self.handoff.close();
        let (done, finished) = bounded(1);
        if self
            .commands
            .send(Command::Shutdown { timeout, done })
            .is_ok()
        {
            let _ = finished.recv_timeout(2 * timeout + Duration::from_millis(500));
        }
        self.state = State::Disconnected {
            next: Instant::now() + RECONNECT_MAX,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_keep_alive_notices_a_dead_link_within_one_and_a_half_keep_alives() {
        for k in 5..=3600 {
            let announced = announced_keep_alive(k).as_secs_f64();
            // Paho's worst case (module doc): 2.5 K, plus twice its check
            // period (K/10, at least every receive cycle of at most 1 s).
            let worst = 2.5 * announced + 2.0 * (announced / 10.0 + 1.0);
            assert!(worst <= 1.5 * k as f64, "keepAlive {k}: {worst} s");
            // And the broker does not publish the will after a mere blip.
            assert!(1.5 * announced >= 0.5 * k as f64 - 1.0, "keepAlive {k}");
        }
    }

    #[test]
    fn a_message_keeps_its_topic_and_payload_apart_and_moves_into_the_store_whole() {
        let m = Incoming::new("home/d1/state/\u{e9}", b"\xff\x00on", true);
        assert_eq!(m.topic(), "home/d1/state/\u{e9}");
        assert_eq!(m.payload(), b"\xff\x00on");
        assert!(m.retained);
        assert_eq!(m.size(), "home/d1/state/\u{e9}".len() + 4);
        let r = m.into_record();
        assert_eq!(
            (r.key(), r.value()),
            ("home/d1/state/\u{e9}".as_bytes(), &b"\xff\x00on"[..])
        );
        let empty = Incoming::new("t", b"", false);
        assert_eq!((empty.topic(), empty.payload()), ("t", &b""[..]));
    }
}
