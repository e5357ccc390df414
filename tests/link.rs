//! The broker link under stress, against a real mosquitto (through a TCP
//! relay that can blackhole, drop or throttle the connection), the real
//! binary, and the library's `Link` itself for the hand-off and the
//! outbox. Waits have generous deadlines; durations are printed for the
//! record and asserted only where the behaviour has a contract (a dead
//! link noticed within 1.5 × keepAlive).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use iotmonitor::config::{MqttConfig, Tls};
use iotmonitor::link::{Limits, Link, LinkEvent, Presence};
use iotmonitor::monitor::Class;
use paho_mqtt as mqtt;

const S: Duration = Duration::from_secs(1);

/// An `[mqtt]` section for `url` (client ids without '/': rumqttd refuses
/// those).
fn mqtt_via(url: &str, base: &str, extra: &str) -> String {
    let id = base.replace('/', "-");
    format!(
        "[mqtt]\nserverAddress=\"{url}\"\nbaseTopic=\"{base}\"\nclientid=\"iotmonitor-{id}\"\n{extra}\n"
    )
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_blackholed_link_is_noticed_within_one_and_a_half_keep_alives_and_back_after_heal() {
    const KEEP_ALIVE: u64 = 10;
    let broker = Broker::start();
    let relay = Relay::start(broker.port);
    let dir = workdir(&mqtt_via(
        &relay.url(),
        "t/bh",
        &format!("keepAlive={KEEP_ALIVE}"),
    ));
    let c = Client::connect(broker.port, &["t/bh/status"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_for(15 * S, |m| m.text() == "online")
        .expect("daemon online");

    let blackholed = Instant::now();
    relay.blackhole();
    assert!(
        wait_until(Duration::from_secs(2 * KEEP_ALIVE), || daemon
            .log()
            .contains("lost")),
        "loss never noticed: {}",
        daemon.log()
    );
    let noticed = blackholed.elapsed();
    println!("blackholed link noticed after {noticed:?} (keepAlive {KEEP_ALIVE} s)");
    assert!(
        noticed <= Duration::from_secs(KEEP_ALIVE * 3 / 2),
        "noticed after {noticed:?}"
    );

    // The broker's side: it drops a client silent for 1.5 times the
    // announced keep-alive (2/5 of keepAlive), give or take its own check
    // period, and publishes the last will.
    c.wait_for(Duration::from_secs(2 * KEEP_ALIVE), |m| {
        m.text() == "offline"
    })
    .expect("the broker never published the last will");
    println!(
        "the broker's last will came {:?} after the blackhole",
        blackholed.elapsed()
    );

    let healed = Instant::now();
    relay.heal();
    c.wait_for(15 * S, |m| m.text() == "online")
        .expect("back online after heal");
    println!("reconnected {:?} after the heal", healed.elapsed());

    let log = daemon.log();
    assert_eq!(count(&log, "lost"), 1, "one line per loss: {log}");
    assert!(!log.contains("Client: 0x"), "Paho's own line: {log}");
    assert!(daemon.terminate().success());
}

#[test]
fn a_dropped_connection_is_retried_on_its_own_timer() {
    let broker = Broker::start();
    let relay = Relay::start(broker.port);
    let dir = workdir(&mqtt_via(&relay.url(), "t/drop", ""));
    let c = Client::connect(broker.port, &["t/drop/status"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_for(15 * S, |m| m.text() == "online")
        .expect("daemon online");
    let dropped = Instant::now();
    relay.drop_connections();
    c.wait_for(15 * S, |m| m.text() == "online")
        .expect("back online");
    // "retrying in 1 s" means 1 s, not "at the next tick after 1 s".
    println!(
        "reconnected {:?} after the connection was dropped",
        dropped.elapsed()
    );
    let log = daemon.log();
    assert!(log.contains("lost; retrying in 1 s"), "{log}");
    assert_eq!(count(&log, "lost"), 1, "{log}");
    assert!(daemon.terminate().success());
}

#[test]
fn connection_failures_say_what_happened() {
    // Nothing listens on that port.
    let refused = workdir(&mqtt_via(
        &format!("tcp://127.0.0.1:{}", free_port()),
        "t/cf1",
        "",
    ));
    // Anonymous clients are not authorised.
    let closed = Broker::start_with(free_port(), "allow_anonymous false");
    let unauthorised = workdir(&mqtt_via(&closed.url(), "t/cf2", ""));
    // TLS to a plain MQTT listener.
    let plain = Broker::start();
    let tls = workdir(&mqtt_via(
        &format!("ssl://127.0.0.1:{}", plain.port),
        "t/cf3",
        "",
    ));
    // No answer at all.
    let relay = Relay::start(plain.port);
    relay.blackhole();
    let silent = workdir(&mqtt_via(&relay.url(), "t/cf4", ""));

    let cases = [
        (refused, "connection refused"),
        (unauthorised, "refused by the broker: not authorized"),
        (tls, "TLS handshake failed"),
        (silent, "timed out"),
    ];
    let mut daemons: Vec<Iotmonitor> = cases
        .iter()
        .map(|(dir, _)| Iotmonitor::start(dir.path(), &[]))
        .collect();
    for (d, (_, want)) in daemons.iter().zip(&cases) {
        assert!(
            wait_until(30 * S, || d.log().contains(want)),
            "'{want}' not logged: {}",
            d.log()
        );
        let log = d.log();
        assert!(log.contains("cannot connect"), "{log}");
        assert!(!log.contains("General failure"), "{log}");
    }
    for d in &mut daemons {
        assert!(d.terminate().success());
    }
}

#[cfg(feature = "broker")]
#[test]
fn follows_a_broker_replaced_by_an_mqtt_3_only_one_and_back() {
    let mosquitto = Broker::start();
    let relay = Relay::start(mosquitto.port);
    let dir = workdir(&mqtt_via(&relay.url(), "t/sw", ""));
    let c5 = Client::connect(mosquitto.port, &["t/sw/up"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c5.wait_topic("t/sw/up", 15 * S).expect("up on mosquitto");

    // The embedded broker's device listener speaks MQTT 3.1.1 only.
    let v3_port = free_port();
    let host = workdir(&format!(
        "[mqtt]\nbaseTopic=\"t/swhost\"\n[broker]\nlisten=\"127.0.0.1:{v3_port}\"\n"
    ));
    let mut host = Iotmonitor::start(host.path(), &[]);
    let c3 = Client::connect(v3_port, &["t/sw/up"]);
    let switched = Instant::now();
    relay.retarget(v3_port);
    relay.drop_connections();
    assert!(
        c3.wait_topic("t/sw/up", 30 * S).is_some(),
        "not on the MQTT 3.1.1 broker: {}",
        daemon.log()
    );
    println!(
        "on the 3.1.1 broker {:?} after the switch",
        switched.elapsed()
    );
    assert!(
        daemon.log().contains("does not speak MQTT 5"),
        "{}",
        daemon.log()
    );

    // And back: every new series of attempts starts with MQTT 5.
    relay.retarget(mosquitto.port);
    relay.drop_connections();
    let _ = c5.collect(Duration::from_millis(100));
    c5.wait_topic("t/sw/up", 30 * S).expect("back on mosquitto");
    let log = daemon.log();
    let last = log
        .lines()
        .rfind(|l| l.contains("connected to"))
        .unwrap_or_default();
    assert!(!last.contains("3.1.1"), "still MQTT 3.1.1: {log}");
    assert!(daemon.terminate().success());
    assert!(host.terminate().success());
}

#[test]
fn refused_subscriptions_are_reported_with_their_filters() {
    let plugin = std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("mosquitto_dynamic_security.so"))
        .chain([std::path::PathBuf::from(
            "/usr/lib/mosquitto_dynamic_security.so",
        )])
        .find(|p| p.exists())
        .expect("mosquitto's dynamic security plugin (package mosquitto) is not installed");
    let dir = tempfile::tempdir().unwrap();
    let dynsec = dir.path().join("dynsec.json");
    std::fs::write(
        &dynsec,
        r#"{
  "defaultACLAccess": {"publishClientSend": true, "publishClientReceive": true, "subscribe": true, "unsubscribe": true},
  "clients": [],
  "groups": [{"groupname": "anonymous", "roles": [{"rolename": "limited"}], "clients": []}],
  "roles": [{"rolename": "limited", "acls": [{"acltype": "subscribePattern", "topic": "t/secret/#", "priority": 0, "allow": false}]}],
  "anonymousGroup": "anonymous"
}"#,
    )
    .unwrap();
    let broker = Broker::start_with(
        free_port(),
        &format!(
            "plugin {}\nplugin_opt_config_file {}",
            plugin.display(),
            dynsec.display()
        ),
    );
    let http = free_port();
    let work = workdir(&format!(
        "{}[http]\nbind=\"127.0.0.1:{http}\"\n[device_open]\nwatchTopics=\"t/rs/open/#\"\n[device_hidden]\nwatchTopics=\"t/secret/hidden/#\"\n",
        mqtt_section(broker.port, "t/rs")
    ));
    let c = Client::connect(broker.port, &["t/rs/up"]);
    let mut daemon = Iotmonitor::start(work.path(), &[]);
    c.wait_topic("t/rs/up", 15 * S).expect("up");
    assert!(
        wait_until(10 * S, || daemon.log().contains("refused 1 subscription")),
        "{}",
        daemon.log()
    );
    let log = daemon.log();
    let line = log.lines().find(|l| l.contains("refused 1")).unwrap();
    assert!(
        line.contains("t/secret/hidden/# (Not authorized)"),
        "{line}"
    );
    assert!(!line.contains("t/rs/open"), "{line}");
    // Counted in /metrics, named by /status.
    let (_, _, metrics) = http_get(http, "/metrics");
    assert!(
        metrics.contains("iotmonitor_subscriptions_refused 1\n"),
        "{metrics}"
    );
    let (_, head, _) = http_get(http, "/status");
    assert!(
        head.contains("X-Iotmonitor-Subscriptions-Refused: t/secret/hidden/#"),
        "{head}"
    );
    assert!(daemon.terminate().success());
}

/// The `[mqtt]` configuration of a library-level link.
fn link_config(port: u16, client_id: &str) -> MqttConfig {
    MqttConfig {
        server_address: format!("tcp://127.0.0.1:{port}"),
        base_topic: format!("t/{client_id}"),
        user: None,
        password: None,
        client_id: client_id.to_string(),
        retain_states: false,
        keep_alive: 20,
        tls: Tls::default(),
    }
}

fn presence(base: &str) -> Presence {
    Presence {
        base: format!("{base}/"),
        topic: format!("{base}/status"),
        online: "online",
        offline: "offline",
        owner: None,
    }
}

/// A library `Link` (client id and base topic `t/<name>`) connected to a
/// new broker through a relay, and a client of the broker itself
/// subscribed to `watch`.
struct Relayed {
    _broker: Broker,
    relay: Relay,
    link: Link,
    watcher: Client,
    events: Vec<LinkEvent>,
}

impl Relayed {
    fn connect(name: &str, watch: &str) -> Relayed {
        let broker = Broker::start();
        let relay = Relay::start(broker.port);
        let cfg = link_config(relay.port, name);
        let mut link = Link::new(&cfg, presence(&format!("t/{name}"))).unwrap();
        let watcher = Client::connect(broker.port, &[watch]);
        let mut events = Vec::new();
        wait_connected(&mut link, &mut events);
        Relayed {
            _broker: broker,
            relay,
            link,
            watcher,
            events,
        }
    }
}

/// A minimal main loop over a library `Link`: waits for the wake token or
/// 10 ms, connects when due, takes at most `burst` events.
fn pass(link: &mut Link, events: &mut Vec<LinkEvent>, burst: usize) {
    let wake = link.wake().clone();
    let _ = wake.recv_timeout(Duration::from_millis(10));
    let now = Instant::now();
    link.poll(now);
    link.drain(events, burst, now);
}

/// Passes of the loop until `link` is connected (30 s at most).
fn wait_connected(link: &mut Link, events: &mut Vec<LinkEvent>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !link.is_connected() {
        assert!(Instant::now() < deadline, "never connected");
        pass(link, events, 256);
    }
}

/// A connected Paho client of `uri` (no persistence), client id
/// `<name>-<pid>`, buffering up to `buffered` publishes, with at most
/// `inflight` QoS 1 publishes unacknowledged and a 10-minute keep-alive.
fn paho_client(uri: String, name: &str, buffered: usize, inflight: i32) -> mqtt::AsyncClient {
    let cli = mqtt::AsyncClient::new(
        mqtt::CreateOptionsBuilder::new()
            .server_uri(uri)
            .client_id(format!("{name}-{}", std::process::id()))
            .max_buffered_messages(buffered as i32)
            .persistence(mqtt::PersistenceType::None)
            .finalize(),
    )
    .unwrap();
    let opts = mqtt::ConnectOptionsBuilder::new()
        .keep_alive_interval(Duration::from_secs(600))
        .max_inflight(inflight)
        .finalize();
    cli.connect(opts).wait().unwrap();
    cli
}

/// A fast QoS 0 publisher (Paho's async client, no waiting per message).
fn flood(port: u16, topic: &str, n: usize, payload: usize) {
    let cli = paho_client(format!("tcp://127.0.0.1:{port}"), "flood", 100_000, 65_535);
    let pad = "x".repeat(payload);
    let mut last = None;
    for i in 0..n {
        let msg = mqtt::Message::new(topic, format!("{i} {pad}"), mqtt::QOS_0);
        loop {
            match cli.try_publish(msg.clone()) {
                Ok(tok) => {
                    last = Some(tok);
                    break;
                }
                Err(_) => std::thread::yield_now(),
            }
        }
    }
    if let Some(tok) = last {
        tok.wait().unwrap();
    }
    cli.disconnect(None).wait().unwrap();
}

/// The hand-off is bounded: with a 16 KiB limit, a 50,000-message flood
/// holds Paho's receive thread back many times while the loop publishes
/// about 100,000 messages. A loop publishing through Paho itself would
/// deadlock here (the loop waiting for Paho's mutex, held by the receive
/// thread waiting for the loop); the link delivers every message, in
/// order, and its publishes reach the broker.
#[test]
fn a_flood_while_the_main_loop_publishes_never_deadlocks_nor_loses_a_message() {
    const N: usize = 50_000;
    let broker = Broker::start_with(free_port(), "max_queued_messages 0");
    let cfg = link_config(broker.port, "handoff");
    let mut link = Link::with_limits(
        &cfg,
        presence("t/handoff"),
        Limits {
            handoff_bytes: 16 << 10,
        },
    )
    .unwrap();
    link.set_filters(vec!["t/flood".into()]);
    let watcher = Client::connect(broker.port, &["t/handoff/out/last"]);
    let mut events = Vec::new();
    let mut subscribed = false;
    let mut flooder = None;
    let mut next = 0usize;
    let mut published = 0usize;
    let deadline = Instant::now() + Duration::from_secs(180);
    while next < N {
        assert!(Instant::now() < deadline, "stuck at message {next}");
        pass(&mut link, &mut events, 256);
        if subscribed && flooder.is_none() {
            // Until the link shows it is subscribed.
            watcher.publish("t/flood", b"ready");
        }
        for ev in events.drain(..) {
            match ev {
                LinkEvent::Connected => {
                    link.subscribe_all();
                    subscribed = true;
                }
                LinkEvent::Message(m) if m.payload() == b"ready" => {
                    if flooder.is_none() {
                        let port = broker.port;
                        flooder = Some(std::thread::spawn(move || flood(port, "t/flood", N, 100)));
                    }
                }
                LinkEvent::Message(m) => {
                    let text = std::str::from_utf8(m.payload()).unwrap();
                    let i: usize = text.split(' ').next().unwrap().parse().unwrap();
                    assert_eq!(i, next, "message lost or out of order");
                    next += 1;
                }
                LinkEvent::Lost
                | LinkEvent::SubscriptionsRefused(_)
                | LinkEvent::TakenOver { .. } => {
                    panic!("unexpected {ev:?}")
                }
            }
        }
        // The loop publishes a lot meanwhile, as replays do.
        while link.is_connected() && link.has_room() && published < 20 * next / 10 + 1000 {
            let topic = format!("t/handoff/out/{}", published % 5000);
            assert!(link.publish(&topic, b"state", false, Class::Replay));
            published += 1;
        }
    }
    flooder.unwrap().join().unwrap();
    assert!(link.publish("t/handoff/out/last", b"done", false, Class::Replay));
    let stats = link.stats();
    println!("published {published}, {stats:?}");
    assert!(
        stats.handoff_waits > 0,
        "the flood never reached the bound: {stats:?}"
    );
    for _ in 0..500 {
        pass(&mut link, &mut events, 256);
        if watcher.next(Duration::from_millis(1)).is_some() {
            link.shutdown(S);
            return;
        }
    }
    panic!(
        "the last publish never reached the broker: {:?}",
        link.stats()
    );
}

/// With the broker link throttled to 2 KB/s, 3,000 devices' worth of
/// repeats and alerts every second stay bounded in the outbox: repeats are
/// replaced or dropped and counted, alerts all reach the broker once the
/// link is fast again, with their latest payload.
#[test]
fn a_slow_broker_bounds_the_outbox_and_never_drops_an_alert() {
    const DEVICES: usize = 3000;
    const SECONDS: u32 = 10;
    let mut r = Relayed::connect("slow", "t/slow/expired/#");
    r.relay.throttle(2000);
    // Loopback TCP buffers megabytes before a slow reader holds the sender
    // back: large alerts get there within seconds.
    let pad = "x".repeat(300);
    let mut max_outbox = 0;
    let mut max_in_flight = (0, 0);
    for second in 0..SECONDS {
        r.link.publish(
            "t/slow/up",
            second.to_string().as_bytes(),
            false,
            Class::Repeat,
        );
        for d in 0..DEVICES {
            let count = format!("{second}");
            r.link.publish(
                &format!("t/slow/helloTopicCount/d{d}"),
                count.as_bytes(),
                false,
                Class::Repeat,
            );
            r.link.publish(
                &format!("t/slow/expired/d{d}"),
                format!("{} {pad}", 1_700_000_000 + second).as_bytes(),
                false,
                Class::Alert,
            );
        }
        let tick = Instant::now();
        while tick.elapsed() < S {
            pass(&mut r.link, &mut r.events, 256);
            let s = r.link.stats();
            max_outbox = max_outbox.max(s.outbox_bytes);
            max_in_flight = (
                max_in_flight.0.max(s.in_flight_messages),
                max_in_flight.1.max(s.in_flight_bytes),
            );
        }
    }
    let stats = r.link.stats();
    println!("throttled: {stats:?}, max outbox {max_outbox} B, max in flight {max_in_flight:?}");
    assert!(stats.dropped_repeats > 0, "{stats:?}");
    assert!(max_in_flight.0 <= 1000 && max_in_flight.1 <= 512 << 10);
    assert!(max_outbox <= 2 << 20, "outbox {max_outbox} B");

    r.relay.heal();
    let mut latest: HashMap<String, String> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let last = (1_700_000_000 + SECONDS - 1).to_string();
    while latest.values().filter(|v| **v == last).count() < DEVICES {
        assert!(
            Instant::now() < deadline,
            "{} alerts with the latest payload, {:?}",
            latest.len(),
            r.link.stats()
        );
        pass(&mut r.link, &mut r.events, 256);
        while let Some(m) = r.watcher.next(Duration::ZERO) {
            let epoch = m.text().split(' ').next().unwrap_or_default().to_string();
            latest.insert(m.topic.clone(), epoch);
        }
    }
    r.link.shutdown(S);
}

/// The TCP sockets of this process connected to `port`: how many, and
/// which of them are corked (`TCP_CORK`).
fn broker_sockets(port: u16) -> (usize, Vec<i32>) {
    let (mut found, mut corked) = (0, Vec::new());
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: plain queries on a descriptor number (a descriptor closed
        // or reused by another test meanwhile fails them or is skipped),
        // into buffers of the sizes given.
        let (peer, on) = unsafe {
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let rc = libc::getpeername(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut len);
            if rc != 0 || i32::from(addr.sin_family) != libc::AF_INET {
                continue;
            }
            let mut on: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            let rc = libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_CORK,
                (&mut on as *mut libc::c_int).cast(),
                &mut len,
            );
            if rc != 0 {
                continue;
            }
            (u16::from_be(addr.sin_port), on)
        };
        if peer == port {
            found += 1;
            if on != 0 {
                corked.push(fd);
            }
        }
    }
    (found, corked)
}

/// Bursts of `BURST` publishes through `link`, each waited for at
/// `watcher` (whole and in order), until a burst is seen with a corked
/// socket to `port` or after 50 bursts; then none of the `sockets` (at
/// least) to `port` may stay corked. Returns how many times one was seen
/// corked.
fn bursts(link: &mut Link, watcher: &Client, port: u16, sockets: usize) -> usize {
    const BURST: usize = 2000;
    let mut events = Vec::new();
    wait_connected(link, &mut events);
    let (mut sent, mut received, mut corked_seen) = (0usize, 0usize, 0usize);
    let mut round = 0;
    while corked_seen == 0 && round < 50 {
        round += 1;
        let end = sent + BURST;
        while sent < end {
            if link.has_room() {
                let topic = format!("t/cork/out/{sent}");
                assert!(link.publish(&topic, sent.to_string().as_bytes(), false, Class::Replay));
                sent += 1;
                if sent % 50 == 0 && !broker_sockets(port).1.is_empty() {
                    corked_seen += 1;
                }
            } else {
                pass(link, &mut events, 256);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while received < sent {
            assert!(Instant::now() < deadline, "{received} of {sent} arrived");
            pass(link, &mut events, 256);
            while let Some(m) = watcher.next(Duration::ZERO) {
                assert_eq!(m.text(), received.to_string(), "lost or out of order");
                received += 1;
            }
        }
    }
    println!("{round} bursts of {BURST}, seen corked {corked_seen} times");
    assert!(
        wait_until(Duration::from_secs(5), || {
            let (found, corked) = broker_sockets(port);
            found >= sockets && corked.is_empty()
        }),
        "left corked: {:?}",
        broker_sockets(port)
    );
    corked_seen
}

/// Paho's send thread corks the socket while more publishes are queued and
/// uncorks it when its queue is empty or after 64 (vendored patch 0005),
/// and gathers what is written into it meanwhile for one writev() at the
/// uncork (patch 0008): bursts are seen corked, arrive whole and in order,
/// and once a burst is written no socket is left corked (the kernel would
/// otherwise hold the tail of the last burst for up to 200 ms, and any
/// lone publish after it).
#[test]
fn bursts_of_publishes_are_corked_and_no_socket_is_left_corked() {
    let broker = Broker::start_with(free_port(), "max_queued_messages 0");
    let cfg = link_config(broker.port, "cork");
    let mut link = Link::new(&cfg, presence("t/cork")).unwrap();
    let watcher = Client::connect(broker.port, &["t/cork/out/#"]);
    assert!(
        bursts(&mut link, &watcher, broker.port, 2) > 0,
        "never corked"
    );
    link.shutdown(S);
}

/// The same over TLS, whose writes (SSL_write) are not gathered: the
/// kernel's cork alone holds a burst.
#[cfg(feature = "tls")]
#[test]
fn bursts_of_publishes_over_tls_are_corked_and_no_socket_is_left_corked() {
    let pki = tempfile::tempdir().unwrap();
    let tls_port = free_port();
    let broker = Broker::start_with(
        free_port(),
        &format!(
            "max_queued_messages 0\n{}",
            tls_listener(pki.path(), tls_port)
        ),
    );
    let mut cfg = link_config(broker.port, "cork-tls");
    cfg.server_address = format!("ssl://127.0.0.1:{tls_port}");
    cfg.tls.ca_file = Some(pki.path().join("ca.crt"));
    let mut link = Link::new(&cfg, presence("t/cork")).unwrap();
    let watcher = Client::connect(broker.port, &["t/cork/out/#"]);
    assert!(bursts(&mut link, &watcher, tls_port, 1) > 0, "never corked");
    link.shutdown(S);
}

/// Paho takes each QoS 1 message id from a bitmap of the ids its client
/// may hold instead of walking its queues (vendored patch 0007). With the
/// broker out of reach (a blackholed relay), every id from 1 to 65,535 ends
/// up held by a queued publish: the next publish must be refused for want
/// of an id (a bitmap that called a held id free would hand it out again).
/// Once the relay heals, every publish is acknowledged, and publishes after
/// the wrap-around to id 1 (a rebuilt bitmap) are acknowledged too.
#[test]
fn message_ids_stay_unique_through_the_whole_id_space_and_its_wrap_around() {
    const IDS: usize = 65_535;
    let broker = Broker::start();
    let relay = Relay::start(broker.port);
    let cli = paho_client(relay.url(), "ids", 2 * IDS, 65_535);
    relay.blackhole();
    let message = |i: usize| mqtt::Message::new("t/ids", i.to_string(), mqtt::QOS_1);
    let mut tokens = Vec::with_capacity(IDS);
    for i in 0..IDS {
        match cli.try_publish(message(i)) {
            Ok(tok) => tokens.push(tok),
            Err(e) => panic!("publish {i} of {IDS} refused: {e}"),
        }
    }
    match cli.try_publish(message(IDS)) {
        Err(mqtt::Error::Publish(rc, _)) => {
            assert_eq!(
                rc, -10,
                "refused, but not for want of an id (MQTTASYNC_NO_MORE_MSGIDS)"
            )
        }
        Err(e) => panic!("refused, but not for want of an id: {e}"),
        Ok(_) => panic!("publish {IDS} got an id while all {IDS} were held"),
    }
    relay.heal();
    for (i, tok) in tokens.into_iter().enumerate() {
        if let Err(e) = tok.wait_for(Duration::from_secs(60)) {
            panic!("publish {i} not acknowledged: {e}");
        }
    }
    for i in 0..100 {
        if let Err(e) = cli
            .try_publish(message(IDS + i))
            .and_then(|tok| tok.wait_for(Duration::from_secs(30)))
        {
            panic!("publish {i} after the wrap-around: {e}");
        }
    }
    cli.disconnect(None).wait().unwrap();
}

/// Packets written into a corked socket are gathered and written together
/// (vendored patch 0008); through a slow link the socket fills, writes are
/// partial and what is left waits as a pending write. Bursts of mixed
/// sizes (some larger than the 16 KiB gathering buffer) through a
/// throttled relay arrive whole and in order.
#[test]
fn gathered_bursts_through_a_slow_link_arrive_whole_and_in_order() {
    const N: usize = 3000;
    const SIZES: [usize; 5] = [3, 120, 1500, 20_000, 40];
    let mut r = Relayed::connect("gather", "t/gather/out/#");
    r.relay.throttle(512 << 10);
    let payload = |i: usize| {
        let mut p = format!("{i}:").into_bytes();
        p.resize(SIZES[i % SIZES.len()].max(p.len()), b'a' + (i % 26) as u8);
        p
    };
    let (mut sent, mut received) = (0usize, 0usize);
    let deadline = Instant::now() + Duration::from_secs(120);
    while received < N {
        assert!(Instant::now() < deadline, "{received} of {N} arrived");
        while sent < N && r.link.has_room() {
            let topic = format!("t/gather/out/{sent}");
            assert!(r.link.publish(&topic, &payload(sent), false, Class::Replay));
            sent += 1;
        }
        pass(&mut r.link, &mut r.events, 256);
        while let Some(m) = r.watcher.next(Duration::ZERO) {
            assert!(
                m.payload == payload(received),
                "message {received} lost, cut or out of order"
            );
            received += 1;
        }
    }
    r.link.shutdown(S);
}

/// Paho takes the first command it may send from its queue, skipping
/// every later command of a client whose earlier one must wait (a QoS 1
/// publish beyond the in-flight limit), and stops looking once every
/// client waits (vendored patch 0009). A client held at its in-flight
/// limit keeps its QoS 0 publishes behind its QoS 1 ones, in order, and
/// does not hold up another client of the same process.
#[test]
fn a_client_at_its_in_flight_limit_holds_its_own_queue_not_another_clients() {
    const N: usize = 200;
    let broker = Broker::start();
    let relay = Relay::start(broker.port);
    let watcher = Client::connect(broker.port, &["t/held/#", "t/free/#"]);
    let held = paho_client(relay.url(), "held", 10 * N, 2);
    let free = paho_client(broker.url(), "free", 10 * N, 65_535);
    relay.blackhole();
    // Two QoS 1 publishes fill the window; the rest wait in Paho's queue,
    // QoS 1 and QoS 0 alternating.
    let qos = |i: usize| if i % 2 == 0 { mqtt::QOS_1 } else { mqtt::QOS_0 };
    let mut tokens = Vec::new();
    for i in 0..N {
        let msg = mqtt::Message::new("t/held", i.to_string(), qos(i));
        tokens.push(held.try_publish(msg).unwrap());
    }
    for i in 0..N {
        drop(free.try_publish(mqtt::Message::new("t/free", i.to_string(), mqtt::QOS_0)));
    }
    // Every publish of `who` (its topic `t/<who>`) arrives, in order.
    let all_arrive = |who: &str| {
        let topic = format!("t/{who}");
        for i in 0..N {
            let m = watcher
                .wait_for(Duration::from_secs(30), |m| m.topic == topic)
                .unwrap_or_else(|| panic!("the {who} client's publish {i} held up or lost"));
            assert_eq!(
                m.text(),
                i.to_string(),
                "the {who} client's publishes in order"
            );
        }
    };
    all_arrive("free");
    relay.heal();
    all_arrive("held");
    for (i, tok) in tokens.into_iter().enumerate() {
        if let Err(e) = tok.wait_for(Duration::from_secs(30)) {
            panic!("publish {i} of the held client: {e}");
        }
    }
    held.disconnect(None).wait().unwrap();
    free.disconnect(None).wait().unwrap();
}

/// Paho's receive thread wakes its send thread for an acknowledgement only
/// when commands are queued (vendored patch 0011): publishes waiting at the
/// in-flight limit must still leave as soon as acknowledgements free room.
/// Left to the send thread's one-second wait, 300 QoS 1 publishes two at a
/// time would take about 150 s.
#[test]
fn acknowledgements_release_publishes_queued_at_the_in_flight_limit() {
    const N: usize = 300;
    let broker = Broker::start();
    let watcher = Client::connect(broker.port, &["t/acked"]);
    let client = paho_client(broker.url(), "acked", 10 * N, 2);
    let tokens: Vec<_> = (0..N)
        .map(|i| {
            let msg = mqtt::Message::new("t/acked", i.to_string(), mqtt::QOS_1);
            client.try_publish(msg).unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, tok) in tokens.into_iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = tok.wait_for(left) {
            panic!("publish {i} of {N} not acknowledged within 30 s: {e}");
        }
    }
    for i in 0..N {
        let m = watcher
            .wait_for(Duration::from_secs(10), |m| m.topic == "t/acked")
            .unwrap_or_else(|| panic!("publish {i} lost"));
        assert_eq!(m.text(), i.to_string(), "in order");
    }
    client.disconnect(None).wait().unwrap();
}

/// The link thread holds Paho's send thread while it queues a batch of
/// publishes (vendored patch 0012), so that the batch is written in one
/// pass: the release must wake the send thread. Without that wake-up each
/// batch waits for the send thread's one-second timeout, and 100 batches
/// of one publish, each awaited before the next, take about 50 s.
#[test]
fn a_held_batch_of_publishes_leaves_when_the_link_thread_releases_it() {
    const N: usize = 100;
    let broker = Broker::start();
    let cfg = link_config(broker.port, "held");
    let mut link = Link::new(&cfg, presence("t/held")).unwrap();
    let watcher = Client::connect(broker.port, &["t/held/out"]);
    let mut events = Vec::new();
    wait_connected(&mut link, &mut events);
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..N {
        assert!(link.publish("t/held/out", i.to_string().as_bytes(), false, Class::Replay));
        // The pass hands the batch (this one publish) to the link thread.
        pass(&mut link, &mut events, 256);
        let left = deadline.saturating_duration_since(Instant::now());
        let m = watcher
            .wait_for(left, |m| m.topic == "t/held/out")
            .unwrap_or_else(|| panic!("publish {i} of {N} not delivered within 20 s"));
        assert_eq!(m.text(), i.to_string(), "in order");
    }
}

/// Retained facts (availability announcements) go at QoS 1, which the
/// broker acknowledges a receive maximum at a time (20 with mosquitto).
/// Through a relay that holds everything 100 ms each way, 500 of them take
/// seconds to be acknowledged: an alert published after them must not wait
/// behind them in Paho's queue (it did when both shared one window: it
/// came after all 500), and none of them is lost.
#[test]
fn an_alert_overtakes_qos1_announcements_waiting_for_acknowledgements() {
    const FACTS: usize = 500;
    let mut r = Relayed::connect("lane", "t/lane/#");
    r.relay.delay(Duration::from_millis(100));
    for d in 0..FACTS {
        r.link.publish(
            &format!("t/lane/availability/d{d}"),
            b"online",
            true,
            Class::Retained,
        );
    }
    let sent = Instant::now();
    r.link
        .publish("t/lane/expired/watchme", b"1700000000", false, Class::Alert);
    let mut facts = std::collections::HashSet::new();
    let mut before_alert = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while before_alert.is_none() || facts.len() < FACTS {
        assert!(
            Instant::now() < deadline,
            "{} of {FACTS} announcements, alert {}: {:?}",
            facts.len(),
            if before_alert.is_some() {
                "seen"
            } else {
                "not seen"
            },
            r.link.stats()
        );
        pass(&mut r.link, &mut r.events, 256);
        while let Some(m) = r.watcher.next(Duration::from_millis(1)) {
            if m.topic == "t/lane/expired/watchme" {
                before_alert = Some((facts.len(), sent.elapsed()));
            } else if m.topic.starts_with("t/lane/availability/") {
                facts.insert(m.topic);
            }
        }
    }
    let (overtaken, took) = before_alert.unwrap();
    println!(
        "the alert came after {overtaken} of {FACTS} announcements, {took:?} after it was published; \
         all {FACTS} after {:?}",
        sent.elapsed()
    );
    // At most the link's QoS 1 window (20) went before it.
    assert!(
        overtaken <= 40,
        "the alert waited behind {overtaken} announcements"
    );
    assert!(took < 2 * S, "the alert took {took:?}");
    assert!(
        wait_until(10 * S, || {
            pass(&mut r.link, &mut r.events, 256);
            r.link.is_idle()
        }),
        "{:?}",
        r.link.stats()
    );
    r.link.shutdown(S);
}

/// The daemon through a relay that holds everything 100 ms each way: 600
/// devices heard at once make 600 availability announcements (QoS 1, which
/// mosquitto acknowledges 20 at a time: seconds of them). Meanwhile the
/// alert of a silent device comes within a second of its deadline, and in
/// the end every announcement arrives.
#[test]
fn a_storm_of_availability_announcements_does_not_delay_an_alert() {
    const DEVICES: usize = 600;
    let broker = Broker::start();
    let relay = Relay::start(broker.port);
    let mut cfg = mqtt_via(&relay.url(), "t/storm", "");
    cfg.push_str("\n[device_watchme]\nwatchTopics=\"t/watchme\"\nwatchTimeOut=4\n");
    for i in 0..DEVICES {
        cfg.push_str(&format!(
            "\n[device_d{i}]\nwatchTopics=\"t/d{i}\"\nwatchTimeOut=600\n"
        ));
    }
    let dir = workdir(&cfg);
    let c = Client::connect(
        broker.port,
        &["t/storm/up", "t/storm/expired/#", "t/storm/availability/#"],
    );
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    // Subscribed: its second `B/up` (the first goes before the
    // subscriptions, and the broker handles a connection's packets in order).
    for _ in 0..2 {
        c.wait_topic("t/storm/up", 15 * S).expect("B/up");
    }
    relay.delay(Duration::from_millis(100));
    let devices = Client::connect(broker.port, &[]);
    for i in 0..DEVICES {
        devices.publish(&format!("t/d{i}"), b"x");
    }
    let mut online = std::collections::HashSet::new();
    let alert = c
        .wait_for(30 * S, |m| {
            if m.topic.starts_with("t/storm/availability/") && m.text() == "online" {
                online.insert(m.topic.clone());
            }
            m.topic == "t/storm/expired/watchme"
        })
        .expect("no alert");
    let deadline_ms: u64 = alert.text().parse::<u64>().unwrap() * 1000;
    let late = alert.at_ms.saturating_sub(deadline_ms);
    let before = online.len();
    assert!(
        c.wait_for(60 * S, |m| {
            if m.topic.starts_with("t/storm/availability/") && m.text() == "online" {
                online.insert(m.topic.clone());
            }
            online.len() == DEVICES
        })
        .is_some(),
        "{} of {DEVICES} announcements",
        online.len()
    );
    println!(
        "the alert came {late} ms after its deadline, after {before} of {DEVICES} announcements"
    );
    assert!(
        before < DEVICES,
        "the storm was over before the deadline: nothing tested"
    );
    assert!(late <= 1_500, "the alert came {late} ms after its deadline");
    assert!(daemon.terminate().success());
}
