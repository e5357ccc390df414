//! The main loop. One thread owns all mutable state — devices, deadlines,
//! the state store, the MQTT link — and `select!`s over the link's events,
//! signals and a 1-second tick aligned on wall-clock seconds. Other threads
//! only send it messages.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use log::{error, info, warn};

use crate::agents::{AgentSpec, Supervisor};
use crate::config::{self, Config, DeviceConfig};
use crate::http::{Query, Reply, Request};
use crate::link::{Class, Incoming, Link, LinkEvent, Presence};
use crate::notify::Notifier;
use crate::routes::{scan_prefixes, Routes};
use crate::status::{self, Counters, DeviceStatus};
use crate::store::{Store, StoreError};
use crate::watchdog::{now_ms, Watch};

/// Link events handled in one go before looking at the other inputs.
const MAX_BURST: usize = 4096;
/// States are written to the database at most this long after they
/// arrive (one batch for everything received meanwhile)...
const COMMIT_WINDOW: Duration = Duration::from_millis(20);
/// ... or as soon as this many writes are pending, or before a replay.
const MAX_BATCH: usize = 8192;
/// The start-up replay republishes this many states, and a round of
/// hello counts this many devices ...
const REPLAY_PAGE: usize = 1000;
const COUNT_PAGE: usize = 1000;
/// Hello replays stop for a loop pass after this long.
const REPLAY_BUDGET: Duration = Duration::from_millis(50);
/// ... every this long (100,000 messages a second at most).
const PACE: Duration = Duration::from_millis(10);
/// Offset after each wall-clock second at which the tick runs.
const TICK_OFFSET_MS: u64 = 5;
const UP_WRAP: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Stop,
    Reload,
}

struct Device {
    cfg: DeviceConfig,
    watch: Watch,
    hello_count: u64,
    expired: bool,
}

pub struct Daemon {
    config_path: PathBuf,
    config: Config,
    devices: Vec<Device>,
    routes: Routes,
    store: Store,
    link: Link,
    start_ms: u64,
    up: u64,
    replayed_at_start: bool,
    /// Devices whose states are to be replayed once the batch is committed.
    replay_queue: Vec<u32>,
    /// When the pending store batch must be committed.
    commit_due: Option<Instant>,
    /// The start-up replay in progress: the last key republished (empty
    /// before the first page).
    replay_cursor: Option<Vec<u8>>,
    /// States republished by the start-up replay.
    replayed: usize,
    /// The round of hello counts in progress: the next device to publish.
    count_cursor: Option<usize>,
    messages: u64,
    states_stored: u64,
    agents: Supervisor,
    /// `B/startedprocess/<name>` messages not sent yet (broker away).
    unsent_starts: Vec<(String, String)>,
    /// systemd notification, when started by systemd with `Type=notify`.
    notifier: Option<Notifier>,
}

impl Daemon {
    pub fn new(
        config_path: PathBuf,
        mut config: Config,
        store: Store,
        agent_logs: PathBuf,
    ) -> anyhow::Result<Daemon> {
        let start_ms = now_ms();
        let presence = Presence {
            base: format!("{}/", config.mqtt.base_topic),
            topic: format!("{}/status", config.mqtt.base_topic),
            online: "online",
            offline: "offline",
        };
        let mut link = Link::new(&config.mqtt, presence)?;
        // The devices own their configuration from here on.
        let devices: Vec<Device> = std::mem::take(&mut config.devices)
            .into_iter()
            .map(|cfg| Device {
                watch: Watch::new(cfg.watch_timeout, start_ms),
                cfg,
                hello_count: 0,
                expired: false,
            })
            .collect();
        let routes = Routes::build(devices.iter().map(|d| &d.cfg));
        link.set_filters(subscriptions(&config, &routes));
        let mut agents = Supervisor::new(agent_logs);
        agents.configure(agent_specs(&devices));
        Ok(Daemon {
            config_path,
            config,
            devices,
            routes,
            store,
            link,
            start_ms,
            up: 0,
            replayed_at_start: false,
            replay_queue: Vec::new(),
            commit_due: None,
            replay_cursor: None,
            replayed: 0,
            count_cursor: None,
            messages: 0,
            states_stored: 0,
            agents,
            unsent_starts: Vec::new(),
            notifier: Notifier::from_env(),
        })
    }

