//! The embedded MQTT broker (cargo feature `broker`, `[broker] listen=...`):
//! rumqttd in threads of its own, so that one binary runs a small
//! installation. Devices connect to the configured address (MQTT 3.1.1);
//! the daemon itself connects to a second, MQTT 5 listener on a free
//! loopback port of the same broker, so that it keeps MQTT 5 "no local".
//!
//! rumqttd logs through `tracing`. Without a tracing subscriber, tracing's
//! "log" feature (enabled in this build by rumqttd's dependencies) turns its
//! events *and its spans* into `log` records, and rumqttd opens
//! ERROR-level spans around every packet it routes: an `ERROR
//! rumqttd::router::routing` line per publish, which `RUST_LOG=rumqttd=warn`
//! cannot hide (an error passes a warn filter). The subscriber here hands
//! rumqttd's events, never its spans, to `log`, through the `RUST_LOG`
//! filter.

use std::collections::HashMap;
use std::fmt::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use log::{error, info, Level};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, Metadata, Subscriber};

fn server(name: &str, listen: SocketAddr) -> rumqttd::ServerSettings {
    rumqttd::ServerSettings {
        name: name.to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1 << 20,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

/// Starts the broker listening on `listen`; returns the address of the
/// daemon's own MQTT 5 listener once both accept connections.
pub fn start(listen: SocketAddr) -> anyhow::Result<SocketAddr> {
    // Set once per process; a second broker (none today) keeps the first.
    let _ = tracing_core::dispatcher::set_global_default(Dispatch::new(TracingToLog));
    let internal = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("no free loopback port for the embedded broker")?;
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 << 20,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([(
            "1".to_string(),
            server("devices", listen),
        )])),
        v5: Some(HashMap::from([(
            "1".to_string(),
            server("iotmonitor", internal),
        )])),
        ..Default::default()
    };
    std::thread::Builder::new()
        .name("broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                error!("embedded broker stopped: {e}");
            }
        })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    for addr in [listen, internal] {
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("the embedded broker does not listen on {addr} (address in use?)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    info!("embedded MQTT broker listening on {listen}");
    Ok(internal)
}

/// Passes tracing events to `log`; spans are never enabled.
struct TracingToLog;

fn log_level(level: &tracing_core::Level) -> Level {
    match *level {
        tracing_core::Level::ERROR => Level::Error,
        tracing_core::Level::WARN => Level::Warn,
        tracing_core::Level::INFO => Level::Info,
        tracing_core::Level::DEBUG => Level::Debug,
        tracing_core::Level::TRACE => Level::Trace,
    }
}

fn log_enabled(level: Level, target: &str) -> bool {
    log::logger().enabled(&log::Metadata::builder().level(level).target(target).build())
}

/// rumqttd 0.20 reports ordinary disconnections as errors: give them the
/// level they deserve.
fn real_level(level: Level, message: &str, fields: &str) -> Level {
    match message {
        // A TCP connection closed before MQTT's CONNECT: a port probe (the
        // readiness check in `start`, a health check, a scan).
        "Error while handling MQTT connect packet" if fields.contains("ConnectionAborted") => {
            Level::Debug
        }
        // A client that sent DISCONNECT, which the router handled first.
        "router-drop" if fields.contains("Recv(Disconnected)") => Level::Info,
        // The same client's connection closing after its DISCONNECT.
        m if m.starts_with("no-connection id ") && m.ends_with(" is already gone") => Level::Debug,
        _ => level,
    }
}

/// An event's message and its other fields (` name=value` each).
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for TracingToLog {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.enabled(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event() && log_enabled(log_level(meta.level()), meta.target())
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Never called: no span is enabled.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = real_level(log_level(meta.level()), &fields.message, &fields.rest);
        if !log_enabled(level, meta.target()) {
            return;
        }
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target(meta.target())
                .module_path(meta.module_path())
                .file(meta.file())
                .line(meta.line())
                .args(format_args!("{}{}", fields.message, fields.rest))
                .build(),
        );
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_disconnections_are_not_errors() {
        let probe = " error=Network(Io(Custom { kind: ConnectionAborted, error: \"connection closed by peer\" }))";
        assert_eq!(
            real_level(
                Level::Error,
                "Error while handling MQTT connect packet",
                probe
            ),
            Level::Debug
        );
        assert_eq!(
            real_level(Level::Error, "router-drop", " error=Recv(Disconnected)"),
            Level::Info
        );
        let timeout = " error=Network(Io(Kind(TimedOut)))";
        assert_eq!(
            real_level(
                Level::Error,
                "Error while handling MQTT connect packet",
                timeout
            ),
            Level::Error
        );
        assert_eq!(
            real_level(Level::Error, "no-connection id 3 is already gone", ""),
            Level::Debug
        );
        assert_eq!(real_level(Level::Warn, "other", ""), Level::Warn);
    }
}
