//! The read path of Paho C (its read-ahead buffer per socket, see
//! vendor/paho-mqtt-sys/PATCHES.md), through the real daemon and a real
//! mosquitto: many small packets arriving at once, packets cut into
//! segments at every place (fixed header, remaining length, body), payloads
//! larger than the buffer, a broker restart and a shutdown in the middle of
//! a flood; over plain TCP and TLS (cut records, large payload, burst,
//! restart).
//!
//! States are checked through their hello replay: a raw publisher sends
//! the states, then a marker, then the hello on one connection, and the
//! broker keeps that order, so whatever the verifying client receives on a
//! state topic after the marker is a replay.
//!
//! To make the broker's bytes reach the daemon in chosen pieces (mosquitto
//! reassembles whatever a publisher splits, and writes whole packets), the
//! daemon may connect through a relay on a loopback port which cuts the
//! broker's bytes into small segments, written apart.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
#[cfg(feature = "tls")]
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const S: Duration = Duration::from_secs(1);
const BASE: &str = "rp/mon";
const STATES: &str = "rp/dev/state";
const HELLO: &str = "rp/dev";
const MARKER: &str = "rp/marker";
/// Larger than Paho's read-ahead buffer (64 KiB).
const LARGE: usize = 256 * 1024;
/// mosquitto drops QoS 0 messages to a slow subscriber beyond
/// max_queued_messages (default 1000): room for the floods.
const BROKER_EXTRA: &str = "max_queued_messages 1000000\nmax_queued_bytes 0\n";
/// How long replays may take to arrive: a generous bound, but below the
/// daemon's 20 s MQTT keep-alive, whose PINGRESP would wake a socket whose
/// bytes were left behind in a read-ahead buffer (a stall, not slowness).
const STALL: Duration = Duration::from_secs(10);
/// Bytes the daemon's receive queue must hold before a stopped daemon
/// resumes: more than one read-ahead buffer.
const QUEUED: usize = 80 * 1024;

/// The daemon's configuration: device `dev` (states under `rp/dev/state/`,
/// hello `rp/dev`) and device `flood` (states under `rp/flood/state/`).
fn config(mqtt: &str) -> String {
    format!(
        "{mqtt}\n\
         [device_dev]\nwatchTimeOut=60\nwatchTopics=\"rp/dev/sensors/#\"\nstateTopics=\"{STATES}/#\"\nhelloTopic=\"{HELLO}\"\n\n\
         [device_flood]\nwatchTimeOut=60\nwatchTopics=\"rp/flood/sensors/#\"\nstateTopics=\"rp/flood/state/#\"\nhelloTopic=\"rp/flood\"\n"
    )
}

fn plain_mqtt(port: u16) -> String {
    format!("[mqtt]\nserverAddress=\"tcp://127.0.0.1:{port}\"\nbaseTopic=\"{BASE}\"\nclientid=\"iotmonitor-rp\"\n")
}

/// A payload of `len` bytes holding every byte value, in an order that
/// differs from one state to the next.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// A verifying client: the states of `dev`, the marker and `B/up`.
fn verifier(port: u16) -> Client {
    let up = format!("{BASE}/up");
    Client::connect(port, &[&format!("{STATES}/#"), MARKER, &up])
}

/// Waits until the daemon has subscribed: its second `B/up` after `client`
/// subscribed (it publishes its first one before subscribing, and the
/// broker handles a connection's packets in order).
fn wait_subscribed(client: &Client, daemon: &Iotmonitor) {
    let up = format!("{BASE}/up");
    for n in 0..2 {
        if client.wait_topic(&up, 20 * S).is_none() {
            panic!("no {up} #{} within 20 s; log:\n{}", n + 1, daemon.log());
        }
    }
}

