//! The monitor core: every decision of the watchdog, and no I/O.
//!
//! [`Monitor`] owns the devices together with their routes, deadlines,
//! hello counts and verdicts. The main loop feeds it what happened — a
//! message, a tick, the broker connecting or going away, an agent
//! launched, a reload — with the time ([`Now`]), and the core answers in an
//! [`Outbox`]: what to publish, which transitions to record in the
//! history, which verdicts to persist. The core never reads a clock,
//! touches the network, the database or a process: its tests drive it with
//! an injected clock through every scenario of the daemon.
//!
//! Verdicts follow elapsed time: deadlines are monotonic milliseconds, and
//! epoch seconds only appear in payloads. Verdicts also survive restarts:
//! the availability last announced for each device is given back at start
//! (from the store), so an offline device stays offline until heard and a
//! device not heard since start is announced neither online nor offline
//! until it is heard or its first deadline passes.

mod discovery;
pub mod failover;
pub mod topics;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, UNIX_EPOCH};

use log::{info, warn};

use crate::clock::{MaybeMs, Now};
use crate::config::{DeviceConfig, HomeAssistant, MqttConfig, Specs};
use crate::event::{Event, EventKind};
use crate::filter::Filter;
use crate::routes::{Hit, Kind, Routes};
use crate::watchdog::Watch;

use discovery::Discovery;
use failover::{Action, Election, FailoverSettings, Peer, Role};
use topics::{Own, Topics};

/// `B/up` wraps to 0 after 999999, as the original.
const UP_WRAP: u64 = 1_000_000;
/// `B/lastseen/<name>` is refreshed at most this often per device.
const LAST_SEEN_EVERY_MS: u64 = 60_000;
/// More devices expiring in one tick than this are logged as one line.
const EXPIRY_LOG_LINES: usize = 3;

/// What a publish is, which decides how the link treats it when the
/// broker is slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Sent again at the next tick anyway (`B/up`, hello counts): the
    /// first to be dropped when the link is congested.
    Repeat,
    /// `B/expired/…`, `B/startedprocess/…`: never dropped (QoS 0, not
    /// retained, as the original).
    Alert,
    /// A replayed state: never dropped.
    Replay,
    /// A retained fact (availability, presence, discovery, last seen):
    /// never dropped, sent at QoS 1.
    Retained,
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub class: Class,
}

/// What a call into the core asks the main loop to do.
#[derive(Debug, Default)]
pub struct Outbox {
    pub publishes: Vec<Publish>,
    /// Transitions for the history.
    pub events: Vec<Event>,
    /// Availability announced per device, to persist (None: forget it).
    pub verdicts: Vec<(String, Option<bool>)>,
    /// What the daemon must do for the failover election.
    pub failover: Vec<Action>,
}

impl Outbox {
    fn publish(&mut self, topic: String, payload: impl Into<Vec<u8>>, class: Class) {
        self.publishes.push(Publish {
            topic,
            payload: payload.into(),
            retain: class == Class::Retained,
            class,
        });
    }

    fn event(&mut self, now: Now, kind: EventKind, subject: &str, detail: String) {
        self.events.push(Event {
            at_ms: now.wall_ms,
            kind,
            subject: subject.to_string(),
            detail,
        });
    }
}

/// The settings of the core that come from `[mqtt]` (fixed until restart)
/// and `[homeassistant]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base_topic: String,
    pub client_id: String,
    pub retain_states: bool,
    pub homeassistant: Option<HomeAssistant>,
    /// `[failover]`: this instance's priority among several.
    pub failover: Option<i64>,
}

impl Settings {
    pub fn new(
        mqtt: &MqttConfig,
        homeassistant: Option<HomeAssistant>,
        failover: Option<i64>,
    ) -> Settings {
        Settings {
            base_topic: mqtt.base_topic.clone(),
            client_id: mqtt.client_id.clone(),
            retain_states: mqtt.retain_states,
            homeassistant,
            failover,
        }
    }
}

/// The failover state, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverView {
    pub id: String,
    pub priority: i64,
    pub role: Role,
    pub leader: Option<String>,
    pub peers: Vec<(String, Peer)>,
    pub takeovers: u64,
    /// Epoch milliseconds of the last takeover by this instance.
    pub last_takeover_ms: Option<u64>,
}

