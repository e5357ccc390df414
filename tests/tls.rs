//! TLS: the daemon connects to a real mosquitto TLS listener with a
//! throw-away CA made by the test (server verification, client
//! certificate), and refuses a server its CA did not sign. OpenSSL is
//! loaded for a TLS broker only, and a libssl that cannot be loaded is a
//! clear error. Only in builds with TLS (the default).
#![cfg(feature = "tls")]

mod common;

use std::time::Duration;

use common::*;

const S: Duration = Duration::from_secs(1);

#[test]
fn connects_over_tls_with_client_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    make_ca(p, "ca");
    make_cert(p, "ca", "server", "IP:127.0.0.1,DNS:localhost");
    make_cert(p, "ca", "client", "DNS:iotmonitor");
    make_ca(p, "other-ca");
    let tls_port = free_port();
    let broker = Broker::start_with(
        free_port(),
        &format!(
            "listener {tls_port} 127.0.0.1\ncafile {0}/ca.crt\ncertfile {0}/server.crt\nkeyfile {0}/server.key\nrequire_certificate true\n",
            p.display()
        ),
    );
    let c = Client::connect(broker.port, &["t/tls/#", "t/badtls/#"]);

    let mqtt = format!(
        "[mqtt]\nserverAddress=\"ssl://127.0.0.1:{tls_port}\"\nbaseTopic=\"t/tls\"\nclientid=\"tls-ok\"\ncaFile=\"{0}/ca.crt\"\ncertFile=\"{0}/client.crt\"\nkeyFile=\"{0}/client.key\"\n",
        p.display()
    );
    let dir = workdir(&mqtt);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    let up = c.wait_topic("t/tls/up", 15 * S).expect("up over TLS");
    // "1" unless the first connection was refused (the broker's TLS
    // listener not open yet) and retried a second later.
    assert!(
        up.text().parse::<u32>().is_ok_and(|n| n >= 1),
        "{}",
        up.text()
    );
    let loaded = mapped_openssl(daemon.pid());
    assert!(
        loaded.iter().any(|lib| lib.contains("libssl.so")),
        "{loaded:?}"
    );
    assert!(daemon.terminate().success());

    // A server certificate from another CA is refused.
    let bad = workdir(&format!(
        "[mqtt]\nserverAddress=\"ssl://127.0.0.1:{tls_port}\"\nbaseTopic=\"t/badtls\"\nclientid=\"tls-bad\"\ncaFile=\"{0}/other-ca.crt\"\ncertFile=\"{0}/client.crt\"\nkeyFile=\"{0}/client.key\"\n",
        p.display()
    ));
    let mut daemon = Iotmonitor::start(bad.path(), &[]);
    assert!(
        c.wait_topic("t/badtls/up", 4 * S).is_none(),
        "connected to an untrusted server"
    );
    assert!(daemon.log().contains("cannot connect"), "{}", daemon.log());
    assert!(daemon.terminate().success());
}

/// The OpenSSL libraries mapped into a process.
fn mapped_openssl(pid: i32) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut libs: Vec<String> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.contains("/libssl.so") || path.contains("/libcrypto.so"))
        .map(str::to_string)
        .collect();
    libs.dedup();
    libs
}

/// libssl and libcrypto are not linked but loaded for the first TLS
/// client (vendor/paho-mqtt-sys/PATCHES.md): a daemon with a plain broker
/// never maps them, through a lost connection and its reconnection (Paho
/// C frees its TLS session, none, when a connection closes).
#[test]
fn openssl_is_not_loaded_for_a_plain_broker() {
    let mut broker = Broker::start();
    let dir = workdir(&mqtt_section(broker.port, "t/plain"));
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    let c = Client::connect(broker.port, &["t/plain/#"]);
    c.wait_topic("t/plain/up", 15 * S).expect("up");
    broker.restart();
    let c = Client::connect(broker.port, &["t/plain/#"]);
    c.wait_topic("t/plain/up", 15 * S)
        .expect("up again after the broker's restart");
    assert_eq!(mapped_openssl(daemon.pid()), Vec::<String>::new());
    assert!(daemon.terminate().success());
}

/// A TLS broker with no loadable libssl: the daemon says so and exits,
/// rather than Paho C stopping it at its first OpenSSL call; `--check`
/// says so too.
#[test]
fn a_tls_broker_without_a_loadable_libssl_is_a_clear_error() {
    let libs = tempfile::tempdir().unwrap();
    std::fs::write(libs.path().join("libssl.so.3"), b"not a library").unwrap();
    let env = [("LD_LIBRARY_PATH", libs.path().to_str().unwrap())];
    let port = free_port();
    let dir = workdir(&format!(
        "[mqtt]\nserverAddress=\"ssl://127.0.0.1:{port}\"\nbaseTopic=\"t/nossl\"\nclientid=\"nossl\"\n"
    ));
    let said = format!("ssl://127.0.0.1:{port} needs OpenSSL, but cannot load libssl.so.3");
    for args in [&[][..], &["--check"]] {
        let mut daemon = Iotmonitor::start_with_env(dir.path(), args, &env);
        let status = daemon.wait(15 * S).expect("exits");
        assert!(!status.success(), "{args:?}");
        let log = daemon.log();
        assert!(log.contains(&said), "{args:?}: {log}");
        assert!(!log.contains("panicked"), "{log}");
    }
    // With OpenSSL at hand, --check passes.
    let (code, out, err) = run(dir.path(), &["--check"]);
    assert_eq!(code, 0, "{out}{err}");
}
