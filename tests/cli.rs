//! Command-line behaviour: --version, --help, --check and configuration
//! errors (exit 78, file/line/key named, never a panic).

mod common;

use common::*;

fn check(text: &str) -> (i32, String, String) {
    let dir = workdir(text);
    run(dir.path(), &["--check"])
}

const MQTT: &str = "[mqtt]\nserverAddress=\"tcp://127.0.0.1:1\"\n";

#[test]
fn version_names_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(dir.path(), &["--version"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("iotmonitor {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains("commit "), "{out}");
    let (code, out, _) = run(dir.path(), &["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--config",
        "--database",
        "--agent-logs",
        "--check",
        "dump",
        "health",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help: {out}");
    }
}

#[test]
fn original_example_config_checks() {
    let text = include_str!("fixtures/original-config.toml")
        .replace("user=\"\"", "user=\"someone\"")
        .replace("password=\"\"", "password=\"s3cret-pw\"");
    let (code, out, err) = check(&text);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 devices, 1 of them agents"), "{out}");
    assert!(
        out.contains("esp04") && out.contains("ledboxdaemon"),
        "{out}"
    );
    assert!(
        !out.contains("s3cret-pw") && !err.contains("s3cret-pw"),
        "password leaked"
    );
}

#[test]
fn bad_configs_exit_78_naming_line_and_key() {
    let cases: &[(&str, String, &[&str])] = &[
        ("missing mqtt", "[device_a]\nwatchTopics=\"a\"\n".into(), &["config.toml", "[mqtt]"]),
        ("missing server", "[mqtt]\nbaseTopic=\"x\"\n".into(), &["serverAddress"]),
        ("broken toml", format!("{MQTT}[device_a\n"), &["config.toml:3", "invalid TOML"]),
        ("no watch", format!("{MQTT}[device_a]\nwatchTimeOut=5\n"), &["config.toml:3", "device_a.watchTopics"]),
        ("zero timeout", format!("{MQTT}[device_a]\nwatchTopics=\"a\"\nwatchTimeOut=0\n"), &["config.toml:5", "device_a.watchTimeOut"]),
        ("string timeout", format!("{MQTT}[device_a]\nwatchTopics=\"a\"\nwatchTimeOut=\"60\"\n"), &["config.toml:5", "watchTimeOut"]),
        ("bad filter", format!("{MQTT}[device_a]\nwatchTopics=[\"a/#/b\"]\n"), &["config.toml:4", "device_a.watchTopics", "a/#/b"]),
        ("filter too long", format!("{MQTT}[device_a]\nwatchTopics=\"a\"\nstateTopics=\"{}\"\n", "s/".repeat(40_000)), &["config.toml:5", "device_a.stateTopics", "65,535 bytes"]),
        ("agent no exec", format!("{MQTT}[agent_x]\nwatchTopics=\"a\"\n"), &["config.toml:3", "agent_x.exec"]),
        ("duplicate", format!("{MQTT}[device_x]\nwatchTopics=\"a\"\n[agent_x]\nexec=\"true\"\nwatchTopics=\"b\"\n"), &["config.toml:5", "already defined"]),
    ];
    for (what, text, needles) in cases {
        let (code, _, err) = check(text);
        assert_eq!(code, 78, "{what}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{what}: '{n}' not in: {err}");
        }
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

#[test]
fn a_bad_config_stops_the_daemon_with_78_too() {
    let dir = workdir("[mqtt]\n");
    let (code, _, err) = run(dir.path(), &[]);
    assert_eq!(code, 78, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(dir.path(), &[]);
    assert_eq!(code, 78, "missing file: {err}");
    assert!(
        err.contains("config.toml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn unknown_keys_warn_with_the_closest_key() {
    let (code, _, err) = check(&format!(
        "{MQTT}[device_a]\nwatchTopics=\"a\"\nwatchTimeout=5\n"
    ));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("config.toml:5") && err.contains("did you mean 'watchTimeOut'"),
        "{err}"
    );
}

#[test]
fn world_readable_password_warns() {
    use std::os::unix::fs::PermissionsExt;
    let dir = workdir(
        "[mqtt]\nserverAddress=\"tcp://127.0.0.1:1\"\nuser=\"u\"\npassword=\"pw-123456\"\n",
    );
    let path = dir.path().join("config.toml");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out, err) = run(dir.path(), &["--check"]);
    assert_eq!(code, 0);
    assert!(err.contains("readable by every user"), "{err}");
    assert!(!out.contains("pw-123456") && !err.contains("pw-123456"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, _, err) = run(dir.path(), &["--check"]);
    assert!(!err.contains("readable by every user"), "{err}");
}

#[test]
fn dump_without_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(dir.path(), &["dump"]);
    assert_eq!(code, 1);
    assert!(err.contains("no database"), "{err}");
}

#[test]
#[cfg(feature = "tls")]
fn check_summarises_every_section_never_a_password() {
    let dir = workdir(
        "[mqtt]\nserverAddress=\"ssl://127.0.0.1:1\"\nuser=\"u\"\npassword=\"pw-secret-1\"\nclientid=\"c1\"\ncaFile=\"ca.pem\"\nkeyFile=\"ca.pem\"\nkeyPassword=\"pw-secret-2\"\n\
         [http]\nbind=\"127.0.0.1:8079\"\n[homeassistant]\ndiscovery=true\nprefix=\"ha\"\n[failover]\nenabled=true\npriority=2\n\
         [device_d]\nwatchTopics=\"d/#\"\n[agent_a]\nexec=\"sleep 1\"\nwatchTopics=\"a\"\n",
    );
    std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
    let (code, out, err) = run(dir.path(), &["--check"]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "config.toml: configuration is valid",
        "[mqtt] broker ssl://127.0.0.1:1 as client id 'c1', user 'u' with a password",
        "[mqtt] TLS: server checked against CA file",
        "with a password",
        "[http] status page on http://127.0.0.1:8079/",
        "[homeassistant] discovery on, under ha/binary_sensor/",
        "[broker] off",
        "[failover] on, priority 2",
        "2 devices, 1 of them agents",
        "agent  a: timeout 30 s, watch [a/#]",
    ] {
        assert!(out.contains(needle), "'{needle}' not in:\n{out}");
    }
    assert!(!out.contains("pw-secret") && !err.contains("pw-secret"));
}

#[test]
#[cfg(not(feature = "tls"))]
fn a_tls_broker_without_tls_built_in_exits_78() {
    let dir =
        workdir("[mqtt]\nserverAddress=\"mqtts://127.0.0.1:1\"\n[device_d]\nwatchTopics=\"d/#\"\n");
    for args in [&["--check"][..], &[]] {
        let (code, _, err) = run(dir.path(), args);
        assert_eq!(code, 78, "{err}");
        assert!(
            err.contains("built without (cargo feature \"tls\")"),
            "{err}"
        );
    }
}

#[test]
fn failover_and_home_assistant_errors_exit_78() {
    let (code, _, err) = check(&format!(
        "{MQTT}[failover]\nenabled=true\npriority=\"top\"\n"
    ));
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("config.toml:5: failover.priority: must be a whole number, not string"),
        "{err}"
    );
    let (code, _, err) = check(&format!(
        "{MQTT}[homeassistant]\ndiscovery=true\n[\"device_esp.01\"]\nwatchTopics=\"a\"\n[device_esp_01]\nwatchTopics=\"b\"\n"
    ));
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("config.toml:7: device_esp_01: its Home Assistant object id 'esp_01' is also the one of [device_esp.01] at line 5"),
        "{err}"
    );
}

/// `health` prints one line and exits 0 or 1, nothing else.
fn health(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let mut all = vec!["health"];
    all.extend_from_slice(args);
    let (code, out, err) = run(dir, &all);
    let text = format!("{out}{err}");
    assert_eq!(text.lines().count(), 1, "one line: {text:?}");
    assert!(code == 0 || code == 1, "{code}: {text}");
    if code == 0 {
        assert!(err.is_empty() && out.starts_with("healthy: "), "{text}");
    } else {
        assert!(out.is_empty() && err.starts_with("unhealthy: "), "{text}");
    }
    (code, text)
}

#[test]
fn health_without_a_status_page_is_unhealthy() {
    let dir = workdir(MQTT);
    let (code, text) = health(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(text.contains("config.toml has no [http] bind"), "{text}");
    let port = free_port();
    let dir = workdir(&format!("{MQTT}[http]\nbind=\"0.0.0.0:{port}\"\n"));
    let (code, text) = health(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(
        text.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{text}"
    );
    let (code, text) = health(dir.path(), &["--url", "https://example.org"]);
    assert_eq!(code, 1);
    assert!(text.contains("is not an http:// URL"), "{text}");
    // A broken configuration is unhealthy too (health checks know 0 and 1).
    let dir = workdir("[mqtt]\n");
    let (code, text) = health(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(text.contains("missing serverAddress"), "{text}");
}

/// A one-shot HTTP server answering `answer`; returns its port and the
/// request it got.
fn fake_status_page(answer: &'static str) -> (u16, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        while reader.read_line(&mut request).unwrap() > 0 && !request.ends_with("\r\n\r\n") {}
        reader.get_mut().write_all(answer.as_bytes()).unwrap();
        request
    });
    (port, server)
}

#[test]
fn health_reports_the_status_page_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (port, server) = fake_status_page(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 21\r\n\r\ndatabase write failed\n",
    );
    let (code, text) = health(dir.path(), &["--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(code, 1);
    assert_eq!(
        text,
        format!("unhealthy: http://127.0.0.1:{port}/healthz answered 503: database write failed\n")
    );
    assert!(
        server
            .join()
            .unwrap()
            .starts_with("GET /healthz HTTP/1.0\r\n"),
        "request"
    );
    let (port, server) = fake_status_page("SSH-2.0-OpenSSH_9.2\r\n");
    let (code, text) = health(dir.path(), &["--url", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code, 1);
    assert!(text.contains("did not answer HTTP"), "{text}");
    server.join().unwrap();
}

#[test]
fn health_of_a_running_daemon() {
    let broker = Broker::start();
    let http = free_port();
    let dir = workdir(&format!(
        "{}[http]\nbind=\"127.0.0.1:{http}\"\n",
        mqtt_section(broker.port, "t/health")
    ));
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    // Unhealthy until the daemon listens and has connected to the broker.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let (code, text) = health(dir.path(), &[]);
        if code == 0 && text.contains("broker connected") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{text}\n{}",
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        text,
        format!("healthy: http://127.0.0.1:{http}/healthz answered 200: ok, broker connected\n")
    );
    let (code, _) = health(
        dir.path(),
        &["--url", &format!("http://localhost:{http}/healthz")],
    );
    assert_eq!(code, 0);
    assert!(daemon.terminate().success());
    let (code, text) = health(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(text.contains("cannot connect"), "{text}");
}