/// A device's verdict as shown to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Heard since start, deadline not passed.
    Online,
    /// Its deadline passed.
    Expired,
    /// Not heard since start and first deadline not passed, but announced
    /// offline before the restart.
    Offline,
    /// Not heard since start, first deadline not passed.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Online => "online",
            Verdict::Expired => "expired",
            Verdict::Offline => "offline",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One device or agent as the core sees it, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView {
    pub name: String,
    pub agent: bool,
    pub verdict: Verdict,
    pub timeout_s: u64,
    /// Epoch milliseconds of the last activity since start.
    pub last_contact_ms: Option<u64>,
    /// Epoch milliseconds of the current deadline.
    pub deadline_ms: u64,
    pub hello_count: u64,
    /// Times it expired since start.
    pub expirations: u64,
    /// Epoch milliseconds since when the verdict holds.
    pub verdict_since_ms: u64,
    /// Epoch milliseconds of the last agent launch by this daemon.
    pub last_launch_ms: Option<u64>,
}

/// What the core follows of a device; its configuration is in
/// `Monitor::specs`, at the same position.
struct Device {
    watch: Watch,
    hello_count: u64,
    /// Its deadline passed: `B/expired/<name>` at every tick.
    expired: bool,
    /// Heard since start.
    heard: bool,
    /// The availability on the broker as far as the core knows (retained
    /// `B/availability/<name>`): restored at start, None when never
    /// announced.
    announced: Option<bool>,
    /// Monotonic ms of the last `B/lastseen/<name>`.
    last_seen_sent: MaybeMs,
    /// A hello replay is queued.
    replay_queued: bool,
    /// Its availability is queued for publication (`announce_queue`).
    unsent: bool,
    expirations: u64,
    /// Monotonic ms of the last verdict change.
    since: u64,
    /// Monotonic ms of the last agent launch.
    last_launch: MaybeMs,
}

impl Device {
    fn new(timeout_s: u64, announced: Option<bool>, now: u64) -> Device {
        Device {
            watch: Watch::new(timeout_s, now),
            hello_count: 0,
            expired: false,
            heard: false,
            announced,
            last_seen_sent: MaybeMs::NEVER,
            replay_queued: false,
            unsent: false,
            expirations: 0,
            since: now,
            last_launch: MaybeMs::NEVER,
        }
    }

    fn verdict(&self) -> Verdict {
        match (self.expired, self.heard, self.announced) {
            (true, _, _) => Verdict::Expired,
            (false, true, _) => Verdict::Online,
            (false, false, Some(false)) => Verdict::Offline,
            (false, false, _) => Verdict::Unknown,
        }
    }
}

/// What the start-up replay is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartupReplay {
    /// The first connection.
    Waiting,
    /// The main loop to take it.
    Due,
    Taken,
}

/// A hello replay to run: the stored states of one device.
pub struct ReplayPlan<'a> {
    pub device: &'a str,
    pub filters: Vec<Filter>,
    pub hello: Option<&'a str>,
    pub retain: bool,
}

impl ReplayPlan<'_> {
    /// Whether a stored topic is replayed: a state of the device, never its
    /// hello topic.
    pub fn wants(&self, topic: &str) -> bool {
        self.hello != Some(topic) && self.filters.iter().any(|f| f.matches(topic))
    }
}

pub struct Monitor {
    topics: Topics,
    retain_states: bool,
    client_id: String,
    discovery: Option<Discovery>,
    /// Home Assistant's status topic, compared with every message.
    ha_status: Option<String>,
    /// The devices' configuration ...
    specs: Specs,
    /// ... and what the core follows of each, at the same positions.
    devices: Vec<Device>,
    routes: Routes,
    /// What the message being handled means (reused: no allocation per
    /// message).
    hits: Vec<Hit>,
    /// Positions of the agents in `devices`.
    agents: Vec<u32>,
    /// Monotonic ms at start (first deadlines, changed timeouts).
    start: u64,
    up: u64,
    connected: bool,
    /// Connected at least once (a later connection is a reconnection).
    was_connected: bool,
    startup_replay: StartupReplay,
    /// Devices whose states are to be replayed (hello), oldest first.
    replay_queue: Vec<u32>,
    /// Devices whose availability is to be published, oldest first (see
    /// [`Monitor::next_announcements`]).
    announce_queue: VecDeque<u32>,
    /// The round of hello counts in progress: the next device.
    count_cursor: Option<usize>,
    /// `B/startedprocess/<name>` not sent yet (broker away).
    unsent_starts: Vec<Publish>,
    /// With `[failover]`: the election, and device positions sorted by
    /// name (a standby follows the leader's availability announcements).
    election: Option<Election>,
    by_name: Vec<u32>,
}

