//! The link's own thread, the only one that calls into Paho.
//!
//! Paho's entry points (publish, subscribe, connect, destroy) take Paho's
//! global `mqttasync_mutex`, which Paho's receive thread holds while it
//! delivers a message (it waits for room in the hand-off before reading
//! one, holding no lock: the receive gate). So the main loop must never call
//! Paho itself: it sends `Command`s here, and this thread may wait for the
//! mutex as long as it takes. Results come back as `Report`s through the
//! hand-off; publish completions through the window's counts, which
//! Paho's publish callbacks update (`Driver::publish`).
//!
//! The tokens of connections and subscriptions are futures: this thread
//! polls them with a waker that sends it a token of its own when Paho
//! completes one, so it never blocks on an outcome (only the diagnosis of
//! a failed connect blocks, on a thread of its own).

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::future::Future;
use std::pin::Pin;
use std::slice;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, Sender};
use log::{debug, error, warn};
use paho_mqtt as mqtt;
use paho_mqtt_sys as ffi;

use super::batch::{Batch, Publish};
use super::failure::{classify, diagnose, Failure, Server};
use super::handoff::{Handoff, Report};
use super::window::{Counts, MAX_MESSAGES};
use super::{Incoming, Presence, CONNECT_TIMEOUT, RECONNECT_MAX, RECONNECT_MIN};
use crate::backoff::Backoff;
use crate::config::{MqttConfig, Tls};

pub(crate) const V5: u32 = mqtt::MQTT_VERSION_5;
pub(crate) const V311: u32 = mqtt::MQTT_VERSION_3_1_1;

pub(crate) enum Command {
    /// Start a connection attempt speaking this MQTT version.
    Connect(u32),
    /// Count the publishes of the new connection here: QoS 0 in the
    /// first, QoS 1 in the second (see `Link::publish`).
    Window(Arc<Counts>, Arc<Counts>),
    /// Publishes, in order.
    Publish(Batch),
    Subscribe(Vec<String>),
    /// Subscribe to one topic without MQTT 5 "no local": the daemon's own
    /// publications on it come back too.
    SubscribeAll(String),
    Unsubscribe(Vec<String>),
    /// Hold a retained fact on a connection of its own (`Link::hold`).
    Hold(Fact),
    /// Let go of a held fact, publishing `last` first when given
    /// (`Link::release`).
    Release {
        key: &'static str,
        last: Option<Vec<u8>>,
    },
    /// Publish the offline presence when connected, disconnect, say done.
    Shutdown {
        timeout: Duration,
        done: Sender<()>,
    },
}

/// A retained fact held by a connection whose last will undoes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fact {
    /// Names the fact, and its connection (client id `<clientid>-<key>`).
    pub key: &'static str,
    pub topic: String,
    /// Published (retained, QoS 1) at each (re)connection.
    pub payload: Vec<u8>,
    /// The last will (retained, QoS 1): what the fact becomes when the
    /// connection dies.
    pub will: Vec<u8>,
    /// Published again at each reconnection (else only at the first
    /// connection and at each new `Hold`).
    pub renew: bool,
}

/// The connection holding a fact. Paho reconnects it after a loss; a
/// failed first connection is tried again here, with back-off.
struct Holder {
    fact: Fact,
    /// Publish the fact at the next connection (a claim made while the
    /// holding connection was down).
    due: Arc<AtomicBool>,
    client: mqtt::AsyncClient,
    opts: mqtt::ConnectOptions,
    retry: Option<Instant>,
    backoff: Backoff,
}

