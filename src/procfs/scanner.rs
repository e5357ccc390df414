//! The scan on a thread of its own: reading a process's command line can
//! block (its memory map is locked while it sits in uninterruptible sleep),
//! and the main loop must keep ticking, alerting and feeding the systemd
//! watchdog whatever /proc does.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::{scan, ScanError, Tags};

/// One scan's outcome, posted on [`Scanner::results`].
#[derive(Debug)]
pub struct ScanResult {
    /// The agents running, or why that is unknown.
    pub result: Result<Tags, ScanError>,
    /// How long the scan took.
    pub took: Duration,
}

/// What the scanning thread is doing, for telling where it is stuck.
#[derive(Default)]
struct Progress {
    /// When the scan under way started.
    since: Mutex<Option<Instant>>,
    /// The pid whose command line it is reading (0: listing the root).
    reading: AtomicI32,
}

impl Progress {
    fn set_since(&self, since: Option<Instant>) {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) = since;
    }
}

/// Scans a /proc tree on request, on its own thread. A request made while
/// a scan runs is queued, and further ones are merged into it: a slow scan
/// is followed by one fresh scan, not by a backlog. The thread ends with
/// the `Scanner` (or, if stuck in a read then, as soon as the read returns).
pub struct Scanner {
    root: PathBuf,
    requests: Sender<()>,
    results: Receiver<ScanResult>,
    progress: Arc<Progress>,
}

impl Scanner {
    /// A scanner of `root`: [`PROC`](super::PROC) in production, a
    /// /proc-like tree in tests.
    pub fn new(root: PathBuf) -> std::io::Result<Scanner> {
        let (requests, queued) = crossbeam_channel::bounded::<()>(1);
        let (post, results) = crossbeam_channel::unbounded();
        let progress = Arc::new(Progress::default());
        let (dir, shared) = (root.clone(), Arc::clone(&progress));
        std::thread::Builder::new()
            .name("procfs-scan".into())
            .spawn(move || {
                for () in queued {
                    let start = Instant::now();
                    shared.set_since(Some(start));
                    let result = scan(&dir, &shared.reading);
                    shared.set_since(None);
                    let took = start.elapsed();
                    if post.send(ScanResult { result, took }).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Scanner {
            root,
            requests,
            results,
            progress,
        })
    }

    /// Asks for a scan, merged with one already waiting to start.
    pub fn request(&self) {
        // Full: merged with the waiting request. Disconnected: only if the
        // thread panicked, and its scan then looks stuck.
        let _ = self.requests.try_send(());
    }

    /// Where the scans' outcomes arrive, one per scan, for the main loop's
    /// `select!`.
    pub fn results(&self) -> Receiver<ScanResult> {
        self.results.clone()
    }

    /// The scan under way, if any: how long it has been running at `now`
    /// and the path it is reading (the root itself while listing it).
    pub fn running(&self, now: Instant) -> Option<(Duration, PathBuf)> {
        let since = (*self
            .progress
            .since
            .lock()
            .unwrap_or_else(PoisonError::into_inner))?;
        let path = match self.progress.reading.load(Ordering::Relaxed) {
            0 => self.root.clone(),
            pid => self.root.join(pid.to_string()).join("cmdline"),
        };
        Some((now.saturating_duration_since(since), path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::stuck::StuckCmdline;

    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn scans_on_request_off_the_calling_thread() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("7")).unwrap();
        std::fs::write(root.path().join("7/cmdline"), b"IOTMONITORMAGIC_a;\0").unwrap();
        let scanner = Scanner::new(root.path().to_path_buf()).unwrap();
        assert!(scanner.running(Instant::now()).is_none());
        scanner.request();
        let r = scanner.results().recv_timeout(LONG).unwrap();
        assert_eq!(r.result.unwrap().get("a"), Some(&vec![7]));
        assert!(r.took < LONG);

        std::fs::remove_dir_all(root.path()).unwrap();
        scanner.request();
        let e = scanner
            .results()
            .recv_timeout(LONG)
            .unwrap()
            .result
            .unwrap_err();
        assert_eq!(e.path, root.path());
    }

    #[test]
    fn a_stuck_scan_says_where_and_merges_requests() {
        let root = tempfile::tempdir().unwrap();
        let mut stuck = StuckCmdline::new(root.path(), 100);
        let scanner = Scanner::new(root.path().to_path_buf()).unwrap();
        scanner.request();
        let deadline = Instant::now() + LONG;
        while !matches!(scanner.running(Instant::now()), Some((_, path)) if path == stuck.path()) {
            assert!(Instant::now() < deadline, "scan not stuck on the FIFO");
            std::thread::sleep(Duration::from_millis(5));
        }
        let (running, _) = scanner
            .running(Instant::now() + Duration::from_secs(6))
            .unwrap();
        assert!(running >= Duration::from_secs(6), "{running:?}");
        for _ in 0..5 {
            scanner.request();
        }
        assert!(scanner.results().is_empty());
        // The stuck scan completes, then one more runs for all the requests
        // made meanwhile.
        stuck.release(b"IOTMONITORMAGIC_stuck;\0");
        for _ in 0..2 {
            let r = scanner.results().recv_timeout(LONG).unwrap();
            assert_eq!(r.result.unwrap().get("stuck"), Some(&vec![100]));
        }
        assert!(scanner.requests.is_empty(), "no third scan queued");
        assert!(scanner.results().is_empty());
    }
}
