//! The database files, as rusty-leveldb sees them through an [`Env`] of our
//! own, which adds what the library leaves out:
//!
//! - **Durability.** The library never calls `fsync`: its `write(batch,
//!   true)` only hands the log record to the kernel. Here, every file other
//!   than the write-ahead log (tables, manifests, the `CURRENT` temp file) is
//!   synced, with the directory, before a rename or a delete (a *barrier*:
//!   the data of a deleted log is on disk in a table first), and the current
//!   log is synced by the [`Syncer`] thread, at most once a second while
//!   writes are pending.
//! - **Failed writes.** After a failed write the library's state is
//!   unusable: the batch is already in its memory table, its sequence
//!   number is not advanced (the retry would insert the same internal keys,
//!   which panics), and its buffered log writer keeps the tail of a torn
//!   record, which a later flush would append. A *generation* is one opened
//!   database instance: once retired, every write to any of its files fails,
//!   so the instance can still serve reads while a fresh one is opened on
//!   the same directory (the lock is shared by the instances of a store).
//! - **Short writes.** The library adds up the counts of plain `write`
//!   calls: a short write on a full disk would tear a record silently. Every
//!   write here is all or nothing (an error).
//! - **Lock.** A POSIX record lock on `LOCK` (see [`HeldLock`]) instead of
//!   the library's `flock`, which children forked by the daemon (agents)
//!   would hold until they exec.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rusty_leveldb::env::{Env, FileLock, Logger, RandomAccess};
use rusty_leveldb::{PosixDiskEnv, Status, StatusCode};

/// The log is synced at most this often.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// What the instances of one store share.
#[derive(Default)]
struct Shared {
    /// The write-ahead log being appended to (the newest `NNNNNN.log`).
    log: Option<Arc<File>>,
    /// Files other than logs written since the last barrier.
    unsynced: Vec<Arc<Tracked>>,
    /// The locked `LOCK` files and how many instances hold each.
    locks: HashMap<String, (HeldLock, usize)>,
}

/// The files of one store, across the database instances it opens.
#[derive(Clone, Default)]
pub struct Disk {
    shared: Arc<Mutex<Shared>>,
}

/// Retires the files of one database instance (see the module doc).
pub struct Generation {
    retired: Arc<AtomicBool>,
}

impl Generation {
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }
}

impl Disk {
    /// A fresh `Env` for a new database instance, and the switch that
    /// retires it.
    pub fn env(&self) -> (Rc<Box<dyn Env>>, Generation) {
        let retired = Arc::new(AtomicBool::new(false));
        let env = DiskEnv {
            inner: PosixDiskEnv::new(),
            shared: self.shared.clone(),
            retired: retired.clone(),
        };
        (Rc::new(Box::new(env)), Generation { retired })
    }

    /// The log file being written, if any.
    pub fn log(&self) -> Option<Arc<File>> {
        lock(&self.shared).log.clone()
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Nothing can leave the state half-updated: a poisoned lock is fine.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

struct DiskEnv {
    inner: PosixDiskEnv,
    shared: Arc<Mutex<Shared>>,
    retired: Arc<AtomicBool>,
}

fn status(what: &str, p: &Path, e: io::Error) -> Status {
    let mut s = Status::from(e);
    s.err = format!("{what} {}: {}", p.display(), s.err);
    s
}

impl DiskEnv {
    fn open_for_writing(&self, p: &Path, append: bool) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.check()?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(p)
            .map_err(|e| status("cannot open", p, e))?;
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let mut tracked = None;
        // "LOG" is the library's text log of what it does: not data.
        if name != "LOG" {
            let handle = file.try_clone().map_err(|e| status("cannot open", p, e))?;
            if name.ends_with(".log") {
                lock(&self.shared).log = Some(Arc::new(handle));
            } else {
                tracked = Some(Arc::new(Tracked {
                    file: handle,
                    dirty: AtomicBool::new(false),
                }));
            }
        }
        Ok(Box::new(DataFile {
            file,
            retired: self.retired.clone(),
            tracked,
            shared: self.shared.clone(),
        }))
    }

    /// Syncs every file written since the last barrier.
    fn sync_files(&self, p: &Path) -> rusty_leveldb::Result<()> {
        let files = std::mem::take(&mut lock(&self.shared).unsynced);
        for f in files {
            // Writes after this point make it dirty again.
            f.dirty.store(false, Ordering::SeqCst);
            f.file
                .sync_data()
                .map_err(|e| status("cannot sync a file of", p, e))?;
        }
        Ok(())
    }

    /// Syncs the directory holding `p` (its entries: created, renamed).
    fn sync_dir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        let dir = p.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| status("cannot sync", dir, e))
    }

    fn check(&self) -> rusty_leveldb::Result<()> {
        if self.retired.load(Ordering::SeqCst) {
            Err(Status::new(StatusCode::IOError, RETIRED))
        } else {
            Ok(())
        }
    }
}

