//! The main loop. One thread owns all mutable state and `select!`s over
//! the link's events, signals, control requests and a 1-second tick; other
//! threads only send it messages.
//!
//! The decisions are the monitor core's ([`Monitor`]); this loop does the
//! I/O around them — the MQTT link, the state store, the agent processes —
//! and paces the work that could hold up a tick (store commits, hello
//! replays, the start-up replay, rounds of hello counts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select, Receiver};
use log::{error, info, warn};

use crate::agents::{AgentEvent, AgentSpec, Supervisor};
use crate::clock::{Clock, Now};
use crate::config::{self, Config, DeviceConfig};
use crate::event::EventKind;
use crate::http::{Request, Want};
use crate::link::{Link, LinkEvent, Presence};
use crate::memory;
use crate::monitor::failover::Action;
use crate::monitor::{Class, Monitor, Outbox, Settings};
use crate::notify::Notifier;
use crate::page;
use crate::procfs::{self, ScanResult, Scanner};
use crate::routes::Routes;
use crate::status::{BrokerFacts, DeviceStatus, Facts, StoreFacts};
use crate::store::Store;

/// Link events handled in one go before looking at the other inputs.
const MAX_BURST: usize = 4096;
/// The start-up replay republishes this many states, and a round of
/// hello counts this many devices ...
const REPLAY_PAGE: usize = 1000;
const COUNT_PAGE: usize = 1000;
/// ... every this long (100,000 messages a second at most).
const PACE: Duration = Duration::from_millis(10);
/// Hello replays stop for a loop pass after this long.
const REPLAY_BUDGET: Duration = Duration::from_millis(50);
/// The page shows this many recent events, and availability over this long.
const PAGE_EVENTS: usize = 50;
const STRIP_MS: u64 = 24 * 3_600_000;
/// Offset after each whole second at which the tick runs.
const TICK_OFFSET_MS: u64 = 5;
/// The keys of the facts the active instance holds (`Link::hold`).
const LEASE: &str = "lease";
const STATUS: &str = "status";

#[derive(Debug)]
pub enum Signal {
    Stop,
    /// SIGHUP: the configuration file as read again by the signal thread.
    Reload(Box<Result<Reload, config::ConfigError>>),
}

/// A configuration read again, with what can be computed from it off the
/// main loop (which only applies it): loading 10,000 device sections takes
/// about 50 ms, their subscriptions 17 ms.
#[derive(Debug)]
pub struct Reload {
    pub loaded: config::Loaded,
    /// The devices' subscriptions ([`Routes::subscriptions`]).
    pub subscriptions: Vec<String>,
}

impl Reload {
    pub fn read(path: &Path) -> Result<Reload, config::ConfigError> {
        let loaded = config::load(path)?;
        let subscriptions = Routes::subscriptions(&loaded.config.devices);
        Ok(Reload {
            loaded,
            subscriptions,
        })
    }
}

pub struct Daemon {
    /// The configuration running: `[mqtt]`, `[broker]` and `[http]` as
    /// loaded at start (changes need a restart); devices as last reloaded.
    config: Config,
    clock: Clock,
    monitor: Monitor,
    store: Store,
    link: Link,
    agents: Supervisor,
    /// What the last call into the monitor asked for (reused).
    out: Outbox,
    /// The start-up replay in progress: the last key republished (empty
    /// before the first page).
    replay_cursor: Option<Vec<u8>>,
    /// States republished by the start-up replay.
    replayed: usize,
    /// A round of hello counts is being published.
    counting: bool,
    /// A round of hello counts ended: what it freed is to be given back
    /// once its publishes are written.
    release_due: bool,
    messages: u64,
    states_stored: u64,
    start: Now,
    /// Monotonic ms of the last connection or loss.
    broker_since: Option<u64>,
    reconnects: u64,
    /// Subscriptions the broker refused (until a reload changes them).
    refused: Vec<String>,
    /// Why the daemon must stop (another instance with its client id).
    fatal: Option<String>,
    /// systemd notification, when started by systemd with `Type=notify`.
    notifier: Option<Notifier>,
}

