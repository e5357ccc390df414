//! The supervisor with real processes, the real /proc and, for scans that
//! fail or hang, /proc-like trees. Every process a test starts is killed by
//! process group when the test ends, whatever its outcome ([`Cleanup`]).

use super::*;
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Mutex, Once};

use rustix::process::Pid;

use crate::procfs::stuck::StuckCmdline;
use crate::procfs::{self, PROC};

/// Deadline for anything the machine has to do (start or end a process,
/// scan): generous, the machine may be loaded.
const LONG: Duration = Duration::from_secs(30);

/// Whatever the test's outcome, SIGKILLs on drop the process group of
/// every process carrying one of `names`' tags and every group handed to
/// `track`/`group`.
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

    /// Notes the groups of the agents launched (they lead their session).
    fn track(&self, events: Vec<AgentEvent>) -> Vec<AgentEvent> {
        for e in events.iter().filter(|e| e.started_at().is_some()) {
            self.group(e.pid());
        }
        events
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &g in self.groups.borrow().iter() {
            if let Some(t) = Target::group_of(g) {
                t.send(Signal::KILL);
            }
        }
        let found = procfs::scan_tags().unwrap_or_default();
        for name in &self.names {
            for &pid in found.get(name).into_iter().flatten() {
                if let Some(t) = Target::of(&[pid]) {
                    t.send(Signal::KILL);
                }
                if let Some(pid) = Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, Signal::KILL);
                }
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

/// A supervisor of the real /proc.
fn supervisor(log_dir: &Path) -> Supervisor {
    Supervisor::new(
        log_dir.to_path_buf(),
        Scanner::new(PathBuf::from(PROC)).unwrap(),
    )
}

/// One round as the main loop runs it: the tick, then the scan's outcome.
fn step(sup: &mut Supervisor, now: Instant, expired: &dyn Fn(&str) -> bool) -> Vec<AgentEvent> {
    sup.tick(now);
    let scan = sup.scans().recv_timeout(LONG).expect("a scan result");
    sup.on_scan(scan, now, expired)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

fn alive(pid: i32) -> bool {
    state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

fn not_zombie(pid: i32) -> bool {
    // Gone, or the pid already reused by another process.
    state(pid) != Some('Z')
}

/// The agents running according to the real /proc.
fn tags() -> procfs::Tags {
    procfs::scan_tags().expect("scan of /proc")
}

/// Waits until the agent's bash (`pid`) has ended and no process shows
/// its tag any more: a child bash forked just before the signal carries
/// the tag until it dies too (bash blocks SIGTERM across fork).
fn wait_gone(name: &str, pid: i32) {
    wait_until("agent gone", || !alive(pid) && !tags().contains_key(name));
}

fn kill_group(name: &str, pid: i32) {
    Target::group_of(pid).unwrap().send(Signal::KILL);
    wait_gone(name, pid);
}

/// An agent started by hand the original's way, leading its own group.
fn start_by_hand(c: &Cleanup, s: &AgentSpec) -> i32 {
    let pid = Command::new("/bin/bash")
        .arg("-c")
        .arg(command_line(s))
        .env("IOTMONITORMAGIC", format!("IOTMONITORMAGIC_{}", s.name))
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
        .id() as i32;
    c.group(pid);
    wait_until("hand-started agent visible", || {
        tags().get(&s.name) == Some(&vec![pid])
    });
    pid
}

fn launched(name: &str, pid: i32, epoch_s: u64) -> AgentEvent {
    AgentEvent::Launched {
        name: name.into(),
        pid,
        epoch_s,
    }
}

fn adopted(name: &str, pid: i32) -> AgentEvent {
    AgentEvent::Adopted {
        name: name.into(),
        pid,
    }
}

/// The only event of `events`, a launch of `name`: its pid.
fn only_launch(events: &[AgentEvent], name: &str) -> i32 {
    match events {
        [e] if e.name() == name && e.started_at().is_some() => e.pid(),
        _ => panic!("expected one launch of {name}: {events:?}"),
    }
}

/// Log lines (level and text) of every test, for checking what is logged
/// once. Tests filter them by something unique to them.
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!("{} {}", record.level(), record.args());
        LOGGED.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// The captured lines containing every one of `parts`.
fn logged(parts: &[&str]) -> Vec<String> {
    LOGGED
        .lock()
        .unwrap()
        .iter()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .cloned()
        .collect()
}

const NONE: [AgentEvent; 0] = [];
const NEVER: &dyn Fn(&str) -> bool = &|_| false;
const ALWAYS: &dyn Fn(&str) -> bool = &|_| true;

#[test]
fn launches_detached_with_the_original_command_line_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&name("launch"), "echo hello; sleep 30");
    let c = Cleanup::new(&[&s.name]);
    let log = dir.path().join(format!("{}.log", s.name));
    std::fs::write(&log, "previous run\n").unwrap();
    // Stands for the database LOCK file, opened without O_CLOEXEC as a C
    // library may do: must not reach the agent.
    let lock = dir.path().join("LOCK");
    std::fs::write(&lock, "").unwrap();
    let leak =
        rustix::fs::open(&lock, rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
    assert_eq!(
        rustix::io::fcntl_getfd(&leak),
        Ok(rustix::io::FdFlags::empty())
    );
    let mut sup = supervisor(dir.path());
    sup.configure(vec![s.clone()]);
    let before = crate::clock::wall_ms() / 1000;
    let events = c.track(step(&mut sup, Instant::now(), NEVER));
    let pid = only_launch(&events, &s.name);
    let epoch_s = events[0].started_at().unwrap();
    assert!((before..=before + 2).contains(&epoch_s));
    assert_eq!(events, [launched(&s.name, pid, epoch_s)]);
    let p = Pid::from_raw(pid).unwrap();
    assert_eq!(rustix::process::getsid(Some(p)), Ok(p), "session leader");
    assert_eq!(rustix::process::getpgid(Some(p)), Ok(p), "group leader");
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
        leak.as_raw_fd()
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
        assert_eq!(step(&mut sup, Instant::now(), ALWAYS), NONE);
    }
    assert!(alive(pid));
    assert_eq!(sup.pid(&s.name), Some(pid));
    assert_eq!(sup.launches(&s.name), 1);
    assert_eq!(sup.relaunches(&s.name), 0);
    assert_eq!(sup.pid("unknown"), None);
    assert_eq!(sup.launches("unknown"), 0);
    assert_eq!(sup.relaunches("unknown"), 0);
}

#[test]
fn adopts_an_agent_started_by_hand_and_keeps_led_and_ledbox_apart() {
    let dir = tempfile::tempdir().unwrap();
    let led = spec(&name("led_adopt"), "sleep 30");
    let ledbox = spec(&format!("{}box", led.name), "sleep 30");
    let c = Cleanup::new(&[&led.name, &ledbox.name]);
    let hand_pid = start_by_hand(&c, &ledbox);

    let mut sup = supervisor(dir.path());
    sup.configure(vec![led.clone(), ledbox.clone()]);
    let events = c.track(step(&mut sup, Instant::now(), NEVER));
    let led_pid = events[0].pid();
    assert_eq!(
        events,
        [
            launched(&led.name, led_pid, events[0].started_at().unwrap()),
            adopted(&ledbox.name, hand_pid)
        ],
        "ledbox's process is not led"
    );
    assert_eq!(sup.pid(&ledbox.name), Some(hand_pid));
    assert_eq!(sup.launches(&ledbox.name), 0);
    assert_eq!(step(&mut sup, Instant::now(), NEVER), NONE);

    // A new daemon adopts both, led's process not counting as ledbox.
    let mut again = supervisor(dir.path());
    again.configure(vec![ledbox.clone(), led.clone()]);
    wait_until("led's tag visible", || tags().contains_key(&led.name));
    assert_eq!(
        c.track(step(&mut again, Instant::now(), NEVER)),
        [adopted(&ledbox.name, hand_pid), adopted(&led.name, led_pid)]
    );
    assert_eq!(again.pid(&led.name), Some(led_pid));
    assert_eq!(again.launches(&led.name), 0);
}

#[test]
fn a_dying_agent_is_relaunched_under_backoff_and_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&name("dies"), "exit 3");
    let c = Cleanup::new(&[&s.name]);
    let logs = dir.path().join("not/yet");
    let mut sup = supervisor(&logs);
    sup.configure(vec![s.clone()]);
    let t0 = Instant::now();
    let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
    // Seen dead at the next scan, then relaunched 1 s, 2 s, 4 s later.
    let mut events = c.track(step(&mut sup, at(0.0), NEVER));
    assert!(
        matches!(events[..], [AgentEvent::Launched { .. }]),
        "{events:?}"
    );
    let mut launched_at = 0.0;
    for delay in [1.0, 2.0, 4.0] {
        let pid = only_launch(&events, &s.name);
        wait_until("agent exit", || !alive(pid));
        let seen_dead = launched_at + 1.0;
        assert_eq!(
            step(&mut sup, at(seen_dead), NEVER),
            [AgentEvent::Died {
                name: s.name.clone(),
                pid,
                ran: Duration::from_secs(1)
            }]
        );
        assert!(not_zombie(pid), "dead agent reaped");
        assert_eq!(sup.pid(&s.name), None);
        assert_eq!(step(&mut sup, at(seen_dead + delay - 0.5), NEVER), NONE);
        launched_at = seen_dead + delay;
        events = c.track(step(&mut sup, at(launched_at), NEVER));
        assert!(
            matches!(events[..], [AgentEvent::Relaunched { .. }]),
            "{events:?}"
        );
    }
    assert_eq!(sup.launches(&s.name), 4);
    assert_eq!(sup.relaunches(&s.name), 3);
    let log = std::fs::read_to_string(logs.join(format!("{}.log", s.name))).unwrap();
    assert!(log.starts_with(&format!("IOTMONITORMAGIC_{}\n", s.name)));
}