    /// Runs until a stop signal; then disconnects and closes the store.
    pub fn run(
        mut self,
        signals: Receiver<Signal>,
        control: Receiver<Request>,
    ) -> Result<(), StoreError> {
        let mut next_tick = next_tick_after(Instant::now(), now_ms());
        if let Some(n) = &self.notifier {
            n.ready();
        }
        let link_wake = self.link.wake().clone();
        let mut events = Vec::with_capacity(MAX_BURST);
        loop {
            let now = Instant::now();
            self.link.poll(now);
            if now >= next_tick {
                self.tick(now);
                next_tick = next_tick_after(Instant::now(), now_ms());
                continue;
            }
            if self.commit_due.is_some_and(|due| now >= due) || !self.replay_queue.is_empty() {
                self.commit_and_replay()?;
            }
            if self.replay_cursor.is_some() && self.link.is_connected() && self.link.has_room() {
                self.replay_page();
            }
            self.publish_counts();
            let mut wake = self.commit_due.map_or(next_tick, |due| due.min(next_tick));
            if let Some(due) = self.link.next_due() {
                wake = wake.min(due);
            }
            if self.replay_cursor.is_some()
                || self.count_cursor.is_some()
                || !self.replay_queue.is_empty()
            {
                wake = wake.min(now + PACE);
            }
            select! {
                recv(link_wake) -> _ => {
                    self.link.drain(&mut events, MAX_BURST, Instant::now());
                    for ev in events.drain(..) {
                        self.on_link_event(ev);
                    }
                    if !self.replay_queue.is_empty() || self.store.pending() >= MAX_BATCH {
                        self.commit_and_replay()?;
                    } else if self.store.pending() > 0 && self.commit_due.is_none() {
                        self.commit_due = Some(now + COMMIT_WINDOW);
                    }
                }
                recv(control) -> req => {
                    if let Ok(req) = req {
                        let _ = req.reply.send(self.answer(req.query));
                    }
                }
                recv(signals) -> sig => match sig {
                    Ok(Signal::Reload) => self.reload(),
                    Ok(Signal::Stop) | Err(_) => break,
                },
                default(wake.saturating_duration_since(now)) => {}
            }
        }
        info!("stopping: disconnecting and closing the database");
        if let Some(n) = &self.notifier {
            n.stopping();
        }
        self.link.shutdown(Duration::from_secs(2));
        self.store.close()
    }

    fn on_link_event(&mut self, ev: LinkEvent) {
        let now = Instant::now();
        match ev {
            LinkEvent::Message(msg) => {
                self.on_message(msg, now_ms());
                return;
            }
            LinkEvent::Connected => {}
            LinkEvent::Lost | LinkEvent::SubscriptionsRefused(_) => return,
        }
        if self.up == 0 {
            // Connected before the first tick: say we are up at once.
            self.tick(now);
        }
        self.link.subscribe_all();
        for i in 0..self.devices.len() {
            self.publish_availability(i);
        }
        self.publish_discovery();
        for (topic, payload) in std::mem::take(&mut self.unsent_starts) {
            self.link
                .publish(&topic, payload.as_bytes(), false, Class::Alert);
        }
        if !self.replayed_at_start {
            self.replayed_at_start = true;
            self.replay_cursor = Some(Vec::new());
        }
    }

    fn publish_availability(&mut self, i: usize) {
        let d = &self.devices[i];
        let topic = format!(
            "{}/availability/{}",
            self.config.mqtt.base_topic, d.cfg.name
        );
        let state = if d.expired { "offline" } else { "online" };
        self.link
            .publish(&topic, state.as_bytes(), true, Class::Retained);
    }

    /// Home Assistant MQTT discovery: one connectivity binary_sensor per
    /// device, retained, republished when Home Assistant comes online.
    fn publish_discovery(&mut self) {
        let Some(ha) = &self.config.homeassistant else {
            return;
        };
        let mut out = Vec::with_capacity(self.devices.len());
        for d in &self.devices {
            out.push(discovery(&self.config, &ha.prefix, &d.cfg));
        }
        for (topic, payload) in out {
            self.link
                .publish(&topic, payload.as_bytes(), true, Class::Retained);
        }
    }

    /// Clears the retained availability and discovery of a removed device.
    fn forget_device(&mut self, cfg: &DeviceConfig) {
        let topic = format!("{}/availability/{}", self.config.mqtt.base_topic, cfg.name);
        self.link.publish(&topic, b"", true, Class::Retained);
        if let Some(ha) = &self.config.homeassistant {
            let (topic, _) = discovery(&self.config, &ha.prefix, cfg);
            self.link.publish(&topic, b"", true, Class::Retained);
        }
    }