/// The daemon configured with `mqtt`, in a temporary directory, and a
/// verifying client of `broker`, once the daemon has subscribed.
fn start(broker: &Broker, mqtt: &str) -> (tempfile::TempDir, Client, Iotmonitor) {
    let dir = workdir(&config(mqtt));
    let verify = verifier(broker.port);
    let daemon = Iotmonitor::start(dir.path(), &[]);
    wait_subscribed(&verify, &daemon);
    (dir, verify, daemon)
}

/// The packets that store `states`, then the marker and the hello of `dev`.
fn states_then_hello(states: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (topic, value) in states {
        publish(topic, value, &mut bytes);
    }
    publish(MARKER, b"states sent", &mut bytes);
    publish(HELLO, b"hello", &mut bytes);
    bytes
}

/// Collects the replays (what arrives on `dev`'s state topics after the
/// marker) until every state of `want` is in (within `STALL`), and checks
/// them byte for byte.
fn check_replays(client: &Client, want: &[(String, Vec<u8>)], daemon: &Iotmonitor) {
    let want: HashMap<&str, &[u8]> = want
        .iter()
        .map(|(t, v)| (t.as_str(), v.as_slice()))
        .collect();
    let mut got: HashMap<String, Vec<u8>> = HashMap::new();
    let mut marker = false;
    let deadline = Instant::now() + STALL;
    while want.keys().any(|t| !got.contains_key(*t)) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            let missing = want.keys().filter(|t| !got.contains_key(**t)).count();
            panic!(
                "{missing} of {} states not replayed within {STALL:?} (marker seen: {marker}); log:\n{}",
                want.len(),
                daemon.log()
            );
        };
        let Some(m) = client.next(left) else { continue };
        if m.topic == MARKER {
            marker = true;
        } else if marker && m.topic.starts_with(STATES) {
            got.insert(m.topic, m.payload);
        }
    }
    for (topic, value) in &want {
        let replayed = &got[*topic];
        assert!(
            replayed.as_slice() == *value,
            "{topic}: replayed {} bytes, not the {} bytes stored",
            replayed.len(),
            value.len()
        );
    }
}

/// Stops (SIGSTOP) a process and waits until it is stopped.
fn stop(daemon: &Iotmonitor) {
    daemon.signal(libc::SIGSTOP);
    let deadline = Instant::now() + 10 * S;
    while proc_stat(daemon.pid()).first().map(String::as_str) != Some("T") {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Bytes waiting in the receive queues of the daemon's TCP connections to
/// `port` (`rx_queue` of /proc/net/tcp, for the sockets the daemon holds).
fn receive_queue(pid: i32, port: u16) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let link = std::fs::read_link(e.ok()?.path()).ok()?;
                let link = link.to_str()?;
                Some(
                    link.strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .to_string(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let remote_port = u16::from_str_radix(f.get(2)?.rsplit(':').next()?, 16).ok()?;
            let rx = usize::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok()?;
            let inode = f.get(9)?;
            (remote_port == port && inodes.iter().any(|i| i == inode)).then_some(rx)
        })
        .sum()
}

/// Waits until the (stopped) daemon's connection to `port` has `QUEUED`
/// bytes waiting.
fn wait_queued(daemon: &Iotmonitor, port: u16) {
    let deadline = Instant::now() + 20 * S;
    loop {
        let queued = receive_queue(daemon.pid(), port);
        if queued >= QUEUED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {queued} bytes queued for the daemon"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The daemon log holds no panic.
fn assert_no_panic(daemon: &Iotmonitor) {
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
}

// ---------------------------------------------------------------------
// The relay.

/// A TCP relay on a loopback port in front of the broker's `upstream`
/// port. The daemon's bytes go to the broker unchanged. The broker's bytes
/// go to the daemon as they come or, while `split` is set, each read cut
/// into segments of 1, 1, 2, 3, 5, 8, 13, 21, 34, 55 bytes and the rest,
/// written 2 ms apart: packet headers, remaining lengths and bodies reach
/// the daemon in pieces.
struct Relay {
    port: u16,
    split: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Every socket of the relay, shut down on drop to end its threads.
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
}

const PIECES: [usize; 10] = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55];

impl Relay {
    fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let split = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (split, stop, sockets, threads) = (
                split.clone(),
                stop.clone(),
                sockets.clone(),
                threads.clone(),
            );
            std::thread::spawn(move || {
                for daemon in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(daemon) = daemon else { continue };
                    let Ok(broker) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    daemon.set_nodelay(true).unwrap();
                    broker.set_nodelay(true).unwrap();
                    {
                        let mut all = sockets.lock().unwrap();
                        all.push(daemon.try_clone().unwrap());
                        all.push(broker.try_clone().unwrap());
                    }
                    let (d2, b2) = (daemon.try_clone().unwrap(), broker.try_clone().unwrap());
                    let up = std::thread::spawn(move || pump(daemon, broker, None));
                    let split = split.clone();
                    let down = std::thread::spawn(move || pump(b2, d2, Some(split)));
                    threads.lock().unwrap().extend([up, down]);
                }
            })
        };
        Relay {
            port,
            split,
            stop,
            sockets,
            threads,
            accept: Some(accept),
        }
    }
}

