//! Signalling agents' processes and reaping the daemon's children.

use std::fmt;

use log::warn;
use rustix::io::Errno;
use rustix::process::{self, Pid, Signal, WaitOptions};

use crate::procfs;

/// Where a signal meant for an agent goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// A process group, named by its leader.
    Group(Pid),
    /// One process.
    Process(Pid),
}

impl Target {
    /// The target for the agent whose tag is on `pids` (ascending): the
    /// process group of the first of them leading a group of its own —
    /// agents launched here or by the original lead their session —
    /// otherwise the lowest pid alone, never a group it merely belongs to (a
    /// user's shell job, the daemon's). Other pids with the tag are usually
    /// bash's children between fork and exec, members of its group. None
    /// when the tag is only on init or on the daemon itself.
    pub(super) fn of(pids: &[i32]) -> Option<Target> {
        let own_pid = process::getpid();
        let own_group = procfs::process_group("self");
        let mut others = pids
            .iter()
            .filter(|&&raw| raw > 1)
            .filter_map(|&raw| Pid::from_raw(raw))
            .filter(|&pid| pid != own_pid);
        let first = others.clone().next()?;
        Some(
            others
                .find(|&pid| {
                    let raw = pid.as_raw_pid();
                    Some(raw) != own_group && procfs::process_group(&raw.to_string()) == Some(raw)
                })
                .map_or(Target::Process(first), Target::Group),
        )
    }

    /// The group led by `leader`, a process this supervisor launched.
    pub(super) fn group_of(leader: i32) -> Option<Target> {
        Pid::from_raw(leader)
            .filter(|_| leader > 1 && Some(leader) != procfs::process_group("self"))
            .map(Target::Group)
    }

    /// Sends `sig`; a target already gone is not an error.
    pub(super) fn send(self, sig: Signal) {
        let sent = match self {
            Target::Group(pid) => process::kill_process_group(pid, sig),
            Target::Process(pid) => process::kill_process(pid, sig),
        };
        match sent {
            Ok(()) | Err(Errno::SRCH) => {}
            Err(e) => warn!("cannot send {sig:?} to {self}: {e}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Group(pid) => write!(f, "process group {pid}"),
            Target::Process(pid) => write!(f, "pid {pid}"),
        }
    }
}

/// Collects the exit status of every ended child, so none stays a zombie
/// (the daemon has no children besides the agents it launched). Never
/// blocks.
pub(super) fn reap_children() {
    // `wait`, not `waitpid(None, ..)`: the latter only waits for children
    // in the daemon's own process group, and agents have sessions of their
    // own.
    while let Ok(Some(_)) = process::wait(WaitOptions::NOHANG) {}
}

/// Whether `pid`, a child of this process, is still running: false once it
/// has ended (it is reaped here if it was not yet) or was reaped elsewhere.
/// Never blocks, and reads nothing from /proc.
pub(super) fn child_running(pid: i32) -> bool {
    pid > 0
        && Pid::from_raw(pid)
            .is_some_and(|pid| matches!(process::waitpid(Some(pid), WaitOptions::NOHANG), Ok(None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A sleeping process, leading its own group or not; killed and reaped
    /// on drop.
    struct Sleeper(Child);

    impl Sleeper {
        fn start(own_group: bool) -> Sleeper {
            let mut cmd = Command::new("sleep");
            cmd.arg("30").stdin(Stdio::null());
            if own_group {
                cmd.process_group(0);
            }
            Sleeper(cmd.spawn().unwrap())
        }

        fn pid(&self) -> i32 {
            self.0.id() as i32
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait(); // may be reaped by a parallel test already
        }
    }

    fn pid(raw: i32) -> Pid {
        Pid::from_raw(raw).unwrap()
    }

    #[test]
    fn targets_a_group_only_when_its_leader_carries_the_tag() {
        let leader = Sleeper::start(true);
        let member = Sleeper::start(false); // in the test's own group
        assert_eq!(
            Target::of(&[member.pid(), leader.pid()]),
            Some(Target::Group(pid(leader.pid())))
        );
        assert_eq!(
            Target::of(&[member.pid()]),
            Some(Target::Process(pid(member.pid())))
        );
        let own = std::process::id() as i32;
        assert_eq!(Target::of(&[1, own]), None, "never init or the daemon");
        assert_eq!(
            Target::of(&[own, member.pid()]),
            Some(Target::Process(pid(member.pid())))
        );
        assert_eq!(
            Target::group_of(leader.pid()),
            Some(Target::Group(pid(leader.pid())))
        );
        assert_eq!(Target::group_of(1), None);
        if let Some(own_group) = procfs::process_group("self") {
            assert_eq!(Target::group_of(own_group), None);
        }
    }

    #[test]
    fn signals_a_whole_group_and_tells_when_a_child_ended() {
        let leader = Sleeper::start(true);
        let pgid = leader.pid();
        let member = Sleeper(
            Command::new("sleep")
                .arg("30")
                .process_group(pgid)
                .spawn()
                .unwrap(),
        );
        assert!(child_running(pgid) && child_running(member.pid()));
        Target::Group(pid(pgid)).send(Signal::KILL);
        // Reaped by `child_running` or by another test's reap when tests run
        // in parallel: either way no longer running.
        let deadline = Instant::now() + Duration::from_secs(30);
        while child_running(pgid) || child_running(member.pid()) {
            assert!(Instant::now() < deadline, "group not killed");
            std::thread::sleep(Duration::from_millis(10));
        }
        for p in [pgid, member.pid()] {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            assert!(!stat.contains(") Z "), "zombie {p}: {stat}");
        }
        Target::Group(pid(pgid)).send(Signal::TERM); // gone: no error
        assert!(!child_running(1), "not a child");
        assert!(!child_running(0));
    }

    #[test]
    fn reaps_every_ended_child() {
        // Its exit status is for `reap_children` to collect.
        let pid = Command::new("true").spawn().unwrap().id() as i32;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            reap_children();
            // Gone from /proc once reaped (here or by a parallel test).
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            assert!(Instant::now() < deadline, "child {pid} not reaped");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
