//! The state store (SPEC §5): device states in an embedded LevelDB
//! (rusty-leveldb), key = topic bytes, value = payload bytes, latest wins,
//! an empty payload deletes. The daemon's own records live in the same
//! database under keys starting with the byte 0xFF, which no topic holds
//! (topics are UTF-8): the event history (`history.rs`) and each device's
//! last announced availability (verdicts). Every read of states stops
//! before them.
//!
//! Writes wait in memory (latest per key) and are committed as one batch,
//! at most [`COMMIT_WINDOW`] after the first one; the log is synced by a
//! thread of its own at most once a second while writes come, never when
//! idle (see `store/disk.rs`). So a state survives a crash at once and a
//! power cut after a second.
//!
//! A failed write is never fatal: the writes stay in memory, reads (replays)
//! see them, the store reports itself unhealthy and retries with back-off
//! (1 s doubling to 30 s), on a freshly opened database instance: the failed
//! one keeps serving reads meanwhile (see `store/disk.rs` for why it cannot
//! be written again).
//!
//! The owner (the main loop) calls [`Store::poll`] when [`Store::due`] is
//! reached and at least once a second.

mod disk;
mod pending;
mod scan;

use std::collections::{BTreeMap, HashMap};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{error, info, warn};
use rusty_leveldb::{FilterPolicy, LdbIterator, Options, StatusCode, WriteBatch, DB};

use crate::backoff::Backoff;
use crate::clock::wall_ms;
use crate::event::{Event, EventKind};
use crate::filter::Filter;
use crate::history::{self, History};
use crate::record::Record;

use disk::{Disk, Generation, Syncer};
use pending::Pending;
use scan::LevelIndex;

/// First byte of the daemon's own keys (never in a topic).
const META: u8 = 0xFF;
/// Key prefix of verdicts: `0xFF 'v' <device name>`, value `1` (online)
/// or `0` (offline).
const VERDICT_PREFIX: [u8; 2] = [META, b'v'];

/// Pending writes are committed this long after the first one ...
pub const COMMIT_WINDOW: Duration = Duration::from_millis(20);
/// ... or as soon as this many are pending. 4,096 since the twelfth round
/// of the flood benchmark (8,192 before): 0.3 to 0.6 MB less peak RSS in a
/// backlog drain at 10,000 devices; at 1,000 devices a flood's batches
/// coalesce fewer rewrites of the same topics (about 0.3 CPU-µs/msg more).
pub const MAX_BATCH: usize = 4096;
/// They go to LevelDB in writes of at most this many: each write is copied
/// twice (its batch, its log record) and may take the memory table past
/// its size, which LevelDB only checks before a write. A burst can leave
/// more than `MAX_BATCH` pending (12,288 seen in a backlog drain at 10,000
/// devices when it was 8,192): as one write, 1.5 MB of copies and a memory
/// table 0.7 MB over its size at the drain's peak. A failed write leaves
/// everything pending, and its retry writes the chunks already written
/// again (the same values).
const WRITE_CHUNK: usize = 1024;
/// Retries of a failed write: the first after 1 s, doubling up to 30 s.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// A log sync running this long makes the store unhealthy.
const SYNC_STUCK: Duration = Duration::from_secs(10);
/// Housekeeping (sync health, history pruning) runs this often ...
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// ... deleting at most this many old history keys.
const PRUNE_PER_PASS: usize = 64;
/// LevelDB's memory table is written to a table file when it or its log
/// reaches this size (the library's 4 MiB default costs up to ~8 MB of
/// memory). The memory table holds one entry per state topic, the newest
/// (vendored patch 0005: while no iterator is open, a rewrite overwrites),
/// so at a few thousand state topics it is the log that fills. Each table
/// written makes LevelDB merge its first level with the next one (every
/// stored state) once four are there, synchronously: during a flood of
/// state updates that merge is much of the main loop's work, so the table
/// is not made too small (512 KiB cost 20 % more CPU per message than
/// 2 MiB). 1 MiB, since the eleventh round of the flood benchmark
/// (README): no measurable CPU cost at 1,000 or 10,000 devices in
/// alternating runs against 2 MiB, 0.8 to 1.1 MB less peak RSS at 10,000 ...
const WRITE_BUFFER: usize = 1 << 20;
/// ... and is written out after a while when it holds more than this, so
/// that a flood's states do not stay in memory (and in the log, replayed at
/// each start) for ever.
const MEMTABLE_KEPT: usize = 256 << 10;
const MEMTABLE_FLUSH_AFTER: Duration = Duration::from_secs(30);
/// Cache of uncompressed table blocks (library default 4 MiB).
const BLOCK_CACHE: usize = 256 << 10;

/// Tables without Bloom filters: they only speed up reads of single keys,
/// and the store reads by scanning (replays), never by key. Building them
/// took about a tenth of the CPU of every table written by a compaction
/// during a flood of state updates. Tables written with a filter still
/// read (their filter block is simply not used); the original's C++
/// LevelDB writes none either.
struct NoFilter;

impl FilterPolicy for NoFilter {
    fn name(&self) -> &'static str {
        "none"
    }

    fn create_filter(&self, _keys: &[u8], _offsets: &[usize]) -> Vec<u8> {
        // One byte: the library's reader wants no filter empty.
        vec![0]
    }

    fn key_may_match(&self, _key: &[u8], _filter: &[u8]) -> bool {
        true
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path} is locked by another process (is another iotmonitor running on it?)")]
    Locked { path: PathBuf },
    #[error("database {path} is corrupt ({detail}); move it aside (mv {path} {path}.broken) to start with an empty one, the states it held are then lost")]
    Corrupt { path: PathBuf, detail: String },
    #[error("database {path}: {detail}")]
    Io { path: PathBuf, detail: String },
}

