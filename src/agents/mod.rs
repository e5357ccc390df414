//! Agent supervision (SPEC §6): launching agents as detached processes,
//! finding them again by their tag, relaunching them with back-off, and
//! restarting them when their watch deadline passes (`restartOnExpire`).
//!
//! The launch command line is a compatibility contract with the original
//! iotmonitor: `/bin/bash -c "echo IOTMONITORMAGIC_<name>;<exec>;echo END"`
//! in a new session, with `IOTMONITORMAGIC=IOTMONITORMAGIC_<name>` added to
//! the environment. Agents started by the original (or by hand with that
//! line) are adopted, and agents started here survive the daemon.
//!
//! Which agents run is decided from `/proc` alone, never from a remembered
//! pid (pids get reused), and only from a complete scan: a scan that fails
//! or hangs decides nothing (unknown is not dead). The scans run on the
//! [`Scanner`]'s thread; the main loop asks for one at each [`tick`] and
//! hands each outcome to [`on_scan`], which takes the decisions and says
//! what happened ([`AgentEvent`]s).
//!
//! [`tick`]: Supervisor::tick
//! [`on_scan`]: Supervisor::on_scan

mod launch;
mod process;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use log::{error, info, warn};
use rustix::process::Signal;

use crate::backoff::Backoff;
use crate::procfs::{ScanResult, Scanner};

pub use launch::command_line;
use launch::launch;
use process::{child_running, reap_children, Target};

const RELAUNCH_MIN: Duration = Duration::from_secs(1);
const RELAUNCH_MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off.
const STABLE_RUN: Duration = Duration::from_secs(60);
/// Tolerance when comparing a due time with the tick's time.
const TICK_SLACK: Duration = Duration::from_millis(200);
/// SIGTERM, then SIGKILL after this long.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// A scan running this long is reported (once).
const SCAN_STALL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    pub name: String,
    pub exec: String,
    pub restart_on_expire: bool,
    /// The agent's watchTimeOut: after a restart for expiry, the new
    /// process gets this long to show activity before another restart.
    pub watch_timeout: Duration,
}

/// What the supervisor did or saw, for `B/startedprocess/<name>`, the
/// history and the metrics. Launch times are epoch seconds (the payload of
/// `B/startedprocess`); everything else runs on the monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// Launched for the first time by this supervisor (at start-up, when
    /// added by a reload, or when this instance became active).
    Launched {
        name: String,
        pid: i32,
        epoch_s: u64,
    },
    /// Launched again after it died.
    Relaunched {
        name: String,
        pid: i32,
        epoch_s: u64,
    },
    /// Killed and launched again because its watch deadline passed
    /// (`restartOnExpire`).
    Restarted {
        name: String,
        pid: i32,
        epoch_s: u64,
    },
    /// A supervised agent's process is gone, and not because this
    /// supervisor stopped it; `ran` is how long it was seen running.
    Died {
        name: String,
        pid: i32,
        ran: Duration,
    },
    /// Found running without having been launched by this supervisor: left
    /// by a previous daemon, started by hand, or running when this instance
    /// became active.
    Adopted { name: String, pid: i32 },
}

impl AgentEvent {
    pub fn name(&self) -> &str {
        match self {
            AgentEvent::Launched { name, .. }
            | AgentEvent::Relaunched { name, .. }
            | AgentEvent::Restarted { name, .. }
            | AgentEvent::Died { name, .. }
            | AgentEvent::Adopted { name, .. } => name,
        }
    }

    /// The agent's process (the one that died, for `Died`).
    pub fn pid(&self) -> i32 {
        match self {
            AgentEvent::Launched { pid, .. }
            | AgentEvent::Relaunched { pid, .. }
            | AgentEvent::Restarted { pid, .. }
            | AgentEvent::Died { pid, .. }
            | AgentEvent::Adopted { pid, .. } => *pid,
        }
    }