impl Monitor {
    /// A core for `devices`, with the availability last announced for each
    /// (by name, as persisted: true = online).
    pub fn new(
        settings: Settings,
        devices: Vec<DeviceConfig>,
        announced: &HashMap<String, bool>,
        now: Now,
    ) -> Monitor {
        let specs = Specs::new(&devices);
        let devices: Vec<Device> = devices
            .iter()
            .map(|cfg| {
                let known = announced.get(&cfg.name).copied();
                Device::new(cfg.watch_timeout, known, now.mono_ms)
            })
            .collect();
        let mut m = Monitor {
            topics: Topics::new(&settings.base_topic),
            retain_states: settings.retain_states,
            client_id: settings.client_id.clone(),
            discovery: None,
            ha_status: None,
            routes: Routes::build(&Specs::default()),
            hits: Vec::new(),
            agents: Vec::new(),
            specs,
            devices,
            start: now.mono_ms,
            up: 0,
            connected: false,
            was_connected: false,
            startup_replay: StartupReplay::Waiting,
            replay_queue: Vec::new(),
            announce_queue: VecDeque::new(),
            count_cursor: None,
            unsent_starts: Vec::new(),
            election: settings.failover.map(|priority| {
                Election::new(&FailoverSettings {
                    id: settings.client_id.clone(),
                    priority,
                })
            }),
            by_name: Vec::new(),
        };
        m.set_homeassistant(settings.homeassistant.as_ref());
        m.reindex();
        m
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    fn set_homeassistant(&mut self, ha: Option<&HomeAssistant>) {
        self.discovery = ha.map(|ha| Discovery::new(&ha.prefix, &self.client_id));
        self.ha_status = self.discovery.as_ref().map(Discovery::status_topic);
    }

    /// Rebuilds what depends on device positions.
    fn reindex(&mut self) {
        self.routes = Routes::build(&self.specs);
        self.agents = (0..self.devices.len() as u32)
            .filter(|&i| self.specs.is_agent(i as usize))
            .collect();
        if self.election.is_some() {
            self.by_name = by_name(&self.specs);
        }
    }

    /// The broker subscriptions: those of the devices (every configured
    /// filter: [`Routes::subscriptions`], computed by the caller, off the
    /// main loop for a reload), Home Assistant's status topic with
    /// discovery, and with failover the lease, the presences and the
    /// leader's `B/up` and availability.
    pub fn subscriptions(&self, devices: Vec<String>) -> Vec<String> {
        let mut subs = devices;
        subs.extend(self.ha_status.clone());
        if self.election.is_some() {
            subs.push(self.topics.leader());
            subs.push(self.topics.instance("#"));
            subs.push(self.topics.up());
            subs.push(self.topics.availability("+"));
        }
        subs
    }

    /// Whether this instance publishes the leader's topics, replays and
    /// runs agents: always without failover, when active with it.
    pub fn leading(&self) -> bool {
        self.election
            .as_ref()
            .is_none_or(|e| e.role() == Role::Active)
    }

    /// The failover state, when `[failover]` is on.
    pub fn failover_view(&self, now: Now) -> Option<FailoverView> {
        let e = self.election.as_ref()?;
        Some(FailoverView {
            id: e.id().to_string(),
            priority: e.priority(),
            role: e.role(),
            leader: e.leader().map(String::from),
            peers: e
                .peers()
                .iter()
                .map(|(id, p)| (id.clone(), p.clone()))
                .collect(),
            takeovers: e.takeovers(),
            last_takeover_ms: e.last_takeover().map(|t| now.wall_of(t)),
        })
    }

    /// Whether another instance could take over (a clean shutdown of the
    /// active instance then leaves `B/status` online).
    pub fn standby_alive(&self) -> bool {
        self.election
            .as_ref()
            .is_some_and(|e| e.peers().values().any(|p| p.presence == "standby"))
    }

    /// One of the daemon's own topics: with failover, the lease, the
    /// presences, and the leader's `B/up` and availability while standby.
    fn on_own(&mut self, own: Own<'_>, payload: &[u8], now: Now, out: &mut Outbox) {
        let Some(election) = &mut self.election else {
            return;
        };
        let mut actions = Vec::new();
        match own {
            Own::Leader => election.on_leader(payload, now.mono_ms, &mut actions),
            Own::Instance(rest) => election.on_instance(rest, payload, now.mono_ms, &mut actions),
            Own::Up if election.role() != Role::Active => {
                if let Some(up) = std::str::from_utf8(payload)
                    .ok()
                    .and_then(|p| p.trim().parse().ok())
                {
                    self.up = up;
                }
            }
            Own::Availability(name) if election.role() != Role::Active => {
                if let Some(i) = position(&self.by_name, &self.specs, name) {
                    let d = &mut self.devices[i];
                    let announced = match payload {
                        b"online" => Some(true),
                        b"offline" => Some(false),
                        _ => None,
                    };
                    if d.announced != announced {
                        d.announced = announced;
                        out.verdicts
                            .push((self.specs.name(i).to_string(), announced));
                    }
                }
            }
            _ => {}
        }
        self.apply(actions, now, out);
    }

    /// Carries out the election's decisions that concern the core, and
    /// hands the others to the daemon.
    fn apply(&mut self, actions: Vec<Action>, now: Now, out: &mut Outbox) {
        for action in actions {
            match &action {
                Action::BecameActive { fresh } => {
                    info!("failover: this instance is now the active one");
                    out.event(now, EventKind::Takeover, "", String::new());
                    self.publish_presence(out);
                    // Only what changed while standby is announced.
                    for i in 0..self.devices.len() {
                        let d = &self.devices[i];
                        if d.expired || d.heard {
                            let online = !d.expired;
                            self.announce(i, online, out);
                        }
                    }
                    self.lead(out);
                    self.startup_replay = if *fresh {
                        StartupReplay::Due
                    } else {
                        StartupReplay::Taken
                    };
                }
                Action::Resumed => {
                    info!("failover: still the active instance after reconnecting");
                    self.publish_presence(out);
                    self.republish_verdicts();
                    self.lead(out);
                }
                Action::Deposed { by } => {
                    warn!("failover: {by} holds the lease: this instance is now a standby");
                    out.event(now, EventKind::Deposed, "", format!("by {by}"));
                    self.publish_presence(out);
                    self.count_cursor = None;
                    self.replay_queue.clear();
                    self.announce_queue.clear();
                    for d in &mut self.devices {
                        d.replay_queued = false;
                        d.unsent = false;
                    }
                }
                Action::Claim | Action::Withdraw => {}
            }
            out.failover.push(action);
        }
    }

    /// `B/instances/<id>` and its priority (retained), on the main
    /// connection whose last will says `offline`.
    fn publish_presence(&self, out: &mut Outbox) {
        let Some(e) = &self.election else {
            return;
        };
        out.publish(
            self.topics.instance(e.id()),
            e.role().presence(),
            Class::Retained,
        );
        out.publish(
            self.topics.instance_priority(e.id()),
            e.priority().to_string(),
            Class::Retained,
        );
    }

    /// What a leader publishes when it starts leading on a connection:
    /// discovery and the launches that could not be announced.
    fn lead(&mut self, out: &mut Outbox) {
        self.publish_discovery(out);
        out.publishes.append(&mut self.unsent_starts);
    }

    /// Verdicts established since start are sent again (the broker may
    /// have lost its retained messages); restored ones are left as the
    /// broker holds them until the device is heard or expires.
    fn republish_verdicts(&mut self) {
        for i in 0..self.devices.len() {
            let d = &self.devices[i];
            if d.announced.is_some() && (d.heard || d.expired) {
                self.queue_announcement(i);
            }
        }
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// A message from the broker (not one of the link's echoes). Returns
    /// whether it is a state to store.
    pub fn on_message(
        &mut self,
        topic: &str,
        payload: &[u8],
        retained: bool,
        now: Now,
        out: &mut Outbox,
    ) -> bool {
        if let Some(own) = self.topics.own(topic) {
            self.on_own(own, payload, now, out);
            return false;
        }
        if self.ha_status.as_deref() == Some(topic) && payload == b"online" {
            self.publish_discovery(out);
        }
        let mut hits = std::mem::take(&mut self.hits);
        hits.clear();
        self.routes.route(topic, |h| hits.push(h));
        let state = hits.iter().any(|h| h.kind() == Kind::State);
        // Retained messages sent at subscribe time are stale news.
        if !retained {
            self.on_activity(&hits, now, out);
        }
        self.hits = hits;
        state
    }

    /// A live message reached the devices in `hits`: deadlines, verdicts,
    /// last seen, hellos.
    fn on_activity(&mut self, hits: &[Hit], now: Now, out: &mut Outbox) {
        for h in hits.iter().filter(|h| h.kind() == Kind::Watch) {
            let i = h.device() as usize;
            let d = &mut self.devices[i];
            d.watch.contact(now.mono_ms);
            if d.expired || !d.heard || d.announced != Some(true) {
                self.heard(i, now, out);
            }
        }
        let leading = self.leading();
        if leading && self.discovery.is_some() {
            for h in hits.iter().filter(|h| h.kind() == Kind::Watch) {
                let i = h.device() as usize;
                let d = &mut self.devices[i];
                if d.last_seen_sent
                    .get()
                    .is_none_or(|t| now.mono_ms >= t + LAST_SEEN_EVERY_MS)
                {
                    d.last_seen_sent = MaybeMs::at(now.mono_ms);
                    out.publish(
                        self.topics.last_seen(self.specs.name(i)),
                        rfc3339(now.wall_ms),
                        Class::Retained,
                    );
                }
            }
        }
        for h in hits.iter().filter(|h| h.kind() == Kind::Hello) {
            let i = h.device();
            let d = &mut self.devices[i as usize];
            d.hello_count += 1;
            if !leading {
                continue;
            }
            info!(
                "hello from {} (#{}): replaying its states",
                self.specs.name(i as usize),
                d.hello_count
            );
            if !d.replay_queued {
                d.replay_queued = true;
                self.replay_queue.push(i);
            }
        }
    }

    /// A device heard while expired, for the first time, or not announced
    /// online: it is (back) online.
    fn heard(&mut self, i: usize, now: Now, out: &mut Outbox) {
        let d = &mut self.devices[i];
        let kind = if d.expired || d.announced == Some(false) {
            info!("device {} is back", self.specs.name(i));
            Some(EventKind::Back)
        } else if !d.heard {
            Some(EventKind::FirstHeard)
        } else {
            None
        };
        let changed = d.expired || !d.heard || d.announced != Some(true);
        d.expired = false;
        d.heard = true;
        if changed {
            d.since = now.mono_ms;
        }
        if let Some(kind) = kind {
            out.event(now, kind, self.specs.name(i), String::new());
        }
        self.announce(i, true, out);
    }

    /// Announces a device's availability when it differs from what the
    /// broker holds (queued, see [`Monitor::next_announcements`]), and asks
    /// for it to be persisted.
    /// A standby announces nothing: it follows the leader's announcements.
    fn announce(&mut self, i: usize, online: bool, out: &mut Outbox) {
        if !self.leading() {
            return;
        }
        let d = &mut self.devices[i];
        if d.announced == Some(online) {
            return;
        }
        d.announced = Some(online);
        out.verdicts
            .push((self.specs.name(i).to_string(), Some(online)));
        self.queue_announcement(i);
    }

    fn queue_announcement(&mut self, i: usize) {
        let d = &mut self.devices[i];
        if !d.unsent {
            d.unsent = true;
            self.announce_queue.push_back(i as u32);
        }
    }

    /// Whether availability announcements wait for
    /// [`Monitor::next_announcements`].
    pub fn announcements_pending(&self) -> bool {
        !self.announce_queue.is_empty()
    }

    /// Publishes the availability of up to `max` devices whose verdict
    /// changed (or that a new connection announces again), oldest first;
    /// returns whether more wait. Queued as device positions rather than
    /// publishes: a flood that makes 10,000 devices heard at once holds 4
    /// bytes a device until the broker has acknowledged the announcements
    /// (QoS 1) before them, not a queued message (about 180 bytes). Each
    /// says the verdict at the time it leaves (a device that changed twice
    /// meanwhile is announced once, as it is now).
    pub fn next_announcements(&mut self, max: usize, out: &mut Outbox) -> bool {
        let mut sent = 0;
        while sent < max {
            let Some(i) = self.announce_queue.pop_front() else {
                break;
            };
            let i = i as usize;
            let d = &mut self.devices[i];
            d.unsent = false;
            if let Some(online) = d.announced {
                out.publish(
                    self.topics.availability(self.specs.name(i)),
                    if online { "online" } else { "offline" },
                    Class::Retained,
                );
                sent += 1;
            }
        }
        !self.announce_queue.is_empty()
    }

    /// Once a second: `B/up`, expiries and their alerts, and the start of a
    /// round of hello counts (see [`Monitor::next_counts`]).
    pub fn tick(&mut self, now: Now, out: &mut Outbox) {
        if let Some(e) = &mut self.election {
            let mut actions = Vec::new();
            e.step(now.mono_ms, &mut actions);
            self.apply(actions, now, out);
        }
        let leading = self.leading();
        if leading {
            self.up = (self.up + 1) % UP_WRAP;
            out.publish(self.topics.up(), self.up.to_string(), Class::Repeat);
        }
        let mut newly: Vec<usize> = Vec::new();
        for i in 0..self.devices.len() {
            let d = &mut self.devices[i];
            if !d.watch.is_expired(now.mono_ms) {
                continue;
            }
            if !d.expired {
                d.expired = true;
                d.expirations += 1;
                d.since = now.mono_ms;
                newly.push(i);
                if d.announced != Some(false) {
                    out.event(now, EventKind::Expired, self.specs.name(i), String::new());
                }
                self.announce(i, false, out);
            }
            if leading {
                let d = &self.devices[i];
                out.publish(
                    self.topics.expired(self.specs.name(i)),
                    now.wall_s_of(d.watch.deadline()).to_string(),
                    Class::Alert,
                );
            }
        }
        self.log_expiries(&newly);
        // A round still going from the last tick is finished first.
        while self.next_counts(usize::MAX, out) {}
        if leading {
            self.count_cursor = Some(0);
        }
    }

    /// One WARN line per newly expired device, or one for all of them when
    /// many expire together.
    fn log_expiries(&self, newly: &[usize]) {
        if newly.len() <= EXPIRY_LOG_LINES {
            for &i in newly {
                warn!(
                    "device {} expired: no message on its watch topics for {} s",
                    self.specs.name(i),
                    self.devices[i].watch.timeout_s()
                );
            }
            return;
        }
        let names: Vec<&str> = newly.iter().take(10).map(|&i| self.specs.name(i)).collect();
        let more = newly.len() - names.len();
        warn!(
            "{} devices expired together: {}{}",
            newly.len(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }

    /// `B/helloTopicCount/<name>` for the next `max` devices of the round
    /// started at the last tick; returns whether more remain. The main loop
    /// paces the pages so that a large installation's counts are spread
    /// over the second.
    pub fn next_counts(&mut self, max: usize, out: &mut Outbox) -> bool {
        let Some(start) = self.count_cursor.take() else {
            return false;
        };
        let end = start.saturating_add(max).min(self.devices.len());
        for i in start..end {
            out.publish(
                self.topics.hello_count(self.specs.name(i)),
                self.devices[i].hello_count.to_string(),
                Class::Repeat,
            );
        }
        if end < self.devices.len() {
            self.count_cursor = Some(end);
            return true;
        }
        false
    }

    /// The broker connection is up (the link published the birth): `B/up`
    /// at once if no tick ran yet, every known availability, discovery,
    /// launches that could not be announced, and the start-up replay after
    /// the first connection.
    pub fn on_connected(&mut self, now: Now, out: &mut Outbox) {
        self.connected = true;
        if self.was_connected {
            out.event(now, EventKind::BrokerRegained, "", String::new());
        }
        self.was_connected = true;
        if let Some(e) = &mut self.election {
            // Nothing of the leader's before the election has decided; the
            // link's birth said `standby`, the priority goes with it.
            e.on_connected(now.mono_ms);
            out.publish(
                self.topics.instance_priority(e.id()),
                e.priority().to_string(),
                Class::Retained,
            );
            return;
        }
        if self.up == 0 {
            // Connected before the first tick: say we are up at once.
            self.tick(now, out);
        }
        self.republish_verdicts();
        self.lead(out);
        if self.startup_replay == StartupReplay::Waiting {
            self.startup_replay = StartupReplay::Due;
        }
    }

    /// The broker connection is gone.
    pub fn on_disconnected(&mut self, now: Now, out: &mut Outbox) {
        if self.connected {
            out.event(now, EventKind::BrokerLost, "", String::new());
        }
        self.connected = false;
        if let Some(e) = &mut self.election {
            e.on_disconnected();
        }
    }

    /// Whether the start-up replay is to start now (once, after the first
    /// connection).
    pub fn take_startup_replay(&mut self) -> bool {
        let due = self.startup_replay == StartupReplay::Due;
        if due {
            self.startup_replay = StartupReplay::Taken;
        }
        due
    }

    /// Whether a stored topic is republished by the start-up replay: a
    /// state of a configured device, never a hello topic.
    pub fn is_replayable(&self, topic: &str) -> bool {
        self.routes.is_replayable(topic)
    }

    pub fn retain_states(&self) -> bool {
        self.retain_states
    }

    pub fn replays_pending(&self) -> bool {
        !self.replay_queue.is_empty()
    }

    /// The next hello replay to run, oldest hello first; a device with
    /// several hellos queued is replayed once.
    pub fn next_replay(&mut self) -> Option<ReplayPlan<'_>> {
        if self.replay_queue.is_empty() {
            return None;
        }
        let i = self.replay_queue.remove(0) as usize;
        self.devices[i].replay_queued = false;
        Some(ReplayPlan {
            device: self.specs.name(i),
            filters: self.specs.state(i).map(Filter::normalised).collect(),
            hello: self.specs.hello(i),
            retain: self.retain_states,
        })
    }

    fn publish_discovery(&self, out: &mut Outbox) {
        let Some(disc) = self.discovery.as_ref().filter(|_| self.leading()) else {
            return;
        };
        let (topic, payload) = disc.hub(&self.topics);
        out.publish(topic, payload, Class::Retained);
        for i in 0..self.specs.count() {
            let (name, agent) = (self.specs.name(i), self.specs.is_agent(i));
            for (topic, payload) in disc.device(&self.topics, name, agent) {
                out.publish(topic, payload, Class::Retained);
            }
        }
    }

    /// Whether an agent missed its deadline (for `restartOnExpire`).
    pub fn is_expired(&self, name: &str) -> bool {
        self.agents
            .iter()
            .any(|&i| self.specs.name(i as usize) == name && self.devices[i as usize].expired)
    }

    /// An agent was launched (`kind`: launched, relaunched, restarted):
    /// `B/startedprocess/<name>`, kept until the broker is back if need be.
    pub fn agent_launched(
        &mut self,
        name: &str,
        kind: EventKind,
        pid: i32,
        now: Now,
        out: &mut Outbox,
    ) {
        let publish = Publish {
            topic: self.topics.started(name),
            payload: (now.wall_ms / 1000).to_string().into_bytes(),
            retain: false,
            class: Class::Alert,
        };
        if self.connected {
            out.publishes.push(publish);
        } else {
            self.unsent_starts.retain(|p| p.topic != publish.topic);
            self.unsent_starts.push(publish);
        }
        if let Some(&i) = self
            .agents
            .iter()
            .find(|&&i| self.specs.name(i as usize) == name)
        {
            self.devices[i as usize].last_launch = MaybeMs::at(now.mono_ms);
        }
        out.event(now, kind, name, format!("pid {pid}"));
    }

    /// Something else happened to an agent (it died): for the history.
    pub fn agent_event(
        &mut self,
        kind: EventKind,
        name: &str,
        detail: String,
        now: Now,
        out: &mut Outbox,
    ) {
        out.event(now, kind, name, detail);
    }

    /// Applies a reloaded configuration (`[mqtt]` changes are the caller's
    /// business: they need a restart). Devices keeping their name keep
    /// their deadline, hello count and verdict; removed ones have their
    /// retained topics cleared.
    pub fn reload(
        &mut self,
        devices: Vec<DeviceConfig>,
        homeassistant: Option<&HomeAssistant>,
        now: Now,
        out: &mut Outbox,
    ) {
        // The queues follow their devices by name.
        let names = |queue: &mut dyn Iterator<Item = &u32>| -> Vec<String> {
            queue
                .map(|&i| self.specs.name(i as usize).to_string())
                .collect()
        };
        let replays = names(&mut self.replay_queue.iter());
        let announcements = names(&mut self.announce_queue.iter());
        let old_specs = std::mem::replace(&mut self.specs, Specs::new(&devices));
        let old_by_name = by_name(&old_specs);
        let mut old: Vec<Option<Device>> = std::mem::take(&mut self.devices)
            .into_iter()
            .map(Some)
            .collect();
        let ha_changed = self.discovery.as_ref().map(Discovery::prefix)
            != homeassistant.map(|h| h.prefix.as_str());
        if ha_changed {
            self.clear_discovery((0..old_specs.count()).map(|i| old_specs.name(i)), out);
        }
        self.devices.reserve_exact(devices.len());
        for (j, cfg) in devices.iter().enumerate() {
            let kept = position(&old_by_name, &old_specs, &cfg.name)
                .and_then(|i| old[i].take().map(|d| (i, d)));
            let device = match kept {
                Some((i, mut d)) => {
                    let timeout_changed = d.watch.timeout_s() != cfg.watch_timeout;
                    if timeout_changed {
                        d.watch.set_timeout(cfg.watch_timeout, self.start);
                    }
                    if timeout_changed || !old_specs.same(i, &self.specs, j) {
                        info!("reload: device {} changed", cfg.name);
                    }
                    d
                }
                None => {
                    info!("reload: device {} added", cfg.name);
                    Device::new(cfg.watch_timeout, None, now.mono_ms)
                }
            };
            self.devices.push(device);
        }
        let removed: Vec<&str> = (0..old.len())
            .filter(|&i| old[i].is_some())
            .map(|i| old_specs.name(i))
            .collect();
        let leading = self.leading();
        for &name in &removed {
            info!("reload: device {name} removed");
            if leading {
                out.publish(self.topics.availability(name), "", Class::Retained);
                out.publish(self.topics.last_seen(name), "", Class::Retained);
            }
            out.verdicts.push((name.to_string(), None));
        }
        if !ha_changed {
            self.clear_discovery(removed.iter().copied(), out);
        }
        self.set_homeassistant(homeassistant);
        self.reindex();
        // Positions changed: the round of counts restarts at the next tick,
        // pending replays and announcements follow their devices by name (a
        // removed device's availability was cleared above).
        self.count_cursor = None;
        let sorted = by_name(&self.specs);
        let positions = |names: Vec<String>| -> Vec<usize> {
            names
                .iter()
                .filter_map(|n| position(&sorted, &self.specs, n))
                .collect()
        };
        let (replays, announcements) = (positions(replays), positions(announcements));
        self.replay_queue.clear();
        self.announce_queue.clear();
        for d in &mut self.devices {
            d.replay_queued = false;
            d.unsent = false;
        }
        for i in replays {
            self.devices[i].replay_queued = true;
            self.replay_queue.push(i as u32);
        }
        for i in announcements {
            self.queue_announcement(i);
        }
        self.publish_discovery(out);
        out.event(
            now,
            EventKind::ConfigReloaded,
            "",
            format!("{} devices", self.devices.len()),
        );
        info!("configuration reloaded: {} devices", self.devices.len());
    }

    fn clear_discovery<'a>(&self, names: impl Iterator<Item = &'a str>, out: &mut Outbox) {
        let Some(disc) = self.discovery.as_ref().filter(|_| self.leading()) else {
            return;
        };
        for name in names {
            for topic in disc.topics(name) {
                out.publish(topic, "", Class::Retained);
            }
        }
    }

    /// Every device and agent as the core sees it now.
    pub fn view(&self, now: Now) -> Vec<DeviceView> {
        self.devices
            .iter()
            .enumerate()
            .map(|(i, d)| DeviceView {
                name: self.specs.name(i).to_string(),
                agent: self.specs.is_agent(i),
                verdict: d.verdict(),
                timeout_s: d.watch.timeout_s(),
                last_contact_ms: d.watch.last_contact().map(|c| now.wall_of(c)),
                deadline_ms: now.wall_of(d.watch.deadline()),
                hello_count: d.hello_count,
                expirations: d.expirations,
                verdict_since_ms: now.wall_of(d.since),
                last_launch_ms: d.last_launch.get().map(|t| now.wall_of(t)),
            })
            .collect()
    }

    /// The current value of `B/up`.
    pub fn up(&self) -> u64 {
        self.up
    }
}

/// Device positions sorted by name.
fn by_name(specs: &Specs) -> Vec<u32> {
    let mut by_name: Vec<u32> = (0..specs.count() as u32).collect();
    by_name.sort_unstable_by(|&a, &b| specs.name(a as usize).cmp(specs.name(b as usize)));
    by_name
}

/// The position of the device named `name`, by `by_name` (sorted by name).
fn position(by_name: &[u32], specs: &Specs, name: &str) -> Option<usize> {
    by_name
        .binary_search_by(|&i| specs.name(i as usize).cmp(name))
        .ok()
        .map(|k| by_name[k] as usize)
}

/// RFC 3339 UTC time of epoch milliseconds, to the second.
fn rfc3339(wall_ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(wall_ms)).to_string()
}

#[cfg(test)]
mod tests;