/// The store's health, for `/healthz` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    /// What is wrong now; None when healthy.
    pub problem: Option<String>,
    /// The last error seen, even if the store recovered since.
    pub last_error: Option<String>,
    /// Failed writes, retries and log syncs since start.
    pub failures: u64,
    /// Log syncs (fdatasync) since start.
    pub syncs: u64,
    /// Writes waiting in memory.
    pub pending: usize,
}

pub struct Store {
    db: DB,
    path: PathBuf,
    disk: Disk,
    /// Retires the files of `db`.
    generation: Generation,
    /// `db` failed a write: it serves reads, a new instance is opened
    /// before the next write.
    retired: bool,
    /// Writes not committed yet, latest per key (empty = delete): a topic
    /// updated many times between two commits is written once.
    pending: Pending,
    /// When the first pending write came.
    pending_since: Option<Instant>,
    backoff: Backoff,
    /// When the failed write is retried.
    retry_at: Option<Instant>,
    /// The error of the failing writes (None when writes work).
    fault: Option<String>,
    last_error: Option<String>,
    failures: u64,
    syncer: Option<Syncer>,
    sync_failures_seen: u64,
    /// How long the log sync in progress has been stuck.
    stuck: Option<Duration>,
    housekept: Option<Instant>,
    /// When LevelDB's memory table was last written out by housekeeping.
    memtable_since: Option<Instant>,
    history: History,
    /// The verdicts loaded at open, until `take_verdicts`.
    verdicts: HashMap<String, bool>,
    /// The first levels of the stored topics (`store/scan.rs`), kept up to
    /// date by commits once built: by a pass of `scan_after` over every
    /// state (the start-up replay), or else at the first scan for a filter
    /// starting with `+`.
    index: Option<LevelIndex>,
    /// The index being built by a `scan_after` pass, and the key the next
    /// page of the pass starts after.
    building: Option<(LevelIndex, Option<Vec<u8>>)>,
}

/// Compacts every key down to LevelDB's deepest level holding any, and
/// the first sorted level (L1) into the next one. While the database is
/// small (under L1's 10 MB), every state stays in L1, and each merge of
/// four fresh tables into L1 — every 8 MB of writes with a 2 MiB memory
/// table — rewrites all of it: with 100,000 stored states, most of the
/// CPU of a flood of updates. With the stored states one level down, such
/// a merge rewrites only what was written since (the states that change),
/// until L1 outgrows 10 MB and LevelDB moves a part of it down itself.
/// Done at each clean shutdown: a second or so for millions of states.
fn compact_all(db: &mut DB) -> rusty_leveldb::Result<()> {
    // From the least key (topics are not empty) to past the daemon's own
    // records (0xFF 'h'/'v' …).
    db.compact_range(&[0], &[META; 4])
}

fn open_db(path: &Path, disk: &Disk) -> Result<(DB, Generation), StoreError> {
    let (env, generation) = disk.env();
    // With log reuse, a torn record left by a crash can make recovery
    // silently drop every later write: always start a fresh log.
    let opts = Options {
        create_if_missing: true,
        reuse_logs: false,
        write_buffer_size: WRITE_BUFFER,
        block_cache_capacity_bytes: BLOCK_CACHE,
        filter_policy: std::rc::Rc::new(Box::new(NoFilter)),
        env,
        ..Default::default()
    };
    match quietly(|| DB::open(path, opts)) {
        Ok(Ok(db)) => Ok((db, generation)),
        Ok(Err(status)) => Err(classify(path, status.code, status.err)),
        Err(detail) => Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        }),
    }
}

impl Store {
    /// Opens (creating if needed) the database directory at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let disk = Disk::default();
        let (db, generation) = open_db(path, &disk)?;
        let mut store = Store {
            db,
            path: path.to_path_buf(),
            disk,
            generation,
            retired: false,
            pending: Pending::default(),
            pending_since: None,
            backoff: Backoff::new(RETRY_FIRST, RETRY_MAX),
            retry_at: None,
            fault: None,
            last_error: None,
            failures: 0,
            syncer: None,
            sync_failures_seen: 0,
            stuck: None,
            housekept: None,
            memtable_since: None,
            history: History::load([], 0),
            verdicts: HashMap::new(),
            index: None,
            building: None,
        };
        store.load_records()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the history and the verdicts.
    fn load_records(&mut self) -> Result<(), StoreError> {
        let mut events = Vec::new();
        let mut it = self
            .db
            .new_iter()
            .map_err(|s| classify(&self.path, s.code, s.err))?;
        it.seek(&[META]);
        while it.valid() {
            let Some((k, v)) = it.current() else { break };
            if k.starts_with(&history::KEY_PREFIX[..]) {
                events.push((k.to_vec(), v.to_vec()));
            } else if let Some(name) = k.strip_prefix(&VERDICT_PREFIX) {
                if let Ok(name) = std::str::from_utf8(name) {
                    self.verdicts.insert(name.to_string(), &v[..] == b"1");
                }
            }
            it.advance();
        }
        self.history = History::load(events, wall_ms());
        Ok(())
    }

    fn write(&mut self, key: &[u8], value: &[u8]) {
        self.pending_since.get_or_insert_with(Instant::now);
        self.pending.insert(Record::new(key, value));
    }