/// What a pending token stands for.
enum Awaited {
    Connect,
    Subscribe(Vec<String>),
    /// The first connection of a held fact's connection.
    Hold(&'static str),
}

/// Wakes the driver when Paho completes one of its tokens.
struct Poke(Sender<()>);

impl Wake for Poke {
    fn wake(self: Arc<Self>) {
        let _ = self.0.try_send(());
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.0.try_send(());
    }
}

/// The retained last will (also published at a clean shutdown).
struct Will {
    topic: String,
    payload: &'static str,
}

struct Driver {
    cfg: MqttConfig,
    /// The MQTT keep-alive announced to the broker.
    keep_alive: Duration,
    will: Will,
    handoff: Arc<Handoff>,
    client: mqtt::AsyncClient,
    opts: mqtt::ConnectOptions,
    version: u32,
    window: Option<(Arc<Counts>, Arc<Counts>)>,
    awaited: Vec<(mqtt::Token, Awaited)>,
    poke: Waker,
    /// A publish was refused: warned once until one is accepted again.
    refusing: bool,
    holders: HashMap<&'static str, Holder>,
}

/// Builds the first client (so that a bad address or TLS file fails at
/// start-up) and starts the thread; returns where to send commands.
pub(crate) fn spawn(
    cfg: &MqttConfig,
    keep_alive: Duration,
    presence: &Presence,
    handoff: Arc<Handoff>,
) -> anyhow::Result<Sender<Command>> {
    let will = Will {
        topic: presence.topic.clone(),
        payload: presence.offline,
    };
    let (client, opts) = build(cfg, keep_alive, &will, &handoff, V5)?;
    let (pokes_tx, pokes) = bounded(1);
    let driver = Driver {
        cfg: cfg.clone(),
        keep_alive,
        will,
        handoff,
        client,
        opts,
        version: V5,
        window: None,
        awaited: Vec::new(),
        poke: Waker::from(Arc::new(Poke(pokes_tx))),
        refusing: false,
        holders: HashMap::new(),
    };
    let (tx, commands) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("mqtt-link".into())
        .spawn(move || driver.run(&commands, &pokes))?;
    Ok(tx)
}

impl Driver {
    fn run(mut self, commands: &Receiver<Command>, pokes: &Receiver<()>) {
        loop {
            let retry = self.holders.values().filter_map(|h| h.retry).min();
            let wait = retry.map_or(Duration::from_secs(3600), |at| {
                at.saturating_duration_since(Instant::now())
            });
            select! {
                recv(commands) -> cmd => match cmd {
                    Ok(Command::Shutdown { timeout, done }) => {
                        self.shutdown(timeout);
                        let _ = done.send(());
                        return;
                    }
                    Ok(cmd) => self.execute(cmd),
                    Err(_) => return,
                },
                recv(pokes) -> _ => self.poll_awaited(),
                default(wait) => self.retry_holders(),
            }
        }
    }

    fn execute(&mut self, cmd: Command) {
        match cmd {
            Command::Connect(version) => self.connect(version),
            Command::Window(qos0, qos1) => self.window = Some((qos0, qos1)),
            Command::Publish(batch) => {
                let _held = HeldSendThread::new();
                batch.iter().for_each(|p| self.publish(p));
            }
            Command::Subscribe(filters) => self.subscribe(filters),
            Command::SubscribeAll(topic) => {
                let token = self.client.subscribe(topic.clone(), mqtt::QOS_1);
                self.await_token(token, Awaited::Subscribe(vec![topic]));
            }
            Command::Unsubscribe(filters) => drop(self.client.unsubscribe_many(&filters)),
            Command::Hold(fact) => self.hold(fact),
            Command::Release { key, last } => self.release(key, last, RELEASE_TIMEOUT),
            Command::Shutdown { .. } => unreachable!("handled by run"),
        }
    }

    fn connect(&mut self, version: u32) {
        // Outcomes still awaited belong to the connection that is gone.
        self.awaited.clear();
        if version != self.version {
            match build(
                &self.cfg,
                self.keep_alive,
                &self.will,
                &self.handoff,
                version,
            ) {
                Ok((client, opts)) => {
                    self.client = client;
                    self.opts = opts;
                    self.version = version;
                }
                Err(e) => {
                    let failure = Failure::Other(format!("{e:#}"));
                    self.handoff
                        .report(Report::ConnectFailed(Box::new(failure)));
                    return;
                }
            }
        }
        let token = self.client.connect(self.opts.clone());
        self.await_token(token, Awaited::Connect);
    }