/// Copies `from` to `to` until either closes; cuts the bytes into pieces
/// while `split` is set.
fn pump(mut from: TcpStream, mut to: TcpStream, split: Option<Arc<AtomicBool>>) {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        if split.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            for size in PIECES {
                if chunk.len() <= size {
                    break;
                }
                if to.write_all(&chunk[..size]).is_err() {
                    return;
                }
                chunk = &chunk[size..];
                // Written apart: the daemon reads each piece by itself.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, then end the pumps.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for s in self.sockets.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        for t in self.threads.lock().unwrap().drain(..) {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------
// A flood publisher on its own thread.

/// Publishes state updates of device `flood` (`rp/flood/state/s<k>`), 500
/// packets per write, until stopped or `total` are sent; reconnects when
/// the broker goes away.
struct Flood {
    sent: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    fn start(port: u16, total: usize) -> Flood {
        let sent = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (sent, stop) = (sent.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                let mut connection: Option<TcpStream> = None;
                let give_up = Instant::now() + 120 * S;
                while i < total && !stop.load(Ordering::SeqCst) && Instant::now() < give_up {
                    let Some(stream) = connection.as_mut() else {
                        // The broker may be restarting: try again.
                        connection = TcpStream::connect(("127.0.0.1", port))
                            .ok()
                            .map(|_| mqtt_connect(port, "rp-flood"));
                        if connection.is_none() {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        continue;
                    };
                    let mut bytes = Vec::new();
                    for k in i..i + 500 {
                        publish(
                            &format!("rp/flood/state/s{}", k % 1000),
                            k.to_string().as_bytes(),
                            &mut bytes,
                        );
                    }
                    if stream.write_all(&bytes).is_err() {
                        connection = None;
                        continue;
                    }
                    i += 500;
                    sent.store(i, Ordering::SeqCst);
                }
            })
        };
        Flood {
            sent,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until `n` messages are written.
    fn wait_sent(&self, n: usize) {
        let deadline = Instant::now() + 60 * S;
        while self.sent.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the flood did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------
// Plain TCP.

/// 3,000 small states (about 110 KB), the marker and the hello written
/// with one write while the daemon is stopped; it resumes once its receive
/// queue holds more than a read-ahead buffer, so that its reads take many
/// packets at once, and packets straddle the end of the buffer.
#[test]
fn burst_of_small_packets_read_at_once() {
    let broker = Broker::start_with(free_port(), BROKER_EXTRA);
    let (_dir, verify, mut daemon) = start(&broker, &plain_mqtt(broker.port));

    let states: Vec<(String, Vec<u8>)> = (0..3000)
        .map(|i| (format!("{STATES}/s{i}"), format!("value {i}").into_bytes()))
        .collect();
    let burst = states_then_hello(&states);
    let mut publisher = mqtt_connect(broker.port, "rp-burst");
    stop(&daemon);
    publisher.write_all(&burst).unwrap();
    wait_queued(&daemon, broker.port);
    daemon.signal(libc::SIGCONT);
    check_replays(&verify, &states, &daemon);
    assert!(daemon.terminate().success());
    assert_no_panic(&daemon);
}

/// Packets cut into segments at every place — fixed header, each byte of
/// the remaining length (1 to 3 bytes here), the body — reach the daemon
/// in pieces through the relay; then the same with nothing cut.
#[test]
fn packets_split_across_segments() {
    let broker = Broker::start_with(free_port(), BROKER_EXTRA);
    let relay = Relay::start(broker.port);
    let (_dir, verify, mut daemon) = start(&broker, &plain_mqtt(relay.port));

    // Remaining lengths of 1, 2 and 3 bytes.
    let states: Vec<(String, Vec<u8>)> = [1, 50, 127, 200, 16_500, 70_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("{STATES}/split{i}"), payload(len, i as u8)))
        .collect();
    let mut publisher = mqtt_connect(broker.port, "rp-split");
    publisher.write_all(&states_then_hello(&states)).unwrap();
    check_replays(&verify, &states, &daemon);

    relay.split.store(false, Ordering::SeqCst);
    let states: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| (format!("{STATES}/whole{i}"), payload(i + 1, 7)))
        .collect();
    publisher.write_all(&states_then_hello(&states)).unwrap();
    check_replays(&verify, &states, &daemon);
    assert!(daemon.terminate().success());
    assert_no_panic(&daemon);
}

/// Payloads larger than the read-ahead buffer (256 KiB, 100 KiB), between
/// small ones, stored and replayed byte for byte.
#[test]
fn payloads_larger_than_the_buffer() {
    let broker = Broker::start_with(free_port(), BROKER_EXTRA);
    let (_dir, verify, mut daemon) = start(&broker, &plain_mqtt(broker.port));

    let states = vec![
        (format!("{STATES}/before"), b"small".to_vec()),
        (format!("{STATES}/large"), payload(LARGE, 1)),
        (format!("{STATES}/between"), b"small too".to_vec()),
        (format!("{STATES}/medium"), payload(100 * 1024, 2)),
        (format!("{STATES}/after"), b"last".to_vec()),
    ];
    let mut publisher = mqtt_connect(broker.port, "rp-large");
    publisher.write_all(&states_then_hello(&states)).unwrap();
    check_replays(&verify, &states, &daemon);
    assert!(daemon.terminate().success());
    assert_no_panic(&daemon);
}

/// The broker is killed and restarted while a flood is being read: the
/// daemon reconnects (its read-ahead buffer went with the old socket), and
/// states sent after the reconnection are stored and replayed.
fn restart_during_a_flood(mut broker: Broker, mqtt: &str) {
    let (_dir, verify, mut daemon) = start(&broker, mqtt);
    drop(verify);

    let flood = Flood::start(broker.port, 60_000);
    flood.wait_sent(20_000);
    broker.restart();
    let verify = verifier(broker.port);
    wait_subscribed(&verify, &daemon);
    assert!(
        daemon.wait(Duration::ZERO).is_none(),
        "the daemon died; log:\n{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("lost"),
        "no connection loss logged:\n{}",
        daemon.log()
    );

    let states: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("{STATES}/after-restart{i}"), payload(10 * i + 1, 3)))
        .collect();
    let mut publisher = mqtt_connect(broker.port, "rp-after-restart");
    publisher.write_all(&states_then_hello(&states)).unwrap();
    check_replays(&verify, &states, &daemon);
    drop(flood);
    assert!(daemon.terminate().success());
    assert_no_panic(&daemon);
}

#[test]
fn broker_restart_during_a_flood() {
    let broker = Broker::start_with(free_port(), BROKER_EXTRA);
    let mqtt = plain_mqtt(broker.port);
    restart_during_a_flood(broker, &mqtt);
}

/// SIGTERM while a flood is being read: the main thread disconnects (Paho
/// closes the socket in its send thread) while Paho's receive thread reads
/// from the read-ahead buffer; the daemon stops cleanly.
#[test]
fn shutdown_during_a_flood() {
    let broker = Broker::start_with(free_port(), BROKER_EXTRA);
    let (_dir, _verify, mut daemon) = start(&broker, &plain_mqtt(broker.port));

    let flood = Flood::start(broker.port, 200_000);
    flood.wait_sent(50_000);
    assert!(daemon.terminate().success(), "log:\n{}", daemon.log());
    assert_no_panic(&daemon);
    drop(flood);
}

// ---------------------------------------------------------------------
// TLS: the records come through the same read-ahead buffer.

#[cfg(feature = "tls")]
/// The `[mqtt]` section of a TLS broker on `port` with the CA of `pki`.
fn tls_mqtt(port: u16, pki: &Path) -> String {
    format!(
        "[mqtt]\nserverAddress=\"ssl://127.0.0.1:{port}\"\nbaseTopic=\"{BASE}\"\nclientid=\"iotmonitor-rp-tls\"\ncaFile=\"{}/ca.crt\"\n",
        pki.display()
    )
}

#[cfg(feature = "tls")]
/// A broker with a TLS listener on `tls_port` (its plain listener is for
/// the test's clients).
fn tls_broker(pki: &Path, tls_port: u16) -> Broker {
    Broker::start_with(
        free_port(),
        &format!("{BROKER_EXTRA}{}", tls_listener(pki, tls_port)),
    )
}

#[cfg(feature = "tls")]
/// Over TLS through the relay: records cut into pieces, a payload larger
/// than the buffer; then, with nothing cut, a burst of small packets read
/// at once.
#[test]
fn tls_records_split_large_and_burst() {
    let pki = tempfile::tempdir().unwrap();
    let tls_port = free_port();
    let broker = tls_broker(pki.path(), tls_port);
    let relay = Relay::start(tls_port);
    let (_dir, verify, mut daemon) = start(&broker, &tls_mqtt(relay.port, pki.path()));

    let states = vec![
        (format!("{STATES}/tls-small"), payload(3, 4)),
        (format!("{STATES}/tls-200"), payload(200, 5)),
        (format!("{STATES}/tls-large"), payload(LARGE, 6)),
        (format!("{STATES}/tls-after"), b"after".to_vec()),
    ];
    let mut publisher = mqtt_connect(broker.port, "rp-tls");
    publisher.write_all(&states_then_hello(&states)).unwrap();
    check_replays(&verify, &states, &daemon);

    relay.split.store(false, Ordering::SeqCst);
    let states: Vec<(String, Vec<u8>)> = (0..3000)
        .map(|i| (format!("{STATES}/tls{i}"), format!("tls {i}").into_bytes()))
        .collect();
    let burst = states_then_hello(&states);
    stop(&daemon);
    publisher.write_all(&burst).unwrap();
    wait_queued(&daemon, relay.port);
    daemon.signal(libc::SIGCONT);
    check_replays(&verify, &states, &daemon);
    assert!(daemon.terminate().success());
    assert_no_panic(&daemon);
}

#[cfg(feature = "tls")]
/// Over TLS, the broker is restarted while a flood is being read: a new
/// TLS session on a new socket, with a new buffer.
#[test]
fn tls_broker_restart_during_a_flood() {
    let pki = tempfile::tempdir().unwrap();
    let tls_port = free_port();
    let broker = tls_broker(pki.path(), tls_port);
    restart_during_a_flood(broker, &tls_mqtt(tls_port, pki.path()));
}