#[test]
fn a_killed_agent_is_relaunched_and_the_backoff_resets_after_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&name("killed"), "sleep 30");
    let c = Cleanup::new(&[&s.name]);
    let mut sup = supervisor(dir.path());
    sup.configure(vec![s.clone()]);
    let t0 = Instant::now();
    let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
    let died = |pid: i32, secs: u64| AgentEvent::Died {
        name: s.name.clone(),
        pid,
        ran: Duration::from_secs(secs),
    };
    let pid1 = only_launch(&c.track(step(&mut sup, at(0.0), NEVER)), &s.name);
    kill_group(&s.name, pid1);
    assert_eq!(step(&mut sup, at(1.0), NEVER), [died(pid1, 1)]);
    assert!(not_zombie(pid1), "killed agent reaped");
    assert_eq!(step(&mut sup, at(1.5), NEVER), NONE);
    let pid2 = only_launch(&c.track(step(&mut sup, at(2.0), NEVER)), &s.name);
    assert_ne!(pid2, pid1);
    kill_group(&s.name, pid2);
    assert_eq!(step(&mut sup, at(3.0), NEVER), [died(pid2, 1)], "2 s now");
    assert_eq!(step(&mut sup, at(4.5), NEVER), NONE);
    let pid3 = only_launch(&c.track(step(&mut sup, at(5.0), NEVER)), &s.name);
    // Runs for a minute: the back-off starts again from 1 s (else 4 s).
    assert_eq!(step(&mut sup, at(66.0), NEVER), NONE);
    assert_eq!(sup.pid(&s.name), Some(pid3));
    kill_group(&s.name, pid3);
    assert_eq!(step(&mut sup, at(67.0), NEVER), [died(pid3, 62)]);
    let last = c.track(step(&mut sup, at(68.0), NEVER));
    assert!(
        matches!(last[..], [AgentEvent::Relaunched { .. }]),
        "{last:?}"
    );
    assert_eq!(sup.launches(&s.name), 4);
    assert_eq!(sup.relaunches(&s.name), 3);
}

