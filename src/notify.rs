//! systemd service notification (`Type=notify`): `READY=1` once the main
//! loop runs, `WATCHDOG=1` at every tick when the unit sets `WatchdogSec=`
//! (so a stuck main loop gets the daemon restarted), `STOPPING=1` at
//! shutdown. Without `NOTIFY_SOCKET` in the environment, nothing is sent.

use std::os::unix::net::{SocketAddr, UnixDatagram};

pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    watchdog: bool,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket) and
    /// `WATCHDOG_USEC`/`WATCHDOG_PID`.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let bytes = path.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name).ok()?
            }
            None => SocketAddr::from_pathname(&path).ok()?,
        };
        let socket = UnixDatagram::unbound().ok()?;
        let for_us = std::env::var("WATCHDOG_PID")
            .map_or(true, |pid| pid.trim() == std::process::id().to_string());
        let watchdog = for_us
            && std::env::var("WATCHDOG_USEC")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|us| us > 0);
        Some(Notifier {
            socket,
            addr,
            watchdog,
        })
    }

    fn send(&self, state: &str) {
        let _ = self.socket.send_to_addr(state.as_bytes(), &self.addr);
    }

    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// Called at every tick.
    pub fn alive(&self) {
        if self.watchdog {
            self.send("WATCHDOG=1");
        }
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}
