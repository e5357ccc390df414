//! The MQTT link: one Paho asynchronous client, its callbacks, connection
//! retries and subscriptions.
//!
//! Paho calls back on its own threads *while holding its internal mutex*;
//! the callbacks here only turn what happened into a `LinkEvent` and send it
//! on an unbounded channel, so they never block and never touch state. The
//! main loop owns the `Link` and calls it; no call here waits on the
//! network: connects and subscribes complete through events, publishes are
//! queued by Paho, and a publish while disconnected is dropped at once
//! instead of blocking the caller.

use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use log::{debug, info, warn};
use paho_mqtt as mqtt;

use crate::backoff::Backoff;
use crate::config::{MqttConfig, Tls};
use crate::echo::EchoGuard;

/// A message received from the broker.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Set by the broker on retained messages sent at subscribe time.
    pub retained: bool,
}

#[derive(Debug)]
pub enum LinkEvent {
    Connected,
    ConnectFailed(String),
    Lost,
    Message(Incoming),
}

/// What the daemon publishes when it connects and what the broker publishes
/// for it when it vanishes (retained birth / last will).
pub struct Presence {
    /// The daemon's own topics start with this (`B/`): never echo-guarded,
    /// the daemon ignores them anyway.
    pub base: String,
    pub topic: String,
    pub online: &'static str,
    pub offline: &'static str,
}

pub struct Link {
    client: mqtt::AsyncClient,
    opts: mqtt::ConnectOptions,
    presence: Presence,
    connected: bool,
    /// A connect is under way (its outcome will arrive as an event).
    connecting: bool,
    next_attempt: Option<Instant>,
    backoff: Backoff,
    filters: Vec<String>,
    events: Sender<LinkEvent>,
    /// Publishes are being refused (queue full): warned once per episode.
    refusing: bool,
    config: MqttConfig,
    /// The MQTT version of the client: 5, or 3.1.1 for older brokers.
    version: u32,
    /// A connection succeeded with this version: no more switching.
    settled: bool,
    /// Why the last MQTT 5 attempt failed (reported with the 3.1.1 one).
    v5_failure: Option<String>,
    /// With MQTT 3.1.1 only: drops the broker's copies of our publishes.
    echoes: EchoGuard,
}

const RECONNECT_MIN: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Publishes Paho may hold before it refuses more.
const MAX_QUEUED: i32 = 1 << 18;
/// Filters per SUBSCRIBE packet.
const SUBSCRIBE_CHUNK: usize = 500;

/// TLS with server certificate and host name verification; client
/// certificate when configured.
fn ssl_options(tls: &Tls) -> anyhow::Result<mqtt::SslOptions> {
    let mut ssl = mqtt::SslOptionsBuilder::new();
    ssl.enable_server_cert_auth(true).verify(true);
    if let Some(ca) = &tls.ca_file {
        ssl.trust_store(ca)?;
    }
    if let Some(cert) = &tls.cert_file {
        ssl.key_store(cert)?;
    }
    if let Some(key) = &tls.key_file {
        ssl.private_key(key)?;
    }
    if let Some(pw) = &tls.key_password {
        ssl.private_key_password(pw);
    }
    Ok(ssl.finalize())
}