#[test]
fn a_failed_launch_is_retried_under_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "file").unwrap();
    let s = spec(&name("nolog"), "sleep 30");
    let c = Cleanup::new(&[&s.name]);
    let mut sup = supervisor(&blocker.join("logs"));
    sup.configure(vec![s.clone()]);
    let t0 = Instant::now();
    let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
    assert_eq!(step(&mut sup, at(0.0), NEVER), NONE, "fails, retry in 1 s");
    assert_eq!(step(&mut sup, at(0.5), NEVER), NONE);
    assert_eq!(step(&mut sup, at(1.0), NEVER), NONE, "fails, retry in 2 s");
    assert_eq!(sup.launches(&s.name), 0);
    assert_eq!(sup.pid(&s.name), None);
    std::fs::remove_file(&blocker).unwrap();
    assert_eq!(step(&mut sup, at(2.0), NEVER), NONE);
    let l = c.track(step(&mut sup, at(3.0), NEVER));
    assert!(matches!(l[..], [AgentEvent::Launched { .. }]), "{l:?}");
    assert_eq!(sup.launches(&s.name), 1);
    assert_eq!(sup.relaunches(&s.name), 0);
}

/// A supervisor of one `restartOnExpire` agent (watchTimeOut 10 s),
/// with its log directory and clean-up guard.
fn restarting_agent(tag: &str, exec: &str) -> (tempfile::TempDir, AgentSpec, Cleanup, Supervisor) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(&name(tag), exec);
    s.restart_on_expire = true;
    s.watch_timeout = Duration::from_secs(10);
    let c = Cleanup::new(&[&s.name]);
    let mut sup = supervisor(dir.path());
    sup.configure(vec![s.clone()]);
    (dir, s, c, sup)
}

