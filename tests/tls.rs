//! TLS: the daemon connects to a real mosquitto TLS listener with a
//! throw-away CA made by the test (server verification, client
//! certificate), and refuses a server its CA did not sign. Only in builds
//! with TLS (the default).
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