    /// Hands a publish to Paho through its C API: Paho copies topic and
    /// payload into its command, and calls `completed` back (from its send
    /// thread once a QoS 0 publish is written, from its receive thread once
    /// a QoS 1 publish is acknowledged, or when the connection drops it),
    /// with the window's counts as context (a strong reference, given back
    /// there). The paho-mqtt crate's `try_publish` made a message, a
    /// delivery token, a copy of both for the callback and response
    /// options: a dozen allocations per publish, about a fifth of the CPU
    /// of the hello-count rounds at 10,000 devices.
    fn publish(&mut self, p: Publish<'_>) {
        let Some((qos0, qos1)) = &self.window else {
            return;
        };
        let counts = if p.qos1 { qos1 } else { qos0 };
        let mut opts = ffi::MQTTAsync_responseOptions::default();
        // Paho refuses the callbacks of the other protocol version.
        if self.version == V5 {
            opts.onSuccess5 = Some(completed_v5);
            opts.onFailure5 = Some(failed_v5);
        } else {
            opts.onSuccess = Some(completed);
            opts.onFailure = Some(failed);
        }
        opts.context = Arc::into_raw(counts.clone()).cast_mut().cast();
        // SAFETY: the handle is the live client's; topic and payload are
        // read (copied) before the call returns; `opts` is a valid response
        // options struct whose context `completed`/`failed` take back.
        let rc = unsafe {
            ffi::MQTTAsync_send(
                self.client.handle(),
                p.topic.as_ptr(),
                // Under 2 GiB: `Batch::push` takes no more.
                p.payload.len() as c_int,
                p.payload.as_ptr().cast(),
                if p.qos1 { mqtt::QOS_1 } else { mqtt::QOS_0 },
                c_int::from(p.retained),
                &mut opts,
            )
        };
        if rc == ffi::MQTTASYNC_SUCCESS as c_int {
            self.refusing = false;
            return;
        }
        // Not queued: no callback comes, the reference is given back here.
        // SAFETY: `opts.context` came from `Arc::into_raw` above.
        drop(unsafe { Arc::from_raw(opts.context.cast_const().cast::<Counts>()) });
        counts.complete();
        // Disconnected: the loss is reported (once) by the link.
        let e = mqtt::Error::from(rc);
        if !matches!(e, mqtt::Error::Disconnected) && !self.refusing {
            self.refusing = true;
            warn!("publish refused by the MQTT client ({e}): dropping until it accepts again");
        }
    }

    fn subscribe(&mut self, filters: Vec<String>) {
        // MQTT 5 "no local": the broker does not send back what the daemon
        // itself publishes. With 3.1.1 the link's echo guard drops those.
        let qos = vec![mqtt::QOS_0; filters.len()];
        let token = if self.version == V5 {
            let opts = vec![mqtt::SubscribeOptions::with_no_local(); filters.len()];
            self.client
                .subscribe_many_with_options(&filters, &qos, &opts, None)
        } else {
            self.client.subscribe_many(&filters, &qos)
        };
        self.await_token(token, Awaited::Subscribe(filters));
    }

    fn await_token(&mut self, mut token: mqtt::Token, what: Awaited) {
        match Pin::new(&mut token).poll(&mut Context::from_waker(&self.poke)) {
            Poll::Ready(result) => self.outcome(what, result),
            Poll::Pending => self.awaited.push((token, what)),
        }
    }

    fn poll_awaited(&mut self) {
        for (mut token, what) in std::mem::take(&mut self.awaited) {
            match Pin::new(&mut token).poll(&mut Context::from_waker(&self.poke)) {
                Poll::Ready(result) => self.outcome(what, result),
                Poll::Pending => self.awaited.push((token, what)),
            }
        }
    }