/// Waits for `ready` in the agent's log: its bash ignores SIGTERM from then.
fn wait_ready(dir: &Path, name: &str) {
    let log = dir.join(format!("{name}.log"));
    wait_until("TERM ignored", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("ready"))
    });
}

#[test]
fn restart_on_expire_escalates_to_sigkill_and_relaunches() {
    let (dir, s, c, mut sup) =
        restarting_agent("expire_kill", "trap '' TERM; echo ready; sleep 30");
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let pid = only_launch(&c.track(step(&mut sup, t0, NEVER)), &s.name);
    wait_ready(dir.path(), &s.name);
    assert_eq!(step(&mut sup, at(1), ALWAYS), NONE, "SIGTERM first");
    // Traffic arrives meanwhile: the restart goes on all the same.
    assert_eq!(step(&mut sup, at(3), NEVER), NONE);
    assert!(alive(pid), "bash ignores TERM here");
    assert_eq!(step(&mut sup, at(6), NEVER), NONE, "SIGKILL after 5 s");
    wait_gone(&s.name, pid);
    let relaunched = c.track(step(&mut sup, at(7), ALWAYS));
    let new = only_launch(&relaunched, &s.name);
    assert!(
        matches!(relaunched[..], [AgentEvent::Restarted { .. }]),
        "relaunched as soon as gone, no death reported: {relaunched:?}"
    );
    assert_eq!(sup.launches(&s.name), 2);
    assert_eq!(sup.relaunches(&s.name), 1);
    // Still expired, but the new process has a watch period of grace.
    assert_eq!(step(&mut sup, at(8), ALWAYS), NONE);
    assert!(alive(new));
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
    let restarted = |events: Vec<AgentEvent>| {
        assert!(
            matches!(events[..], [AgentEvent::Restarted { .. }]),
            "{events:?}"
        );
        events[0].pid()
    };
    let pid1 = only_launch(&c.track(step(&mut sup, t0, &expired(true))), &s.name);
    assert!(asked.borrow().is_empty(), "not asked before it runs");
    assert_eq!(step(&mut sup, at(1), &expired(true)), NONE, "SIGTERM");
    assert_eq!(*asked.borrow(), std::slice::from_ref(&s.name));
    wait_gone(&s.name, pid1);
    let pid2 = restarted(c.track(step(&mut sup, at(2), &expired(true))));
    // Same expiry (no traffic since): left alone for a watch period.
    for t in [3, 6, 11] {
        assert_eq!(step(&mut sup, at(t), &expired(true)), NONE);
        assert!(alive(pid2), "killed again at {t} s");
    }
    // Still silent a full watch period after its relaunch: restarted.
    assert_eq!(step(&mut sup, at(12), &expired(true)), NONE);
    wait_gone(&s.name, pid2);
    let pid3 = restarted(c.track(step(&mut sup, at(13), &expired(true))));
    // It talks (not expired), then goes silent again: a new expiry.
    assert_eq!(step(&mut sup, at(14), &expired(false)), NONE);
    assert_eq!(step(&mut sup, at(15), &expired(true)), NONE);
    wait_gone(&s.name, pid3);
    restarted(c.track(step(&mut sup, at(16), &expired(false))));
    assert_eq!(sup.launches(&s.name), 4);
    assert_eq!(sup.relaunches(&s.name), 3);
}

