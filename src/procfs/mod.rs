//! Finding agents in /proc (SPEC §6): one pass over `/proc/*/cmdline` per
//! tick finds every process whose command line carries the tag
//! `IOTMONITORMAGIC_<name>;`, for all agents at once — the cost does not
//! grow with the number of agents. The `;` ends the name, so agent `led`
//! never matches `ledbox`. Processes that vanish mid-scan (ENOENT, ESRCH),
//! unreadable ones (EACCES), empty command lines (kernel threads, zombies,
//! a process in the middle of its execve) and names that are not UTF-8 are
//! skipped.
//!
//! Unknown is not dead: any other failure (listing /proc, EMFILE, ENOMEM,
//! EIO, ...) makes the whole scan an error rather than a partial answer, so
//! that an agent is never taken for missing because it could not be seen.
//! Reading a command line can block (the process's memory map is locked,
//! e.g. in uninterruptible sleep): [`Scanner`] runs the scans on a thread
//! of their own.
//!
//! A tagged bash's forked children show its command line too until they
//! exec, so a name may briefly map to more than one pid.

mod scanner;
#[cfg(test)]
pub(crate) mod stuck;

pub use scanner::{ScanResult, Scanner};

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::io::Errno;

/// Where the system's processes are listed.
pub const PROC: &str = "/proc";

const TAG: &[u8] = b"IOTMONITORMAGIC_";

/// Agent name → pids carrying its tag (ascending, no duplicates).
pub type Tags = HashMap<String, Vec<i32>>;

/// Why a scan could not tell which agents run: the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ScanError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// The process group of `pid` (`"self"` for the daemon) as its
/// `/proc/PID/stat` tells it. None when the process is gone, or its group
/// leader lives outside this pid namespace (the kernel says 0, as
/// `getpgid` would: a process started into a container from outside; it
/// then leads no group the daemon could signal). Reading `stat`, unlike
/// `cmdline`, does not wait for the process's memory map.
pub fn process_group(pid: &str) -> Option<i32> {
    let stat = std::fs::read(Path::new(PROC).join(pid).join("stat")).ok()?;
    parse_group(&stat)
}

/// The fifth field of a `stat` line, after the command name in parentheses
/// (which may hold spaces and parentheses itself).
fn parse_group(stat: &[u8]) -> Option<i32> {
    let after = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(after + 2..)?).ok()?;
    // state, ppid, pgrp
    let group: i32 = rest.split(' ').nth(2)?.parse().ok()?;
    (group > 0).then_some(group)
}

/// The agents running now, from `/proc`.
pub fn scan_tags() -> Result<Tags, ScanError> {
    scan_tags_in(Path::new(PROC))
}

/// [`scan_tags`] over a /proc-like tree at `root` (`<root>/<pid>/cmdline`).
pub fn scan_tags_in(root: &Path) -> Result<Tags, ScanError> {
    scan(root, &AtomicI32::new(0))
}

/// The scan itself; `reading` holds the pid whose command line is being
/// read (0 between them), for telling where a stuck scan is stuck.
fn scan(root: &Path, reading: &AtomicI32) -> Result<Tags, ScanError> {
    let fail = |path: &Path, source| ScanError {
        path: path.to_path_buf(),
        source,
    };
    let entries = std::fs::read_dir(root).map_err(|e| fail(root, e))?;
    let mut found = Tags::new();
    let mut path = PathBuf::from(root);
    let mut cmdline = Vec::with_capacity(4096);
    for entry in entries {
        let entry = entry.map_err(|e| fail(root, e))?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        path.push(entry.file_name());
        path.push("cmdline");
        // File::open + read_to_end rather than fs::read: /proc files report
        // a size of 0, so fs::read's extra stat would be wasted.
        cmdline.clear();
        reading.store(pid, Ordering::Relaxed);
        let read = File::open(&path).and_then(|mut f| f.read_to_end(&mut cmdline));
        reading.store(0, Ordering::Relaxed);
        match read {
            Ok(_) => {}
            Err(e) if gone_or_hidden(&e) => cmdline.clear(),
            Err(e) => return Err(fail(&path, e)),
        }
        path.pop();
        path.pop();
        for name in tags(&cmdline) {
            let pids = found.entry(name.to_string()).or_default();
            if pids.last() != Some(&pid) {
                pids.push(pid);
            }
        }
    }
    for pids in found.values_mut() {
        pids.sort_unstable();
        pids.dedup();
    }
    Ok(found)
}

