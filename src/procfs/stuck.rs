//! For tests: a /proc-like entry whose command line blocks its reader, as
//! reading the command line of a process whose memory map is locked does.

use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

/// `<root>/<pid>/cmdline` as a FIFO without a writer: opening it for
/// reading blocks. Released (see [`release`](StuckCmdline::release)) on
/// drop at the latest, so that no scanning thread stays blocked.
pub(crate) struct StuckCmdline {
    path: PathBuf,
    released: bool,
}

impl StuckCmdline {
    pub(crate) fn new(root: &Path, pid: i32) -> StuckCmdline {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cmdline");
        rustix::fs::mkfifoat(rustix::fs::CWD, &path, Mode::RUSR | Mode::WUSR).unwrap();
        StuckCmdline {
            path,
            released: false,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Lets every reader go on with `cmdline` as the command line: a writer
    /// appears (which wakes the readers blocked in open), writes it and
    /// stays until an ordinary file with the same content has replaced the
    /// FIFO, so that later scans do not block either; then it closes (end
    /// of file for the readers).
    pub(crate) fn release(&mut self, cmdline: &[u8]) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        // Read-write: never blocks, and counts as the writer. Errors are
        // left to show as a scan that does not complete.
        let Ok(writer) = rustix::fs::open(
            &self.path,
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return;
        };
        let _ = rustix::io::write(&writer, cmdline);
        let file = self.path.with_extension("new");
        let _ = std::fs::write(&file, cmdline).and_then(|()| std::fs::rename(&file, &self.path));
        drop(writer);
    }
}

impl Drop for StuckCmdline {
    fn drop(&mut self) {
        self.release(b"");
    }
}