    fn answer(&self, query: Query) -> Reply {
        let now = now_ms();
        match query {
            Query::Health => Reply {
                status: 200,
                content_type: "text/plain; charset=utf-8",
                body: format!(
                    "ok\nbroker {}\n",
                    if self.link.is_connected() {
                        "connected"
                    } else {
                        "disconnected"
                    }
                ),
            },
            Query::Status => Reply {
                status: 200,
                content_type: "application/json",
                body: status::status_json(&self.snapshot()),
            },
            Query::Metrics => Reply {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: status::metrics(
                    &self.snapshot(),
                    &Counters {
                        messages: self.messages,
                        states_stored: self.states_stored,
                        connected: self.link.is_connected(),
                        uptime_s: now.saturating_sub(self.start_ms) / 1000,
                    },
                ),
            },
        }
    }

    fn snapshot(&self) -> Vec<DeviceStatus> {
        self.devices
            .iter()
            .map(|d| DeviceStatus {
                name: d.cfg.name.clone(),
                agent: d.cfg.is_agent(),
                expired: d.expired,
                last_contact_s: d.watch.last_contact_ms().map(|ms| ms / 1000),
                deadline_s: d.watch.deadline_s(),
                hello_count: d.hello_count,
                pid: self.agents.pid(&d.cfg.name),
                restarts: self.agents.launches(&d.cfg.name),
            })
            .collect()
    }

    fn is_own_topic(&self, topic: &str) -> bool {
        let Some(rest) = topic
            .strip_prefix(self.config.mqtt.base_topic.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return false;
        };
        matches!(rest, "up" | "status")
            || [
                "expired/",
                "helloTopicCount/",
                "startedprocess/",
                "availability/",
            ]
            .iter()
            .any(|p| rest.starts_with(p))
    }

    fn on_message(&mut self, msg: Incoming, now_ms: u64) {
        self.messages += 1;
        if self.is_own_topic(&msg.topic) || self.link.is_echo(&msg) {
            return;
        }
        if let Some(ha) = &self.config.homeassistant {
            if msg.topic == format!("{}/status", ha.prefix) && msg.payload == b"online" {
                self.publish_discovery();
            }
        }
        if self.routes.is_state(&msg.topic) {
            self.store.record(msg.topic.as_bytes(), &msg.payload);
            self.states_stored += 1;
        }
        // Retained messages sent at subscribe time are stale news.
        if msg.retained {
            return;
        }
        let devices = &mut self.devices;
        let mut back = Vec::new();
        self.routes.watchers(&msg.topic, |&i| {
            let d = &mut devices[i as usize];
            d.watch.contact(now_ms);
            if d.expired {
                d.expired = false;
                info!("device {} is back", d.cfg.name);
                back.push(i as usize);
            }
        });
        for i in back {
            self.publish_availability(i);
        }
        for &i in self.routes.hello(&msg.topic) {
            let d = &mut self.devices[i as usize];
            d.hello_count += 1;
            info!(
                "hello from {} (#{}): replaying its states",
                d.cfg.name, d.hello_count
            );
            self.replay_queue.push(i);
        }
    }

    fn commit_and_replay(&mut self) -> Result<(), StoreError> {
        self.commit_due = None;
        self.store.commit()?;
        // A flood of hellos in one burst replays each device once; a long
        // queue (every device rebooting after a power cut) is replayed over
        // several loop passes, so that ticks and alerts are not held up.
        self.replay_queue.sort_unstable();
        self.replay_queue.dedup();
        let budget = Instant::now() + REPLAY_BUDGET;
        while self.link.has_room() {
            let Some(i) = self.replay_queue.pop() else {
                break;
            };
            self.replay_device(i as usize)?;
            if Instant::now() >= budget {
                break;
            }
        }
        Ok(())
    }

    /// Republishes the stored states of one device (after its hello), never
    /// its hello topic itself.
    fn replay_device(&mut self, i: usize) -> Result<(), StoreError> {
        let Some(dev) = self.devices.get(i).map(|d| &d.cfg) else {
            return Ok(());
        };
        let mut states: Vec<(String, Vec<u8>)> = Vec::new();
        for prefix in scan_prefixes(&dev.state_topics) {
            self.store.for_each_with_prefix(prefix.as_bytes(), |k, v| {
                let Ok(topic) = std::str::from_utf8(k) else {
                    return;
                };
                if dev.hello_topic.as_deref() != Some(topic)
                    && dev.state_topics.iter().any(|f| f.matches(topic))
                {
                    states.push((topic.to_string(), v.to_vec()));
                }
            })?;
        }
        let retain = self.config.mqtt.retain_states;
        for (topic, payload) in &states {
            self.link.publish(topic, payload, retain, Class::Replay);
        }
        Ok(())
    }

