//! The state store: device state topics in an embedded LevelDB (SPEC §5).
//!
//! Key = topic bytes, value = payload bytes, latest wins; an empty payload
//! deletes. Writes are collected in a batch and committed by the owner (the
//! main loop) after each burst of messages; a commit pushes the log record
//! to the operating system, so a state survives a crash or SIGKILL of the
//! daemon (not a power loss: there is no fsync).

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rusty_leveldb::{LdbIterator, Options, StatusCode, WriteBatch, DB};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path} is locked by another process (is another iotmonitor running on it?)")]
    Locked { path: PathBuf },
    #[error("database {path} is corrupt ({detail}); move it aside (mv {path} {path}.broken) to start with an empty one, the states it held are then lost")]
    Corrupt { path: PathBuf, detail: String },
    #[error("database {path}: {detail}")]
    Io { path: PathBuf, detail: String },
}

pub struct Store {
    db: DB,
    path: PathBuf,
    /// Writes not committed yet, latest per topic (empty = delete): a
    /// topic updated many times between two commits is written once.
    pending: HashMap<Vec<u8>, Vec<u8>>,
}

impl Store {
    /// Opens (creating if needed) the database directory at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        // With log reuse, a torn record left by a crash can make recovery
        // silently drop every later write: always start a fresh log.
        let opts = Options {
            create_if_missing: true,
            reuse_logs: false,
            ..Default::default()
        };
        let result = quietly(|| DB::open(path, opts));
        let db = match result {
            Ok(Ok(db)) => db,
            Ok(Err(status)) => return Err(classify(path, status.code, status.err)),
            Err(detail) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail,
                })
            }
        };
        Ok(Store {
            db,
            path: path.to_path_buf(),
            pending: HashMap::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a state; an empty payload deletes it. Takes effect for
    /// readers and on disk at the next `commit`.
    pub fn record(&mut self, topic: &[u8], payload: &[u8]) {
        match self.pending.get_mut(topic) {
            Some(v) => {
                v.clear();
                v.extend_from_slice(payload);
            }
            None => {
                self.pending.insert(topic.to_vec(), payload.to_vec());
            }
        }
    }

    /// Number of writes waiting for `commit`.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Writes the pending batch to the log and hands it to the OS.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for (topic, payload) in self.pending.drain() {
            if payload.is_empty() {
                batch.delete(&topic);
            } else {
                batch.put(&topic, &payload);
            }
        }
        let db = &mut self.db;
        match quietly(|| db.write(batch, true)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(status)) => Err(classify(&self.path, status.code, status.err)),
            Err(detail) => Err(StoreError::Io {
                path: self.path.clone(),
                detail,
            }),
        }
    }

    #[cfg(test)]
    pub fn get(&mut self, topic: &[u8]) -> Option<Vec<u8>> {
        self.db.get(topic).map(|v| v.to_vec())
    }

    /// Calls `f(key, value)` for every stored key starting with `prefix`,
    /// in key order, without scanning the rest of the database.
    pub fn for_each_with_prefix(
        &mut self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), StoreError> {
        let mut it = self
            .db
            .new_iter()
            .map_err(|s| classify(&self.path, s.code, s.err))?;
        if prefix.is_empty() {
            it.seek_to_first();
        } else {
            it.seek(prefix);
        }
        while it.valid() {
            let Some((k, v)) = it.current() else { break };
            if !k.starts_with(prefix) {
                break;
            }
            f(&k, &v);
            it.advance();
        }
        Ok(())
    }

    /// Calls `f(key, value)` for at most `limit` keys following `after`
    /// (from the first key when None), in key order. Returns the last key
    /// visited when more keys follow, None at the end of the database.
    pub fn scan_after(
        &mut self,
        after: Option<&[u8]>,
        limit: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut it = self
            .db
            .new_iter()
            .map_err(|s| classify(&self.path, s.code, s.err))?;
        match after {
            Some(key) => it.seek(key),
            None => it.seek_to_first(),
        }
        let mut last: Option<Vec<u8>> = None;
        let mut seen = 0;
        while it.valid() {
            let Some((k, v)) = it.current() else { break };
            if after != Some(&k[..]) {
                if seen == limit {
                    return Ok(last);
                }
                f(&k, &v);
                last = Some(k.to_vec());
                seen += 1;
            }
            it.advance();
        }
        Ok(None)
    }

    /// Commits what is pending, writes the in-memory table to a table file
    /// (so the next start has no log to replay) and closes the database
    /// (releases the lock).
    pub fn close(mut self) -> Result<(), StoreError> {
        self.commit()?;
        // An empty key range: only the memory table is compacted.
        let db = &mut self.db;
        match quietly(|| db.compact_range(&[0xff; 4], &[])) {
            Ok(Ok(())) => {}
            Ok(Err(status)) => return Err(classify(&self.path, status.code, status.err)),
            Err(detail) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    detail,
                })
            }
        }
        self.db
            .close()
            .map_err(|s| classify(&self.path, s.code, s.err))
    }
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

    #[test]
    fn latest_wins_and_empty_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        s.record(b"a/1", b"x");
        s.record(b"a/1", b"y");
        s.record(b"a/2", b"z");
        s.commit().unwrap();
        s.record(b"a/2", b"");
        s.commit().unwrap();
        assert_eq!(all(&mut s), [("a/1".into(), "y".into())]);
        assert_eq!(s.get(b"a/1").as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn prefix_scan_includes_first_key_and_stops_at_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        for k in ["a", "b/1", "b/2", "b0", "c"] {
            s.record(k.as_bytes(), b"v");
        }
        s.commit().unwrap();
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
            s.record(format!("k{i:02}").as_bytes(), b"v");
        }
        s.commit().unwrap();
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
            s.record(b"bin/\xff\x00", &payload);
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
            s.record(b"k", b"v");
            s.commit().unwrap();
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
            s.record(b"k", b"v");
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