    /// Records a state (key = topic, value = payload); an empty payload
    /// deletes it. Readers see it at once, the disk at the next commit.
    pub fn record(&mut self, state: Record) {
        if state.key().first() == Some(&META) {
            return; // not a topic: UTF-8 never holds 0xFF
        }
        self.pending_since.get_or_insert_with(Instant::now);
        // The message's own allocation, moved: no copy.
        self.pending.insert(state);
    }

    /// Number of writes waiting for a commit.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Records an event in the history (committed with the states).
    pub fn push_event(&mut self, event: Event) {
        let (history, pending) = (&mut self.history, &mut self.pending);
        history.push(event, &mut |k, v| {
            pending.insert(Record::new(&k, &v));
        });
        self.pending_since.get_or_insert_with(Instant::now);
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Saves a device's last announced availability.
    pub fn put_verdict(&mut self, name: &str, online: bool) {
        let value = if online { b"1" } else { b"0" };
        self.write(&verdict_key(name), value);
    }

    /// Forgets the verdict of a device (removed from the configuration).
    pub fn forget_verdict(&mut self, name: &str) {
        self.write(&verdict_key(name), b"");
    }

    /// The verdicts saved by the last run (device name → online), handed
    /// over once: the monitor core keeps them from then on, and asks for a
    /// verdict to be written only when it changes (no copy here: 10,000
    /// devices heard at a restart made it 0.8 MB).
    pub fn take_verdicts(&mut self) -> HashMap<String, bool> {
        std::mem::take(&mut self.verdicts)
    }

    /// When `poll` has a commit or a retry to do.
    pub fn due(&self) -> Option<Instant> {
        if self.retry_at.is_some() {
            return self.retry_at;
        }
        let since = self.pending_since?;
        Some(if self.pending.len() >= MAX_BATCH {
            since
        } else {
            since + COMMIT_WINDOW
        })
    }

    /// Commits or retries when due; once a second, checks the log sync and
    /// prunes the history.
    pub fn poll(&mut self, now: Instant) {
        if self.due().is_some_and(|due| now >= due) {
            self.commit(now);
        }
        if self.housekept.is_none_or(|t| now >= t + HOUSEKEEPING) {
            self.housekept = Some(now);
            self.flush_memtable(now);
            self.check_sync(now);
            let (history, pending) = (&mut self.history, &mut self.pending);
            let before = pending.len();
            history.prune(wall_ms(), PRUNE_PER_PASS, &mut |k, v| {
                pending.insert(Record::new(&k, &v));
            });
            if self.pending.len() > before {
                self.pending_since.get_or_insert(now);
            }
        }
    }

    /// Writes what is pending as one batch (now, unless a failed write
    /// waits for its retry time). Never fails: on error the writes stay
    /// pending, the store turns unhealthy and retries later.
    pub fn commit(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|at| now < at) || (self.pending.is_empty() && !self.retired) {
            return;
        }
        match self.write_pending() {
            Ok(()) => self.succeeded(),
            Err(e) => self.failed(now, e),
        }
    }

