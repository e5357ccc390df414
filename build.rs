//! Embeds the git commit in the binary for `--version`, and links the
//! binary with packed relocations where its glibc loads them.

use std::process::Command;

fn main() {
    // Relative relocations packed (DT_RELR): the dynamic loader no longer
    // reads a 320 KB table of them at every start, and the daemon's idle
    // RSS is 0.7 MB smaller (see README, Performance II). Only when the
    // binary is built for the glibc it is built on and that glibc loads
    // them (2.36 or later, whose toolchains have binutils 2.38 or later):
    // a binary with them does not start on an older glibc.
    println!("cargo:rerun-if-env-changed=TARGET");
    if glibc_loads_packed_relocations() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=IOTMONITOR_GIT_COMMIT");
    // Builds without a .git (the Docker image) pass the commit in.
    if let Ok(commit) = std::env::var("IOTMONITOR_GIT_COMMIT") {
        if !commit.is_empty() {
            println!("cargo:rustc-env=IOTMONITOR_GIT_COMMIT={commit}");
            return;
        }
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let suffix = if dirty { "-dirty" } else { "" };
    println!("cargo:rustc-env=IOTMONITOR_GIT_COMMIT={commit}{suffix}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=.git/refs");
}

/// Whether the target is this machine's glibc, version 2.36 or later.
fn glibc_loads_packed_relocations() -> bool {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != std::env::var("HOST").unwrap_or_default() || !target.contains("-linux-gnu") {
        return false;
    }
    let Some(out) = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .filter(|o| o.status.success())
    else {
        return false;
    };
    // "glibc 2.36"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .trim()
        .trim_start_matches("glibc ")
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let major = version.next().unwrap_or(0);
    let minor = version.next().unwrap_or(0);
    (major, minor) >= (2, 36)
}