    /// Starts holding a fact (a fact already held as asked for is left
    /// alone; a changed one is held by a new connection).
    fn hold(&mut self, fact: Fact) {
        if let Some(h) = self.holders.get(fact.key).filter(|h| h.fact == fact) {
            if !fact.renew {
                h.due.store(true, Ordering::SeqCst);
                if h.client.is_connected() && h.due.swap(false, Ordering::SeqCst) {
                    let msg = mqtt::Message::new_retained(&fact.topic, fact.payload, mqtt::QOS_1);
                    drop(h.client.publish(msg));
                }
            }
            return;
        }
        self.release(fact.key, None, RELEASE_TIMEOUT);
        let key = fact.key;
        let due = Arc::new(AtomicBool::new(true));
        match build_holder(&self.cfg, self.keep_alive, &fact, due.clone()) {
            Ok((client, opts)) => {
                let token = client.connect(opts.clone());
                self.holders.insert(
                    key,
                    Holder {
                        fact,
                        due,
                        client,
                        opts,
                        retry: None,
                        backoff: Backoff::new(RECONNECT_MIN, RECONNECT_MAX),
                    },
                );
                self.await_token(token, Awaited::Hold(key));
            }
            Err(e) => error!("cannot hold {} ({key}): {e:#}", fact.topic),
        }
    }

    /// Lets go of a held fact: `last` published first (when connected),
    /// then a clean disconnection, so the last will is not published.
    fn release(&mut self, key: &'static str, last: Option<Vec<u8>>, timeout: Duration) {
        let Some(h) = self.holders.remove(key) else {
            return;
        };
        if !h.client.is_connected() {
            return;
        }
        if let Some(last) = last {
            let msg = mqtt::Message::new_retained(&h.fact.topic, last, mqtt::QOS_1);
            let _ = h.client.publish(msg).wait_for(timeout);
        }
        let _ = h.client.disconnect(None).wait_for(timeout);
    }

    /// Connects again the held facts whose first connection failed.
    fn retry_holders(&mut self) {
        let now = Instant::now();
        let due: Vec<&'static str> = self
            .holders
            .iter()
            .filter(|(_, h)| h.retry.is_some_and(|at| at <= now))
            .map(|(&k, _)| k)
            .collect();
        for key in due {
            let Some(h) = self.holders.get_mut(key) else {
                continue;
            };
            h.retry = None;
            let token = h.client.connect(h.opts.clone());
            self.await_token(token, Awaited::Hold(key));
        }
    }

    fn outcome(&mut self, what: Awaited, result: mqtt::Result<mqtt::ServerResponse>) {
        match (what, result) {
            (Awaited::Hold(key), Ok(_)) => {
                if let Some(h) = self.holders.get_mut(key) {
                    h.backoff.reset();
                }
            }
            (Awaited::Hold(key), Err(e)) => {
                if let Some(h) = self.holders.get_mut(key) {
                    let delay = h.backoff.next_delay();
                    debug!(
                        "cannot connect to hold {} ({e}): retrying in {} s",
                        h.fact.topic,
                        delay.as_secs()
                    );
                    h.retry = Some(Instant::now() + delay);
                }
            }
            // Success is reported by the connected callback, in order with
            // the messages and the loss that may follow.
            (Awaited::Connect, Ok(_)) => {}
            (Awaited::Connect, Err(e)) => self.connect_failed(&e),
            (Awaited::Subscribe(filters), result) => {
                let refused = refused(&filters, self.version, result);
                if !refused.is_empty() {
                    self.handoff
                        .report(Report::Refused(refused.into_boxed_slice()));
                }
            }
        }
    }

    fn connect_failed(&self, e: &mqtt::Error) {
        if let Some(failure) = classify(e, CONNECT_TIMEOUT) {
            self.handoff
                .report(Report::ConnectFailed(Box::new(failure)));
            return;
        }
        let Some(server) = Server::parse(&self.cfg.server_address) else {
            let failure = Failure::Other(e.to_string());
            self.handoff
                .report(Report::ConnectFailed(Box::new(failure)));
            return;
        };
        // Finding out why blocks (DNS, TCP connect): on a thread of its own.
        let handoff = self.handoff.clone();
        let spawned = std::thread::Builder::new()
            .name("mqtt-diagnose".into())
            .spawn(move || {
                let failure = diagnose(&server, CONNECT_TIMEOUT);
                handoff.report(Report::ConnectFailed(Box::new(failure)));
            });
        if spawned.is_err() {
            self.handoff
                .report(Report::ConnectFailed(Box::new(Failure::Other(
                    e.to_string(),
                ))));
        }
    }