    fn write_pending(&mut self) -> Result<(), StoreError> {
        if self.retired {
            let (db, generation) = open_db(&self.path, &self.disk)?;
            // The retired instance writes nothing more, not even on drop.
            drop(std::mem::replace(&mut self.db, db));
            self.generation = generation;
            self.retired = false;
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        // In key order: LevelDB's memory table (patch 0004) then searches
        // each key from the one before rather than from its start.
        let mut sorted: Vec<(&[u8], &[u8])> = self.pending.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let db = &mut self.db;
        let result = sorted.chunks(WRITE_CHUNK).try_for_each(|chunk| {
            let mut batch = WriteBatch::default();
            for &(key, value) in chunk {
                if value.is_empty() {
                    batch.delete(key);
                } else {
                    batch.put(key, value);
                }
            }
            match quietly(|| db.write(batch, true)) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(status)) => Err(classify(&self.path, status.code, status.err)),
                Err(detail) => Err(StoreError::Io {
                    path: self.path.clone(),
                    detail,
                }),
            }
        });
        if result.is_err() {
            self.generation.retire();
            self.retired = true;
            return result;
        }
        let building = self.building.as_mut().map(|(index, _)| index);
        for index in self.index.iter_mut().chain(building) {
            for (key, value) in self.pending.iter() {
                if !value.is_empty() && key.first() != Some(&META) {
                    index.add(key);
                }
            }
        }
        // After an outage or a flood, give the memory back.
        self.pending.clear(MAX_BATCH);
        self.pending_since = None;
        if self.syncer.is_none() {
            match Syncer::spawn(&self.disk) {
                Ok(s) => self.syncer = Some(s),
                Err(e) => warn!("cannot start the thread syncing the database log: {e}"),
            }
        }
        if let Some(s) = &self.syncer {
            s.written();
        }
        Ok(())
    }

    fn succeeded(&mut self) {
        self.retry_at = None;
        if let Some(fault) = self.fault.take() {
            self.backoff.reset();
            info!(
                "database {} writable again: everything pending is written",
                self.path.display()
            );
            self.push_event(Event {
                at_ms: wall_ms(),
                kind: EventKind::StoreRecovered,
                subject: String::new(),
                detail: format!("after: {fault}"),
            });
        }
    }

    fn failed(&mut self, now: Instant, e: StoreError) {
        self.failures += 1;
        let detail = e.to_string();
        let delay = self.backoff.next_delay();
        self.retry_at = Some(now + delay);
        if self.fault.is_none() {
            error!(
                "{detail}: {} writes kept in memory, alerting goes on; retrying in {} s",
                self.pending.len(),
                delay.as_secs()
            );
            self.push_event(Event {
                at_ms: wall_ms(),
                kind: EventKind::StoreError,
                subject: String::new(),
                detail: detail.clone(),
            });
        } else {
            warn!(
                "database still failing ({detail}): {} writes kept in memory, next retry in {} s",
                self.pending.len(),
                delay.as_secs()
            );
        }
        self.fault = Some(detail.clone());
        self.last_error = Some(detail);
    }

    /// Writes LevelDB's memory table out to a table file when it has held
    /// more than `MEMTABLE_KEPT` for `MEMTABLE_FLUSH_AFTER` (a failure is
    /// left to the next write to find).
    fn flush_memtable(&mut self, now: Instant) {
        let since = *self.memtable_since.get_or_insert(now);
        if self.retired
            || self.db.memtable_size() < MEMTABLE_KEPT
            || now < since + MEMTABLE_FLUSH_AFTER
        {
            return;
        }
        self.memtable_since = Some(now);
        let db = &mut self.db;
        // An empty key range: only the memory table is written.
        if let Ok(Err(e)) = quietly(|| db.compact_range(&[META; 4], &[])) {
            warn!(
                "database {}: cannot write the memory table out: {}",
                self.path.display(),
                e.err
            );
        }
    }

    /// A failed log sync is a failed write (the instance is replaced: a
    /// new one writes what the log held to a synced table); a sync that
    /// does not return makes the store unhealthy until it does.
    fn check_sync(&mut self, now: Instant) {
        let Some(s) = &self.syncer else { return };
        let failures = s.failures();
        let stuck = s.busy_for(now).filter(|d| *d >= SYNC_STUCK);
        let sync_error = s.last_error().unwrap_or_default();
        if failures > self.sync_failures_seen {
            self.sync_failures_seen = failures;
            self.generation.retire();
            self.retired = true;
            let e = StoreError::Io {
                path: self.path.clone(),
                detail: format!("cannot sync the log to disk: {sync_error}"),
            };
            self.failed(now, e);
        }
        match (stuck, self.stuck) {
            (Some(d), None) => warn!(
                "database {}: syncing the log has not returned for {} s",
                self.path.display(),
                d.as_secs()
            ),
            (None, Some(_)) => info!("database {}: the log sync returned", self.path.display()),
            _ => {}
        }
        self.stuck = stuck;
    }

    pub fn is_healthy(&self) -> bool {
        self.fault.is_none() && self.stuck.is_none()
    }

    pub fn health(&self) -> Health {
        let problem = self.fault.clone().or_else(|| {
            self.stuck
                .map(|d| format!("syncing the log has not returned for {} s", d.as_secs()))
        });
        Health {
            healthy: problem.is_none(),
            problem,
            last_error: self.last_error.clone(),
            failures: self.failures,
            syncs: self.syncer.as_ref().map_or(0, Syncer::syncs),
            pending: self.pending.len(),
        }
    }

    #[cfg(test)]
    pub fn get(&mut self, topic: &[u8]) -> Option<Vec<u8>> {
        match self.pending.get(topic) {
            Some([]) => None,
            Some(v) => Some(v.to_vec()),
            None => self.db.get(topic).map(|v| v.to_vec()),
        }
    }

    /// Calls `f(topic, payload)` once for every stored state (pending
    /// writes included) matching one of `filters`, in topic order. Seeks
    /// rather than reads when a filter has wildcards (see `store/scan.rs`).
    /// Without the index of first levels (see `scan_after`) and no pass
    /// building it, the first filter starting with `+` builds it (one read
    /// of every state). Returns the number of database iterator moves.
    pub fn for_each_state(
        &mut self,
        filters: &[Filter],
        mut f: impl FnMut(&str, &[u8]),
    ) -> Result<usize, StoreError> {
        if self.index.is_none()
            && self.building.is_none()
            && filters.iter().any(|f| f.as_str().starts_with('+'))
        {
            let start = Instant::now();
            let mut index = LevelIndex::default();
            let mut states = 0;
            self.scan(None, b"", usize::MAX, &mut |k, _| {
                index.add(k);
                states += 1;
            })?;
            info!(
                "indexed the first levels of {states} stored states for replays by wildcard filters ({} first levels, {} ms)",
                index.first_levels(),
                start.elapsed().as_millis()
            );
            self.index = Some(index);
        }
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut it = self
            .db
            .new_iter()
            .map_err(|s| classify(&self.path, s.code, s.err))?;
        let mut moves = 0;
        for filter in filters {
            moves += scan::matching(&mut it, filter, self.index.as_ref(), &mut |k, v| {
                found.insert(k.to_vec(), v.to_vec());
            });
        }
        for (k, v) in self.pending.iter() {
            let Ok(topic) = std::str::from_utf8(k) else {
                continue;
            };
            if filters.iter().any(|f| f.matches(topic)) {
                if v.is_empty() {
                    found.remove(k);
                } else {
                    found.insert(k.to_vec(), v.to_vec());
                }
            }
        }
        for (k, v) in &found {
            if let Ok(topic) = std::str::from_utf8(k) {
                f(topic, v);
            }
        }
        Ok(moves)
    }

    /// Calls `f(key, value)` for every stored state whose key starts with
    /// `prefix` (pending writes included), in key order.
    pub fn for_each_with_prefix(
        &mut self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), StoreError> {
        self.scan(None, prefix, usize::MAX, &mut f).map(|_| ())
    }

    /// Calls `f(key, value)` for at most `limit` states following `after`
    /// (from the first key when None), in key order, pending writes
    /// included. Returns the last key visited when more keys follow, None
    /// at the end of the states. A pass over every state, page after page
    /// (the start-up replay), builds the index of first levels on the way.
    pub fn scan_after(
        &mut self,
        after: Option<&[u8]>,
        limit: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut building = match self.building.take() {
            _ if self.index.is_some() => None,
            None if after.is_none() => Some(LevelIndex::default()),
            Some((index, next)) if next.as_deref() == after => Some(index),
            _ => None, // not a pass from the start: no index from it
        };
        let result = self.scan(after, b"", limit, &mut |k, v| {
            if let Some(index) = &mut building {
                index.add(k);
            }
            f(k, v);
        });
        match (&result, building) {
            (Ok(None), Some(index)) => self.index = Some(index),
            (Ok(Some(last)), Some(index)) => self.building = Some((index, Some(last.clone()))),
            _ => {}
        }
        result
    }

    /// The states after `after` (exclusive) with `prefix`: the database
    /// merged with the pending writes, which win.
    fn scan(
        &mut self,
        after: Option<&[u8]>,
        prefix: &[u8],
        limit: usize,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let wanted = |k: &[u8]| {
            k.first() != Some(&META) && k.starts_with(prefix) && after.is_none_or(|a| k > a)
        };
        let mut pending: Vec<(&[u8], &[u8])> =
            self.pending.iter().filter(|(k, _)| wanted(k)).collect();
        pending.sort_unstable();
        let mut pending = pending.into_iter().peekable();
        let mut it = self
            .db
            .new_iter()
            .map_err(|s| classify(&self.path, s.code, s.err))?;
        match after.unwrap_or(prefix) {
            [] => it.seek_to_first(),
            start => it.seek(start),
        }
        let mut seen = 0;
        let mut last: Option<Vec<u8>> = None;
        loop {
            let stored = if it.valid() { it.current() } else { None };
            if stored.as_ref().is_some_and(|(k, _)| after == Some(&k[..])) {
                it.advance();
                continue;
            }
            let stored = stored.filter(|(k, _)| wanted(k));
            if stored.is_none() && pending.peek().is_none() {
                return Ok(None);
            }
            if seen == limit {
                return Ok(last);
            }
            let (key, value): (Vec<u8>, Vec<u8>) = match (stored, pending.peek()) {
                (Some((k, _)), Some(&(pk, pv))) if pk <= &k[..] => {
                    if pk == &k[..] {
                        it.advance();
                    }
                    pending.next();
                    (pk.to_vec(), pv.to_vec())
                }
                (Some((k, v)), _) => {
                    it.advance();
                    (k.to_vec(), v.to_vec())
                }
                (None, Some(&(pk, pv))) => {
                    pending.next();
                    (pk.to_vec(), pv.to_vec())
                }
                (None, None) => return Ok(None),
            };
            if value.is_empty() {
                continue; // deleted, not committed yet
            }
            f(&key, &value);
            seen += 1;
            last = Some(key);
        }
    }

    /// Commits what is pending, compacts the whole database (so the next
    /// start has no log to replay, and the stored states leave LevelDB's
    /// first sorted level: see `compact_all`), syncs and closes the
    /// database (releases the lock).
    pub fn close(mut self) -> Result<(), StoreError> {
        let pending = self.pending.len();
        self.write_pending().map_err(|e| StoreError::Io {
            path: self.path.clone(),
            detail: format!("{pending} writes could not be saved: {e}"),
        })?;
        let db = &mut self.db;
        match quietly(|| compact_all(db)) {
            Ok(Ok(())) => {}
            Ok(Err(status)) => return Err(classify(&self.path, status.code, status.err)),
            Err(detail) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    detail,
                })
            }
        }
        if let Some(log) = self.disk.log() {
            log.sync_data().map_err(|e| StoreError::Io {
                path: self.path.clone(),
                detail: format!("cannot sync the log: {e}"),
            })?;
        }
        self.db
            .close()
            .map_err(|s| classify(&self.path, s.code, s.err))
    }
}

