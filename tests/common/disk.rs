// A small tmpfs on a temporary directory, unmounted when dropped (also
// when the test fails): a disk that can be filled up. Shared by the
// store's unit tests (src/store.rs) and tests/store.rs; mounting needs
// root, as the test machines give.

use std::ffi::CString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(bytes: usize) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let target = c_path(dir.path());
        let options = CString::new(format!("size={bytes}")).unwrap();
        // SAFETY: valid NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with a file; returns its path.
    pub fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        path
    }

    /// Removes the filler, and waits until its space is free (a child
    /// process forked meanwhile by another test holds it until it execs).
    pub fn empty(&self, filler: PathBuf) {
        std::fs::remove_file(filler).unwrap();
        let target = c_path(self.path());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: a valid path and a zeroed statvfs to fill.
            let free = unsafe {
                let mut st: libc::statvfs = std::mem::zeroed();
                assert_eq!(libc::statvfs(target.as_ptr(), &mut st), 0);
                st.f_bavail as u64 * st.f_frsize as u64
            };
            if free > 256 << 10 {
                return;
            }
            assert!(Instant::now() < deadline, "the filler's space is not freed");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let target = c_path(self.path());
        // SAFETY: a valid NUL-terminated string.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}
