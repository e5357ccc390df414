//! Wall-clock steps (SPEC §4 "Time"): the daemon runs under libfaketime
//! (Debian package `faketime`) with its wall clock shifted by a timestamp
//! file changed during the test, the monotonic clock left alone — as NTP
//! stepping the clock of a board without a real-time clock.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const S: Duration = Duration::from_secs(1);

fn libfaketime() -> PathBuf {
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ] {
        let p = Path::new(dir).join("faketime/libfaketimeMT.so.1");
        if p.exists() {
            return p;
        }
    }
    panic!("libfaketime is not installed: run ./scripts/test.sh, which installs it");
}

/// The daemon with `devices`, its wall clock following the offset written
/// to the returned file (`+3600`, `-3600`, …).
fn faked(base: &str, devices: &str) -> (Broker, tempfile::TempDir, PathBuf, Iotmonitor) {
    let broker = Broker::start();
    let dir = workdir(&format!("{}{devices}", mqtt_section(broker.port, base)));
    let offset = dir.path().join("faketime.rc");
    std::fs::write(&offset, "+0\n").unwrap();
    let preload = libfaketime();
    let daemon = Iotmonitor::start_with_env(
        dir.path(),
        &[],
        &[
            ("LD_PRELOAD", preload.to_str().unwrap()),
            ("FAKETIME_TIMESTAMP_FILE", offset.to_str().unwrap()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ("FAKETIME_NO_CACHE", "1"),
        ],
    );
    (broker, dir, offset, daemon)
}

fn up_value(m: &Msg) -> u64 {
    m.text().parse().unwrap()
}

#[test]
fn a_forward_step_of_one_hour_causes_no_alert() {
    let (broker, _dir, offset, _daemon) = faked(
        "t/fwd",
        "[device_d]\nwatchTimeOut=4\nwatchTopics=\"t/fwd/d/#\"\n",
    );
    let c = Client::connect(broker.port, &["t/fwd/up", "t/fwd/expired/#"]);
    let first = c.wait_topic("t/fwd/up", 10 * S).expect("B/up");
    c.publish("t/fwd/d/x", b"1");
    std::fs::write(&offset, "+3600\n").unwrap();
    let heard_ms = epoch_ms();
    // Heard just before the step: nothing expires for its 4 s, B/up counts
    // by one.
    let mut last = up_value(&first);
    while epoch_ms() < heard_ms + 3_000 {
        let Some(m) = c.next(5 * S) else { break };
        assert_eq!(m.topic, "t/fwd/up", "no alert after a forward step: {m:?}");
        assert_eq!(up_value(&m), last + 1, "B/up counts by one");
        last = up_value(&m);
    }
    // Its deadline still comes on time, reported on the stepped clock.
    let alert = c
        .wait_topic("t/fwd/expired/d", 10 * S)
        .expect("the device expires 4 s after it was heard");
    assert!(
        alert.at_ms <= heard_ms + 4_000 + 1_500,
        "alert {} ms after the message",
        alert.at_ms - heard_ms
    );
    let deadline: u64 = alert.text().parse().unwrap();
    let expected = (heard_ms + 4_000) / 1000 + 3_600;
    assert!(
        deadline.abs_diff(expected) <= 2,
        "deadline {deadline}, expected about {expected}"
    );
}

#[test]
fn a_backward_step_of_one_hour_does_not_blind_the_watchdog() {
    let (broker, _dir, offset, _daemon) = faked(
        "t/back",
        "[device_d]\nwatchTimeOut=3\nwatchTopics=\"t/back/d/#\"\n",
    );
    let c = Client::connect(broker.port, &["t/back/up", "t/back/expired/#"]);
    let first = c.wait_topic("t/back/up", 10 * S).expect("B/up");
    c.publish("t/back/d/x", b"1");
    let heard_ms = epoch_ms();
    std::fs::write(&offset, "-3600\n").unwrap();
    let mut last = up_value(&first);
    let alert = loop {
        let m = c.next(10 * S).expect("a message within 10 s");
        if m.topic == "t/back/up" {
            assert_eq!(up_value(&m), last + 1, "B/up counts by one");
            last = up_value(&m);
            continue;
        }
        break m;
    };
    assert_eq!(alert.topic, "t/back/expired/d");
    assert!(
        alert.at_ms >= heard_ms + 2_000 && alert.at_ms <= heard_ms + 3_000 + 1_500,
        "alert {} ms after the message, expected about 3 s",
        alert.at_ms as i64 - heard_ms as i64
    );
    let deadline: u64 = alert.text().parse().unwrap();
    let expected = (heard_ms + 3_000) / 1000 - 3_600;
    assert!(
        deadline.abs_diff(expected) <= 2,
        "deadline {deadline}, expected about {expected}"
    );
}