fn verdict_key(name: &str) -> Vec<u8> {
    let mut k = VERDICT_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

fn classify(path: &Path, code: StatusCode, detail: String) -> StoreError {
    let path = path.to_path_buf();
    match code {
        StatusCode::LockError | StatusCode::AlreadyExists => StoreError::Locked { path },
        StatusCode::Corruption | StatusCode::InvalidData => StoreError::Corrupt { path, detail },
        _ => StoreError::Io { path, detail },
    }
}

/// Runs `f`, turning a panic inside the LevelDB library (which it does on
/// some corrupt files) into an error message instead of a crash with a
/// backtrace.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    result.map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the database library failed".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(store: &mut Store) -> Vec<(String, String)> {
        let mut out = Vec::new();
        store
            .for_each_with_prefix(b"", |k, v| {
                out.push((
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ))
            })
            .unwrap();
        out
    }

    // The disk of tests/store.rs too.
    mod disk {
        include!("../tests/common/disk.rs");
    }
    use disk::SmallDisk;

    fn events(store: &Store) -> Vec<EventKind> {
        let mut kinds: Vec<EventKind> = store
            .history()
            .recent(usize::MAX, None)
            .iter()
            .map(|e| e.kind)
            .collect();
        kinds.reverse();
        kinds
    }

    /// Overwritten states must leave the disk: rusty-leveldb 4.0.2 stopped
    /// dropping old versions once any iterator had been opened (fixed in
    /// vendor/rusty-leveldb), so a database of four states rewritten
    /// 80,000 times grew to the 18 MB written (3.8 MB with the fix).
    #[test]
    fn rewritten_states_do_not_grow_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut s = Store::open(&path).unwrap();
        let payload = [b'x'; 200];
        for i in 0..80_000u32 {
            s.record(Record::new(
                format!("home/d{}/state", i % 4).as_bytes(),
                &payload,
            ));
            s.commit(Instant::now());
            if i % 1000 == 0 {
                s.for_each_with_prefix(b"home/d0", |_, _| {}).unwrap();
            }
        }
        s.commit(Instant::now());
        let size: u64 = std::fs::read_dir(&path)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        // 18 MB written; the first table written stays on level 2.
        assert!(size < 6_000_000, "{size} bytes for 4 states");
        assert_eq!(all(&mut s).len(), 4);
    }

    #[test]
    fn a_full_disk_keeps_writes_pending_until_it_has_room_again() {
        let disk = SmallDisk::mount(1 << 20);
        let path = disk.path().join("db");
        let mut s = Store::open(&path).unwrap();
        s.record(Record::new(b"a/before", b"1"));
        s.record(Record::new(b"a/gone", b"x"));
        let t0 = Instant::now();
        s.commit(t0);
        assert!(s.is_healthy());
        let filler = disk.fill();

        let big = vec![b'p'; 8192];
        for i in 0..8 {
            s.record(Record::new(format!("a/during{i}").as_bytes(), &big));
        }
        s.record(Record::new(b"a/gone", b""));
        s.commit(t0);
        let h = s.health();
        assert!(!h.healthy);
        assert!(
            h.problem.as_deref().unwrap().contains("No space left"),
            "{h:?}"
        );
        assert_eq!((h.failures, h.pending), (1, 10));
        assert_eq!(events(&s), [EventKind::StoreError]);
        // Reads see the pending writes, deletions included.
        let seen = all(&mut s);
        assert_eq!(seen.len(), 9, "{seen:?}");
        assert!(!seen.iter().any(|(k, _)| k == "a/gone"));
        let mut replayed = 0;
        let filters = [Filter::parse("+/during3").unwrap()];
        s.for_each_state(&filters, |_, v| {
            assert_eq!(v, &big[..]);
            replayed += 1;
        })
        .unwrap();
        assert_eq!(replayed, 1);

        // Back-off: nothing is tried before the retry time, then 1 s, 2 s.
        s.record(Record::new(b"a/during0", b"latest"));
        s.commit(t0 + Duration::from_millis(500));
        assert_eq!(s.health().failures, 1);
        assert_eq!(s.due(), Some(t0 + Duration::from_secs(1)));
        s.poll(t0 + Duration::from_secs(1));
        assert_eq!(s.health().failures, 2);
        assert_eq!(s.due(), Some(t0 + Duration::from_secs(3)));

        disk.empty(filler);
        s.poll(t0 + Duration::from_secs(3));
        let h = s.health();
        assert!(h.healthy, "{h:?}");
        assert_eq!(h.pending, 1, "the recovery event waits for the next commit");
        assert_eq!(
            events(&s),
            [EventKind::StoreError, EventKind::StoreRecovered]
        );
        s.close().unwrap();

        let mut s = Store::open(&path).unwrap();
        let seen = all(&mut s);
        assert_eq!(seen.len(), 9);
        assert!(seen.contains(&("a/before".into(), "1".into())));
        assert!(seen.contains(&("a/during0".into(), "latest".into())));
        assert_eq!(s.get(b"a/during7").as_deref(), Some(&big[..]));
        assert_eq!(s.get(b"a/gone"), None);
        assert_eq!(
            events(&s),
            [EventKind::StoreError, EventKind::StoreRecovered]
        );
    }

    #[test]
    fn records_survive_restarts_and_are_never_states() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let mut s = Store::open(&path).unwrap();
            s.record(Record::new("zz/\u{10FFFF}".as_bytes(), b"last state"));
            s.record(Record::new(b"a/1", b"x"));
            s.put_verdict("esp", false);
            s.put_verdict("led", true);
            s.put_verdict("gone", true);
            s.forget_verdict("gone");
            for (i, kind) in [EventKind::FirstHeard, EventKind::Expired]
                .iter()
                .enumerate()
            {
                s.push_event(Event {
                    at_ms: wall_ms() + i as u64,
                    kind: *kind,
                    subject: "esp".into(),
                    detail: String::new(),
                });
            }
            s.commit(Instant::now());
            s.close().unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        let want = HashMap::from([("esp".to_string(), false), ("led".to_string(), true)]);
        assert_eq!(s.take_verdicts(), want);
        assert!(s.take_verdicts().is_empty());
        assert_eq!(events(&s), [EventKind::FirstHeard, EventKind::Expired]);
        assert_eq!(
            s.history().recent(1, Some("esp"))[0].kind,
            EventKind::Expired
        );
        let states = vec![
            ("a/1".to_string(), "x".to_string()),
            ("zz/\u{10FFFF}".to_string(), "last state".to_string()),
        ];
        assert_eq!(all(&mut s), states);
        let mut paged = Vec::new();
        assert_eq!(
            s.scan_after(None, 10, |k, _| paged.push(k.to_vec()))
                .unwrap(),
            None
        );
        assert_eq!(paged.len(), 2);
        let mut matched = Vec::new();
        for filter in ["#", "+/#", "+/+"] {
            let filters = [Filter::parse(filter).unwrap()];
            s.for_each_state(&filters, |t, _| matched.push(t.to_string()))
                .unwrap();
        }
        assert_eq!(matched.len(), 6, "{matched:?}");
        // Written as asked: the monitor core asks only when it changed.
        s.put_verdict("esp", true);
        assert_eq!(s.pending(), 1);
    }

    #[test]
    fn pending_writes_are_merged_into_scans() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        for k in ["a/1", "a/3", "a/5", "b/1"] {
            s.record(Record::new(k.as_bytes(), b"old"));
        }
        s.commit(Instant::now());
        s.record(Record::new(b"a/0", b"new"));
        s.record(Record::new(b"a/3", b"new"));
        s.record(Record::new(b"a/5", b""));
        s.record(Record::new(b"a/6", b"new"));
        let mut seen = Vec::new();
        s.for_each_with_prefix(b"a/", |k, v| {
            seen.push(format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            ))
        })
        .unwrap();
        assert_eq!(seen, ["a/0=new", "a/1=old", "a/3=new", "a/6=new"]);
        let mut pages = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let mut page = Vec::new();
            let next = s
                .scan_after(cursor.as_deref(), 2, |k, _| {
                    page.push(String::from_utf8_lossy(k).into_owned())
                })
                .unwrap();
            pages.push(page);
            match next {
                Some(k) => cursor = Some(k),
                None => break,
            }
        }
        assert_eq!(pages, [vec!["a/0", "a/1"], vec!["a/3", "a/6"], vec!["b/1"]]);
    }

    #[test]
    fn commits_come_after_the_window_or_a_full_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        assert_eq!(s.due(), None);
        s.record(Record::new(b"k", b"v"));
        let due = s.due().unwrap();
        s.poll(due - Duration::from_millis(1));
        assert_eq!(s.pending(), 1);
        s.poll(due);
        assert_eq!((s.pending(), s.due()), (0, None));
        for i in 0..MAX_BATCH {
            s.record(Record::new(format!("k{i}").as_bytes(), b"v"));
        }
        let now = Instant::now();
        assert!(s.due().unwrap() <= now);
        s.poll(now);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn a_commit_is_synced_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        s.record(Record::new(b"k", b"v"));
        let start = Instant::now();
        s.commit(start);
        while s.health().syncs == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "no sync within 1 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_hello_with_a_leading_wildcard_seeks_its_device() {
        // 10,000 devices with 10 states each, the first level naming the
        // device's site: a `+` there has 10,000 values to go through.
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        for d in 0..10_000 {
            for k in 0..10 {
                s.record(Record::new(
                    format!("site{d}/dev{d}/state/s{k}").as_bytes(),
                    b"v",
                ));
            }
        }
        s.commit(Instant::now());
        let filters = [Filter::parse("+/dev4242/state/#").unwrap()];
        let mut found = 0;
        let moves = s.for_each_state(&filters, |_, _| found += 1).unwrap();
        assert_eq!(found, 10);
        assert!(moves < 30, "{moves} iterator moves");
        // The index follows the commits made after it was built.
        s.record(Record::new(b"elsewhere/dev4242/state/new", b"v"));
        s.commit(Instant::now());
        s.record(Record::new(b"pending/dev4242/state/new", b"v"));
        let mut found = Vec::new();
        let moves = s
            .for_each_state(&filters, |t, _| found.push(t.to_string()))
            .unwrap();
        assert_eq!(found.len(), 12);
        assert_eq!(found[0], "elsewhere/dev4242/state/new");
        assert!(moves < 30, "{moves} iterator moves");
    }

    #[test]
    fn a_pass_of_scan_after_builds_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        for d in 0..300 {
            s.record(Record::new(
                format!("site{d}/dev{d}/state").as_bytes(),
                b"v",
            ));
        }
        s.commit(Instant::now());
        let filters = [Filter::parse("+/dev42/#").unwrap()];
        let mut cursor = s.scan_after(None, 100, |_, _| {}).unwrap();
        // A scan meanwhile does not wait for the index, nor build its own.
        let moves = s.for_each_state(&filters, |_, _| {}).unwrap();
        assert!(moves > 300, "{moves}");
        s.record(Record::new(b"early/dev42/x", b"v"));
        s.commit(Instant::now());
        while let Some(k) = cursor {
            cursor = s.scan_after(Some(&k), 100, |_, _| {}).unwrap();
        }
        let mut found = Vec::new();
        let moves = s
            .for_each_state(&filters, |t, _| found.push(t.to_string()))
            .unwrap();
        assert_eq!(found, ["early/dev42/x", "site42/dev42/state"]);
        assert!(moves < 10, "{moves}");
    }

    #[test]
    fn a_memory_table_left_by_a_burst_is_written_out_after_a_while() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let tables = || {
            std::fs::read_dir(&path)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension() == Some("ldb".as_ref()))
                .count()
        };
        let mut s = Store::open(&path).unwrap();
        let t0 = Instant::now();
        s.poll(t0);
        let value = [b'v'; 40];
        for i in 0..5000 {
            s.record(Record::new(format!("a/{i}").as_bytes(), &value));
        }
        s.commit(t0);
        s.poll(t0 + Duration::from_secs(2));
        assert_eq!(tables(), 0, "kept in memory for a while");
        s.poll(t0 + MEMTABLE_FLUSH_AFTER + Duration::from_secs(1));
        assert_eq!(tables(), 1, "then written out");
        assert_eq!(s.get(b"a/4242").as_deref(), Some(&value[..]));
    }

    #[test]
    fn a_burst_is_written_in_chunks_that_keep_the_memory_table_near_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        let now = Instant::now();
        let value = [b'v'; 100];
        // The memory table just under its size ...
        let mut n = 0;
        while s.db.memtable_size() < WRITE_BUFFER - 200_000 {
            for _ in 0..500 {
                s.record(Record::new(format!("a/{n}").as_bytes(), &value));
                n += 1;
            }
            s.commit(now);
        }
        assert!(s.db.memtable_size() < WRITE_BUFFER);
        // ... then a burst of 12,000 states (about 2 MB) in one commit.
        for i in 0..12_000 {
            s.record(Record::new(format!("b/{i}").as_bytes(), &value));
        }
        s.commit(now);
        // At most a chunk over its size (1,024 of these states: about
        // 200 KB), where one write of the burst would take it 2 MB over.
        let over = 512 << 10;
        assert!(
            s.db.memtable_size() <= WRITE_BUFFER + over,
            "{} > {WRITE_BUFFER} + {over}",
            s.db.memtable_size()
        );
        for key in [
            "a/0".to_string(),
            format!("a/{}", n - 1),
            "b/0".into(),
            "b/11999".into(),
        ] {
            assert_eq!(s.get(key.as_bytes()).as_deref(), Some(&value[..]), "{key}");
        }
    }

    #[test]
    fn rewritten_states_keep_one_memory_table_entry_and_a_bounded_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut s = Store::open(&path).unwrap();
        let now = Instant::now();
        let mut logs_seen = std::collections::BTreeSet::new();
        for round in 0..2000 {
            for topic in 0..50 {
                s.record(Record::new(
                    format!("a/{topic}").as_bytes(),
                    format!("{round:040}").as_bytes(),
                ));
            }
            s.commit(now);
            for e in std::fs::read_dir(&path).unwrap() {
                let p = e.unwrap().path();
                if p.extension() == Some("log".as_ref()) {
                    let len = std::fs::metadata(&p).unwrap().len();
                    assert!(
                        len <= (WRITE_BUFFER + 8192) as u64,
                        "{}: {len}",
                        p.display()
                    );
                    logs_seen.insert(p);
                }
            }
        }
        // 100,000 writes, 5 MB of log: new logs, and one entry per topic
        // in memory (about 100 bytes each).
        assert!(logs_seen.len() >= 3, "{logs_seen:?}");
        assert!(s.db.memtable_size() < 50 * 200, "{}", s.db.memtable_size());
        drop(s);
        let mut s = Store::open(&path).unwrap();
        assert_eq!(
            s.get(b"a/7").as_deref(),
            Some(format!("{:040}", 1999).as_bytes())
        );
    }

    #[test]
    fn latest_wins_and_empty_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        s.record(Record::new(b"a/1", b"x"));
        s.record(Record::new(b"a/1", b"y"));
        s.record(Record::new(b"a/2", b"z"));
        s.commit(Instant::now());
        s.record(Record::new(b"a/2", b""));
        s.commit(Instant::now());
        assert_eq!(all(&mut s), [("a/1".into(), "y".into())]);
        assert_eq!(s.get(b"a/1").as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn prefix_scan_includes_first_key_and_stops_at_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        for k in ["a", "b/1", "b/2", "b0", "c"] {
            s.record(Record::new(k.as_bytes(), b"v"));
        }
        s.commit(Instant::now());
        let mut keys = Vec::new();
        s.for_each_with_prefix(b"b/", |k, _| keys.push(k.to_vec()))
            .unwrap();
        assert_eq!(keys, [b"b/1".to_vec(), b"b/2".to_vec()]);
    }

    #[test]
    fn scan_after_pages_through_every_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        for i in 0..25 {
            s.record(Record::new(format!("k{i:02}").as_bytes(), b"v"));
        }
        s.commit(Instant::now());
        let mut seen = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        let mut pages = 0;
        loop {
            let next = s
                .scan_after(cursor.as_deref(), 10, |k, _| seen.push(k.to_vec()))
                .unwrap();
            pages += 1;
            match next {
                Some(k) => cursor = Some(k),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let want: Vec<Vec<u8>> = (0..25).map(|i| format!("k{i:02}").into_bytes()).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn binary_values_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let payload: Vec<u8> = (0..=255u8).cycle().take(256 * 1024).collect();
        {
            let mut s = Store::open(&path).unwrap();
            s.record(Record::new(b"bin/\xff\x00", &payload));
            s.close().unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.get(b"bin/\xff\x00"), Some(payload));
    }

    #[test]
    fn committed_writes_survive_without_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let mut s = Store::open(&path).unwrap();
            s.record(Record::new(b"k", b"v"));
            s.commit(Instant::now());
            // Simulate a crash: the lock is released but nothing is closed.
            std::mem::forget(s);
        }
        let copy = dir.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        for e in std::fs::read_dir(&path).unwrap() {
            let e = e.unwrap();
            if e.file_name() != "LOCK" {
                std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
            }
        }
        let mut s = Store::open(&copy).unwrap();
        assert_eq!(s.get(b"k").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn second_open_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let _first = Store::open(&path).unwrap();
        match Store::open(&path) {
            Err(StoreError::Locked { path: p }) => assert_eq!(p, path),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("second open should fail"),
        }
    }

    #[test]
    fn corrupt_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let mut s = Store::open(&path).unwrap();
            s.record(Record::new(b"k", b"v"));
            s.close().unwrap();
        }
        for e in std::fs::read_dir(&path).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("MANIFEST") || name == "CURRENT" {
                std::fs::write(e.path(), b"garbage\xff\xfe not a manifest").unwrap();
            }
        }
        let err = Store::open(&path)
            .err()
            .expect("corrupt database must not open");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