impl Env for DiskEnv {
    fn open_sequential_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Read>> {
        self.inner.open_sequential_file(p)
    }
    fn open_random_access_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn RandomAccess>> {
        self.inner.open_random_access_file(p)
    }
    fn open_writable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.open_for_writing(p, false)
    }
    fn open_appendable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.open_for_writing(p, true)
    }
    fn exists(&self, p: &Path) -> rusty_leveldb::Result<bool> {
        self.inner.exists(p)
    }
    fn children(&self, p: &Path) -> rusty_leveldb::Result<Vec<PathBuf>> {
        self.inner.children(p)
    }
    fn size_of(&self, p: &Path) -> rusty_leveldb::Result<usize> {
        self.inner.size_of(p)
    }
    fn delete(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.check()?;
        if !lock(&self.shared).unsynced.is_empty() {
            self.sync_files(p)?;
            self.sync_dir(p)?;
        }
        self.inner.delete(p)
    }
    fn mkdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.inner.mkdir(p)
    }
    fn rmdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.inner.rmdir(p)
    }
    fn rename(&self, old: &Path, new: &Path) -> rusty_leveldb::Result<()> {
        self.check()?;
        self.sync_files(old)?;
        std::fs::rename(old, new).map_err(|e| status("cannot rename", old, e))?;
        self.sync_dir(new)
    }

    fn lock(&self, p: &Path) -> rusty_leveldb::Result<FileLock> {
        let id = p.to_string_lossy().into_owned();
        let mut s = lock(&self.shared);
        if let Some((_, holders)) = s.locks.get_mut(&id) {
            *holders += 1;
            return Ok(FileLock { id });
        }
        let held = HeldLock::take(p)?;
        s.locks.insert(id.clone(), (held, 1));
        Ok(FileLock { id })
    }
    fn unlock(&self, l: FileLock) -> rusty_leveldb::Result<()> {
        let mut s = lock(&self.shared);
        match s.locks.get_mut(&l.id) {
            Some((_, holders)) if *holders > 1 => *holders -= 1,
            Some(_) => {
                s.locks.remove(&l.id);
            }
            None => return Err(Status::new(StatusCode::LockError, "not locked")),
        }
        Ok(())
    }

    fn new_logger(&self, p: &Path) -> rusty_leveldb::Result<Logger> {
        self.inner.new_logger(p)
    }
    fn micros(&self) -> u64 {
        self.inner.micros()
    }
    fn sleep_for(&self, micros: u32) {
        self.inner.sleep_for(micros)
    }
}

const RETIRED: &str = "database instance retired after a failed write";

/// `LOCK` files held by this process, by (device, inode).
static HELD: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// The lock of a database directory, as LevelDB's C++ library takes it
/// (and so the original iotmonitor): a POSIX record lock on `LOCK`, which
/// child processes do not inherit (a `flock` would be held by every child
/// forked meanwhile until it execs, and a restart could find the database
/// locked), with a table of the locks held by this process, since POSIX
/// locks do not exclude their own process. Released when dropped (closing
/// the file releases the POSIX lock; nothing else in this process opens
/// `LOCK`).
struct HeldLock {
    file: Option<File>,
    id: (u64, u64),
}

