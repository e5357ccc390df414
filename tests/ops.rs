//! Operations: availability topics, last will, Home Assistant discovery and
//! the HTTP status endpoint, against a real mosquitto.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const S: Duration = Duration::from_secs(1);

/// `promtool check metrics` (Debian package `prometheus`, installed by the
/// test script) on real output: exit 0 and nothing to complain about.
fn promtool_check(metrics: &str) {
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is not installed: run ./scripts/test.sh, which installs it");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

#[test]
fn availability_follows_expiry_and_recovery() {
    let broker = Broker::start();
    let dir = workdir(&format!(
        "{}[device_d]\nwatchTimeOut=2\nwatchTopics=\"t/av/d/#\"\n",
        mqtt_section(broker.port, "t/av/mon")
    ));
    let c = Client::connect(broker.port, &["t/av/mon/availability/#"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    // Not heard since start: announced neither online nor offline until
    // its first deadline passes.
    let first = c
        .wait_topic("t/av/mon/availability/d", 10 * S)
        .expect("offline on expiry");
    assert_eq!((first.text().as_str(), first.retained), ("offline", false));
    c.publish("t/av/d/x", b"1");
    let on = c
        .wait_topic("t/av/mon/availability/d", 5 * S)
        .expect("online on activity");
    assert_eq!(on.text(), "online");
    // It is retained: a newcomer learns the current state at once.
    let late = Client::connect(broker.port, &["t/av/mon/availability/d"]);
    let m = late.wait_topic("t/av/mon/availability/d", 5 * S).unwrap();
    assert!(m.retained);
    assert!(daemon.terminate().success());
}

#[test]
fn last_will_says_offline_when_killed() {
    let broker = Broker::start();
    let dir = workdir(&mqtt_section(broker.port, "t/will"));
    let c = Client::connect(broker.port, &["t/will/status"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    assert_eq!(
        c.wait_topic("t/will/status", 10 * S).unwrap().text(),
        "online"
    );
    daemon.kill9();
    let m = c.wait_topic("t/will/status", 10 * S).expect("last will");
    assert_eq!(m.text(), "offline");
    let late = Client::connect(broker.port, &["t/will/status"]);
    let m = late.wait_topic("t/will/status", 5 * S).unwrap();
    assert!(m.retained && m.text() == "offline");
}

#[test]
fn home_assistant_discovery() {
    let broker = Broker::start();
    let dir = workdir(&format!(
        "{}[homeassistant]\ndiscovery=true\nprefix=\"t/ha\"\n[\"device_esp 1\"]\nwatchTopics=\"t/hadev/#\"\n",
        mqtt_section(broker.port, "t/hamon")
    ));
    let c = Client::connect(broker.port, &["t/ha/#"]);
    let _daemon = Iotmonitor::start(dir.path(), &[]);
    let m = c
        .wait_topic("t/ha/binary_sensor/iotmonitor-t_hamon/esp_1/config", 10 * S)
        .expect("discovery config");
    assert!(m.retained || m.payload.starts_with(b"{"));
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(v["device_class"], "connectivity");
    assert_eq!(v["device"]["name"], "esp 1");
    assert_eq!(v["default_entity_id"], "binary_sensor.iotmonitor_esp_1");
    assert!(v.get("object_id").is_none());
    assert_eq!(v["origin"]["name"], "iotmonitor");
    assert_eq!(v["state_topic"], "t/hamon/availability/esp 1");
    assert_eq!(v["availability_topic"], "t/hamon/status");
    assert_eq!(v["payload_on"], "online");
    assert!(v["unique_id"].as_str().unwrap().contains("esp_1"));
    // Home Assistant restarting asks for the configs again.
    c.publish("t/ha/status", b"online");
    c.wait_topic("t/ha/binary_sensor/iotmonitor-t_hamon/esp_1/config", 5 * S)
        .expect("discovery republished on homeassistant/status online");
}

#[test]
fn http_status_metrics_and_health() {
    let broker = Broker::start();
    let http = free_port();
    let dir = workdir(&format!(
        "{}[http]\nbind=\"127.0.0.1:{http}\"\n[device_a]\nwatchTimeOut=1\nwatchTopics=\"t/http/a\"\nhelloTopic=\"t/http/hello/a\"\n[device_b]\nwatchTimeOut=100\nwatchTopics=\"t/http/b\"\n",
        mqtt_section(broker.port, "t/httpmon")
    ));
    let c = Client::connect(broker.port, &["t/httpmon/expired/#"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    wait_http(http);
    c.wait_topic("t/httpmon/expired/a", 10 * S)
        .expect("a expires");
    c.publish("t/http/b", b"x");
    c.publish("t/http/hello/a", b"x");
    let deadline = std::time::Instant::now() + 10 * S;
    let (head, v) = loop {
        let (code, head, body) = http_get(http, "/status");
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let seen = |n: &str| v.as_array().unwrap().iter().any(|d| d["name"] == n);
        let a_hello = v
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "a" && d["helloCount"] == 1);
        let b_heard = v
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "b" && d["lastContact"].is_u64());
        if seen("a") && a_hello && b_heard {
            break (head, v);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status never showed the messages: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(head.contains("application/json"), "{head}");
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let a = list.iter().find(|d| d["name"] == "a").unwrap();
    let b = list.iter().find(|d| d["name"] == "b").unwrap();
    assert_eq!(a["kind"], "device");
    assert_eq!(a["helloCount"], 1);
    assert_eq!(b["expired"], false);
    assert!(b["lastContact"].as_u64().unwrap() > 1_700_000_000);
    assert!(a["lastContact"].is_null());
    assert!(b["deadline"].as_u64().unwrap() >= b["lastContact"].as_u64().unwrap() + 100);
    assert!(b.get("pid").is_some());
    let (code, _, root) = http_get(http, "/");
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&root)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let (code, head, metrics) = http_get(http, "/metrics");
    assert_eq!(code, 200);
    assert!(head.contains("text/plain"));
    assert!(
        metrics.contains("iotmonitor_device_expired{name=\"a\",kind=\"device\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("iotmonitor_device_expired{name=\"b\",kind=\"device\"} 0"));
    assert!(metrics.contains("iotmonitor_broker_connected 1"));
    for line in metrics
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample {line}");
        assert!(
            name.starts_with("iotmonitor_") || name.starts_with("process_"),
            "{line}"
        );
    }
    for family in [
        "iotmonitor_build_info{version=",
        "process_start_time_seconds ",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "iotmonitor_device_watch_timeout_seconds{name=\"b\",kind=\"device\"} 100",
        "iotmonitor_device_expirations_total{name=\"a\",kind=\"device\"} 1",
        "iotmonitor_device_state_seconds{name=\"a\",kind=\"device\",state=\"expired\"}",
        "iotmonitor_broker_reconnects_total 0",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
    promtool_check(&metrics);
    let messages: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("iotmonitor_messages_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(messages >= 2);

    let (code, _, body) = http_get(http, "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok\nbroker connected\n"));
    assert_eq!(http_get(http, "/nope").0, 404);
    assert!(daemon.terminate().success());
}

#[test]
fn systemd_notification_ready_watchdog_stopping() {
    use std::os::unix::net::UnixDatagram;
    let broker = Broker::start();
    let dir = workdir(&mqtt_section(broker.port, "t/notify"));
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(10 * S)).unwrap();
    let mut child = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // One state per datagram, newline-terminated or not (sd_notify(3)).
    let recv = || {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
    };
    assert_eq!(recv(), "READY=1");
    assert_eq!(recv(), "WATCHDOG=1");
    assert_eq!(recv(), "WATCHDOG=1", "one per tick");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut last = recv();
    while last == "WATCHDOG=1" {
        last = recv();
    }
    assert_eq!(last, "STOPPING=1");
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_restart_does_not_flap_availability() {
    let broker = Broker::start();
    let dir = workdir(&format!(
        "{}[device_off]\nwatchTimeOut=2\nwatchTopics=\"t/flap/off/#\"\n\
         [device_on]\nwatchTimeOut=100\nwatchTopics=\"t/flap/on/#\"\n\
         [device_new]\nwatchTimeOut=100\nwatchTopics=\"t/flap/new/#\"\n",
        mqtt_section(broker.port, "t/flapmon")
    ));
    let c = Client::connect(broker.port, &["t/flapmon/availability/#", "t/flapmon/up"]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_topic("t/flapmon/up", 10 * S).expect("up");
    c.publish("t/flap/on/x", b"1");
    let on = c
        .wait_topic("t/flapmon/availability/on", 5 * S)
        .expect("on is online");
    assert_eq!(on.text(), "online");
    let off = c
        .wait_topic("t/flapmon/availability/off", 10 * S)
        .expect("off expires");
    assert_eq!(off.text(), "offline");
    assert!(daemon.terminate().success());

    // Restarted: nothing is announced until a verdict changes — off stays
    // offline past its first deadline, on is not re-announced, new (never
    // heard) is announced neither way.
    let _daemon = Iotmonitor::start(dir.path(), &[]);
    let mut ups = 0;
    let deadline = std::time::Instant::now() + 20 * S;
    while ups < 4 {
        assert!(std::time::Instant::now() < deadline, "B/up stopped");
        let Some(m) = c.next(5 * S) else { continue };
        if m.topic == "t/flapmon/up" {
            ups += 1;
            continue;
        }
        panic!("availability announced after a restart: {m:?}");
    }
    // Heard again: back online, once.
    c.publish("t/flap/off/x", b"1");
    let back = c
        .wait_topic("t/flapmon/availability/off", 5 * S)
        .expect("off back online");
    assert_eq!(back.text(), "online");
    // The retained values a newcomer gets are the verdicts.
    let late = Client::connect(broker.port, &["t/flapmon/availability/#"]);
    let got = late.collect(2 * S);
    let value = |n: &str| {
        got.iter()
            .find(|m| m.topic == format!("t/flapmon/availability/{n}"))
            .map(|m| m.text())
    };
    assert_eq!(value("off").as_deref(), Some("online"));
    assert_eq!(value("on").as_deref(), Some("online"));
    assert_eq!(value("new"), None);
}
