//! The daemon's log at the default level is about the daemon: a healthy run
//! with the embedded broker logs no warning and no error, and the broker's
//! own logging (rumqttd logs through `tracing`) obeys RUST_LOG.
#![cfg(feature = "broker")]

mod common;

use std::time::Duration;

use common::*;

const S: Duration = Duration::from_secs(1);

/// A daemon on its embedded broker with three devices, and three device
/// clients connected to it.
fn embedded(base: &str, rust_log: &str) -> (tempfile::TempDir, Iotmonitor, u16) {
    let port = free_port();
    let mut text = format!("[mqtt]\nbaseTopic=\"{base}\"\n[broker]\nlisten=\"127.0.0.1:{port}\"\n");
    for d in ["a", "b", "c"] {
        text.push_str(&format!(
            "[device_{d}]\nwatchTimeOut=5\nwatchTopics=\"{base}-dev/{d}/#\"\nhelloTopic=\"{base}-dev/{d}/hello\"\nstateTopics=\"{base}-dev/{d}/state/#\"\n"
        ));
    }
    let dir = workdir(&text);
    let daemon = Iotmonitor::start_with_env(dir.path(), &[], &[("RUST_LOG", rust_log)]);
    (dir, daemon, port)
}

#[test]
fn a_healthy_run_on_the_embedded_broker_logs_no_warning_or_error() {
    let base = "t/quiet";
    let (_dir, mut daemon, port) = embedded(base, "info");
    let watcher = Client::connect(port, &[&format!("{base}/up")]);
    let devices: Vec<Client> = (0..3).map(|_| Client::connect(port, &[])).collect();
    // Every second, each device reports, keeps a state and now and then
    // says hello; until B/up reaches 10.
    loop {
        let up = watcher
            .wait_topic(&format!("{base}/up"), 10 * S)
            .unwrap_or_else(|| panic!("no B/up:\n{}", daemon.log()));
        let n: u32 = up.text().parse().unwrap();
        for (d, client) in ["a", "b", "c"].iter().zip(&devices) {
            client.publish(&format!("{base}-dev/{d}/temp"), n.to_string().as_bytes());
            client.publish(&format!("{base}-dev/{d}/state/led"), b"on");
            if n % 4 == 0 {
                client.publish(&format!("{base}-dev/{d}/hello"), b"");
            }
        }
        if n >= 10 {
            break;
        }
    }
    assert!(daemon.terminate().success());
    let log = daemon.log();
    let loud: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(loud.is_empty(), "warnings or errors:\n{}", loud.join("\n"));
    assert!(!log.contains("rumqttd"), "broker chatter at info:\n{log}");
    // Start, broker, connection, replay, signal, stop: a handful of lines,
    // not one per message.
    assert!(log.lines().count() < 20, "{log}");
}

#[test]
fn the_broker_log_follows_rust_log() {
    let base = "t/loud";
    let (_dir, mut daemon, port) = embedded(base, "info,rumqttd=debug");
    let watcher = Client::connect(port, &[&format!("{base}/up")]);
    // Two seconds of the daemon's life seen: B/up counts seconds since
    // start, and the watcher may subscribe after `2` was published.
    watcher
        .wait_for(10 * S, |m| m.text().parse::<u32>().is_ok_and(|n| n >= 2))
        .unwrap_or_else(|| panic!("no B/up >= 2:\n{}", daemon.log()));
    assert!(daemon.terminate().success());
    let log = daemon.log();
    assert!(
        log.contains("DEBUG rumqttd::"),
        "rumqttd=debug shows nothing:\n{log}"
    );
    // Spans are not events: no "[>] incoming" span lines at any level.
    assert!(!log.contains("incoming_payload;"), "{log}");
}