    /// For a launch of any kind, its epoch seconds: the payload of
    /// `B/startedprocess/<name>`.
    pub fn started_at(&self) -> Option<u64> {
        match self {
            AgentEvent::Launched { epoch_s, .. }
            | AgentEvent::Relaunched { epoch_s, .. }
            | AgentEvent::Restarted { epoch_s, .. } => Some(*epoch_s),
            AgentEvent::Died { .. } | AgentEvent::Adopted { .. } => None,
        }
    }
}

/// What the next launch of an agent will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LaunchKind {
    First,
    AfterDeath,
    AfterExpiry,
}

/// Why a supervisor is stopping an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    /// Restart for expiry: launched again once gone.
    Expired,
    /// This instance was deposed: left stopped.
    Deposed,
}

/// A stop under way: SIGTERM sent, SIGKILL after [`KILL_GRACE`].
#[derive(Debug, Clone, Copy)]
struct Stopping {
    /// SIGTERM sent at this instant.
    since: Instant,
    /// The pid the tag was found on when SIGTERM was sent.
    pid: i32,
    target: Target,
    killed: bool,
    reason: StopReason,
}

struct Agent {
    spec: AgentSpec,
    /// Lowest pid carrying the tag at the last scan (or the pid just
    /// launched), when running.
    pid: Option<i32>,
    /// Since when it has been running under this supervisor's care (launched
    /// or adopted while active).
    since: Option<Instant>,
    /// When the next launch may happen; None = as soon as it is missing.
    next_launch: Option<Instant>,
    next_kind: LaunchKind,
    backoff: Backoff,
    launches: u64,
    relaunches: u64,
    stopping: Option<Stopping>,
    /// No restart for expiry before this instant (cleared when the agent
    /// is seen not expired).
    expiry_grace: Option<Instant>,
    /// The process this supervisor launched last, until reaped: it counts
    /// as running even while its tag cannot be read (execve in progress, or
    /// an `exec` replacing bash). An unreaped child's pid cannot be reused.
    child: Option<i32>,
    /// The process group this supervisor launched, while it is what runs
    /// for the agent (what [`Supervisor::stop_launched`] stops).
    ours: Option<i32>,
}

pub struct Supervisor {
    log_dir: PathBuf,
    agents: Vec<Agent>,
    scanner: Scanner,
    /// Launches, relaunches and restarts only while active (failover).
    active: bool,
    /// The last scan failed (logged when failures start and end).
    scan_failing: bool,
    /// The scan under way was reported stuck.
    stall_reported: bool,
}

impl Supervisor {
    /// A supervisor launching agents with their output in `log_dir`, told
    /// what runs by `scanner`. Active from the start.
    pub fn new(log_dir: PathBuf, scanner: Scanner) -> Supervisor {
        Supervisor {
            log_dir,
            agents: Vec::new(),
            scanner,
            active: true,
            scan_failing: false,
            stall_reported: false,
        }
    }

    /// Sets the agents to supervise (start-up and config reload). Agents
    /// keeping their name keep their state (pid, back-off, launch counts; a
    /// changed `exec` is used from the next launch on); new ones are found
    /// or launched at the next scan; removed ones are forgotten but left
    /// running.
    pub fn configure(&mut self, specs: Vec<AgentSpec>) {
        let mut old: HashMap<String, Agent> = self
            .agents
            .drain(..)
            .map(|a| (a.spec.name.clone(), a))
            .collect();
        for spec in specs {
            let agent = match old.remove(&spec.name) {
                Some(mut a) => {
                    if a.spec.exec != spec.exec {
                        info!(
                            "agent {}: new command, used at its next launch (the running one is left alone)",
                            spec.name
                        );
                    }
                    a.spec = spec;
                    a
                }
                None => Agent::new(spec),
            };
            self.agents.push(agent);
        }
        for (name, a) in old {
            match a.pid {
                Some(pid) => {
                    info!("agent {name} removed from the configuration: left running (pid {pid})")
                }
                None => info!("agent {name} removed from the configuration"),
            }
        }
    }

    /// Where scan outcomes arrive: the main loop `select!`s on it and hands
    /// each one to [`on_scan`](Supervisor::on_scan).
    pub fn scans(&self) -> Receiver<ScanResult> {
        self.scanner.results()
    }

