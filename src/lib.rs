//! iotmonitor keeps an MQTT home/IoT system always up: a watchdog over
//! devices and agents, a LevelDB store of device states replayed when a
//! device reboots, and a supervisor of detached agent processes.
//!
//! The binary (`main.rs`) runs the command line defined in `cli`; the
//! modules here are the daemon, each owning one job (see ARCHITECTURE.md).

pub mod agents;
pub mod backoff;
#[cfg(feature = "broker")]
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod dump;
pub mod echo;
pub mod event;
pub mod filter;
pub mod health;
pub mod history;
pub mod http;
pub mod link;
pub mod logging;
pub mod memory;
pub mod monitor;
pub mod notify;
pub mod page;
pub mod procfs;
pub mod record;
pub mod routes;
pub mod status;
pub mod store;
pub mod watchdog;

/// Version and git commit, as printed by `--version` and in the first log
/// line.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("IOTMONITOR_GIT_COMMIT"),
    ")"
);
