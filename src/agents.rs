//! Agent supervision (SPEC §6): launching agents as detached processes,
//! finding them again by their tag, relaunching them with back-off, and
//! restarting them when their watch deadline passes (`restartOnExpire`).
//!
//! The launch command line is a compatibility contract with the original
//! iotmonitor: `/bin/bash -c "echo IOTMONITORMAGIC_<name>;<exec>;echo END"`
//! in a new session, with `IOTMONITORMAGIC=IOTMONITORMAGIC_<name>` added to
//! the environment. Agents started by the original (or by hand with that
//! line) are adopted, and agents started here survive the daemon.

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
    /// SIGTERM sent at this instant (restartOnExpire), waiting for the end.
    terminating: Option<Instant>,
    /// No restart for expiry before this instant.
    expiry_grace: Option<Instant>,
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

    /// Sets the agents to supervise. Agents keeping their name keep their
    /// state; removed agents are forgotten but left running.
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
                    terminating: None,
                    expiry_grace: None,
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

    pub fn pid(&self, name: &str) -> Option<i32> {
        self.find(name).and_then(|a| a.pid)
    }

    /// Launches made by this daemon.
    pub fn launches(&self, name: &str) -> u64 {
        self.find(name).map_or(0, |a| a.launches)
    }

    fn find(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.spec.name == name)
    }

    /// Once a second: reaps dead children, scans /proc once, and per agent
    /// adopts, relaunches (under back-off) or restarts it (expired and
    /// `restartOnExpire`). `expired(name)` says whether an agent's watch
    /// deadline has passed.
    pub fn tick(&mut self, now: Instant, expired: &dyn Fn(&str) -> bool) -> Vec<Launch> {
        reap_children();
        if self.agents.is_empty() {
            return Vec::new();
        }
        let running = procfs::scan_tags();
        let mut launches = Vec::new();
        for agent in &mut self.agents {
            match running.get(&agent.spec.name).and_then(|p| p.first()) {
                Some(&pid) => agent.running(pid, now, expired(&agent.spec.name)),
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
    fn running(&mut self, pid: i32, now: Instant, expired: bool) {
        if self.pid.is_none() {
            info!("agent {} is running (pid {pid})", self.spec.name);
        }
        self.pid = Some(pid);
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) >= STABLE_RUN {
            self.backoff.reset();
        }
        if !self.spec.restart_on_expire || !expired {
            return;
        }
        if self.expiry_grace.is_some_and(|g| now < g) {
            return;
        }
        match self.terminating {
            None => {
                warn!(
                    "agent {} expired: restarting it (SIGTERM to process group of pid {pid})",
                    self.spec.name
                );
                signal_group(pid, libc::SIGTERM);
                self.terminating = Some(now);
            }
            Some(at) if now.duration_since(at) >= KILL_GRACE => {
                warn!(
                    "agent {} still running {} s after SIGTERM: SIGKILL",
                    self.spec.name,
                    KILL_GRACE.as_secs()
                );
                signal_group(pid, libc::SIGKILL);
            }
            Some(_) => {}
        }
    }

    fn missing(&mut self, now: Instant, log_dir: &Path) -> Option<Launch> {
        if self.terminating.take().is_some() {
            // Stopped for expiry: relaunch now, and give the new process a
            // full watch period before another restart.
            self.next_launch = None;
            self.expiry_grace = Some(now + self.spec.watch_timeout.max(RELAUNCH_MIN));
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
                self.since = Some(now);
                self.next_launch = None;
                let epoch_s = crate::watchdog::now_ms() / 1000;
                info!(
                    "agent {} launched (pid {pid}, launch #{}): {}",
                    self.spec.name, self.launches, self.spec.exec
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
}

/// The exact command line of the original iotmonitor.
pub fn command_line(spec: &AgentSpec) -> String {
    format!("echo IOTMONITORMAGIC_{};{};echo END", spec.name, spec.exec)
}

/// Starts an agent detached: new session, stdin from /dev/null, stdout and
/// stderr appended to `<log_dir>/<name>.log`, no inherited descriptors.
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
    // (setsid, syscall, fcntl).
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
/// inherit the database lock or the broker socket.
fn close_on_exec_from(first: u32) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain system calls on descriptor numbers.
    unsafe {
        if libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) == 0 {
            return;
        }
        for fd in first as i32..4096 {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Sends `sig` to the process group of `pid` (the agent's session), or to
/// `pid` alone if that group is the daemon's own.
fn signal_group(pid: i32, sig: libc::c_int) {
    // SAFETY: plain system calls.
    unsafe {
        let pgid = libc::getpgid(pid);
        if pgid > 1 && pgid != libc::getpgrp() {
            libc::kill(-pgid, sig);
        } else {
            libc::kill(pid, sig);
        }
    }
}

/// Collects the exit status of every ended child, so none stays a zombie.
fn reap_children() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG only reports ended children.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kills a process group when dropped, whatever the test's outcome.
    struct Group(i32);

    impl Drop for Group {
        fn drop(&mut self) {
            if self.0 > 1 {
                unsafe {
                    libc::kill(-self.0, libc::SIGKILL);
                }
            }
        }
    }

    fn spec(name: &str, exec: &str) -> AgentSpec {
        AgentSpec {
            name: format!("{name}_{}", std::process::id()),
            exec: exec.into(),
            restart_on_expire: false,
            watch_timeout: Duration::from_secs(30),
        }
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn state(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')').next()?.trim().chars().next()
    }

    #[test]
    fn launches_detached_with_the_original_command_line_and_logs() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec("launch", "echo hello-from-agent; sleep 30");
        let mut sup = Supervisor::new(dir.path().join("logs"));
        sup.configure(vec![s.clone()]);
        let launches = sup.tick(Instant::now(), &|_| false);
        assert_eq!(launches.len(), 1);
        let pid = launches[0].pid;
        let _g = Group(pid);
        assert_eq!(launches[0].name, s.name);
        assert_eq!(
            unsafe { libc::getsid(pid) },
            pid,
            "agent is a session leader"
        );
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let expected = format!(
            "/bin/bash\0-c\0echo IOTMONITORMAGIC_{};{};echo END\0",
            s.name, s.exec
        );
        assert_eq!(String::from_utf8_lossy(&cmdline), expected);
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let var = format!("IOTMONITORMAGIC=IOTMONITORMAGIC_{}", s.name);
        assert!(environ.split(|&b| b == 0).any(|v| v == var.as_bytes()));
        let log = dir.path().join("logs").join(format!("{}.log", s.name));
        wait_until("agent output in its log", || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("hello-from-agent"))
        });
        assert!(std::fs::read_to_string(&log)
            .unwrap()
            .starts_with(&format!("IOTMONITORMAGIC_{}\n", s.name)));
        // Found again by its tag: no second launch.
        assert!(sup.tick(Instant::now(), &|_| false).is_empty());
        assert_eq!(sup.pid(&s.name), Some(pid));
        assert_eq!(sup.launches(&s.name), 1);
    }

    #[test]
    fn adopts_an_agent_started_by_hand_and_keeps_names_apart() {
        let dir = tempfile::tempdir().unwrap();
        let by_hand = spec("adopt", "sleep 30");
        let mut child = Command::new("setsid")
            .arg("/bin/bash")
            .arg("-c")
            .arg(command_line(&by_hand))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let _g = Group(child.id() as i32);
        // setsid forks when it is a group leader; wait for the tagged bash.
        wait_until("hand-started agent visible", || {
            procfs::scan_tags().contains_key(&by_hand.name)
        });
        let pid = procfs::scan_tags()[&by_hand.name][0];
        let _g2 = Group(pid);
        let prefix = AgentSpec {
            name: by_hand.name[..by_hand.name.len() - 1].to_string(),
            ..spec("x", "sleep 30")
        };
        let mut sup = Supervisor::new(dir.path().to_path_buf());
        sup.configure(vec![by_hand.clone(), prefix.clone()]);
        let launches = sup.tick(Instant::now(), &|_| false);
        let _g3 = Group(launches.first().map_or(0, |l| l.pid));
        assert_eq!(
            launches.len(),
            1,
            "only the shorter-named agent is launched"
        );
        assert_eq!(launches[0].name, prefix.name);
        assert_eq!(sup.pid(&by_hand.name), Some(pid));
        assert_eq!(sup.launches(&by_hand.name), 0);
        drop(_g2);
        let _ = child.wait();
    }

    #[test]
    fn relaunches_with_backoff_and_reaps() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec("dies", "exit 3");
        let mut sup = Supervisor::new(dir.path().to_path_buf());
        sup.configure(vec![s.clone()]);
        let t0 = Instant::now();
        let first = sup.tick(t0, &|_| false);
        assert_eq!(first.len(), 1);
        let pid = first[0].pid;
        wait_until("agent exit", || state(pid).is_none_or(|c| c == 'Z'));
        let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
        // Seen dead at 1 s: relaunch 1 s later.
        assert!(sup.tick(at(1.0), &|_| false).is_empty());
        assert!(state(pid).is_none(), "dead agent reaped");
        assert!(sup.tick(at(1.5), &|_| false).is_empty());
        let second = sup.tick(at(2.0), &|_| false);
        assert_eq!(second.len(), 1);
        wait_until("second exit", || {
            state(second[0].pid).is_none_or(|c| c == 'Z')
        });
        // Dead again at 3 s: next delay is 2 s.
        assert!(sup.tick(at(3.0), &|_| false).is_empty());
        assert!(sup.tick(at(4.5), &|_| false).is_empty());
        assert_eq!(sup.tick(at(5.0), &|_| false).len(), 1);
        assert_eq!(sup.launches(&s.name), 3);
    }

    #[test]
    fn launch_failure_is_retried_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "file").unwrap();
        let s = spec("nolog", "sleep 30");
        let mut sup = Supervisor::new(blocker.join("logs"));
        sup.configure(vec![s.clone()]);
        let t0 = Instant::now();
        assert!(sup.tick(t0, &|_| false).is_empty());
        assert!(sup
            .tick(t0 + Duration::from_millis(500), &|_| false)
            .is_empty());
        assert_eq!(sup.launches(&s.name), 0);
    }

    #[test]
    fn restart_on_expire_kills_the_group_and_relaunches() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(
            "expire",
            "trap '' TERM; echo ready; sleep 30 & wait; sleep 30",
        );
        s.restart_on_expire = true;
        s.watch_timeout = Duration::from_secs(10);
        let mut sup = Supervisor::new(dir.path().to_path_buf());
        sup.configure(vec![s.clone()]);
        let t0 = Instant::now();
        let pid = sup.tick(t0, &|_| false)[0].pid;
        let _g = Group(pid);
        let log = dir.path().join(format!("{}.log", s.name));
        wait_until("TERM trapped", || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("ready"))
        });
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert!(sup.tick(at(1), &|_| true).is_empty(), "SIGTERM first");
        assert!(
            state(pid).is_some_and(|c| c != 'Z'),
            "bash ignores TERM here"
        );
        assert!(sup.tick(at(3), &|_| true).is_empty());
        assert!(sup.tick(at(6), &|_| true).is_empty(), "SIGKILL after 5 s");
        wait_until("group killed", || state(pid).is_none_or(|c| c == 'Z'));
        let relaunched = sup.tick(at(7), &|_| true);
        assert_eq!(relaunched.len(), 1);
        let _g2 = Group(relaunched[0].pid);
        // Still expired, but the new process has a watch period of grace.
        assert!(sup.tick(at(8), &|_| true).is_empty());
        assert!(state(relaunched[0].pid).is_some_and(|c| c != 'Z'));
    }

    #[test]
    fn scan_cost_with_many_processes() {
        let mut children: Vec<std::process::Child> = (0..500)
            .map(|_| Command::new("sleep").arg("30").spawn().unwrap())
            .collect();
        let t = Instant::now();
        let rounds = 20;
        for _ in 0..rounds {
            procfs::scan_tags();
        }
        eprintln!(
            "/proc scan with {} processes: {:?} per scan",
            std::fs::read_dir("/proc").unwrap().count(),
            t.elapsed() / rounds
        );
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
