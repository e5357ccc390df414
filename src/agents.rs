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
//! Which agents run is decided from `/proc` alone ([`procfs::scan_tags`],
//! once per tick for all agents), never from a remembered pid: pids get
//! reused.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use log::{error, info, warn};

use crate::backoff::Backoff;
use crate::procfs;

const RELAUNCH_MIN: Duration = Duration::from_secs(1);
const RELAUNCH_MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off.
const STABLE_RUN: Duration = Duration::from_secs(60);
/// Tolerance when comparing a due time with the tick's time.
const TICK_SLACK: Duration = Duration::from_millis(200);
/// SIGTERM, then SIGKILL after this long (restartOnExpire).
const KILL_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    pub name: String,
    pub exec: String,
    pub restart_on_expire: bool,
    /// The agent's watchTimeOut: after a restart for expiry, the new
    /// process gets this long to show activity before another restart.
    pub watch_timeout: Duration,
}

/// One (re)start, for `B/startedprocess/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub name: String,
    pub epoch_s: u64,
    pub pid: i32,
}

/// A restart for expiry under way.
#[derive(Debug, Clone, Copy)]
struct Stopping {
    /// SIGTERM sent at this instant.
    since: Instant,
    /// The pid the tag was found on when SIGTERM was sent.
    pid: i32,
    /// What was signalled: `-pgid` (the agent's process group) or the pid.
    target: i32,
    killed: bool,
}

struct Agent {
    spec: AgentSpec,
    /// Lowest pid carrying the tag, when running.
    pid: Option<i32>,
    /// When it was launched or first seen running.
    since: Option<Instant>,
    /// When the next launch may happen; None = as soon as it is missing.
    next_launch: Option<Instant>,
    backoff: Backoff,
    launches: u64,
    stopping: Option<Stopping>,
    /// No restart for expiry before this instant (cleared when the agent
    /// is seen not expired).
    expiry_grace: Option<Instant>,
    /// The process this supervisor launched last, until reaped: it counts
    /// as running even while its tag cannot be read (execve in progress, or
    /// an `exec` replacing bash). An unreaped child's pid cannot be reused.
    child: Option<i32>,
}

pub struct Supervisor {
    log_dir: PathBuf,
    agents: Vec<Agent>,
}

impl Supervisor {
    pub fn new(log_dir: PathBuf) -> Supervisor {
        Supervisor {
            log_dir,
            agents: Vec::new(),
        }
    }

    /// Sets the agents to supervise (start-up and config reload). Agents
    /// keeping their name keep their state (pid, back-off, launch count; a
    /// changed `exec` is used from the next launch on); new ones are found
    /// or launched at the next tick; removed ones are forgotten but left
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
                None => Agent {
                    spec,
                    pid: None,
                    since: None,
                    next_launch: None,
                    backoff: Backoff::new(RELAUNCH_MIN, RELAUNCH_MAX),
                    launches: 0,
                    stopping: None,
                    expiry_grace: None,
                    child: None,
                },
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

    /// Lowest pid carrying the agent's tag at the last tick (or the pid just
    /// launched), for the status page.
    pub fn pid(&self, name: &str) -> Option<i32> {
        self.find(name).and_then(|a| a.pid)
    }

    /// Launches made by this daemon (first launch, relaunches, restarts for
    /// expiry); adopted agents count 0 until relaunched.
    pub fn launches(&self, name: &str) -> u64 {
        self.find(name).map_or(0, |a| a.launches)
    }

