//! Black-box tests of the core daemon against a real mosquitto.

mod common;

use std::time::Duration;

use common::*;

const S: Duration = Duration::from_secs(1);

fn device(name: &str, timeout: u64, extra: &str) -> String {
    format!("[device_{name}]\nwatchTimeOut={timeout}\n{extra}\n")
}

/// Starts a broker and the daemon with `devices`; returns both, the work
/// dir and a client subscribed to `filters`.
fn setup(
    base: &str,
    devices: &str,
    filters: &[&str],
) -> (Broker, tempfile::TempDir, Client, Iotmonitor) {
    let broker = Broker::start();
    let dir = workdir(&format!("{}{devices}", mqtt_section(broker.port, base)));
    let client = Client::connect(broker.port, filters);
    let daemon = Iotmonitor::start(dir.path(), &[]);
    (broker, dir, client, daemon)
}

#[test]
fn up_counts_seconds_and_status_is_online() {
    let (_b, _d, c, mut daemon) = setup("t/up", "", &["t/up/#"]);
    let status = c.wait_topic("t/up/status", 10 * S).expect("status");
    assert_eq!(status.text(), "online");
    let ups: Vec<u64> = (0..4)
        .map(|_| {
            c.wait_topic("t/up/up", 5 * S)
                .expect("up")
                .text()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(ups, [1, 2, 3, 4]);
    assert!(daemon.terminate().success());
}

#[test]
fn silent_device_expires_on_time_with_deadline_payload() {
    let (_b, _d, c, _daemon) = setup(
        "t/exp",
        &device("quiet", 2, "watchTopics=\"t/quiet/#\""),
        &["t/exp/#"],
    );
    let first_up = c.wait_topic("t/exp/up", 10 * S).expect("up");
    let alert = c
        .wait_topic("t/exp/expired/quiet", 10 * S)
        .expect("expired alert");
    let deadline: u64 = alert.text().parse().unwrap();
    // The daemon started before its first up; its deadline is start + 2 s.
    assert!(
        deadline * 1000 <= first_up.at_ms + 2_000 + 1_000,
        "deadline {deadline} vs first up {}",
        first_up.at_ms
    );
    assert!(alert.at_ms >= deadline * 1000, "alert before its deadline");
    assert!(
        alert.at_ms <= deadline * 1000 + 1_500,
        "alert {} ms after the deadline",
        alert.at_ms - deadline * 1000
    );
    // Repeated every second while expired, same deadline.
    let again = c
        .wait_topic("t/exp/expired/quiet", 3 * S)
        .expect("repeated alert");
    assert_eq!(again.text(), alert.text());
}

#[test]
fn activity_moves_the_deadline() {
    let (_b, _d, c, _daemon) = setup(
        "t/act",
        &device(
            "busy",
            2,
            "watchTopics=[\"t/busy/sensors/#\", \"t/busy/extra\"]",
        ),
        &["t/act/#"],
    );
    c.wait_topic("t/act/up", 10 * S).expect("up");
    for i in 0..5 {
        let topic = if i % 2 == 0 {
            "t/busy/sensors/temp"
        } else {
            "t/busy/extra/x"
        };
        c.publish(topic, b"1");
        let msgs = c.collect(Duration::from_millis(900));
        assert!(
            !msgs.iter().any(|m| m.topic == "t/act/expired/busy"),
            "expired while active"
        );
    }
    c.publish("t/busy/sensors/temp", b"1");
    let last = epoch_ms();
    let alert = c
        .wait_topic("t/act/expired/busy", 10 * S)
        .expect("alert after silence");
    let deadline: u64 = alert.text().parse().unwrap();
    assert!(
        deadline * 1000 >= last + 2_000 - 1_000 && deadline * 1000 <= last + 2_000 + 1_000,
        "deadline {deadline} last {last}"
    );
    // A topic beside the filter (level boundary) does not count.
    c.publish("t/busy/extraX", b"1");
    c.wait_topic("t/act/expired/busy", 3 * S)
        .expect("still expired");
}

#[test]
fn own_topics_and_retained_messages_are_not_activity() {
    let broker = Broker::start();
    let pre = Client::connect(broker.port, &[]);
    pre.publish_retained("t/own/dev/state/x", b"old");
    // The device watches everything, including the daemon's own topics.
    let text = format!(
        "{}{}",
        mqtt_section(broker.port, "t/own/mon"),
        device(
            "dev",
            2,
            "watchTopics=\"t/own/#\"\nstateTopics=\"t/own/dev/state/#\""
        )
    );
    let dir = workdir(&text);
    let c = Client::connect(broker.port, &["t/own/mon/#"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_topic("t/own/mon/expired/dev", 10 * S).expect(
        "the daemon's own publications and a stale retained message must not keep the device alive",
    );
    assert!(daemon.terminate().success());
    let (code, out, _) = run(dir.path(), &["dump"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("t/own/dev/state/x\told"),
        "retained state stored: {out}"
    );
}

#[test]
fn hello_counts_and_replays_only_its_device_states() {
    let devices = format!(
        "{}{}",
        device("a", 60, "helloTopic=\"t/hel/a\"\nwatchTopics=\"t/hel/a/sensors/#\"\nstateTopics=\"t/hel/a/act/#\""),
        device("b", 60, "helloTopic=\"t/hel/b\"\nwatchTopics=\"t/hel/b/sensors\"\nstateTopics=[\"t/hel/b/act\", \"t/hel/shared/+\"]")
    );
    let (_b, _d, c, _daemon) = setup("t/hel/mon", &devices, &["t/hel/#"]);
    c.wait_topic("t/hel/mon/up", 10 * S).expect("up");
    c.publish("t/hel/a/act/led", b"on");
    c.publish("t/hel/a/act/led", b"off"); // latest wins
    c.publish("t/hel/a/act/relay/1", b"closed");
    c.publish("t/hel/b/act/dim", b"40");
    c.publish("t/hel/shared/x", b"bx");
    c.publish("t/hel/a/actX", b"not a state");
    std::thread::sleep(Duration::from_millis(500));
    let _ = c.collect(Duration::from_millis(200));
    c.publish("t/hel/a", b"booted");
    let msgs = c.collect(Duration::from_millis(2500));
    let replayed: Vec<(String, String)> = msgs
        .iter()
        .filter(|m| !m.topic.starts_with("t/hel/mon/") && m.topic != "t/hel/a")
        .map(|m| (m.topic.clone(), m.text()))
        .collect();
    assert!(
        replayed.contains(&("t/hel/a/act/led".into(), "off".into())),
        "{replayed:?}"
    );
    assert!(
        replayed.contains(&("t/hel/a/act/relay/1".into(), "closed".into())),
        "{replayed:?}"
    );
    assert_eq!(
        replayed.len(),
        2,
        "only device a's states, once each: {replayed:?}"
    );
    let count = msgs
        .iter()
        .rfind(|m| m.topic == "t/hel/mon/helloTopicCount/a")
        .expect("hello count");
    assert_eq!(count.text(), "1");
    let count_b = msgs
        .iter()
        .rfind(|m| m.topic == "t/hel/mon/helloTopicCount/b")
        .expect("hello count b");
    assert_eq!(count_b.text(), "0");
    // Device b: the shared wildcard state and its own.
    c.publish("t/hel/b", b"");
    let msgs = c.collect(Duration::from_millis(2000));
    let mut replayed: Vec<String> = msgs
        .iter()
        .filter(|m| !m.topic.starts_with("t/hel/mon/") && m.topic != "t/hel/b")
        .map(|m| format!("{}={}", m.topic, m.text()))
        .collect();
    replayed.sort();
    assert_eq!(replayed, ["t/hel/b/act/dim=40", "t/hel/shared/x=bx"]);
}

#[test]
fn empty_payload_deletes_a_state() {
    let (_b, dir, c, mut daemon) = setup(
        "t/del/mon",
        &device(
            "d",
            60,
            "helloTopic=\"t/del/d\"\nwatchTopics=\"t/del/d/s\"\nstateTopics=\"t/del/d/st/#\"",
        ),
        &["t/del/#"],
    );
    c.wait_topic("t/del/mon/up", 10 * S).expect("up");
    c.publish("t/del/d/st/a", b"1");
    c.publish("t/del/d/st/b", b"2");
    c.publish("t/del/d/st/a", b"");
    let _ = c.collect(Duration::from_millis(500));
    c.publish("t/del/d", b"hi");
    let msgs = c.collect(Duration::from_millis(1500));
    let states: Vec<String> = msgs
        .iter()
        .filter(|m| m.topic.starts_with("t/del/d/st/"))
        .map(|m| format!("{}={}", m.topic, m.text()))
        .collect();
    assert_eq!(states, ["t/del/d/st/b=2"]);
    assert!(daemon.terminate().success());
    let (_, out, _) = run(dir.path(), &["dump"]);
    assert_eq!(out, "t/del/d/st/b\t2\n");
}

#[test]
fn states_are_replayed_after_a_restart_byte_for_byte() {
    let binary: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    let devices = format!(
        "{}{}",
        device(
            "d",
            60,
            "watchTopics=\"t/rs/d/s\"\nstateTopics=\"t/rs/d/st/#\""
        ),
        device(
            "gone",
            60,
            "watchTopics=\"t/rs/g/s\"\nstateTopics=\"t/rs/g/st/#\""
        )
    );
    let (broker, dir, c, mut daemon) = setup("t/rs/mon", &devices, &["t/rs/#"]);
    c.wait_topic("t/rs/mon/up", 10 * S).expect("up");
    c.publish("t/rs/d/st/bin", &binary);
    c.publish("t/rs/d/st/text", b"hello");
    c.publish("t/rs/g/st/x", b"kept");
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.terminate().success());
    // Restart with device "gone" removed from the configuration.
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "{}{}",
            mqtt_section(broker.port, "t/rs/mon"),
            device(
                "d",
                60,
                "watchTopics=\"t/rs/d/s\"\nstateTopics=\"t/rs/d/st/#\""
            )
        ),
    )
    .unwrap();
    let _ = c.collect(Duration::from_millis(200));
    let _daemon = Iotmonitor::start(dir.path(), &[]);
    let msgs = c.collect(Duration::from_secs(3));
    let bin = msgs
        .iter()
        .find(|m| m.topic == "t/rs/d/st/bin")
        .expect("binary state replayed");
    assert_eq!(bin.payload, binary);
    assert!(!bin.retained);
    assert!(msgs
        .iter()
        .any(|m| m.topic == "t/rs/d/st/text" && m.text() == "hello"));
    assert!(
        !msgs.iter().any(|m| m.topic == "t/rs/g/st/x"),
        "state of an unconfigured device replayed"
    );
    let (_, out, _) = run(dir.path(), &["dump"]);
    assert!(
        out.contains("t/rs/g/st/x\tkept"),
        "unconfigured device's state must stay stored: {out}"
    );
}

#[test]
fn broker_down_at_start_then_up() {
    let port = free_port();
    let dir = workdir(&format!(
        "{}{}",
        mqtt_section(port, "t/late"),
        device("d", 3, "watchTopics=\"t/late/d\"")
    ));
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    std::thread::sleep(Duration::from_secs(3));
    let _broker = Broker::start_on(port);
    let c = Client::connect(port, &["t/late/#"]);
    let up = c
        .wait_topic("t/late/up", 40 * S)
        .expect("up after the broker came");
    // The tick kept running while the broker was away.
    assert!(up.text().parse::<u64>().unwrap() >= 3, "up {}", up.text());
    c.wait_topic("t/late/expired/d", 5 * S)
        .expect("expiry still reported");
    assert!(daemon.log().contains("cannot connect"), "{}", daemon.log());
    assert!(daemon.terminate().success());
}

#[test]
fn broker_restart_mid_run_resubscribes() {
    let devices = device(
        "d",
        60,
        "helloTopic=\"t/rb/d\"\nwatchTopics=\"t/rb/d/s\"\nstateTopics=\"t/rb/d/st/#\"",
    );
    let (mut broker, _dir, c, mut daemon) = setup("t/rb/mon", &devices, &["t/rb/#"]);
    c.wait_topic("t/rb/mon/up", 10 * S).expect("up");
    c.publish("t/rb/d/st/a", b"1");
    std::thread::sleep(Duration::from_millis(300));
    drop(c);
    broker.restart();
    let c = Client::connect(broker.port, &["t/rb/#"]);
    c.wait_topic("t/rb/mon/status", 40 * S)
        .expect("birth republished after reconnect");
    let up: u64 = c
        .wait_topic("t/rb/mon/up", 5 * S)
        .unwrap()
        .text()
        .parse()
        .unwrap();
    assert!(up >= 2);
    c.publish("t/rb/d", b"hello");
    let st = c
        .wait_topic("t/rb/d/st/a", 5 * S)
        .expect("replay after resubscribe");
    assert_eq!(st.text(), "1");
    assert!(daemon.terminate().success());
}

#[test]
fn sigterm_publishes_offline_and_exits_zero() {
    let (_b, _d, c, mut daemon) = setup("t/term", "", &["t/term/status"]);
    assert_eq!(
        c.wait_topic("t/term/status", 10 * S).unwrap().text(),
        "online"
    );
    let st = daemon.terminate();
    assert_eq!(st.code(), Some(0));
    assert_eq!(
        c.wait_topic("t/term/status", 5 * S).unwrap().text(),
        "offline"
    );
    assert!(daemon.log().contains("stopped"));
}

#[test]
fn sigint_also_stops_cleanly() {
    let (_b, _d, c, mut daemon) = setup("t/int", "", &["t/int/up"]);
    c.wait_topic("t/int/up", 10 * S).unwrap();
    daemon.signal(libc::SIGINT);
    assert_eq!(daemon.wait(10 * S).and_then(|s| s.code()), Some(0));
}

#[test]
fn second_instance_on_the_same_database_is_refused() {
    let (_b, dir, c, _daemon) = setup("t/lock", "", &["t/lock/up"]);
    c.wait_topic("t/lock/up", 10 * S).unwrap();
    let (code, _, err) = run(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("locked") && err.contains("iotdb.leveldb"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn first_log_line_names_version_config_and_database() {
    let (_b, dir, c, mut daemon) = setup("t/log", "", &["t/log/up"]);
    c.wait_topic("t/log/up", 10 * S).unwrap();
    daemon.terminate();
    let log = daemon.log();
    let first = log.lines().next().unwrap();
    assert!(first.contains(env!("CARGO_PKG_VERSION")), "{first}");
    assert!(
        first.contains("config.toml") && first.contains("iotdb.leveldb"),
        "{first}"
    );
    assert!(dir.path().join("iotdb.leveldb").join("CURRENT").exists());
}

#[test]
fn config_path_positional_and_database_flag() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("other.toml"),
        format!(
            "{}{}",
            mqtt_section(broker.port, "t/pos"),
            device(
                "d",
                60,
                "watchTopics=\"t/pos/d\"\nstateTopics=\"t/pos/d/st\""
            )
        ),
    )
    .unwrap();
    let c = Client::connect(broker.port, &["t/pos/up"]);
    let mut daemon = Iotmonitor::start(dir.path(), &["other.toml", "--database", "db/states"]);
    c.wait_topic("t/pos/up", 10 * S)
        .expect("runs with a positional config");
    c.publish("t/pos/d/st", b"v");
    std::thread::sleep(Duration::from_millis(500));
    daemon.terminate();
    assert!(dir.path().join("db/states/CURRENT").exists());
    let (code, out, _) = run(dir.path(), &["--database", "db/states", "dump"]);
    assert_eq!((code, out.as_str()), (0, "t/pos/d/st\tv\n"));
    let mut daemon =
        Iotmonitor::start(dir.path(), &["-c", "other.toml", "--database", "db/states"]);
    c.wait_topic("t/pos/up", 10 * S).expect("runs with -c");
    daemon.terminate();
}

#[test]
fn password_never_reaches_the_log_even_at_trace_level() {
    let broker = Broker::start();
    let dir = workdir(&format!(
        "[mqtt]\nserverAddress=\"tcp://127.0.0.1:{}\"\nbaseTopic=\"t/pw\"\nuser=\"someone\"\npassword=\"Pw-7c1b9e\"\n",
        broker.port
    ));
    let c = Client::connect(broker.port, &["t/pw/up"]);
    let log = dir.path().join("trace.log");
    let mut child = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    c.wait_topic("t/pw/up", 10 * S).expect("up");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "not at trace level: {text}"
    );
    assert!(!text.contains("Pw-7c1b9e"), "password in the log");
    let bytes = "Pw-7c1b9e"
        .bytes()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(!text.contains(&bytes), "password bytes in the log");
}
