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