    fn find(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.spec.name == name)
    }

    /// Once a second: reaps dead children, scans /proc once, and per agent
    /// adopts, relaunches (under back-off) or restarts it (`restartOnExpire`).
    /// `expired(name)` says whether an agent's watch deadline has passed; it
    /// is asked only about running agents with `restartOnExpire`.
    ///
    /// Restart for expiry: SIGTERM to the agent's process group (to its pid
    /// alone if it does not lead a group of its own, e.g. an agent started by
    /// hand inside somebody's shell job), SIGKILL to the same target 5 s
    /// later if the tag is still there — whatever `expired` says meanwhile,
    /// since the decision is taken — and, once the tag is gone, SIGKILL to
    /// what is left of the group and an immediate relaunch (a [`Launch`]).
    /// The daemon refreshes a watch deadline only on MQTT traffic, so the
    /// agent stays expired after its relaunch: it is not restarted again
    /// before it has been seen not expired, or before one full watchTimeOut
    /// (at least the 1 s minimum back-off) has passed since the relaunch —
    /// an agent that never talks is thus restarted about every
    /// watchTimeOut + 1 s, not at every tick.
    pub fn tick(&mut self, now: Instant, expired: &dyn Fn(&str) -> bool) -> Vec<Launch> {
        let reaped = reap_children();
        if self.agents.is_empty() {
            return Vec::new();
        }
        let running = procfs::scan_tags();
        let mut launches = Vec::new();
        for agent in &mut self.agents {
            if agent.child.is_some_and(|c| reaped.contains(&c)) {
                agent.child = None;
            }
            let own_child;
            let pids = match running.get(&agent.spec.name) {
                Some(pids) => Some(pids.as_slice()),
                None => {
                    own_child = agent.child.filter(|&c| procfs::is_alive(c));
                    own_child.as_ref().map(std::slice::from_ref)
                }
            };
            match pids {
                Some(pids) => {
                    let expired = agent.spec.restart_on_expire && expired(&agent.spec.name);
                    agent.running(pids, now, expired);
                }
                None => {
                    if let Some(l) = agent.missing(now, &self.log_dir) {
                        launches.push(l);
                    }
                }
            }
        }
        launches
    }
}

impl Agent {
    /// `pids`: the processes carrying the tag (ascending, not empty).
    fn running(&mut self, pids: &[i32], now: Instant, expired: bool) {
        let pid = pids[0];
        if self.pid.is_none() {
            info!("agent {} is running (pid {pid})", self.spec.name);
        }
        self.pid = Some(pid);
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) >= STABLE_RUN {
            self.backoff.reset();
        }
        if let Some(stop) = &mut self.stopping {
            let waited = now.duration_since(stop.since);
            if !stop.killed && waited >= KILL_GRACE {
                warn!(
                    "agent {} still running {} s after SIGTERM: SIGKILL",
                    self.spec.name,
                    KILL_GRACE.as_secs()
                );
                signal(stop.target, libc::SIGKILL);
                stop.killed = true;
            } else if stop.killed && (waited >= 2 * KILL_GRACE || pid != stop.pid) {
                // Unkillable (uninterruptible sleep) or another process with
                // the same tag: give up this restart, try again later.
                error!(
                    "agent {}: pid {pid} still carries the tag after SIGKILL; restart abandoned",
                    self.spec.name
                );
                self.stopping = None;
                self.expiry_grace = Some(now + self.restart_grace());
            }
            return;
        }
        if !expired {
            self.expiry_grace = None;
            return;
        }
        if self.expiry_grace.is_some_and(|g| now < g) {
            return;
        }
        let target = signal_target(pids);
        warn!(
            "agent {} expired: restarting it (SIGTERM to {})",
            self.spec.name,
            if target < 0 {
                format!("process group {}", -target)
            } else {
                format!("pid {target}")
            }
        );
        signal(target, libc::SIGTERM);
        self.stopping = Some(Stopping {
            since: now,
            pid,
            target,
            killed: false,
        });
    }

    fn missing(&mut self, now: Instant, log_dir: &Path) -> Option<Launch> {
        if let Some(stop) = self.stopping.take() {
            // Stopped for expiry: what is left of its group goes too, then
            // relaunch now; the new process gets a grace period.
            if stop.target < 0 {
                signal(stop.target, libc::SIGKILL);
            }
            info!("agent {} stopped for its restart", self.spec.name);
            self.next_launch = None;
            self.expiry_grace = Some(now + self.restart_grace());
        } else if let Some(pid) = self.pid {
            let ran = self.since.map_or(Duration::ZERO, |s| now.duration_since(s));
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
            self.next_launch = Some(now + delay);
        }
        self.pid = None;
        self.since = None;
        // Ticks come once a second: a launch due within the slack is due now.
        if self.next_launch.is_some_and(|at| now + TICK_SLACK < at) {
            return None;
        }
        match launch(&self.spec, log_dir) {
            Ok(pid) => {
                self.launches += 1;
                self.pid = Some(pid);
                self.child = Some(pid);
                self.since = Some(now);
                self.next_launch = None;
                let epoch_s = crate::clock::wall_ms() / 1000;
                info!(
                    "agent {} launched (pid {pid}, launch #{}): /bin/bash -c \"{}\"",
                    self.spec.name,
                    self.launches,
                    command_line(&self.spec)
                );
                Some(Launch {
                    name: self.spec.name.clone(),
                    epoch_s,
                    pid,
                })
            }
            Err(e) => {
                let delay = self.backoff.next_delay();
                error!(
                    "agent {}: cannot launch ({e}); retrying in {} s",
                    self.spec.name,
                    delay.as_secs()
                );
                self.next_launch = Some(now + delay);
                None
            }
        }
    }

    /// How long a process relaunched for expiry is left alone while still
    /// expired.
    fn restart_grace(&self) -> Duration {
        self.spec.watch_timeout.max(RELAUNCH_MIN)
    }
}