#[test]
fn configure_keeps_state_and_leaves_removed_agents_running() {
    let dir = tempfile::tempdir().unwrap();
    let a = spec(&name("conf_a"), "sleep 30");
    let b = spec(&name("conf_b"), "sleep 30");
    let n = spec(&name("conf_new"), "sleep 30");
    let c = Cleanup::new(&[&a.name, &b.name, &n.name]);
    let mut sup = supervisor(dir.path());
    sup.configure(vec![a.clone(), b.clone()]);
    let first = c.track(step(&mut sup, Instant::now(), NEVER));
    assert_eq!(first.len(), 2);
    let a_pid = sup.pid(&a.name).unwrap();
    let changed = AgentSpec {
        exec: "sleep 31".into(),
        ..a.clone()
    };
    sup.configure(vec![changed, n.clone()]);
    let second = c.track(step(&mut sup, Instant::now(), NEVER));
    only_launch(&second, &n.name);
    assert_eq!(sup.pid(&a.name), Some(a_pid), "running one left alone");
    assert_eq!(sup.launches(&a.name), 1);
    assert_eq!(sup.pid(&b.name), None);
    wait_until("removed agent still running", || {
        tags().contains_key(&b.name)
    });
}

/// Unknown is not dead: a scan that fails (here, a /proc-like root that
/// does not exist) launches, relaunches and declares dead nothing, and is
/// logged once when the failures start and once when they end.
#[test]
fn a_failed_scan_decides_nothing_and_is_logged_once_per_episode() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    let s = spec(&name("unknown"), "sleep 30");
    let c = Cleanup::new(&[&s.name]);
    let mut sup = Supervisor::new(dir.path().join("logs"), Scanner::new(root.clone()).unwrap());
    sup.configure(vec![s.clone()]);
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let root_s = root.display().to_string();
    let failed = || logged(&["agent scan failed", &root_s]);
    let recovered = || logged(&["agent scan works again"]);

    for t in 0..3 {
        assert_eq!(step(&mut sup, at(t), NEVER), NONE, "no launch at {t} s");
    }
    assert_eq!(sup.launches(&s.name), 0);
    assert!(!tags().contains_key(&s.name));
    assert_eq!(failed().len(), 1, "{:?}", failed());
    assert!(failed()[0].starts_with("ERROR "), "{:?}", failed());

    // The tree comes back with the agent in it (a pid of a process that
    // does not exist, never signalled): adopted.
    let before = recovered().len();
    std::fs::create_dir_all(root.join("4000000")).unwrap();
    std::fs::write(
        root.join("4000000/cmdline"),
        format!("/bin/bash\0-c\0{}\0", command_line(&s)),
    )
    .unwrap();
    assert_eq!(step(&mut sup, at(3), NEVER), [adopted(&s.name, 4000000)]);
    assert!(recovered().len() > before, "recovery logged");

    // Fails again, for a while: the agent is not declared dead.
    std::fs::rename(&root, dir.path().join("away")).unwrap();
    for t in 4..8 {
        assert_eq!(step(&mut sup, at(t), NEVER), NONE, "at {t} s");
    }
    assert_eq!(sup.pid(&s.name), Some(4000000));
    assert_eq!(failed().len(), 2, "one line per episode: {:?}", failed());

    // A complete scan without it: dead, relaunched after the back-off.
    std::fs::rename(dir.path().join("away"), &root).unwrap();
    std::fs::remove_dir_all(root.join("4000000")).unwrap();
    assert_eq!(
        step(&mut sup, at(8), NEVER),
        [AgentEvent::Died {
            name: s.name.clone(),
            pid: 4000000,
            ran: Duration::from_secs(5)
        }]
    );
    let relaunch = c.track(step(&mut sup, at(9), NEVER));
    assert!(
        matches!(relaunch[..], [AgentEvent::Relaunched { .. }]),
        "{relaunch:?}"
    );
    assert_eq!((sup.launches(&s.name), sup.relaunches(&s.name)), (1, 1));
}

