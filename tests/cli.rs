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
    for flag in ["--config", "--database", "--check", "dump"] {
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