    fn shutdown(&mut self, timeout: Duration) {
        let keys: Vec<&'static str> = self.holders.keys().copied().collect();
        for key in keys {
            self.release(key, None, timeout);
        }
        if !self.client.is_connected() {
            return;
        }
        let msg = mqtt::Message::new_retained(&self.will.topic, self.will.payload, mqtt::QOS_1);
        let _ = self.client.publish(msg).wait_for(timeout);
        let _ = self.client.disconnect(None).wait_for(timeout);
    }
}

/// The filters a SUBACK refused, each with the reason. Paho reports a
/// refused single-filter subscription as a failure instead of a list.
fn refused(
    filters: &[String],
    version: u32,
    result: mqtt::Result<mqtt::ServerResponse>,
) -> Vec<(String, String)> {
    match result {
        Ok(rsp) => match rsp.request_response() {
            mqtt::RequestResponse::SubscribeMany(codes) => refused_codes(filters, codes, version),
            _ => Vec::new(),
        },
        Err(mqtt::Error::ReasonCode(rc, _)) => filters
            .iter()
            .map(|f| (f.clone(), rc.to_string()))
            .collect(),
        Err(mqtt::Error::Failure) if filters.len() == 1 => {
            vec![(filters[0].clone(), "refused".to_string())]
        }
        // The connection went away: the next one subscribes again.
        Err(_) => Vec::new(),
    }
}

/// The filters whose SUBACK code is a refusal: MQTT 5 reason codes and the
/// 3.1.1 failure code are 0x80 and above.
fn refused_codes(filters: &[String], codes: &[i32], version: u32) -> Vec<(String, String)> {
    filters
        .iter()
        .zip(codes)
        .filter(|(_, &c)| c >= 0x80)
        .map(|(f, &c)| {
            let why = if version == V5 {
                mqtt::ReasonCode::from(c as u32).to_string()
            } else {
                "refused".to_string()
            };
            (f.clone(), why)
        })
        .collect()
}

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

extern "C" {
    /// Vendored patch 0012: while held, the commands this thread queues do
    /// not wake Paho's send thread one by one; the release wakes it once.
    fn MQTTAsync_holdSendThread(hold: std::os::raw::c_int);
}

/// Paho's send thread held for this thread while it queues a batch of
/// publishes: it then writes them in one pass (corked) instead of waking
/// for each and taking Paho's mutex from this thread as it queues the
/// next (a futex wake-up and three system calls per publish: cork, write,
/// uncork). Released when dropped, also on a panic.
struct HeldSendThread;

impl HeldSendThread {
    fn new() -> Self {
        // SAFETY: sets a flag of the calling thread; no pointer involved.
        unsafe { MQTTAsync_holdSendThread(1) };
        HeldSendThread
    }
}

impl Drop for HeldSendThread {
    fn drop(&mut self) {
        // SAFETY: as in `new`; wakes the send thread if a command waits.
        unsafe { MQTTAsync_holdSendThread(0) };
    }
}

/// A publish is done (`Driver::publish`): written, acknowledged ...
unsafe extern "C" fn completed(context: *mut c_void, _: *mut ffi::MQTTAsync_successData) {
    // SAFETY: the context is the reference `Driver::publish` made.
    unsafe { complete(context) }
}

/// ... or dropped (connection lost).
unsafe extern "C" fn failed(context: *mut c_void, _: *mut ffi::MQTTAsync_failureData) {
    // SAFETY: as in `completed`.
    unsafe { complete(context) }
}

unsafe extern "C" fn completed_v5(context: *mut c_void, _: *mut ffi::MQTTAsync_successData5) {
    // SAFETY: as in `completed`.
    unsafe { complete(context) }
}

unsafe extern "C" fn failed_v5(context: *mut c_void, _: *mut ffi::MQTTAsync_failureData5) {
    // SAFETY: as in `completed`.
    unsafe { complete(context) }
}

/// Counts a publish done, giving back the window's reference it held.
///
/// # Safety
/// `context` comes from `Arc::<Counts>::into_raw` and is used once.
unsafe fn complete(context: *mut c_void) {
    // SAFETY: see above.
    let counts = unsafe { Arc::from_raw(context.cast_const().cast::<Counts>()) };
    counts.complete();
}

/// Paho's message callback, on its receive thread, which holds Paho's
/// mutex meanwhile: it never waits (the receive gate does, see the
/// hand-off). The topic and payload go from Paho's message straight into
/// the hand-off's record, one allocation; then Paho's message is freed.
/// (The paho-mqtt crate's callback made a `Message` of them first: a copy
/// of topic, payload and properties, and a lock, per message.) Returns 1:
/// the message is taken.
///
/// # Safety
/// Called by Paho only: `context` is the hand-off kept alive by the
/// client's user data (`build`), `topic` and `msg` Paho's own, valid until
/// freed here.
unsafe extern "C" fn message_arrived(
    context: *mut c_void,
    topic: *mut c_char,
    topic_len: c_int,
    mut msg: *mut ffi::MQTTAsync_message,
) -> c_int {
    // SAFETY: see above; a length of 0 means a NUL-terminated topic.
    unsafe {
        let handoff = &*context.cast_const().cast::<Handoff>();
        let topic_bytes = match usize::try_from(topic_len) {
            Ok(len) if len > 0 => slice::from_raw_parts(topic.cast_const().cast::<u8>(), len),
            _ => CStr::from_ptr(topic).to_bytes(),
        };
        let m = &*msg;
        let payload = match usize::try_from(m.payloadlen) {
            Ok(len) if len > 0 && !m.payload.is_null() => {
                slice::from_raw_parts(m.payload.cast_const().cast::<u8>(), len)
            }
            _ => &[],
        };
        // MQTT topics are UTF-8 (brokers refuse others).
        if let Ok(topic) = std::str::from_utf8(topic_bytes) {
            handoff.message(Incoming::new(topic, payload, m.retained != 0));
        }
        ffi::MQTTAsync_freeMessage(&mut msg);
        ffi::MQTTAsync_free(topic.cast());
    }
    1
}

/// A Paho client for `cfg` speaking `version`, its callbacks feeding the
/// hand-off, and its connect options.
fn build(
    cfg: &MqttConfig,
    keep_alive: Duration,
    will: &Will,
    handoff: &Arc<Handoff>,
    version: u32,
) -> anyhow::Result<(mqtt::AsyncClient, mqtt::ConnectOptions)> {
    // The client keeps a reference to the hand-off as long as it lives,
    // and Paho calls back only until the client is destroyed (when its
    // last clone is dropped, before its user data): so the hand-off
    // outlives every call of `message_arrived`.
    let client = create(
        cfg,
        &cfg.client_id,
        version,
        Some(Box::new(handoff.clone())),
    )?;
    let h = handoff.clone();
    client.set_connected_callback(move |_| h.report(Report::Connected));
    let h = handoff.clone();
    client.set_connection_lost_callback(move |_| h.report(Report::Lost));
    // SAFETY: a live client, not connected yet; the context is the
    // hand-off the client's user data keeps alive (above).
    let rc = unsafe {
        ffi::MQTTAsync_setMessageArrivedCallback(
            client.handle(),
            Arc::as_ptr(handoff).cast_mut().cast(),
            Some(message_arrived),
        )
    };
    if rc != ffi::MQTTASYNC_SUCCESS as c_int {
        anyhow::bail!("cannot set the message callback of the MQTT client: {rc}");
    }

    let will = mqtt::Message::new_retained(&will.topic, will.payload, mqtt::QOS_1);
    let mut builder = if version == V5 {
        mqtt::ConnectOptionsBuilder::new_v5()
    } else {
        mqtt::ConnectOptionsBuilder::with_mqtt_version(version)
    };
    if version == V5 {
        builder.clean_start(true);
    } else {
        builder.clean_session(true);
    }
    Ok((client, options(cfg, keep_alive, will, builder)?))
}

/// How long releasing a held fact may take (its last publish, then the
/// disconnection).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The connection holding `fact`: MQTT 3.1.1 (it only publishes: any
/// broker takes it), client id `<clientid>-<key>`, `fact.will` as its last
/// will, Paho's automatic reconnection, and `fact.payload` published at
/// each (re)connection (`fact.renew`) or at the next one after `due` was
/// set.
fn build_holder(
    cfg: &MqttConfig,
    keep_alive: Duration,
    fact: &Fact,
    due: Arc<AtomicBool>,
) -> anyhow::Result<(mqtt::AsyncClient, mqtt::ConnectOptions)> {
    let client = create(cfg, &format!("{}-{}", cfg.client_id, fact.key), V311, None)?;
    let held = mqtt::Message::new_retained(&fact.topic, fact.payload.clone(), mqtt::QOS_1);
    let renew = fact.renew;
    client.set_connected_callback(move |cli| {
        if due.swap(false, Ordering::SeqCst) || renew {
            drop(cli.publish(held.clone()));
        }
    });
    let will = mqtt::Message::new_retained(&fact.topic, fact.will.clone(), mqtt::QOS_1);
    let mut builder = mqtt::ConnectOptionsBuilder::with_mqtt_version(V311);
    builder
        .clean_session(true)
        .automatic_reconnect(RECONNECT_MIN, RECONNECT_MAX);
    Ok((client, options(cfg, keep_alive, will, builder)?))
}

/// A Paho client for the broker of `cfg`: no persistence, nothing queued
/// while disconnected, and at most twice the link's window in its queue
/// (the link keeps at most `MAX_MESSAGES` there; a safety net). OpenSSL
/// is loaded first for a TLS broker (`load_tls`).
fn create(
    cfg: &MqttConfig,
    client_id: &str,
    version: u32,
    user_data: Option<mqtt::UserData>,
) -> anyhow::Result<mqtt::AsyncClient> {
    super::load_tls(cfg)?;
    let mut create = mqtt::CreateOptionsBuilder::new()
        .server_uri(&cfg.server_address)
        .client_id(client_id)
        .persistence(mqtt::PersistenceType::None)
        .mqtt_version(version)
        .max_buffered_messages(2 * MAX_MESSAGES as i32)
        .send_while_disconnected(false);
    if let Some(data) = user_data {
        create = create.user_data(data);
    }
    let create = create.finalize();
    mqtt::AsyncClient::new(create).map_err(|e| {
        anyhow::anyhow!(
            "cannot create an MQTT client for {}: {e}",
            cfg.server_address
        )
    })
}

/// Connect options shared by every connection: keep-alive, timeout, last
/// will, credentials, TLS.
fn options(
    cfg: &MqttConfig,
    keep_alive: Duration,
    will: mqtt::Message,
    mut builder: mqtt::ConnectOptionsBuilder,
) -> anyhow::Result<mqtt::ConnectOptions> {
    builder
        .keep_alive_interval(keep_alive)
        .connect_timeout(CONNECT_TIMEOUT)
        .will_message(will);
    if let Some(user) = &cfg.user {
        builder.user_name(user);
    }
    if let Some(password) = &cfg.password {
        builder.password(password.as_str());
    }
    if cfg.uses_tls() {
        builder.ssl_options(ssl_options(&cfg.tls)?);
    }
    Ok(builder.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn refused_filters_with_their_reasons() {
        let f = filters(&["a/#", "t/secret/#", "b"]);
        // A single refused filter comes back as a failure.
        assert_eq!(
            refused(
                &f[1..2],
                V5,
                Err(mqtt::Error::ReasonCode(
                    mqtt::ReasonCode::NotAuthorized,
                    mqtt::Properties::new()
                ))
            ),
            vec![("t/secret/#".to_string(), "Not authorized".to_string())]
        );
        assert_eq!(
            refused(&f[1..2], V311, Err(mqtt::Error::Failure)),
            vec![("t/secret/#".to_string(), "refused".to_string())]
        );
        // A lost connection refuses nothing.
        assert!(refused(&f, V5, Err(mqtt::Error::OperationIncomplete)).is_empty());
        assert_eq!(
            refused_codes(&f, &[0, 0x87, 1], V5),
            vec![("t/secret/#".to_string(), "Not authorized".to_string())]
        );
        assert_eq!(
            refused_codes(&f, &[0x80, 0, 0x80], V311),
            vec![
                ("a/#".to_string(), "refused".to_string()),
                ("b".to_string(), "refused".to_string())
            ]
        );
    }
}
