//! The embedded MQTT broker (cargo feature `broker`, `[broker] listen=...`):
//! rumqttd in threads of its own, so that one binary runs a small
//! installation. Devices connect to the configured address (MQTT 3.1.1);
//! the daemon itself connects to a second, MQTT 5 listener on a free
//! loopback port of the same broker, so that it keeps MQTT 5 "no local".

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use log::{error, info};

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