/// The exact command line of the original iotmonitor (bash's `-c` argument).
pub fn command_line(spec: &AgentSpec) -> String {
    format!("echo IOTMONITORMAGIC_{};{};echo END", spec.name, spec.exec)
}

/// Starts an agent detached: new session, stdin from /dev/null, stdout and
/// stderr appended to `<log_dir>/<name>.log`, no inherited descriptors.
/// Returns once bash's execve has begun (its tag may take a moment more to
/// be readable in /proc).
fn launch(spec: &AgentSpec, log_dir: &Path) -> io::Result<i32> {
    std::fs::create_dir_all(log_dir)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join(format!("{}.log", spec.name)))?;
    let err = log.try_clone()?;
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c")
        .arg(command_line(spec))
        .env("IOTMONITORMAGIC", format!("IOTMONITORMAGIC_{}", spec.name))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (setsid, syscall, fcntl); nothing allocates.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            close_on_exec_from(3);
            Ok(())
        });
    }
    // The Child handle is dropped without waiting: `reap_children` collects
    // the agent's exit status when it ends.
    let child = cmd.spawn()?;
    Ok(child.id() as i32)
}

/// Marks every descriptor from `first` on close-on-exec: an agent must not
/// inherit the database lock or the broker socket (descriptors opened by C
/// libraries may lack O_CLOEXEC).
fn close_on_exec_from(first: u32) {
    // SAFETY: plain system calls on descriptor numbers.
    unsafe {
        if libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) == 0
        {
            return;
        }
        // Kernels before 5.11: every plausible descriptor, one by one.
        for fd in first as i32..4096 {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Where to send a signal meant for the agent whose tag is on `pids`: the
/// process group (`-pgid`) of the first of them leading a group of its own —
/// agents launched here or by the original lead their session — otherwise
/// the lowest pid alone, never a group it merely belongs to (a user's shell
/// job, the daemon's). Other pids with the tag are usually bash's children
/// between fork and exec, members of its group.
fn signal_target(pids: &[i32]) -> i32 {
    // SAFETY: plain system calls.
    unsafe {
        let (own_group, own_pid) = (libc::getpgrp(), libc::getpid());
        pids.iter()
            .find(|&&pid| {
                pid > 1 && pid != own_pid && pid != own_group && libc::getpgid(pid) == pid
            })
            .map_or(pids[0], |&pid| -pid)
    }
}

fn signal(target: i32, sig: libc::c_int) {
    if target == 0 || target == -1 {
        return; // never "our group" or "every process"
    }
    // SAFETY: plain system call.
    unsafe {
        libc::kill(target, sig);
    }
}

/// Collects the exit status of every ended child, so none stays a zombie
/// (the daemon has no children besides the agents it launched); returns
/// their pids.
fn reap_children() -> Vec<i32> {
    let mut reaped = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG only reports ended children.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return reaped;
        }
        reaped.push(pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Whatever the test's outcome, SIGKILLs on drop the process group of
    /// every process carrying one of `names`' tags and every group handed
    /// to `track`/`group`.
    struct Cleanup {
        names: Vec<String>,
        groups: RefCell<Vec<i32>>,
    }

    impl Cleanup {
        fn new(names: &[&str]) -> Cleanup {
            Cleanup {
                names: names.iter().map(|n| n.to_string()).collect(),
                groups: RefCell::new(Vec::new()),
            }
        }

        fn group(&self, pgid: i32) {
            self.groups.borrow_mut().push(pgid);
        }

        fn track(&self, launches: Vec<Launch>) -> Vec<Launch> {
            for l in &launches {
                self.group(l.pid); // launched agents lead their session
            }
            launches
        }
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            for &g in self.groups.borrow().iter() {
                signal(-g, libc::SIGKILL);
            }
            let found = procfs::scan_tags();
            for name in &self.names {
                for &pid in found.get(name).into_iter().flatten() {
                    signal(signal_target(&[pid]), libc::SIGKILL);
                    signal(pid, libc::SIGKILL);
                }
            }
        }
    }

    /// Unique per test and per test process: tests run in parallel and all
    /// see the same /proc.
    fn name(test: &str) -> String {
        format!("{test}_{}", std::process::id())
    }

    fn spec(name: &str, exec: &str) -> AgentSpec {
        AgentSpec {
            name: name.to_string(),
            exec: exec.into(),
            restart_on_expire: false,
            watch_timeout: Duration::from_secs(30),
        }
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn state(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')').next()?.trim().chars().next()
    }

    fn not_zombie(pid: i32) -> bool {
        // Gone, or the pid already reused by another process.
        state(pid) != Some('Z')
    }

    /// Waits until the agent's bash (`pid`) has ended and no process shows
    /// its tag any more: a child bash forked just before the signal carries
    /// the tag until it dies too (bash blocks SIGTERM across fork).
    fn wait_gone(name: &str, pid: i32) {
        wait_until("agent gone", || {
            !procfs::is_alive(pid) && !procfs::scan_tags().contains_key(name)
        });
    }

    fn kill_group(name: &str, pid: i32) {
        signal(-pid, libc::SIGKILL);
        wait_gone(name, pid);
    }

    const NEVER: &dyn Fn(&str) -> bool = &|_| false;
    const ALWAYS: &dyn Fn(&str) -> bool = &|_| true;

    /// A descriptor opened without O_CLOEXEC, as a C library may do.
    struct RawFd(i32);

    impl RawFd {
        fn open(path: &Path) -> RawFd {
            use std::os::unix::ffi::OsStrExt;
            let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
            assert!(fd >= 3, "open {path:?}");
            RawFd(fd)
        }
    }

    impl Drop for RawFd {
        fn drop(&mut self) {
            unsafe { libc::close(self.0) };
        }
    }

    #[test]
    fn launches_detached_with_the_original_command_line_and_logs() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(&name("launch"), "echo hello; sleep 30");
        let c = Cleanup::new(&[&s.name]);
        let log = dir.path().join(format!("{}.log", s.name));
        std::fs::write(&log, "previous run\n").unwrap();
        // Stands for the database LOCK file: must not reach the agent.
        let lock = dir.path().join("LOCK");
        std::fs::write(&lock, "").unwrap();
        let leak = RawFd::open(&lock);
        let mut sup = Supervisor::new(dir.path().to_path_buf());
        sup.configure(vec![s.clone()]);
        let before = crate::clock::wall_ms() / 1000;
        let launches = c.track(sup.tick(Instant::now(), NEVER));
        assert_eq!(launches.len(), 1);
        let pid = launches[0].pid;
        assert_eq!(launches[0].name, s.name);
        assert!((before..=before + 2).contains(&launches[0].epoch_s));
        assert_eq!(unsafe { libc::getsid(pid) }, pid, "session leader");
        assert_eq!(unsafe { libc::getpgid(pid) }, pid, "group leader");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let expected = format!(
            "/bin/bash\0-c\0echo IOTMONITORMAGIC_{};echo hello; sleep 30;echo END\0",
            s.name
        );
        assert_eq!(String::from_utf8_lossy(&cmdline), expected);
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let var = format!("IOTMONITORMAGIC=IOTMONITORMAGIC_{}", s.name);
        assert!(environ.split(|&b| b == 0).any(|v| v == var.as_bytes()));
        let path = std::env::var("PATH").unwrap_or_default();
        assert!(
            environ
                .split(|&b| b == 0)
                .any(|v| v == format!("PATH={path}").as_bytes()),
            "the daemon's environment is inherited"
        );
        let fds: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .collect();
        assert!(
            !fds.contains(&lock),
            "LOCK inherited (fd {}): {fds:?}",
            leak.0
        );
        let stdin = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
        assert_eq!(stdin, Path::new("/dev/null"));
        wait_until("agent output in its log", || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("hello\n"))
        });
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("previous run\nIOTMONITORMAGIC_{}\nhello\n", s.name),
            "appended"
        );
        // Found again by its tag: no second launch; without restartOnExpire
        // an expired agent is left alone.
        for _ in 0..2 {
            assert!(sup.tick(Instant::now(), ALWAYS).is_empty());
        }
        assert!(procfs::is_alive(pid));
        assert_eq!(sup.pid(&s.name), Some(pid));
        assert_eq!(sup.launches(&s.name), 1);
        assert_eq!(sup.launches(&s.name), 1);
        assert_eq!(sup.pid("unknown"), None);
        assert_eq!(sup.launches("unknown"), 0);
    }

    #[test]
    fn adopts_an_agent_started_by_hand_and_keeps_led_and_ledbox_apart() {
        let dir = tempfile::tempdir().unwrap();
        let led = spec(&name("led_adopt"), "sleep 30");
        let ledbox = spec(&format!("{}box", led.name), "sleep 30");
        let c = Cleanup::new(&[&led.name, &ledbox.name]);
        // `ledbox` started by hand the original's way.
        let mut by_hand = Command::new("/bin/bash");
        by_hand
            .arg("-c")
            .arg(command_line(&ledbox))
            .env(
                "IOTMONITORMAGIC",
                format!("IOTMONITORMAGIC_{}", ledbox.name),
            )
            .stdout(Stdio::null());
        unsafe {
            by_hand.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let hand_pid = by_hand.spawn().unwrap().id() as i32;
        c.group(hand_pid);
        wait_until("hand-started agent visible", || {
            procfs::scan_tags().get(&ledbox.name) == Some(&vec![hand_pid])
        });

        let mut sup = Supervisor::new(dir.path().to_path_buf());
        sup.configure(vec![led.clone(), ledbox.clone()]);
        let launches = c.track(sup.tick(Instant::now(), NEVER));
        assert_eq!(launches.len(), 1, "{launches:?}");
        assert_eq!(launches[0].name, led.name, "ledbox's process is not led");
        assert_eq!(sup.pid(&ledbox.name), Some(hand_pid));
        assert_eq!(sup.launches(&ledbox.name), 0);
        assert!(sup.tick(Instant::now(), NEVER).is_empty());

        // A new daemon adopts both, led's process not counting as ledbox.
        let mut again = Supervisor::new(dir.path().to_path_buf());
        again.configure(vec![ledbox.clone(), led.clone()]);
        assert!(c.track(again.tick(Instant::now(), NEVER)).is_empty());
        assert_eq!(again.pid(&led.name), Some(launches[0].pid));
        assert_eq!(again.pid(&ledbox.name), Some(hand_pid));
        assert_eq!(again.launches(&led.name), 0);
    }

    #[test]
    fn a_dying_agent_is_relaunched_under_backoff_and_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(&name("dies"), "exit 3");
        let c = Cleanup::new(&[&s.name]);
        let logs = dir.path().join("not/yet");
        let mut sup = Supervisor::new(logs.clone());
        sup.configure(vec![s.clone()]);
        let t0 = Instant::now();
        let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let mut expected_launches = 0;
        // Seen dead at the next tick, then relaunched 1 s, 2 s, 4 s later.
        let mut launched_at = 0.0;
        for delay in [1.0, 2.0, 4.0] {
            let l = c.track(sup.tick(at(launched_at), NEVER));
            assert_eq!(l.len(), 1, "launch at {launched_at} s");
            expected_launches += 1;
            let pid = l[0].pid;
            wait_until("agent exit", || state(pid).is_none_or(|c| c == 'Z'));
            let seen_dead = launched_at + 1.0;
            assert!(sup.tick(at(seen_dead), NEVER).is_empty());
            assert!(not_zombie(pid), "dead agent reaped");
            assert_eq!(sup.pid(&s.name), None);
            assert!(sup.tick(at(seen_dead + delay - 0.5), NEVER).is_empty());
            launched_at = seen_dead + delay;
        }
        assert_eq!(c.track(sup.tick(at(launched_at), NEVER)).len(), 1);
        expected_launches += 1;
        assert_eq!(sup.launches(&s.name), expected_launches);
        let log = std::fs::read_to_string(logs.join(format!("{}.log", s.name))).unwrap();
        assert!(log.starts_with(&format!("IOTMONITORMAGIC_{}\n", s.name)));
    }

    #[test]
    fn a_killed_agent_is_relaunched_and_the_backoff_resets_after_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(&name("killed"), "sleep 30");
        let c = Cleanup::new(&[&s.name]);
        let mut sup = Supervisor::new(dir.path().to_path_buf());
        sup.configure(vec![s.clone()]);
        let t0 = Instant::now();
        let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let pid1 = c.track(sup.tick(at(0.0), NEVER))[0].pid;
        kill_group(&s.name, pid1);
        assert!(sup.tick(at(1.0), NEVER).is_empty());
        assert!(not_zombie(pid1), "killed agent reaped");
        assert!(sup.tick(at(1.5), NEVER).is_empty());
        let pid2 = c.track(sup.tick(at(2.0), NEVER))[0].pid;
        assert_ne!(pid2, pid1);
        kill_group(&s.name, pid2);
        assert!(sup.tick(at(3.0), NEVER).is_empty(), "2 s now");
        assert!(sup.tick(at(4.5), NEVER).is_empty());
        let pid3 = c.track(sup.tick(at(5.0), NEVER))[0].pid;
        // Runs for a minute: the back-off starts again from 1 s (else 4 s).
        assert!(sup.tick(at(66.0), NEVER).is_empty());
        assert_eq!(sup.pid(&s.name), Some(pid3));
        kill_group(&s.name, pid3);
        assert!(sup.tick(at(67.0), NEVER).is_empty());
        assert_eq!(c.track(sup.tick(at(68.0), NEVER)).len(), 1);
        assert_eq!(sup.launches(&s.name), 4);
    }

    #[test]
    fn a_failed_launch_is_retried_under_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "file").unwrap();
        let s = spec(&name("nolog"), "sleep 30");
        let c = Cleanup::new(&[&s.name]);
        let mut sup = Supervisor::new(blocker.join("logs"));
        sup.configure(vec![s.clone()]);
        let t0 = Instant::now();
        let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
        assert!(sup.tick(at(0.0), NEVER).is_empty(), "fails, retry in 1 s");
        assert!(sup.tick(at(0.5), NEVER).is_empty());
        assert!(sup.tick(at(1.0), NEVER).is_empty(), "fails, retry in 2 s");
        assert_eq!(sup.launches(&s.name), 0);
        assert_eq!(sup.pid(&s.name), None);
        std::fs::remove_file(&blocker).unwrap();
        assert!(sup.tick(at(2.0), NEVER).is_empty());
        let l = c.track(sup.tick(at(3.0), NEVER));
        assert_eq!(l.len(), 1);
        assert_eq!(sup.launches(&s.name), 1);
    }

    /// A supervisor of one `restartOnExpire` agent (watchTimeOut 10 s),
    /// with its log directory and clean-up guard.
    fn restarting_agent(
        tag: &str,
        exec: &str,
    ) -> (tempfile::TempDir, AgentSpec, Cleanup, Supervisor) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(&name(tag), exec);
        s.restart_on_expire = true;
        s.watch_timeout = Duration::from_secs(10);
        let c = Cleanup::new(&[&s.name]);
        let mut sup = Supervisor::new(dir.path().to_path_buf());
        sup.configure(vec![s.clone()]);
        (dir, s, c, sup)
    }

    #[test]
    fn restart_on_expire_escalates_to_sigkill_and_relaunches() {
        let (dir, s, c, mut sup) =
            restarting_agent("expire_kill", "trap '' TERM; echo ready; sleep 30");
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let pid = c.track(sup.tick(t0, NEVER))[0].pid;
        let log = dir.path().join(format!("{}.log", s.name));
        wait_until("TERM ignored", || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("ready"))
        });
        assert!(sup.tick(at(1), ALWAYS).is_empty(), "SIGTERM first");
        std::thread::sleep(Duration::from_millis(100));
        assert!(procfs::is_alive(pid), "bash ignores TERM here");
        // Traffic arrives meanwhile: the restart goes on all the same.
        assert!(sup.tick(at(3), NEVER).is_empty());
        assert!(procfs::is_alive(pid));
        assert!(sup.tick(at(6), NEVER).is_empty(), "SIGKILL after 5 s");
        wait_gone(&s.name, pid);
        let relaunched = c.track(sup.tick(at(7), ALWAYS));
        assert_eq!(relaunched.len(), 1, "relaunched as soon as gone");
        assert_eq!(sup.launches(&s.name), 2);
        // Still expired, but the new process has a watch period of grace.
        assert!(sup.tick(at(8), ALWAYS).is_empty());
        assert!(procfs::is_alive(relaunched[0].pid));
    }

    #[test]
    fn restart_on_expire_restarts_once_per_expiry() {
        let (_dir, s, c, mut sup) = restarting_agent("expire_term", "sleep 30");
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let asked = RefCell::new(Vec::new());
        let asked_ref = &asked;
        let expired = |e: bool| {
            move |name: &str| {
                asked_ref.borrow_mut().push(name.to_string());
                e
            }
        };
        let pid1 = c.track(sup.tick(t0, &expired(true)))[0].pid;
        assert!(asked.borrow().is_empty(), "not asked before it runs");
        assert!(sup.tick(at(1), &expired(true)).is_empty(), "SIGTERM");
        assert_eq!(*asked.borrow(), std::slice::from_ref(&s.name));
        wait_gone(&s.name, pid1);
        let pid2 = c.track(sup.tick(at(2), &expired(true)))[0].pid;
        // Same expiry (no traffic since): left alone for a watch period.
        for t in [3, 6, 11] {
            assert!(sup.tick(at(t), &expired(true)).is_empty());
            assert!(procfs::is_alive(pid2), "killed again at {t} s");
        }
        // Still silent a full watch period after its relaunch: restarted.
        assert!(sup.tick(at(12), &expired(true)).is_empty());
        wait_gone(&s.name, pid2);
        let pid3 = c.track(sup.tick(at(13), &expired(true)))[0].pid;
        // It talks (not expired), then goes silent again: a new expiry.
        assert!(sup.tick(at(14), &expired(false)).is_empty());
        assert!(sup.tick(at(15), &expired(true)).is_empty());
        wait_gone(&s.name, pid3);
        assert_eq!(c.track(sup.tick(at(16), &expired(false))).len(), 1);
        assert_eq!(sup.launches(&s.name), 4);
    }

    #[test]
    fn configure_keeps_state_and_leaves_removed_agents_running() {
        let dir = tempfile::tempdir().unwrap();
        let a = spec(&name("conf_a"), "sleep 30");
        let b = spec(&name("conf_b"), "sleep 30");
        let n = spec(&name("conf_new"), "sleep 30");
        let c = Cleanup::new(&[&a.name, &b.name, &n.name]);
        let mut sup = Supervisor::new(dir.path().to_path_buf());
        sup.configure(vec![a.clone(), b.clone()]);
        let first = c.track(sup.tick(Instant::now(), NEVER));
        assert_eq!(first.len(), 2);
        let a_pid = sup.pid(&a.name).unwrap();
        let changed = AgentSpec {
            exec: "sleep 31".into(),
            ..a.clone()
        };
        sup.configure(vec![changed, n.clone()]);
        let second = c.track(sup.tick(Instant::now(), NEVER));
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].name, n.name);
        assert_eq!(sup.pid(&a.name), Some(a_pid), "running one left alone");
        assert_eq!(sup.launches(&a.name), 1);
        assert_eq!(sup.pid(&b.name), None);
        assert!(
            procfs::scan_tags().contains_key(&b.name),
            "removed agent left running"
        );
    }

    /// Processes in one group, killed and reaped on drop.
    struct Sleepers(Vec<std::process::Child>);

    impl Drop for Sleepers {
        fn drop(&mut self) {
            if let Some(first) = self.0.first() {
                signal(-(first.id() as i32), libc::SIGKILL);
            }
            for c in &mut self.0 {
                let _ = c.wait(); // may be reaped by a parallel tick already
            }
        }
    }

    #[test]
    fn scan_cost_with_many_processes() {
        let mut sleepers = Sleepers(Vec::new());
        for _ in 0..500 {
            let pgid = sleepers.0.first().map_or(0, |c| c.id() as i32);
            match Command::new("sleep")
                .arg("60")
                .stdin(Stdio::null())
                .process_group(pgid)
                .spawn()
            {
                Ok(c) => sleepers.0.push(c),
                Err(e) => {
                    eprintln!("could only start {} sleeps: {e}", sleepers.0.len());
                    break;
                }
            }
        }
        procfs::scan_tags(); // warm the dentry cache
        let rounds = 20;
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            procfs::scan_tags();
            times.push(t.elapsed());
        }
        times.sort();
        eprintln!(
            "/proc scan with {} processes ({} extra sleeps): median {:?}, min {:?}, max {:?} ({} build)",
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_str().is_some_and(|s| s.parse::<u32>().is_ok()))
                .count(),
            sleepers.0.len(),
            times[rounds / 2],
            times[0],
            times[rounds - 1],
            if cfg!(debug_assertions) { "debug" } else { "release" }
        );
    }
}
