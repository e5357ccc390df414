//! Finding agents in /proc (SPEC §6): one pass over `/proc/*/cmdline` per
//! tick finds every process whose command line carries the tag
//! `IOTMONITORMAGIC_<name>;`, for all agents at once. The `;` ends the name,
//! so agent `led` never matches `ledbox`. Processes that vanish mid-scan,
//! unreadable entries, empty command lines (kernel threads, zombies) and
//! bytes that are not UTF-8 are skipped.

use std::collections::HashMap;
use std::path::Path;

const TAG: &[u8] = b"IOTMONITORMAGIC_";

/// Agent name → pids carrying its tag (ascending).
pub fn scan_tags() -> HashMap<String, Vec<i32>> {
    scan_tags_in(Path::new("/proc"))
}

pub fn scan_tags_in(root: &Path) -> HashMap<String, Vec<i32>> {
    let mut found: HashMap<String, Vec<i32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        for name in tags(&cmdline) {
            let pids = found.entry(name.to_string()).or_default();
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    for pids in found.values_mut() {
        pids.sort_unstable();
    }
    found
}

/// The agent names tagged in a command line.
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
    haystack.windows(needle.len()).position(|w| w == needle)
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
        assert_eq!(names(b"IOTMONITORMAGIC_;x"), Vec::<&str>::new());
        assert_eq!(names(b"IOTMONITORMAGIC_a;IOTMONITORMAGIC_b;"), ["a", "b"]);
        assert_eq!(
            names(b"IOTMONITORMAGIC_\xff\xfe;IOTMONITORMAGIC_ok;"),
            ["ok"]
        );
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
            b"bash\0-c\0echo IOTMONITORMAGIC_led;sleep 1;echo END\0",
        );
        write(
            "7",
            b"bash\0-c\0echo IOTMONITORMAGIC_led;sleep 1;echo END\0",
        );
        write("11", b"bash\0-c\0echo IOTMONITORMAGIC_ledbox;x;echo END\0");
        write("12", b"");
        write("self", b"IOTMONITORMAGIC_nope;");
        std::fs::create_dir(root.path().join("13")).unwrap(); // no cmdline
        let found = scan_tags_in(root.path());
        assert_eq!(found.get("led"), Some(&vec![7, 10]));
        assert_eq!(found.get("ledbox"), Some(&vec![11]));
        assert_eq!(found.len(), 2);
        assert!(scan_tags_in(&root.path().join("missing")).is_empty());
    }

    #[test]
    fn finds_a_real_process() {
        let name = format!("procfs_real_{}", std::process::id());
        let mut child = std::process::Command::new("/bin/bash")
            .arg("-c")
            .arg(format!("echo IOTMONITORMAGIC_{name};sleep 30;echo END"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Until bash has exec'd, the child still shows the test's cmdline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut found = scan_tags();
        while !found.contains_key(&name) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = scan_tags();
        }
        let _ = child.kill();
        let _ = child.wait(); // may already be reaped by a supervisor test
        assert_eq!(found.get(&name), Some(&vec![pid]));
    }
}