/// A scan stuck reading a command line (a FIFO without writer, as a process
/// in uninterruptible sleep would block it) stops no tick: ticks return at
/// once, the stall is reported once, nothing is decided until the scan
/// completes, and then decisions resume.
#[test]
fn a_stuck_scan_blocks_decisions_not_ticks() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    let mut stuck = StuckCmdline::new(&root, 100);
    let s = spec(&name("stuck"), "sleep 30");
    let c = Cleanup::new(&[&s.name]);
    let mut sup = Supervisor::new(dir.path().join("logs"), Scanner::new(root.clone()).unwrap());
    sup.configure(vec![s.clone()]);
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let fifo = stuck.path().display().to_string();
    let reported = || logged(&["agent scan stuck", &fifo]);

    sup.tick(t0);
    wait_until(
        "the scan stuck on the FIFO",
        || matches!(sup.scanner.running(Instant::now()), Some((_, p)) if p == stuck.path()),
    );
    let mut stalled = false;
    for t in 1..=8 {
        let started = Instant::now();
        sup.tick(at(t));
        assert!(started.elapsed() < Duration::from_secs(5), "tick blocked");
        assert!(sup.scans().is_empty(), "no outcome while stuck");
        let (running, _) = sup.scanner.running(at(t)).unwrap();
        stalled |= running >= SCAN_STALL;
        let expected = usize::from(stalled);
        assert_eq!(reported().len(), expected, "at {t} s: {:?}", reported());
    }
    assert!(stalled);
    assert!(reported()[0].starts_with("WARN "));
    assert_eq!(sup.launches(&s.name), 0);
    assert!(!tags().contains_key(&s.name));

    // The command line becomes readable: the scan completes, the agent
    // (missing) is launched.
    stuck.release(b"");
    let scan = sup
        .scans()
        .recv_timeout(LONG)
        .expect("the stuck scan's outcome");
    let events = c.track(sup.on_scan(scan, at(9), NEVER));
    assert!(
        matches!(events[..], [AgentEvent::Launched { .. }]),
        "{events:?}"
    );
    assert!(!logged(&["agent scan completed after"]).is_empty());
    // The requests merged meanwhile make one more scan; it decides nothing
    // new (the launched child counts as running).
    let scan = sup.scans().recv_timeout(LONG).expect("the merged scan");
    assert_eq!(sup.on_scan(scan, at(9), NEVER), NONE);
    assert_eq!(reported().len(), 1);
}