impl HeldLock {
    fn take(p: &Path) -> rusty_leveldb::Result<HeldLock> {
        use std::os::unix::fs::MetadataExt;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(p)
            .map_err(|e| status("cannot open", p, e))?;
        let meta = file.metadata().map_err(|e| status("cannot open", p, e))?;
        let id = (meta.dev(), meta.ino());
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if held.contains(&id) {
            return Err(Status::new(StatusCode::LockError, "held by this process"));
        }
        // SAFETY: a zeroed flock struct is valid; fcntl on a descriptor
        // owned by `file`.
        let rc = unsafe {
            let mut fl: libc::flock = std::mem::zeroed();
            fl.l_type = libc::F_WRLCK as libc::c_short;
            fl.l_whence = libc::SEEK_SET as libc::c_short;
            libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl)
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EACCES | libc::EAGAIN) => {
                    Status::new(StatusCode::LockError, "held by another process")
                }
                _ => status("cannot lock", p, e),
            });
        }
        held.push(id);
        Ok(HeldLock {
            file: Some(file),
            id,
        })
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        // Released before another store of this process may take it.
        drop(self.file.take());
        HELD.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id| *id != self.id);
    }
}

/// A file other than a log (a table, a manifest, the `CURRENT` temp file),
/// to sync at the next barrier when written.
struct Tracked {
    file: File,
    dirty: AtomicBool,
}

/// A file written by the library: all-or-nothing writes, none at all once
/// its database instance is retired.
struct DataFile {
    file: File,
    retired: Arc<AtomicBool>,
    tracked: Option<Arc<Tracked>>,
    shared: Arc<Mutex<Shared>>,
}

impl DataFile {
    fn check(&self) -> io::Result<()> {
        if self.retired.load(Ordering::SeqCst) {
            Err(io::Error::other(RETIRED))
        } else {
            Ok(())
        }
    }
}

impl Write for DataFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        if let Some(t) = &self.tracked {
            if !t.dirty.swap(true, Ordering::SeqCst) {
                lock(&self.shared).unsynced.push(t.clone());
            }
        }
        self.file.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.check()
    }
}

/// What the sync thread reports.
#[derive(Default)]
struct SyncState {
    /// Writes happened since the sync thread last started a sync.
    dirty: AtomicBool,
    syncs: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// When the sync in progress started.
    busy_since: Mutex<Option<Instant>>,
}

/// Syncs the log on a thread of its own, so that a slow or stuck disk never
/// holds up the main loop: after a write, within `SYNC_INTERVAL`, and never
/// more often; never when nothing was written.
pub struct Syncer {
    wake: Sender<()>,
    state: Arc<SyncState>,
}

impl Syncer {
    pub fn spawn(disk: &Disk) -> io::Result<Syncer> {
        let (wake, rx) = crossbeam_channel::unbounded();
        let state = Arc::new(SyncState::default());
        let thread_state = state.clone();
        let shared = disk.shared.clone();
        std::thread::Builder::new()
            .name("store-sync".into())
            .spawn(move || sync_loop(&rx, &thread_state, &shared))?;
        Ok(Syncer { wake, state })
    }

    /// Something was written to the log: sync it soon.
    pub fn written(&self) {
        if !self.state.dirty.swap(true, Ordering::SeqCst) {
            let _ = self.wake.send(());
        }
    }

    pub fn syncs(&self) -> u64 {
        self.state.syncs.load(Ordering::SeqCst)
    }

    pub fn failures(&self) -> u64 {
        self.state.failures.load(Ordering::SeqCst)
    }

    pub fn last_error(&self) -> Option<String> {
        self.state
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How long the sync in progress has been running.
    pub fn busy_for(&self, now: Instant) -> Option<Duration> {
        self.state
            .busy_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| now.saturating_duration_since(t))
    }
}

fn sync_loop(rx: &Receiver<()>, state: &SyncState, shared: &Mutex<Shared>) {
    let mut last: Option<Instant> = None;
    while rx.recv().is_ok() {
        if let Some(last) = last {
            // Wake-ups meanwhile are folded into this sync.
            loop {
                match rx.recv_deadline(last + SYNC_INTERVAL) {
                    Ok(()) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        }
        while rx.try_recv().is_ok() {}
        // Writes from here on ask for the next sync.
        state.dirty.store(false, Ordering::SeqCst);
        let Some(log) = lock(shared).log.clone() else {
            continue;
        };
        let start = Instant::now();
        *state.busy_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(start);
        let result = log.sync_data();
        *state.busy_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        last = Some(start);
        match result {
            Ok(()) => {
                state.syncs.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                *state.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                state.failures.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}