impl Daemon {
    pub fn new(
        mut config: Config,
        mut store: Store,
        agent_logs: PathBuf,
    ) -> anyhow::Result<Daemon> {
        let clock = Clock::new();
        let start = clock.now();
        let devices = std::mem::take(&mut config.devices);
        let subscriptions = Routes::subscriptions(&devices);
        let mut agents = Supervisor::new(agent_logs, Scanner::new(PathBuf::from(procfs::PROC))?);
        agents.configure(agent_specs(&devices));
        let settings = Settings::new(
            &config.mqtt,
            config.homeassistant.clone(),
            config.failover.as_ref().map(|f| f.priority),
        );
        let monitor = Monitor::new(settings, devices, &store.take_verdicts(), start);
        let topics = monitor.topics();
        // With failover the main connection announces the instance; the
        // active one holds B/status and the lease on connections of their
        // own (their last wills undo them).
        let presence = Presence {
            base: format!("{}/", topics.base()),
            topic: match config.failover {
                Some(_) => topics.instance(&config.mqtt.client_id),
                None => topics.status(),
            },
            online: if config.failover.is_some() {
                "standby"
            } else {
                "online"
            },
            offline: "offline",
            owner: config
                .failover
                .as_ref()
                .map(|_| format!("{}/owner", topics.instance(&config.mqtt.client_id))),
        };
        if config.failover.is_some() {
            agents.set_active(false);
        }
        let mut link = Link::new(&config.mqtt, presence)?;
        link.set_filters(monitor.subscriptions(subscriptions));
        memory::release_free_memory();
        Ok(Daemon {
            config,
            clock,
            monitor,
            store,
            link,
            agents,
            out: Outbox::default(),
            replay_cursor: None,
            replayed: 0,
            counting: false,
            release_due: false,
            messages: 0,
            states_stored: 0,
            start,
            broker_since: None,
            reconnects: 0,
            refused: Vec::new(),
            fatal: None,
            notifier: Notifier::from_env(),
        })
    }

    /// The next tick: just after the next whole second of the monotonic
    /// clock (which falls on a whole epoch second).
    fn next_tick(&self) -> Instant {
        let mono = self.clock.now().mono_ms;
        let second = mono.saturating_sub(TICK_OFFSET_MS) / 1000 + 1;
        self.clock.instant(second * 1000 + TICK_OFFSET_MS)
    }

    /// Runs until a stop signal; then disconnects and closes the store.
    pub fn run(
        mut self,
        mut signals: Receiver<Signal>,
        mut control: Receiver<Request>,
    ) -> anyhow::Result<()> {
        let mut next_tick = self.next_tick();
        if let Some(n) = &self.notifier {
            n.ready();
        }
        let mut link_wake = self.link.wake().clone();
        let mut events = Vec::with_capacity(MAX_BURST);
        let mut scans = self.agents.scans();
        while self.fatal.is_none() {
            let now = Instant::now();
            self.link.poll(now);
            if now >= next_tick {
                self.tick(now);
                next_tick = self.next_tick();
                continue;
            }
            self.store.poll(now);
            if self.monitor.replays_pending() {
                self.replay_hellos();
            }
            if self.replay_cursor.is_some() && self.link.is_connected() && self.link.has_room() {
                self.replay_page();
            }
            // A page of counts waits until the last one left the outbox:
            // no more than a page or two of them in memory at once.
            if self.counting && !self.link.is_backlogged() {
                self.count_page();
            }
            if self.monitor.announcements_pending() {
                self.announce_page();
            }
            if self.release_due && self.link.is_idle() {
                self.release_due = false;
                memory::release_free_memory();
            }
            let mut wake = [self.store.due(), self.link.next_due()]
                .into_iter()
                .flatten()
                .fold(next_tick, Instant::min);
            if self.replay_cursor.is_some()
                || self.counting
                || self.release_due
                || self.monitor.replays_pending()
                || (self.monitor.announcements_pending() && self.link.is_connected())
            {
                wake = wake.min(now + PACE);
            }
            // What this pass published leaves in one batch.
            self.link.submit();
            select! {
                recv(link_wake) -> woken => {
                    if woken.is_err() {
                        link_wake = never();
                    }
                    self.link.drain(&mut events, MAX_BURST, Instant::now());
                    // One reading for the burst, taken once all of it had
                    // arrived: no contact is dated before its message came
                    // (a deadline never falls early), and no message pays
                    // for two clock reads.
                    let now = self.clock.now();
                    for ev in events.drain(..) {
                        self.on_link_event(ev, now);
                    }
                }
                recv(control) -> req => match req {
                    Ok(req) => {
                        let _ = req.reply.send(self.facts(&req.want));
                    }
                    Err(_) => control = never(),
                },
                recv(scans) -> scan => match scan {
                    Ok(scan) => self.on_agent_scan(scan),
                    Err(_) => scans = never(),
                },
                recv(signals) -> sig => match sig {
                    Ok(Signal::Reload(loaded)) => self.reload(*loaded),
                    Ok(Signal::Stop) => break,
                    Err(_) => signals = never(),
                },
                default(wake.saturating_duration_since(now)) => {}
            }
        }
        info!("stopping: disconnecting and closing the database");
        if let Some(n) = &self.notifier {
            n.stopping();
        }
        if self.config.failover.is_some() && self.monitor.leading() {
            // Hand over: the lease cleared at once; B/status left online
            // when a standby is there to take over.
            self.link.release(LEASE, Some(b""));
            let last: Option<&[u8]> = if self.monitor.standby_alive() {
                None
            } else {
                Some(b"offline")
            };
            self.link.release(STATUS, last);
        }
        self.link.shutdown(Duration::from_secs(2));
        self.store.close()?;
        match self.fatal {
            Some(why) => Err(anyhow::anyhow!(why)),
            None => Ok(()),
        }
    }