    /// Once a second, on the main loop; never blocks: reaps dead children,
    /// asks for a scan (merged with one still waiting) and reports, once, a
    /// scan stuck for 5 s — during which nothing is decided.
    pub fn tick(&mut self, now: Instant) {
        self.reap();
        if self.agents.is_empty() {
            return;
        }
        self.scanner.request();
        if let Some((running, path)) = self.scanner.running(now) {
            if running >= SCAN_STALL && !self.stall_reported {
                self.stall_reported = true;
                warn!(
                    "agent scan stuck for {} s reading {}: no agent is launched, restarted or declared dead until it completes",
                    running.as_secs(),
                    path.display()
                );
            }
        }
    }

    /// Decides from a scan's outcome: per agent, adopts it, relaunches it
    /// (under back-off) or restarts it (`restartOnExpire`), and drives the
    /// stops under way. `expired(name)` says whether an agent's watch
    /// deadline has passed; it is asked only about running agents with
    /// `restartOnExpire`, while active. A failed scan decides nothing: no
    /// agent is taken for dead, relaunched or restarted (logged when the
    /// failures start and when they end).
    ///
    /// Restart for expiry: SIGTERM to the agent's process group (to its pid
    /// alone if it does not lead a group of its own, e.g. an agent started by
    /// hand inside somebody's shell job), SIGKILL to the same target 5 s
    /// later if the tag is still there — whatever `expired` says meanwhile,
    /// since the decision is taken — and, once the tag is gone, SIGKILL to
    /// what is left of the group and an immediate relaunch. The daemon
    /// refreshes a watch deadline only on MQTT traffic, so the agent stays
    /// expired after its relaunch: it is not restarted again before it has
    /// been seen not expired, or before one full watchTimeOut (at least the
    /// 1 s minimum back-off) has passed since the relaunch — an agent that
    /// never talks is thus restarted about every watchTimeOut + 1 s, not at
    /// every scan.
    pub fn on_scan(
        &mut self,
        scan: ScanResult,
        now: Instant,
        expired: &dyn Fn(&str) -> bool,
    ) -> Vec<AgentEvent> {
        self.reap();
        if std::mem::take(&mut self.stall_reported) {
            info!(
                "agent scan completed after {:.1} s",
                scan.took.as_secs_f32()
            );
        } else if scan.took >= SCAN_STALL {
            warn!("agent scan took {:.1} s", scan.took.as_secs_f32());
        }
        let running = match scan.result {
            Ok(running) => {
                if std::mem::take(&mut self.scan_failing) {
                    info!("agent scan works again: agents are supervised again");
                }
                running
            }
            Err(e) => {
                if !std::mem::replace(&mut self.scan_failing, true) {
                    error!(
                        "agent scan failed ({e}): no agent is launched, restarted or declared dead until it works again"
                    );
                }
                return Vec::new();
            }
        };
        let mut events = Vec::new();
        for agent in &mut self.agents {
            let child = agent.child;
            let pids = match running.get(&agent.spec.name) {
                Some(pids) => Some(pids.as_slice()),
                None => child.as_ref().map(std::slice::from_ref),
            };
            match pids {
                Some(pids) => {
                    let expired =
                        self.active && agent.spec.restart_on_expire && expired(&agent.spec.name);
                    agent.running(pids, now, self.active, expired, &mut events);
                }
                None => agent.missing(now, self.active, &self.log_dir, &mut events),
            }
        }
        events
    }

    /// Failover: an inactive supervisor scans (it knows what runs, for the
    /// status) but never launches, relaunches or restarts. On becoming
    /// active, the next scan adopts the agents running and launches the
    /// missing ones.
    pub fn set_active(&mut self, active: bool) {
        if active == self.active {
            return;
        }
        self.active = active;
        if active {
            info!("agents: active, running ones are adopted and missing ones launched");
        } else {
            info!("agents: standby, none is launched, relaunched or restarted");
            for a in &mut self.agents {
                a.since = None;
            }
        }
    }

