//! Starting an agent detached, with the original iotmonitor's exact command
//! line (the compatibility contract of SPEC §6).

use std::ffi::CStr;
use std::fs::OpenOptions;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use rustix::fs::{Mode, OFlags, RawDir};
use rustix::io::FdFlags;
use rustix::process::Resource;

use super::AgentSpec;

/// Where a process lists its open descriptors.
const OWN_FDS: &CStr = c"/proc/self/fd";
/// Without [`OWN_FDS`], descriptors up to this number (or the descriptor
/// limit, when lower) are marked one by one.
const FD_SWEEP_MAX: u64 = 1 << 16;

/// The exact command line of the original iotmonitor (bash's `-c` argument).
pub fn command_line(spec: &AgentSpec) -> String {
    format!("echo IOTMONITORMAGIC_{};{};echo END", spec.name, spec.exec)
}

/// Starts an agent detached: new session, stdin from /dev/null, stdout and
/// stderr appended to `<log_dir>/<name>.log`, no inherited descriptors.
/// Returns its pid once bash's execve has begun (its tag may take a moment
/// more to be readable in /proc).
pub(super) fn launch(spec: &AgentSpec, log_dir: &Path) -> io::Result<i32> {
    std::fs::create_dir_all(log_dir)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join(format!("{}.log", spec.name)))?;
    let err = log.try_clone()?;
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c")
        .arg(command_line(spec))
        .env("IOTMONITORMAGIC", format!("IOTMONITORMAGIC_{}", spec.name))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: it makes system calls
    // through rustix (setsid, open, getdents64, getrlimit, fcntl, close)
    // with a buffer on the stack, and allocates nothing. The child has one
    // thread and closes nothing meanwhile, so a descriptor listed as open
    // stays open while borrowed; a number swept without the listing that is
    // not open only makes fcntl fail with EBADF.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            // An agent must not inherit the database lock or the broker
            // socket (descriptors opened by C libraries may lack O_CLOEXEC).
            for_each_inherited_fd(OWN_FDS, |fd| {
                let _ = rustix::io::fcntl_setfd(BorrowedFd::borrow_raw(fd), FdFlags::CLOEXEC);
            });
            Ok(())
        });
    }
    // The Child handle is dropped without waiting: the supervisor's reaping
    // collects the agent's exit status when it ends.
    let child = cmd.spawn()?;
    Ok(child.id() as i32)
}

/// Calls `mark` with every descriptor from 3 on that this process has open,
/// as listed in `fds_dir` (`/proc/self/fd`), without allocating: it runs
/// between fork and exec. When the listing cannot be read in full, every
/// number from 3 up to the descriptor limit (at most [`FD_SWEEP_MAX`]) is
/// handed over instead.
fn for_each_inherited_fd(fds_dir: &CStr, mut mark: impl FnMut(RawFd)) {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if let Ok(dir) = rustix::fs::open(fds_dir, flags, Mode::empty()) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut entries = RawDir::new(&dir, &mut buf);
        let listing = dir.as_raw_fd();
        let mut complete = true;
        while let Some(entry) = entries.next() {
            let Ok(entry) = entry else {
                complete = false;
                break;
            };
            let fd = std::str::from_utf8(entry.file_name().to_bytes())
                .ok()
                .and_then(|s| s.parse::<RawFd>().ok());
            if let Some(fd) = fd.filter(|&fd| fd >= 3 && fd != listing) {
                mark(fd);
            }
        }
        if complete {
            return;
        }
    }
    let limit = rustix::process::getrlimit(Resource::Nofile)
        .current
        .map_or(FD_SWEEP_MAX, |l| l.min(FD_SWEEP_MAX));
    for fd in 3..limit as RawFd {
        mark(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    /// A descriptor opened without O_CLOEXEC, as a C library may do.
    fn inheritable() -> OwnedFd {
        rustix::fs::open(c"/dev/null", OFlags::RDONLY, Mode::empty()).unwrap()
    }

    #[test]
    fn lists_open_descriptors_from_3_on() {
        let fd = inheritable();
        let mut seen = Vec::new();
        for_each_inherited_fd(OWN_FDS, |n| seen.push(n));
        assert!(seen.contains(&fd.as_raw_fd()), "{seen:?}");
        assert!(seen.iter().all(|&n| n >= 3), "{seen:?}");
    }

    #[test]
    fn sweeps_up_to_the_descriptor_limit_without_a_listing() {
        let fd = inheritable();
        let mut seen = Vec::new();
        for_each_inherited_fd(c"/nonexistent/fd", |n| seen.push(n));
        let limit = rustix::process::getrlimit(Resource::Nofile)
            .current
            .map_or(FD_SWEEP_MAX, |l| l.min(FD_SWEEP_MAX));
        assert_eq!(seen.first(), Some(&3));
        assert_eq!(seen.len() as u64, limit - 3);
        assert!(seen.contains(&fd.as_raw_fd()));
    }
}