    /// Carries out a decision of the failover election.
    fn on_failover(&mut self, action: Action) {
        let topics = self.monitor.topics();
        match action {
            Action::Claim => {
                let (topic, id) = (topics.leader(), self.config.mqtt.client_id.clone());
                self.link.hold(LEASE, topic, id.as_bytes(), b"", false);
            }
            Action::Withdraw => self.link.release(LEASE, None),
            Action::BecameActive { .. } | Action::Resumed => {
                let topic = topics.status();
                self.link.hold(STATUS, topic, b"online", b"offline", true);
                self.agents.set_active(true);
            }
            Action::Deposed { .. } => {
                self.link.release(LEASE, None);
                self.link.release(STATUS, None);
                self.agents.stop_launched(Instant::now());
            }
        }
    }

    /// Carries out what the monitor asked for.
    fn flush(&mut self) {
        for p in self.out.publishes.drain(..) {
            self.link.publish(&p.topic, &p.payload, p.retain, p.class);
        }
        // A tick with thousands of alerts is no reason to keep their room.
        self.out.publishes.shrink_to(MAX_BURST);
        for e in self.out.events.drain(..) {
            self.store.push_event(e);
        }
        for (name, verdict) in self.out.verdicts.drain(..) {
            match verdict {
                Some(online) => self.store.put_verdict(&name, online),
                None => self.store.forget_verdict(&name),
            }
        }
        let actions = std::mem::take(&mut self.out.failover);
        for action in actions {
            self.on_failover(action);
        }
        if self.monitor.take_startup_replay() {
            self.replay_cursor = Some(Vec::new());
        }
    }

    fn on_link_event(&mut self, ev: LinkEvent, now: Now) {
        match ev {
            LinkEvent::Message(msg) => {
                self.messages += 1;
                if self.link.is_echo(&msg) {
                    return;
                }
                let state = self.monitor.on_message(
                    msg.topic(),
                    msg.payload(),
                    msg.retained,
                    now,
                    &mut self.out,
                );
                if state {
                    self.store.record(msg.into_record());
                    self.states_stored += 1;
                }
                if !self.out.publishes.is_empty() || !self.out.events.is_empty() {
                    self.flush();
                }
            }
            LinkEvent::Connected => {
                if self.broker_since.is_some() {
                    self.reconnects += 1;
                }
                self.broker_since = Some(now.mono_ms);
                // The link published the birth; the core's first publications
                // go before the subscriptions (a broker handles a connection's
                // packets in order).
                self.monitor.on_connected(now, &mut self.out);
                self.flush();
                // A first tick run by the core starts a round of counts.
                self.counting = true;
                self.link.subscribe_all();
            }
            LinkEvent::Lost => {
                self.broker_since = Some(now.mono_ms);
                self.monitor.on_disconnected(now, &mut self.out);
                self.flush();
            }
            LinkEvent::TakenOver { newer } => {
                if self.config.failover.is_some() && newer {
                    self.fatal = Some(format!(
                        "another instance already uses the client id '{}': with [failover], every instance needs its own [mqtt] clientid",
                        self.config.mqtt.client_id
                    ));
                }
            }
            LinkEvent::SubscriptionsRefused(filters) => {
                for f in filters {
                    if !self.refused.contains(&f) {
                        self.refused.push(f);
                    }
                }
            }
        }
    }