    /// At the first connection, every stored state that belongs to a
    /// configured device is republished, a page at a time (so neither the
    /// daemon nor Paho holds the whole database at once).
    fn replay_page(&mut self) {
        let Some(cursor) = self.replay_cursor.take() else {
            return;
        };
        let after = (!cursor.is_empty()).then_some(cursor.as_slice());
        let (routes, link) = (&self.routes, &mut self.link);
        let retain = self.config.mqtt.retain_states;
        let mut sent = 0;
        let scan = self.store.scan_after(after, REPLAY_PAGE, |k, v| {
            if let Ok(topic) = std::str::from_utf8(k) {
                if routes.is_state(topic) {
                    link.publish(topic, v, retain, Class::Replay);
                    sent += 1;
                }
            }
        });
        self.replayed += sent;
        match scan {
            Ok(Some(last)) => self.replay_cursor = Some(last),
            Ok(None) => info!(
                "start-up replay done: {} stored states republished",
                self.replayed
            ),
            Err(e) => error!("cannot read stored states for the start-up replay: {e}"),
        }
    }

    fn tick(&mut self, now: Instant) {
        let now_ms = now_ms();
        if let Some(n) = &self.notifier {
            n.alive();
        }
        self.link.expire_echoes(now);
        self.up = (self.up + 1) % UP_WRAP;
        let base = self.config.mqtt.base_topic.clone();
        let up = self.up.to_string();
        self.link
            .publish(&format!("{base}/up"), up.as_bytes(), false, Class::Repeat);
        for i in 0..self.devices.len() {
            let d = &mut self.devices[i];
            if d.watch.is_expired(now_ms) {
                if !d.expired {
                    d.expired = true;
                    warn!(
                        "device {} expired: no message on its watch topics for {} s",
                        d.cfg.name,
                        d.watch.timeout_s()
                    );
                    self.publish_availability(i);
                }
                let d = &self.devices[i];
                let deadline = d.watch.deadline_s().to_string();
                self.link.publish(
                    &format!("{base}/expired/{}", d.cfg.name),
                    deadline.as_bytes(),
                    false,
                    Class::Alert,
                );
            }
        }
        // A round still going from the last tick is finished first.
        while self.count_cursor.is_some() {
            self.publish_counts();
        }
        self.count_cursor = Some(0);
        self.publish_counts();
        self.supervise_agents(now, now_ms);
    }

    /// `B/helloTopicCount/<name>` for the next page of devices: a round
    /// starts at each tick and is spread over the following milliseconds,
    /// so that Paho never queues thousands of them at once.
    fn publish_counts(&mut self) {
        let Some(start) = self.count_cursor.take() else {
            return;
        };
        if start >= self.devices.len() {
            return; // the device list shrank (reload)
        }
        let end = (start + COUNT_PAGE).min(self.devices.len());
        let base = &self.config.mqtt.base_topic;
        for d in &self.devices[start..end] {
            let topic = format!("{base}/helloTopicCount/{}", d.cfg.name);
            self.link.publish(
                &topic,
                d.hello_count.to_string().as_bytes(),
                false,
                Class::Repeat,
            );
        }
        if end < self.devices.len() {
            self.count_cursor = Some(end);
        }
    }

    /// Relaunches missing agents, restarts expired ones (restartOnExpire)
    /// and announces each launch on `B/startedprocess/<name>`.
    fn supervise_agents(&mut self, now: Instant, now_ms: u64) {
        let expired: HashMap<&str, bool> = self
            .devices
            .iter()
            .filter(|d| d.cfg.is_agent())
            .map(|d| (d.cfg.name.as_str(), d.watch.is_expired(now_ms)))
            .collect();
        let launches = self
            .agents
            .tick(now, &|name| expired.get(name).copied().unwrap_or(false));
        for l in launches {
            let topic = format!("{}/startedprocess/{}", self.config.mqtt.base_topic, l.name);
            let payload = l.epoch_s.to_string();
            if !self
                .link
                .publish(&topic, payload.as_bytes(), false, Class::Alert)
            {
                self.unsent_starts.retain(|(t, _)| *t != topic);
                self.unsent_starts.push((topic, payload));
            }
        }
    }

