//! `iotmonitor dump`: prints the stored states for operators, one
//! `topic<TAB>payload` line each, control characters and bytes that are not
//! UTF-8 escaped. Works while the daemon runs: a locked database is copied
//! aside and the copy is read. Only states are listed, never the daemon's
//! own records (history, verdicts).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use log::{error, info};

use crate::store::{Store, StoreError};

pub fn run(path: &Path) -> ExitCode {
    if !path.join("CURRENT").exists() {
        error!("no database at {}", path.display());
        return ExitCode::FAILURE;
    }
    let result = match Store::open(path) {
        Err(StoreError::Locked { .. }) => {
            info!("{} is in use: reading a copy of it", path.display());
            dump_copy(path)
        }
        other => other.and_then(print),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn dump_copy(path: &Path) -> Result<(), StoreError> {
    // A fresh private directory (mode 0700, unpredictable name): nothing
    // can be planted in it beforehand. Removed when dropped.
    let copy = tempfile::Builder::new()
        .prefix("iotmonitor-dump-")
        .tempdir()
        .map_err(|e| StoreError::Io {
            path: std::env::temp_dir(),
            detail: format!("cannot create a directory for the copy: {e}"),
        })?;
    copy_files(path, copy.path())
        .map_err(|e| StoreError::Io {
            path: copy.path().to_path_buf(),
            detail: e.to_string(),
        })
        .and_then(|()| Store::open(copy.path()))
        .and_then(print)
}

fn copy_files(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() != "LOCK" && entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn print(mut store: Store) -> Result<(), StoreError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let path: PathBuf = store.path().to_path_buf();
    let written = list(&mut store, &mut out)?.and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(StoreError::Io {
            path,
            detail: format!("cannot write the dump: {e}"),
        }),
        _ => Ok(()),
    }
}

/// Writes the stored states to `out`; the outer error is the database's,
/// the inner one the output's.
fn list(store: &mut Store, out: &mut impl Write) -> Result<std::io::Result<()>, StoreError> {
    let mut result = Ok(());
    store.for_each_with_prefix(b"", |k, v| {
        if result.is_ok() {
            result = writeln!(out, "{}\t{}", escape(k), escape(v));
        }
    })?;
    Ok(result)
}

/// Text as is; control characters and invalid UTF-8 bytes escaped.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                s.extend(c.escape_default());
            } else {
                s.push(c);
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventKind};
    use crate::record::Record;

    #[test]
    fn lists_states_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db")).unwrap();
        store.record(Record::new(b"home/a", b"on"));
        store.record(Record::new("home/\u{10FFFF}".as_bytes(), b"\xff"));
        store.put_verdict("a", true);
        store.push_event(Event {
            at_ms: 1,
            kind: EventKind::Back,
            subject: "a".into(),
            detail: String::new(),
        });
        store.commit(std::time::Instant::now());
        let mut out = Vec::new();
        list(&mut store, &mut out).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "home/a\ton\nhome/\u{10FFFF}\t\\xff\n"
        );
    }

    #[test]
    fn escapes_controls_and_invalid_bytes() {
        assert_eq!(escape(b"on"), "on");
        assert_eq!(escape("température".as_bytes()), "température");
        assert_eq!(escape(b"a\tb\n"), "a\\tb\\n");
        assert_eq!(escape(b"\xff\x00z"), "\\xff\\u{0}z");
        assert_eq!(escape(b"c:\\"), "c:\\\\");
    }
}
