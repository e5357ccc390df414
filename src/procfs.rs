//! Finding agents in /proc (SPEC §6): one pass over `/proc/*/cmdline` per
//! tick finds every process whose command line carries the tag
//! `IOTMONITORMAGIC_<name>;`, for all agents at once — the cost does not
//! grow with the number of agents. The `;` ends the name, so agent `led`
//! never matches `ledbox`. Processes that vanish mid-scan, unreadable
//! entries, empty command lines (kernel threads, zombies, a process in the
//! middle of its execve) and names that are not UTF-8 are skipped.
//!
//! A tagged bash's forked children show its command line too until they
//! exec, so a name may briefly map to more than one pid.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

const TAG: &[u8] = b"IOTMONITORMAGIC_";

/// Agent name → pids carrying its tag (ascending, no duplicates).
pub fn scan_tags() -> HashMap<String, Vec<i32>> {
    scan_tags_in(Path::new("/proc"))
}

/// [`scan_tags`] over a /proc-like tree at `root` (`<root>/<pid>/cmdline`).
pub fn scan_tags_in(root: &Path) -> HashMap<String, Vec<i32>> {
    let mut found: HashMap<String, Vec<i32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return found;
    };
    let mut path = PathBuf::from(root);
    let mut cmdline = Vec::with_capacity(4096);
    for entry in entries.flatten() {
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
        let read = File::open(&path).and_then(|mut f| f.read_to_end(&mut cmdline));
        path.pop();
        path.pop();
        if read.is_err() {
            continue; // gone since read_dir, or not readable
        }
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
    found
}

/// Whether `pid` exists and is not a zombie. (A pid says nothing about
/// *which* process it is: use it only for a process known otherwise, such
/// as an unreaped child.)
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "<pid> (<comm>) <state> ...": comm may hold anything, even ") ".
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return false;
    };
    !matches!(stat.get(close + 2), Some(b'Z' | b'X') | None)
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
    fn scans_a_fake_proc_tree() {
        let root = tempfile::tempdir().unwrap();
        let write = |pid: &str, cmd: &[u8]| {
            std::fs::create_dir(root.path().join(pid)).unwrap();
            std::fs::write(root.path().join(pid).join("cmdline"), cmd).unwrap();
        };
        write(
            "10",
            b"/bin/bash\0-c\0echo IOTMONITORMAGIC_led;sleep 1;echo END\0",
        );
        write(
            "7",
            b"/bin/bash\0-c\0echo IOTMONITORMAGIC_led;sleep 1;echo END\0",
        );
        write("11", b"bash\0-c\0echo IOTMONITORMAGIC_ledbox;x;echo END\0");
        write("12", b""); // kernel thread or zombie
        write("14", b"IOTMONITORMAGIC_\xc3\x28;\0"); // not UTF-8
        write("15", b"IOTMONITORMAGIC_led;IOTMONITORMAGIC_led;"); // twice
        write("self", b"IOTMONITORMAGIC_nope;"); // not a pid
        std::fs::create_dir(root.path().join("13")).unwrap(); // vanished
        std::fs::create_dir_all(root.path().join("16/cmdline")).unwrap(); // unreadable
        std::fs::write(root.path().join("17"), b"not a directory").unwrap();
        let found = scan_tags_in(root.path());
        assert_eq!(found.get("led"), Some(&vec![7, 10, 15]));
        assert_eq!(found.get("ledbox"), Some(&vec![11]));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(scan_tags_in(&root.path().join("missing")).is_empty());
    }

    /// Kills a process group and reaps its leader when dropped.
    struct Group(std::process::Child);

    impl Drop for Group {
        fn drop(&mut self) {
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
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
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut found = scan_tags();
        while found.get(&name) != Some(&vec![pid]) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            found = scan_tags();
        }
        assert_eq!(found.get(&name), Some(&vec![pid]));
        assert!(!found.contains_key(&name[..name.len() - 1]));
        assert!(is_alive(pid));
        assert!(is_alive(std::process::id() as i32));
        assert!(!is_alive(0));
        assert!(!is_alive(-1));
    }
}
