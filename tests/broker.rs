//! The embedded broker ([broker] listen=...): the daemon runs without any
//! other broker, devices talk MQTT 3.1.1 to it, and everything works as
//! against mosquitto.
#![cfg(feature = "broker")]

mod common;

use std::time::Duration;

use common::*;

const S: Duration = Duration::from_secs(1);

#[test]
fn daemon_runs_on_its_embedded_broker() {
    let port = free_port();
    let dir = workdir(&format!(
        "[mqtt]\nbaseTopic=\"t/emb\"\n[broker]\nlisten=\"127.0.0.1:{port}\"\n\
         [device_d]\nwatchTimeOut=2\nhelloTopic=\"t/embdev/d\"\nwatchTopics=\"t/embdev/d/s\"\nstateTopics=\"t/embdev/d/st/#\"\n"
    ));
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    let c = Client::connect(port, &["t/emb/#", "t/embdev/#"]);
    let up = c
        .wait_topic("t/emb/up", 15 * S)
        .expect("B/up through the embedded broker");
    assert!(up.text().parse::<u64>().unwrap() >= 1);
    c.publish("t/embdev/d/st/led", b"on");
    let _ = c.collect(Duration::from_millis(500));
    c.publish("t/embdev/d", b"hello");
    let replay = c
        .wait_for(5 * S, |m| {
            m.topic == "t/embdev/d/st/led" && m.text() == "on"
        })
        .expect("state replayed on hello");
    assert!(!replay.retained);
    let alert = c
        .wait_topic("t/emb/expired/d", 10 * S)
        .expect("expiry alert");
    assert!(alert.text().parse::<u64>().unwrap() > 1_700_000_000);
    assert!(
        daemon.log().contains("embedded MQTT broker listening"),
        "{}",
        daemon.log()
    );
    assert!(daemon.terminate().success());
}

/// The embedded broker's device listener speaks MQTT 3.1.1 only: a second
/// daemon pointed at it falls back from MQTT 5, and its echo guard keeps
/// replayed states from counting as activity.
#[test]
fn falls_back_to_mqtt_3_on_an_older_broker() {
    let port = free_port();
    let host = workdir(&format!(
        "[mqtt]\nbaseTopic=\"t/v3host\"\n[broker]\nlisten=\"127.0.0.1:{port}\"\n"
    ));
    let _host = Iotmonitor::start(host.path(), &[]);
    let c = Client::connect(port, &["t/v3/#", "t/v3dev/#"]);
    let dir = workdir(&format!(
        "[mqtt]\nserverAddress=\"tcp://127.0.0.1:{port}\"\nbaseTopic=\"t/v3\"\nclientid=\"v3-daemon\"\n\
         [device_d]\nwatchTimeOut=2\nhelloTopic=\"t/v3hello/d\"\nwatchTopics=\"t/v3dev/d/#\"\nstateTopics=\"t/v3dev/d/st/#\"\n"
    ));
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_topic("t/v3/up", 20 * S)
        .expect("connected with MQTT 3.1.1");
    assert!(
        daemon.log().contains("does not speak MQTT 5"),
        "{}",
        daemon.log()
    );
    c.publish("t/v3dev/d/st/x", b"1");
    let last_activity = epoch_ms();
    // Replays keep coming back from the broker; they are not activity.
    let mut replays = 0;
    let mut alert = None;
    for _ in 0..10 {
        c.publish("t/v3hello/d", b"hi");
        for m in c.collect(Duration::from_millis(500)) {
            if m.topic == "t/v3dev/d/st/x" {
                replays += 1;
            }
            if m.topic == "t/v3/expired/d" && alert.is_none() {
                alert = Some(m);
            }
        }
    }
    assert!(replays >= 5, "replays seen: {replays}");
    let alert = alert.expect("expired although replays echo back");
    let deadline: u64 = alert.text().parse().unwrap();
    assert!(
        deadline * 1000 <= last_activity + 3_000,
        "deadline {deadline} moved by echoes"
    );
    assert!(daemon.terminate().success());
}