    /// What an HTTP request needs, copied out of the loop's state.
    fn facts(&self, want: &Want) -> Facts {
        let now = self.clock.now();
        let devices = self
            .monitor
            .view(now)
            .into_iter()
            .map(|view| DeviceStatus {
                pid: self.agents.pid(&view.name),
                launches: self.agents.launches(&view.name),
                relaunches: self.agents.relaunches(&view.name),
                view,
            })
            .collect::<Vec<_>>();
        let history = self.store.history();
        let (events, strips) = match want {
            Want::Devices => (Vec::new(), HashMap::new()),
            Want::Page => {
                let from = now.wall_ms.saturating_sub(STRIP_MS);
                let strips = devices
                    .iter()
                    .map(|d: &DeviceStatus| {
                        let span = history.since(&d.view.name, from);
                        (
                            d.view.name.clone(),
                            page::strip_of(span.before.as_ref(), &span.events),
                        )
                    })
                    .collect();
                (history.recent(PAGE_EVENTS, None), strips)
            }
            Want::Events { subject, limit } => {
                (history.recent(*limit, subject.as_deref()), HashMap::new())
            }
        };
        let health = self.store.health();
        Facts {
            now_ms: now.wall_ms,
            start_ms: now.wall_of(self.start.mono_ms),
            uptime_s: now.mono_ms.saturating_sub(self.start.mono_ms) / 1000,
            database: StoreFacts {
                path: self.store.path().display().to_string(),
                healthy: health.healthy,
                last_error: health.problem.or(health.last_error),
                failures: health.failures,
                syncs: health.syncs,
                pending: health.pending as u64,
            },
            broker: BrokerFacts {
                url: self.config.mqtt.server_address.clone(),
                connected: self.link.is_connected(),
                since_ms: self.broker_since.map(|t| now.wall_of(t)),
                reconnects: self.reconnects,
                refused: self.refused.clone(),
                dropped: self.link.stats().dropped_repeats,
            },
            messages: self.messages,
            states_stored: self.states_stored,
            devices,
            events,
            event_counts: history.kind_counts().collect(),
            strips,
            failover: self.monitor.failover_view(now),
        }
    }

    /// Hello replays: a flood of hellos in one burst replays each device
    /// once; a long queue (every device rebooting after a power cut) is
    /// replayed over several loop passes, so that ticks and alerts are not
    /// held up. Reads see the states not committed yet.
    fn replay_hellos(&mut self) {
        let budget = Instant::now() + REPLAY_BUDGET;
        while self.link.has_room() {
            let Some(plan) = self.monitor.next_replay() else {
                break;
            };
            let mut states: Vec<(String, Vec<u8>)> = Vec::new();
            let read = self.store.for_each_state(&plan.filters, |topic, payload| {
                if plan.wants(topic) {
                    states.push((topic.to_string(), payload.to_vec()));
                }
            });
            if let Err(e) = read {
                error!(
                    "cannot read the states of {} to replay them: {e}",
                    plan.device
                );
            }
            for (topic, payload) in &states {
                self.link
                    .publish(topic, payload, plan.retain, Class::Replay);
            }
            if Instant::now() >= budget {
                break;
            }
        }
    }