/// A Paho client for `cfg` speaking `version`, its callbacks turned into
/// events, and its connect options.
fn build(
    cfg: &MqttConfig,
    presence: &Presence,
    events: &Sender<LinkEvent>,
    version: u32,
) -> anyhow::Result<(mqtt::AsyncClient, mqtt::ConnectOptions)> {
    let create = mqtt::CreateOptionsBuilder::new()
        .server_uri(&cfg.server_address)
        .client_id(&cfg.client_id)
        .persistence(mqtt::PersistenceType::None)
        .mqtt_version(version)
        // Paho refuses publishes beyond this many queued commands, even
        // while connected: room for bursts, still a bound on memory.
        .max_buffered_messages(MAX_QUEUED)
        .send_while_disconnected(false)
        .finalize();
    let client = mqtt::AsyncClient::new(create).map_err(|e| {
        anyhow::anyhow!(
            "cannot create an MQTT client for {}: {e}",
            cfg.server_address
        )
    })?;
    let tx = events.clone();
    client.set_connected_callback(move |_| {
        let _ = tx.send(LinkEvent::Connected);
    });
    let tx = events.clone();
    client.set_connection_lost_callback(move |_| {
        let _ = tx.send(LinkEvent::Lost);
    });
    let tx = events.clone();
    client.set_message_callback(move |_, msg| {
        if let Some(msg) = msg {
            let _ = tx.send(LinkEvent::Message(Incoming {
                topic: msg.topic().to_string(),
                payload: msg.payload().to_vec(),
                retained: msg.retained(),
            }));
        }
    });

    let will = mqtt::Message::new_retained(&presence.topic, presence.offline, mqtt::QOS_1);
    let mut builder = if version == mqtt::MQTT_VERSION_5 {
        mqtt::ConnectOptionsBuilder::new_v5()
    } else {
        mqtt::ConnectOptionsBuilder::with_mqtt_version(version)
    };
    builder
        .keep_alive_interval(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .will_message(will);
    if version == mqtt::MQTT_VERSION_5 {
        builder.clean_start(true);
    } else {
        builder.clean_session(true);
    }
    if let Some(user) = &cfg.user {
        builder.user_name(user);
    }
    if let Some(password) = &cfg.password {
        builder.password(password.as_str());
    }
    if cfg.server_address.starts_with("ssl://") || cfg.server_address.starts_with("mqtts://") {
        builder.ssl_options(ssl_options(&cfg.tls)?);
    }
    Ok((client, builder.finalize()))
}

impl Link {
    pub fn new(
        cfg: &MqttConfig,
        presence: Presence,
        events: Sender<LinkEvent>,
    ) -> anyhow::Result<Link> {
        let (client, opts) = build(cfg, &presence, &events, mqtt::MQTT_VERSION_5)?;
        Ok(Link {
            client,
            opts,
            presence,
            connected: false,
            connecting: false,
            next_attempt: Some(Instant::now()),
            backoff: Backoff::new(RECONNECT_MIN, RECONNECT_MAX),
            filters: Vec::new(),
            events,
            refusing: false,
            config: cfg.clone(),
            version: mqtt::MQTT_VERSION_5,
            settled: false,
            v5_failure: None,
            echoes: EchoGuard::default(),
        })
    }

    /// Replaces the client by one speaking `version`.
    fn switch_version(&mut self, version: u32) -> anyhow::Result<()> {
        let (client, opts) = build(&self.config, &self.presence, &self.events, version)?;
        self.client = client;
        self.opts = opts;
        self.version = version;
        Ok(())
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Starts a connection attempt when one is due. Never waits.
    pub fn poll(&mut self, now: Instant) {
        if self.connected || self.connecting {
            return;
        }
        match self.next_attempt {
            Some(at) if at <= now => {}
            _ => return,
        }
        self.next_attempt = None;
        self.connecting = true;
        debug!("connecting to {}", self.client.server_uri());
        let tx = self.events.clone();
        // Success arrives through the connected callback (also used for
        // reconnects); a failure through this one.
        drop(self.client.connect_with_callbacks(
            self.opts.clone(),
            |_, _| {},
            move |_, _, rc| {
                let _ = tx.send(LinkEvent::ConnectFailed(mqtt::Error::from(rc).to_string()));
            },
        ));
    }

    /// Subscribes to every filter (after a connection). The caller sends
    /// its first publications before: a broker handles a connection's
    /// packets in order, and thousands of filters take it a while.
    pub fn subscribe_all(&mut self) {
        self.subscribe(&self.filters.clone());
    }

    /// Updates the link after an event; returns true when the connection
    /// has just been (re)established (birth published), so the caller can
    /// publish and then call `subscribe_all`.
    pub fn on_event(&mut self, event: &LinkEvent, now: Instant) -> bool {
        match event {
            LinkEvent::Connected => {
                self.connecting = false;
                self.connected = true;
                self.backoff.reset();
                self.v5_failure = None;
                if !self.settled && self.version != mqtt::MQTT_VERSION_5 {
                    warn!("the broker does not speak MQTT 5: using MQTT 3.1.1, with the daemon's own publications filtered out by their content");
                }
                self.settled = true;
                info!("connected to {}", self.client.server_uri());
                self.publish(
                    &self.presence.topic.clone(),
                    self.presence.online.as_bytes(),
                    true,
                );
                true
            }
            LinkEvent::ConnectFailed(why) => {
                self.connecting = false;
                let uri = self.client.server_uri();
                if !self.settled && self.version == mqtt::MQTT_VERSION_5 {
                    // Perhaps an older broker: try MQTT 3.1.1 at once.
                    self.v5_failure = Some(why.clone());
                    match self.switch_version(mqtt::MQTT_VERSION_3_1_1) {
                        Ok(()) => {
                            debug!("MQTT 5 connect to {uri} failed ({why}): trying MQTT 3.1.1");
                            self.next_attempt = Some(now);
                            return false;
                        }
                        Err(e) => warn!("{e}"),
                    }
                }
                let why = match self.v5_failure.take() {
                    Some(v5) if v5 != *why => format!("{v5} (with MQTT 3.1.1: {why})"),
                    _ => why.clone(),
                };
                if !self.settled && self.version != mqtt::MQTT_VERSION_5 {
                    if let Err(e) = self.switch_version(mqtt::MQTT_VERSION_5) {
                        warn!("{e}");
                    }
                }
                self.retry_later(now, &format!("cannot connect to {uri}: {why}"));
                false
            }
            LinkEvent::Lost => {
                self.connected = false;
                self.connecting = false;
                self.retry_later(
                    now,
                    &format!("connection to {} lost", self.client.server_uri()),
                );
                false
            }
            LinkEvent::Message(_) => false,
        }
    }

    fn retry_later(&mut self, now: Instant, why: &str) {
        let delay = self.backoff.next_delay();
        warn!("{why}; retrying in {} s", delay.as_secs());
        self.next_attempt = Some(now + delay);
    }

    /// Sets the filters to subscribe to: subscribes the new ones and
    /// unsubscribes the ones gone when connected; all of them on connect.
    pub fn set_filters(&mut self, filters: Vec<String>) {
        if self.connected {
            let gone: Vec<String> = self
                .filters
                .iter()
                .filter(|f| !filters.contains(f))
                .cloned()
                .collect();
            let new: Vec<String> = filters
                .iter()
                .filter(|f| !self.filters.contains(f))
                .cloned()
                .collect();
            if !gone.is_empty() {
                drop(self.client.unsubscribe_many(&gone));
            }
            self.subscribe(&new);
        }
        self.filters = filters;
    }

    fn subscribe(&self, filters: &[String]) {
        // MQTT 5 "no local": the broker does not send back what the daemon
        // itself publishes (replayed states, its own topics). With 3.1.1 the
        // echo guard drops those copies.
        for chunk in filters.chunks(SUBSCRIBE_CHUNK) {
            let qos = vec![mqtt::QOS_0; chunk.len()];
            if self.version == mqtt::MQTT_VERSION_5 {
                let opts = vec![mqtt::SubscribeOptions::with_no_local(); chunk.len()];
                drop(
                    self.client
                        .subscribe_many_with_options(chunk, &qos, &opts, None),
                );
            } else {
                drop(self.client.subscribe_many(chunk, &qos));
            }
        }
        debug!("subscribed to {} filters", filters.len());
    }

    /// Queues a QoS 0 publish; when the broker is away the message is
    /// dropped at once (returns false) rather than blocking the caller.
    pub fn publish(&mut self, topic: &str, payload: &[u8], retained: bool) -> bool {
        if !self.connected {
            return false;
        }
        let msg = mqtt::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(mqtt::QOS_0)
            .retained(retained)
            .finalize();
        match self.client.try_publish(msg) {
            Ok(_) => {
                self.refusing = false;
                if self.version != mqtt::MQTT_VERSION_5 && !topic.starts_with(&self.presence.base) {
                    self.echoes.published(topic, payload, Instant::now());
                }
                true
            }
            Err(e) => {
                if !self.refusing {
                    warn!(
                        "publish refused by the MQTT client ({e}): dropping until it accepts again"
                    );
                    self.refusing = true;
                }
                false
            }
        }
    }

    /// Is this incoming message the broker's copy of one of our publishes
    /// (only possible without MQTT 5)?
    pub fn is_echo(&mut self, msg: &Incoming) -> bool {
        self.version != mqtt::MQTT_VERSION_5 && self.echoes.is_echo(&msg.topic, &msg.payload)
    }

    /// Once a second: forgets publishes the broker never echoed.
    pub fn expire_echoes(&mut self, now: Instant) {
        self.echoes.expire(now);
    }

    /// Publishes the offline presence and disconnects, waiting at most
    /// `timeout` (used once, at shutdown).
    pub fn shutdown(&mut self, timeout: Duration) {
        if !self.connected {
            return;
        }
        let msg =
            mqtt::Message::new_retained(&self.presence.topic, self.presence.offline, mqtt::QOS_1);
        let _ = self.client.publish(msg).wait_for(timeout);
        let _ = self.client.disconnect(None).wait_for(timeout);
        self.connected = false;
    }
}
