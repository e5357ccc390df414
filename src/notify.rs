//! systemd service notification (`Type=notify`) through the `sd-notify`
//! crate: `READY=1` once the main loop runs, `WATCHDOG=1` at every tick
//! when the unit sets `WatchdogSec=` (so a stuck main loop gets the daemon
//! restarted), `STOPPING=1` at shutdown. Without `NOTIFY_SOCKET` in the
//! environment, nothing is sent.

use sd_notify::NotifyState;

pub struct Notifier {
    watchdog: bool,
}

impl Notifier {
    /// When started by systemd (`NOTIFY_SOCKET`); the watchdog when
    /// `WATCHDOG_USEC` is set for this process.
    pub fn from_env() -> Option<Notifier> {
        std::env::var_os("NOTIFY_SOCKET")?;
        Some(Notifier {
            watchdog: sd_notify::watchdog_enabled().is_some_and(|d| !d.is_zero()),
        })
    }

    /// Notifications are best effort: a service manager that went away
    /// must not stop the daemon.
    fn send(&self, state: NotifyState<'_>) {
        let _ = sd_notify::notify(&[state]);
    }

    pub fn ready(&self) {
        self.send(NotifyState::Ready);
    }

    /// Called at every tick.
    pub fn alive(&self) {
        if self.watchdog {
            self.send(NotifyState::Watchdog);
        }
    }

    pub fn stopping(&self) {
        self.send(NotifyState::Stopping);
    }
}