    /// SIGHUP: re-reads the configuration. Devices that keep their name keep
    /// their deadline and hello count; a broken file changes nothing.
    fn reload(&mut self) {
        let loaded = match config::load(&self.config_path) {
            Ok(l) => l,
            Err(e) => {
                error!("reload rejected, keeping the running configuration: {e}");
                return;
            }
        };
        for w in &loaded.warnings {
            warn!("{w}");
        }
        let mut new = loaded.config;
        if new.broker_listen.is_some() && new.broker_listen == self.config.broker_listen {
            // Still talking to the embedded broker's own listener.
            new.mqtt.server_address = self.config.mqtt.server_address.clone();
        }
        if new.mqtt != self.config.mqtt || new.broker_listen != self.config.broker_listen {
            warn!("reload: changes to [mqtt] and [broker] take effect at the next restart");
        }
        let now = now_ms();
        let mut old: HashMap<String, Device> = std::mem::take(&mut self.devices)
            .into_iter()
            .map(|d| (d.cfg.name.clone(), d))
            .collect();
        let mut devices = Vec::with_capacity(new.devices.len());
        for cfg in std::mem::take(&mut new.devices) {
            let device = match old.remove(&cfg.name) {
                Some(mut d) => {
                    if d.watch.timeout_s() != cfg.watch_timeout {
                        d.watch.set_timeout(cfg.watch_timeout, self.start_ms);
                    }
                    if d.cfg != cfg {
                        info!("reload: device {} changed", cfg.name);
                    }
                    d.cfg = cfg;
                    d
                }
                None => {
                    info!("reload: device {} added", cfg.name);
                    Device {
                        watch: Watch::new(cfg.watch_timeout, now),
                        cfg,
                        hello_count: 0,
                        expired: false,
                    }
                }
            };
            devices.push(device);
        }
        for d in old.into_values() {
            info!("reload: device {} removed", d.cfg.name);
            self.forget_device(&d.cfg);
        }
        self.devices = devices;
        // Positions changed: pending rounds restart with the new list.
        self.count_cursor = None;
        self.replay_queue.clear();
        self.routes = Routes::build(self.devices.iter().map(|d| &d.cfg));
        self.link.set_filters(subscriptions(&new, &self.routes));
        self.agents.configure(agent_specs(&self.devices));
        self.config = new;
        for i in 0..self.devices.len() {
            self.publish_availability(i);
        }
        self.publish_discovery();
        info!("configuration reloaded: {} devices", self.devices.len());
    }
}

fn agent_specs(devices: &[Device]) -> Vec<AgentSpec> {
    devices
        .iter()
        .map(|d| &d.cfg)
        .filter_map(|d| {
            Some(AgentSpec {
                name: d.name.clone(),
                exec: d.exec.clone()?,
                restart_on_expire: d.restart_on_expire,
                watch_timeout: Duration::from_secs(d.watch_timeout),
            })
        })
        .collect()
}

/// The broker subscriptions: every configured filter, and Home Assistant's
/// status topic when discovery is on.
fn subscriptions(config: &Config, routes: &Routes) -> Vec<String> {
    let mut subs = routes.subscriptions().to_vec();
    if let Some(ha) = &config.homeassistant {
        subs.push(format!("{}/status", ha.prefix));
    }
    subs
}

/// Topic and payload of the Home Assistant discovery config of a device.
fn discovery(config: &Config, prefix: &str, d: &DeviceConfig) -> (String, String) {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let node = clean(&config.mqtt.client_id);
    let object = clean(&d.name);
    let base = &config.mqtt.base_topic;
    let payload = serde_json::json!({
        "name": d.name,
        "unique_id": format!("iotmonitor_{node}_{object}"),
        "object_id": format!("iotmonitor_{object}"),
        "device_class": "connectivity",
        "state_topic": format!("{base}/availability/{}", d.name),
        "payload_on": "online",
        "payload_off": "offline",
        "availability_topic": format!("{base}/status"),
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [format!("iotmonitor_{node}")],
            "name": format!("iotmonitor {}", config.mqtt.client_id),
            "manufacturer": "iotmonitor",
            "sw_version": crate::VERSION,
        },
    });
    (
        format!("{prefix}/binary_sensor/{node}/{object}/config"),
        payload.to_string(),
    )
}

/// The instant of the next tick: just after a wall-clock second, at least
/// 200 ms from now (so two ticks never run back to back).
fn next_tick_after(now: Instant, now_ms: u64) -> Instant {
    let mut wait = (1000 + TICK_OFFSET_MS - now_ms % 1000) % 1000;
    if wait < 200 {
        wait += 1000;
    }
    now + Duration::from_millis(wait)
}