    /// Deposed (failover): goes inactive and stops the agents this
    /// supervisor launched (not adopted ones): SIGTERM to their process
    /// groups now, SIGKILL at the first scan 5 s later that still finds
    /// their tag.
    pub fn stop_launched(&mut self, now: Instant) {
        self.set_active(false);
        for a in &mut self.agents {
            a.stop_launched(now);
        }
    }

    /// Lowest pid carrying the agent's tag at the last scan (or the pid just
    /// launched), for the status page.
    pub fn pid(&self, name: &str) -> Option<i32> {
        self.find(name).and_then(|a| a.pid)
    }

    /// Launches made by this supervisor, of every kind.
    pub fn launches(&self, name: &str) -> u64 {
        self.find(name).map_or(0, |a| a.launches)
    }

    /// Relaunches after a death and restarts for expiry (launches but the
    /// first).
    pub fn relaunches(&self, name: &str) -> u64 {
        self.find(name).map_or(0, |a| a.relaunches)
    }

    fn find(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.spec.name == name)
    }

    fn reap(&mut self) {
        reap_children();
        for a in &mut self.agents {
            if a.child.is_some_and(|c| !child_running(c)) {
                a.child = None;
            }
        }
    }
}

impl Agent {
    fn new(spec: AgentSpec) -> Agent {
        Agent {
            spec,
            pid: None,
            since: None,
            next_launch: None,
            next_kind: LaunchKind::First,
            backoff: Backoff::new(RELAUNCH_MIN, RELAUNCH_MAX),
            launches: 0,
            relaunches: 0,
            stopping: None,
            expiry_grace: None,
            child: None,
            ours: None,
        }
    }

    /// `pids`: the processes carrying the tag (ascending, not empty).
    fn running(
        &mut self,
        pids: &[i32],
        now: Instant,
        active: bool,
        expired: bool,
        events: &mut Vec<AgentEvent>,
    ) {
        let pid = pids[0];
        self.pid = Some(pid);
        if self.stopping.is_some() {
            self.still_stopping(pid, now);
            return;
        }
        if !active {
            return;
        }
        let since = match self.since {
            Some(since) => since,
            None => {
                if self.ours.is_none() {
                    info!("agent {} is running (pid {pid})", self.spec.name);
                    events.push(AgentEvent::Adopted {
                        name: self.spec.name.clone(),
                        pid,
                    });
                }
                self.next_kind = LaunchKind::First;
                *self.since.insert(now)
            }
        };
        if now.duration_since(since) >= STABLE_RUN {
            self.backoff.reset();
        }
        if !expired {
            self.expiry_grace = None;
            return;
        }
        if self.expiry_grace.is_some_and(|g| now < g) {
            return;
        }
        // None: the tag is on init or the daemon itself, never signalled.
        let Some(target) = Target::of(pids) else {
            return;
        };
        warn!(
            "agent {} expired: restarting it (SIGTERM to {target})",
            self.spec.name
        );
        self.stop(pid, target, now, StopReason::Expired);
    }

    fn stop(&mut self, pid: i32, target: Target, now: Instant, reason: StopReason) {
        target.send(Signal::TERM);
        self.stopping = Some(Stopping {
            since: now,
            pid,
            target,
            killed: false,
            reason,
        });
    }

    /// A stop under way while the tag is still on `pid`.
    fn still_stopping(&mut self, pid: i32, now: Instant) {
        let Some(stop) = &mut self.stopping else {
            return;
        };
        let waited = now.duration_since(stop.since);
        if !stop.killed && waited >= KILL_GRACE {
            warn!(
                "agent {} still running {} s after SIGTERM: SIGKILL",
                self.spec.name,
                KILL_GRACE.as_secs()
            );
            stop.target.send(Signal::KILL);
            stop.killed = true;
        } else if stop.killed && (waited >= 2 * KILL_GRACE || pid != stop.pid) {
            // Unkillable (uninterruptible sleep) or another process with
            // the same tag: give up this stop; a restart is tried again
            // later.
            error!(
                "agent {}: pid {pid} still carries the tag after SIGKILL; stop abandoned",
                self.spec.name
            );
            if stop.reason == StopReason::Expired {
                self.expiry_grace = Some(now + self.restart_grace());
            }
            self.stopping = None;
        }
    }