/// Standby (failover): knows what runs but launches and restarts nothing;
/// on becoming active, adopts what runs and launches what is missing.
#[test]
fn a_standby_launches_nothing_and_adopts_on_takeover() {
    let dir = tempfile::tempdir().unwrap();
    let missing = spec(&name("standby_missing"), "sleep 30");
    let mut running = spec(&name("standby_running"), "sleep 30");
    running.restart_on_expire = true;
    let c = Cleanup::new(&[&missing.name, &running.name]);
    let hand_pid = start_by_hand(&c, &running);
    let mut sup = supervisor(dir.path());
    sup.set_active(false);
    sup.configure(vec![missing.clone(), running.clone()]);
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    for t in 0..3 {
        assert_eq!(step(&mut sup, at(t), ALWAYS), NONE, "at {t} s");
    }
    assert_eq!(sup.pid(&running.name), Some(hand_pid), "knows what runs");
    assert_eq!(sup.pid(&missing.name), None);
    assert_eq!(sup.launches(&missing.name), 0);
    assert!(!tags().contains_key(&missing.name));
    assert!(alive(hand_pid), "expired but not restarted");

    sup.set_active(true);
    let events = c.track(step(&mut sup, at(3), NEVER));
    let pid = events[0].pid();
    assert_eq!(
        events,
        [
            launched(&missing.name, pid, events[0].started_at().unwrap()),
            adopted(&running.name, hand_pid)
        ]
    );
}

/// Deposed (failover): SIGTERM to the groups of the agents this instance
/// launched, SIGKILL 5 s later to those still there, adopted agents left
/// alone, nothing relaunched; launched again if it becomes active again.
#[test]
fn stop_launched_stops_only_what_this_instance_launched() {
    let dir = tempfile::tempdir().unwrap();
    let stubborn = spec(
        &name("deposed_stubborn"),
        "trap '' TERM; echo ready; sleep 30",
    );
    let meek = spec(&name("deposed_meek"), "sleep 30");
    let other = spec(&name("deposed_other"), "sleep 30");
    let c = Cleanup::new(&[&stubborn.name, &meek.name, &other.name]);
    let other_pid = start_by_hand(&c, &other);
    let mut sup = supervisor(dir.path());
    sup.configure(vec![stubborn.clone(), meek.clone(), other.clone()]);
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let first = c.track(step(&mut sup, t0, NEVER));
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(first[2], adopted(&other.name, other_pid));
    let (stubborn_pid, meek_pid) = (first[0].pid(), first[1].pid());
    wait_ready(dir.path(), &stubborn.name);

    sup.stop_launched(at(1));
    wait_gone(&meek.name, meek_pid);
    assert_eq!(step(&mut sup, at(2), ALWAYS), NONE, "stopped, not dead");
    assert_eq!(sup.pid(&meek.name), None);
    assert_eq!(step(&mut sup, at(4), ALWAYS), NONE);
    assert!(alive(stubborn_pid), "TERM ignored, KILL not yet");
    assert_eq!(step(&mut sup, at(6), ALWAYS), NONE, "SIGKILL after 5 s");
    wait_gone(&stubborn.name, stubborn_pid);
    assert_eq!(step(&mut sup, at(7), ALWAYS), NONE, "nothing relaunched");
    assert_eq!(sup.pid(&stubborn.name), None);
    assert!(alive(other_pid), "adopted agent left alone");
    assert_eq!(sup.pid(&other.name), Some(other_pid));
    assert_eq!(sup.launches(&meek.name), 1);

    // Active again: launched anew (not relaunches: they did not die).
    sup.set_active(true);
    let again = c.track(step(&mut sup, at(8), NEVER));
    assert!(
        matches!(
            again[..],
            [
                AgentEvent::Launched { .. },
                AgentEvent::Launched { .. },
                AgentEvent::Adopted { .. }
            ]
        ),
        "{again:?}"
    );
    assert_eq!(sup.relaunches(&meek.name), 0);
    assert_eq!(sup.launches(&stubborn.name), 2);
}

/// Processes in one group, killed and reaped on drop.
struct Sleepers(Vec<std::process::Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        if let Some(first) = self.0.first() {
            if let Some(t) = Target::group_of(first.id() as i32) {
                t.send(Signal::KILL);
            }
        }
        for c in &mut self.0 {
            let _ = c.wait(); // may be reaped by a parallel test already
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
    tags(); // warm the dentry cache
    let rounds = 20;
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        tags();
        times.push(t.elapsed());
    }
    times.sort();
    eprintln!(
        "/proc scan with {} processes ({} extra sleeps): median {:?}, min {:?}, max {:?} ({} build)",
        std::fs::read_dir(PROC)
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