    /// At the first connection, every stored state that belongs to a
    /// configured device is republished, a page at a time (so neither the
    /// daemon nor Paho holds the whole database at once).
    fn replay_page(&mut self) {
        let Some(cursor) = self.replay_cursor.take() else {
            return;
        };
        let after = (!cursor.is_empty()).then_some(cursor.as_slice());
        let (monitor, link) = (&self.monitor, &mut self.link);
        let retain = monitor.retain_states();
        let mut sent = 0;
        let scan = self.store.scan_after(after, REPLAY_PAGE, |k, v| {
            if let Ok(topic) = std::str::from_utf8(k) {
                if monitor.is_replayable(topic) {
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

    fn tick(&mut self, at: Instant) {
        let now = self.clock.now();
        if let Some(n) = &self.notifier {
            n.alive();
        }
        self.link.expire_echoes(at);
        // A round the loop could not finish within the second (a flood) is
        // finished first, a page at a time.
        while self.counting {
            self.count_page();
        }
        self.monitor.tick(now, &mut self.out);
        self.flush();
        self.count_page();
        self.agents.tick(at);
    }

    /// The next page of the round of hello counts. Once a round (once a
    /// second) is written, what its publishes and the second's messages
    /// freed, in three threads' heaps, is given back (see `run`); at the
    /// latest at the end of the next round, when the link is never idle.
    fn count_page(&mut self) {
        self.counting = self.monitor.next_counts(COUNT_PAGE, &mut self.out);
        self.flush();
        if !self.counting {
            if self.release_due {
                memory::release_free_memory();
            }
            self.release_due = true;
        }
    }

    /// Availability announcements, as many as the link's window of QoS 1
    /// publishes takes now; the others at a later pass, as
    /// acknowledgements make room (none waits in the link's outbox).
    fn announce_page(&mut self) {
        let room = self.link.fact_room();
        if room > 0 {
            self.monitor.next_announcements(room, &mut self.out);
            self.flush();
        }
    }

    /// A /proc scan came back from the scanner thread: the supervisor
    /// decides (nothing, when the scan failed), the core announces.
    fn on_agent_scan(&mut self, scan: ScanResult) {
        let now = self.clock.now();
        let monitor = &self.monitor;
        let events = self
            .agents
            .on_scan(scan, Instant::now(), &|name| monitor.is_expired(name));
        for ev in events {
            let (kind, name, pid, detail) = match ev {
                AgentEvent::Launched { name, pid, .. } => {
                    (EventKind::AgentLaunched, name, pid, None)
                }
                AgentEvent::Relaunched { name, pid, .. } => {
                    (EventKind::AgentRelaunched, name, pid, None)
                }
                AgentEvent::Restarted { name, pid, .. } => {
                    (EventKind::AgentRestarted, name, pid, None)
                }
                AgentEvent::Died { name, pid, ran } => (
                    EventKind::AgentDied,
                    name,
                    pid,
                    Some(format!("pid {pid} ran {} s", ran.as_secs())),
                ),
                AgentEvent::Adopted { .. } => continue,
            };
            match detail {
                None => self
                    .monitor
                    .agent_launched(&name, kind, pid, now, &mut self.out),
                Some(detail) => self
                    .monitor
                    .agent_event(kind, &name, detail, now, &mut self.out),
            }
        }
        self.flush();
    }

    /// SIGHUP: applies the configuration read again. Devices that keep
    /// their name keep their deadline, hello count and verdict; `[mqtt]` and
    /// `[broker]` changes need a restart and are not applied at all; a
    /// broken file changes nothing.
    fn reload(&mut self, reload: Result<Reload, config::ConfigError>) {
        let started = Instant::now();
        let reload = match reload {
            Ok(r) => r,
            Err(e) => {
                error!("reload rejected, keeping the running configuration: {e}");
                return;
            }
        };
        for w in &reload.loaded.warnings {
            warn!("{w}");
        }
        let mut new = reload.loaded.config;
        if new.broker_listen.is_some() && new.broker_listen == self.config.broker_listen {
            // Still talking to the embedded broker's own listener.
            new.mqtt.server_address = self.config.mqtt.server_address.clone();
        }
        if new.mqtt != self.config.mqtt || new.broker_listen != self.config.broker_listen {
            warn!(
                "reload: [mqtt] and [broker] changes are not applied: restart iotmonitor for them"
            );
        }
        if new.http_bind != self.config.http_bind {
            warn!("reload: [http] changes are not applied: restart iotmonitor for them");
        }
        let devices = std::mem::take(&mut new.devices);
        self.agents.configure(agent_specs(&devices));
        self.monitor.reload(
            devices,
            new.homeassistant.as_ref(),
            self.clock.now(),
            &mut self.out,
        );
        self.config.homeassistant = new.homeassistant;
        self.counting = false;
        self.flush();
        self.refused.clear();
        self.link
            .set_filters(self.monitor.subscriptions(reload.subscriptions));
        info!("reload applied in {} ms", started.elapsed().as_millis());
    }
}

fn agent_specs(devices: &[DeviceConfig]) -> Vec<AgentSpec> {
    devices
        .iter()
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
