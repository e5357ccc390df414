//! Reload, durability across SIGKILL, corrupt databases and hostile input,
//! against a real mosquitto. Waits are generous with explicit deadlines.

mod common;

use std::time::Duration;

use common::*;

const S: Duration = Duration::from_secs(1);

fn last_payload(msgs: &[Msg], topic: &str) -> Option<String> {
    msgs.iter().rfind(|m| m.topic == topic).map(Msg::text)
}

#[test]
fn sighup_reload_keeps_unchanged_devices_and_follows_new_filters() {
    let broker = Broker::start();
    let mqtt = mqtt_section(broker.port, "t/rl/mon");
    let keep = "[device_keep]\nwatchTimeOut=60\nhelloTopic=\"t/rl/keep/hello\"\nwatchTopics=\"t/rl/keep/s\"\n";
    let dir = workdir(&format!(
        "{mqtt}{keep}[device_gone]\nwatchTopics=\"t/rl/gone\"\n"
    ));
    let c = Client::connect(broker.port, &["t/rl/mon/#"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_topic("t/rl/mon/up", 10 * S).unwrap();
    c.publish("t/rl/keep/hello", b"1");
    c.wait_for(5 * S, |m| {
        m.topic == "t/rl/mon/helloTopicCount/keep" && m.text() == "1"
    })
    .expect("hello counted");

    std::fs::write(
        dir.path().join("config.toml"),
        format!("{mqtt}{keep}[device_new]\nwatchTimeOut=4\nwatchTopics=\"t/rl/new/#\"\n"),
    )
    .unwrap();
    daemon.signal(libc::SIGHUP);
    c.wait_topic("t/rl/mon/helloTopicCount/new", 10 * S)
        .expect("new device after reload");
    c.publish("t/rl/new/x", b"1");
    let msgs = c.collect(2 * S);
    assert_eq!(
        last_payload(&msgs, "t/rl/mon/helloTopicCount/keep").as_deref(),
        Some("1"),
        "hello count kept"
    );
    assert!(
        !msgs
            .iter()
            .any(|m| m.topic == "t/rl/mon/helloTopicCount/gone"),
        "removed device still published"
    );
    // The new filter is subscribed: activity keeps the new device alive.
    for _ in 0..4 {
        c.publish("t/rl/new/x", b"1");
        let msgs = c.collect(Duration::from_millis(800));
        assert!(
            !msgs.iter().any(|m| m.topic == "t/rl/mon/expired/new"),
            "new filter not subscribed"
        );
    }
    c.wait_topic("t/rl/mon/expired/new", 10 * S)
        .expect("new device expires once silent");

    // A broken file is rejected and the running configuration stays.
    std::fs::write(dir.path().join("config.toml"), "[mqtt\nbroken").unwrap();
    daemon.signal(libc::SIGHUP);
    let msgs = c.collect(3 * S);
    assert!(msgs
        .iter()
        .any(|m| m.topic == "t/rl/mon/helloTopicCount/keep"));
    assert!(msgs
        .iter()
        .any(|m| m.topic == "t/rl/mon/helloTopicCount/new"));
    assert!(daemon.log().contains("reload rejected"), "{}", daemon.log());
    assert!(daemon.terminate().success());
}

#[test]
fn states_survive_sigkill() {
    let broker = Broker::start();
    let dir = workdir(&format!(
        "{}[device_d]\nwatchTopics=\"t/kill/d/s\"\nstateTopics=\"t/kill/d/st/#\"\n",
        mqtt_section(broker.port, "t/kill/mon")
    ));
    let c = Client::connect(broker.port, &["t/kill/d/st/#", "t/kill/mon/up"]);
    let mut lost_total = 0;
    for round in 0..3 {
        let mut daemon = Iotmonitor::start(dir.path(), &[]);
        c.wait_topic("t/kill/mon/up", 10 * S).expect("up");
        let _ = c.collect(Duration::from_millis(300));
        for i in 0..100 {
            c.publish(
                &format!("t/kill/d/st/{i}"),
                format!("r{round}-{i}").as_bytes(),
            );
        }
        let _ = c.collect(Duration::from_millis(1500));
        daemon.kill9();
        let _restarted = Iotmonitor::start(dir.path(), &[]);
        let msgs = c.collect(4 * S);
        let lost = (0..100)
            .filter(|i| {
                last_payload(&msgs, &format!("t/kill/d/st/{i}")).as_deref()
                    != Some(format!("r{round}-{i}").as_str())
            })
            .count();
        lost_total += lost;
        drop(_restarted);
    }
    assert_eq!(lost_total, 0, "states lost across SIGKILL");
}

#[test]
fn corrupt_database_is_a_clear_error() {
    let broker = Broker::start();
    let dir = workdir(&mqtt_section(broker.port, "t/corrupt"));
    let c = Client::connect(broker.port, &["t/corrupt/up"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_topic("t/corrupt/up", 10 * S).unwrap();
    assert!(daemon.terminate().success());
    let db = dir.path().join("iotdb.leveldb");
    for e in std::fs::read_dir(&db).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("MANIFEST") {
            std::fs::write(e.path(), vec![0xa5u8; 4096]).unwrap();
        }
    }
    let (code, _, err) = run(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("iotdb.leveldb"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

#[test]
fn hostile_input_is_handled() {
    let broker = Broker::start();
    let dir = workdir(&format!(
        "{}[device_h]\nwatchTimeOut=60\nhelloTopic=\"t/host/h/hello\"\nwatchTopics=\"t/host/#\"\nstateTopics=[\"t/host/h/st/#\", \"t/host/h/hello\"]\n",
        mqtt_section(broker.port, "t/host/mon")
    ));
    let c = Client::connect(broker.port, &["t/host/#"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_topic("t/host/mon/up", 10 * S).unwrap();

    let big: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 256) as u8).collect();
    let binary: Vec<u8> = vec![0xff, 0x00, 0xfe, 0x80, b'\n', 0xc3];
    // mosquitto refuses topics deeper than 200 levels; the 10,000-level
    // case is a unit test of the topic index and routes.
    let deep = format!("t/host/h/st/{}", vec!["x"; 190].join("/"));
    c.publish("t/host/h/st/big", &big);
    c.publish("t/host/h/st/bin", &binary);
    c.publish(&deep, b"deep");
    c.publish("t/host/h/st/empty-level//x", b"e");
    for i in 0..1000 {
        c.publish("t/host/h/hello", format!("{i}").as_bytes());
    }
    let msgs = c.collect(5 * S);
    let replays = |topic: &str| msgs.iter().filter(|m| m.topic == topic).count();
    // Each state came once from the test and then once per replay burst;
    // never a replay loop.
    let big_replays = replays("t/host/h/st/big") - 1;
    assert!(big_replays >= 1, "no replay after the hellos");
    assert!(big_replays <= 1000, "replay loop: {big_replays}");
    let last_big = msgs.iter().rfind(|m| m.topic == "t/host/h/st/big").unwrap();
    assert_eq!(last_big.payload, big);
    let last_bin = msgs.iter().rfind(|m| m.topic == "t/host/h/st/bin").unwrap();
    assert_eq!(last_bin.payload, binary);
    assert!(replays(&deep) >= 2, "deep topic stored and replayed");
    // The hello topic is also a state topic: stored, never replayed.
    assert_eq!(replays("t/host/h/hello"), 1000, "hello topic replayed");
    let count: u64 = last_payload(&c.collect(2 * S), "t/host/mon/helloTopicCount/h")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(count, 1000);
    assert!(daemon.terminate().success());
    let (_, out, _) = run(dir.path(), &["dump"]);
    assert!(
        out.contains("t/host/h/st/bin\t\\xff\\u{0}\\xfe\\x80\\n\\xc3\n"),
        "{}",
        &out[..out.len().min(500)]
    );
    assert!(out.contains("t/host/h/hello\t999\n"));
}

#[test]
fn sighup_does_not_apply_mqtt_changes() {
    let broker = Broker::start();
    let dev = "[device_d]\nwatchTimeOut=60\nwatchTopics=\"t/rm/d/#\"\n";
    let dir = workdir(&format!("{}{dev}", mqtt_section(broker.port, "t/rm/old")));
    let c = Client::connect(broker.port, &["t/rm/#"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_topic("t/rm/old/up", 10 * S).expect("up");
    // A new base topic, client id and retainStates: all need a restart.
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[mqtt]\nserverAddress=\"tcp://127.0.0.1:{}\"\nbaseTopic=\"t/rm/new\"\nclientid=\"other\"\nretainStates=true\n{dev}[device_e]\nwatchTopics=\"t/rm/e\"\n",
            broker.port
        ),
    )
    .unwrap();
    daemon.signal(libc::SIGHUP);
    assert!(
        wait_until(10 * S, || daemon.log().contains("configuration reloaded")),
        "{}",
        daemon.log()
    );
    assert!(daemon
        .log()
        .contains("[mqtt] and [broker] changes are not applied"));
    // Devices were reloaded, the topics stay under the old base topic,
    // the last will and status too.
    c.wait_topic("t/rm/old/helloTopicCount/e", 10 * S)
        .expect("the new device, under the old base topic");
    let msgs = c.collect(2 * S);
    assert!(
        msgs.iter().all(|m| !m.topic.starts_with("t/rm/new/")),
        "a half-applied [mqtt] change: {:?}",
        msgs.iter().map(|m| &m.topic).collect::<Vec<_>>()
    );
    assert!(daemon.terminate().success());
    let status = Client::connect(broker.port, &["t/rm/old/status"])
        .wait_topic("t/rm/old/status", 5 * S)
        .expect("retained status");
    assert_eq!(
        status.text(),
        "offline",
        "the last words under the old base topic"
    );
}