/// Errors that say nothing about the agents: the process ended since the
/// directory was listed, or its command line is not ours to read.
fn gone_or_hidden(e: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(e),
        Some(Errno::NOENT | Errno::SRCH | Errno::ACCESS)
    )
}

/// The agent names tagged in a command line: for each `IOTMONITORMAGIC_`,
/// the bytes up to the next `;` (within the same argument), when not empty
/// and valid UTF-8.
fn tags(cmdline: &[u8]) -> impl Iterator<Item = &str> {
    let mut rest = cmdline;
    std::iter::from_fn(move || loop {
        let at = find(rest, TAG)?;
        rest = &rest[at + TAG.len()..];
        let end = rest.iter().position(|&b| b == b';' || b == 0)?;
        let name = &rest[..end];
        if rest[end] == b';' && !name.is_empty() {
            if let Ok(name) = std::str::from_utf8(name) {
                return Some(name);
            }
        }
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cmdline: &[u8]) -> Vec<&str> {
        tags(cmdline).collect()
    }

    #[test]
    fn tag_needs_its_semicolon() {
        let cmd = b"/bin/bash\0-c\0echo IOTMONITORMAGIC_ledbox;python3 x.py;echo END\0";
        assert_eq!(names(cmd), ["ledbox"]);
        assert_eq!(names(b"echo IOTMONITORMAGIC_led\0"), Vec::<&str>::new());
        assert_eq!(names(b"IOTMONITORMAGIC_led\0;"), Vec::<&str>::new());
        assert_eq!(names(b"IOTMONITORMAGIC_;x"), Vec::<&str>::new());
        assert_eq!(names(b"IOTMONITORMAGIC_a;IOTMONITORMAGIC_b;"), ["a", "b"]);
        assert_eq!(
            names(b"IOTMONITORMAGIC_\xff\xfe;IOTMONITORMAGIC_ok;"),
            ["ok"]
        );
        assert_eq!(names(b"IOTMONITORMAGIC"), Vec::<&str>::new());
        assert_eq!(names(b"IIOTMONITORMAGIC_x;"), ["x"]);
        assert_eq!(names(b""), Vec::<&str>::new());
    }

    #[test]
    fn the_group_comes_after_the_command_name() {
        assert_eq!(parse_group(b"42 (bash) S 1 40 40 0 -1"), Some(40));
        assert_eq!(parse_group(b"42 (a b) (c)) S 1 41 41 0"), Some(41));
        // A group leader outside this pid namespace.
        assert_eq!(parse_group(b"7 (sh) S 0 0 0 0 -1"), None);
        assert_eq!(parse_group(b"7 (sh"), None);
        assert_eq!(parse_group(b""), None);
        use std::os::unix::process::CommandExt;
        let mut leader = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = leader.id() as i32;
        assert_eq!(process_group(&pid.to_string()), Some(pid));
        leader.kill().unwrap();
        leader.wait().unwrap();
        assert_eq!(process_group(&pid.to_string()), None, "gone");
    }

    /// A /proc-like tree; `write("10", cmdline)` adds `<root>/10/cmdline`.
    struct Tree(tempfile::TempDir);

    impl Tree {
        fn new() -> Tree {
            Tree(tempfile::tempdir().unwrap())
        }

        fn write(&self, pid: &str, cmd: &[u8]) {
            std::fs::create_dir(self.0.path().join(pid)).unwrap();
            std::fs::write(self.0.path().join(pid).join("cmdline"), cmd).unwrap();
        }

        fn scan(&self) -> Result<Tags, ScanError> {
            scan_tags_in(self.0.path())
        }
    }

    #[test]
    fn scans_a_fake_proc_tree() {
        let tree = Tree::new();
        tree.write(
            "10",
            b"/bin/bash\0-c\0echo IOTMONITORMAGIC_led;sleep 1;echo END\0",
        );
        tree.write(
            "7",
            b"/bin/bash\0-c\0echo IOTMONITORMAGIC_led;sleep 1;echo END\0",
        );
        tree.write("11", b"bash\0-c\0echo IOTMONITORMAGIC_ledbox;x;echo END\0");
        tree.write("12", b""); // kernel thread or zombie
        tree.write("14", b"IOTMONITORMAGIC_\xc3\x28;\0"); // not UTF-8
        tree.write("15", b"IOTMONITORMAGIC_led;IOTMONITORMAGIC_led;"); // twice
        tree.write("self", b"IOTMONITORMAGIC_nope;"); // not a pid
        std::fs::create_dir(tree.0.path().join("13")).unwrap(); // ended meanwhile
        std::fs::write(tree.0.path().join("uptime"), b"1.0 1.0").unwrap();
        let found = tree.scan().unwrap();
        assert_eq!(found.get("led"), Some(&vec![7, 10, 15]));
        assert_eq!(found.get("ledbox"), Some(&vec![11]));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(Tree::new().scan().unwrap().is_empty());
    }

    #[test]
    fn a_scan_that_cannot_see_everything_is_an_error() {
        let missing = Tree::new().0.path().join("missing");
        let e = scan_tags_in(&missing).unwrap_err();
        assert_eq!(e.path, missing);
        assert_eq!(Errno::from_io_error(&e.source), Some(Errno::NOENT));
        assert!(e
            .to_string()
            .starts_with(&format!("{}: ", missing.display())));

        // A command line that cannot be read for another reason than the
        // process being gone: the tagged agent it may be is unknown.
        let tree = Tree::new();
        tree.write("7", b"IOTMONITORMAGIC_a;");
        std::fs::create_dir_all(tree.0.path().join("8/cmdline")).unwrap();
        let e = tree.scan().unwrap_err();
        assert_eq!(e.path, tree.0.path().join("8/cmdline"));
        assert_eq!(Errno::from_io_error(&e.source), Some(Errno::ISDIR));

        let tree = Tree::new();
        std::fs::write(tree.0.path().join("9"), b"not a directory").unwrap();
        let e = tree.scan().unwrap_err();
        assert_eq!(Errno::from_io_error(&e.source), Some(Errno::NOTDIR));
    }

    #[test]
    fn gone_and_forbidden_are_skipped_other_errors_are_not() {
        let skipped = |e: Errno| gone_or_hidden(&io::Error::from(e));
        assert!(skipped(Errno::NOENT));
        assert!(skipped(Errno::SRCH));
        assert!(skipped(Errno::ACCESS));
        for e in [
            Errno::MFILE,
            Errno::NFILE,
            Errno::NOMEM,
            Errno::IO,
            Errno::PERM,
        ] {
            assert!(!skipped(e), "{e}");
        }
        assert!(!gone_or_hidden(&io::Error::other("not an OS error")));
    }

    /// Kills a process group and reaps its leader when dropped.
    struct Group(std::process::Child);

    impl Drop for Group {
        fn drop(&mut self) {
            let pgid = rustix::process::Pid::from_child(&self.0);
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            let _ = self.0.wait(); // may already be reaped by a supervisor test
        }
    }

    #[test]
    fn finds_a_real_process() {
        use std::os::unix::process::CommandExt;
        use std::time::{Duration, Instant};
        let name = format!("procfs_real_{}", std::process::id());
        let child = std::process::Command::new("/bin/bash")
            .arg("-c")
            .arg(format!("echo IOTMONITORMAGIC_{name};sleep 30;echo END"))
            .stdout(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let _group = Group(child);
        // Right after spawn the new command line may not be readable yet
        // (execve still setting it up), and bash's child shows it until it
        // has exec'd sleep: wait for the steady state.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut found = scan_tags().unwrap();
        while found.get(&name) != Some(&vec![pid]) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            found = scan_tags().unwrap();
        }
        assert_eq!(found.get(&name), Some(&vec![pid]));
        assert!(!found.contains_key(&name[..name.len() - 1]));
    }
}