    fn stop_launched(&mut self, now: Instant) {
        let (Some(group), Some(pid)) = (self.ours, self.pid) else {
            return;
        };
        if let Some(stop) = &mut self.stopping {
            stop.reason = StopReason::Deposed;
            return;
        }
        let Some(target) = Target::group_of(group) else {
            return;
        };
        info!(
            "agent {}: stopping it, this instance is no longer active (SIGTERM to {target})",
            self.spec.name
        );
        self.stop(pid, target, now, StopReason::Deposed);
    }

    fn missing(
        &mut self,
        now: Instant,
        active: bool,
        log_dir: &Path,
        events: &mut Vec<AgentEvent>,
    ) {
        let last_pid = self.pid.take();
        let since = self.since.take();
        self.ours = None;
        if let Some(stop) = self.stopping.take() {
            // What is left of its group goes too.
            if let Target::Group(_) = stop.target {
                stop.target.send(Signal::KILL);
            }
            info!("agent {} stopped", self.spec.name);
            if stop.reason == StopReason::Deposed || !active {
                return;
            }
            // Stopped for expiry: relaunched now; the new process gets a
            // grace period.
            self.next_kind = LaunchKind::AfterExpiry;
            self.next_launch = None;
            self.expiry_grace = Some(now + self.restart_grace());
        } else if !active {
            return;
        } else if let (Some(pid), Some(since)) = (last_pid, since) {
            let ran = now.duration_since(since);
            if ran >= STABLE_RUN {
                self.backoff.reset();
            }
            let delay = self.backoff.next_delay();
            warn!(
                "agent {} (pid {pid}) is gone after {} s: relaunch in {} s",
                self.spec.name,
                ran.as_secs(),
                delay.as_secs()
            );
            events.push(AgentEvent::Died {
                name: self.spec.name.clone(),
                pid,
                ran,
            });
            self.next_kind = LaunchKind::AfterDeath;
            self.next_launch = Some(now + delay);
        }
        // Ticks come once a second: a launch due within the slack is due now.
        if self.next_launch.is_some_and(|at| now + TICK_SLACK < at) {
            return;
        }
        match launch(&self.spec, log_dir) {
            Ok(pid) => events.push(self.launched(pid, now)),
            Err(e) => {
                let delay = self.backoff.next_delay();
                error!(
                    "agent {}: cannot launch ({e}); retrying in {} s",
                    self.spec.name,
                    delay.as_secs()
                );
                self.next_launch = Some(now + delay);
            }
        }
    }

    fn launched(&mut self, pid: i32, now: Instant) -> AgentEvent {
        self.launches += 1;
        self.pid = Some(pid);
        self.child = Some(pid);
        self.ours = Some(pid);
        self.since = Some(now);
        self.next_launch = None;
        info!(
            "agent {} launched (pid {pid}, launch #{}): /bin/bash -c \"{}\"",
            self.spec.name,
            self.launches,
            command_line(&self.spec)
        );
        let (name, epoch_s) = (self.spec.name.clone(), crate::clock::wall_ms() / 1000);
        let kind = std::mem::replace(&mut self.next_kind, LaunchKind::First);
        if kind != LaunchKind::First {
            self.relaunches += 1;
        }
        match kind {
            LaunchKind::First => AgentEvent::Launched { name, pid, epoch_s },
            LaunchKind::AfterDeath => AgentEvent::Relaunched { name, pid, epoch_s },
            LaunchKind::AfterExpiry => AgentEvent::Restarted { name, pid, epoch_s },
        }
    }

    /// How long a process relaunched for expiry is left alone while still
    /// expired.
    fn restart_grace(&self) -> Duration {
        self.spec.watch_timeout.max(RELAUNCH_MIN)
    }
}
