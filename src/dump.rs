//! `iotmonitor dump`: prints the stored states for operators, one
//! `topic<TAB>payload` line each, control characters and bytes that are not
//! UTF-8 escaped. Works while the daemon runs: a locked database is copied
//! aside and the copy is read.

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
    let copy = std::env::temp_dir().join(format!("iotmonitor-dump-{}", std::process::id()));
    let io = |e: std::io::Error| StoreError::Io {
        path: copy.clone(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(&copy).map_err(io)?;
    let result = copy_files(path, &copy)
        .map_err(io)
        .and_then(|()| Store::open(&copy))
        .and_then(print);
    let _ = std::fs::remove_dir_all(&copy);
    result
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
    let mut write_error = None;
    store.for_each_with_prefix(b"", |k, v| {
        if write_error.is_none() {
            let line = format!("{}\t{}\n", escape(k), escape(v));
            if let Err(e) = out.write_all(line.as_bytes()) {
                write_error = Some(e);
            }
        }
    })?;
    let flushed = out.flush();
    match write_error.map_or(flushed, Err) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(StoreError::Io {
            path,
            detail: format!("cannot write the dump: {e}"),
        }),
        _ => Ok(()),
    }
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
    use super::escape;

    #[test]
    fn escapes_controls_and_invalid_bytes() {
        assert_eq!(escape(b"on"), "on");
        assert_eq!(escape("température".as_bytes()), "température");
        assert_eq!(escape(b"a\tb\n"), "a\\tb\\n");
        assert_eq!(escape(b"\xff\x00z"), "\\xff\\u{0}z");
        assert_eq!(escape(b"c:\\"), "c:\\\\");
    }
}
