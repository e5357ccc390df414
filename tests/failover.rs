//! Failover (SPEC §9): two real daemons with `[failover]` on one real
//! mosquitto, coordinated through the broker alone. A recorder checks that
//! `B/up` has exactly one publisher at every moment: its values follow each
//! other by one, across every takeover.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const S: Duration = Duration::from_secs(1);
/// `[mqtt] keepAlive` of the instances: a dead link is noticed, and the
/// broker publishes a dead instance's last wills, within seconds.
const KEEP_ALIVE: u64 = 5;

/// One instance's `config.toml`: client id `id`, `[failover] priority`,
/// the status page on `http`, then `devices`.
fn instance(server: &str, base: &str, id: &str, priority: i64, http: u16, devices: &str) -> String {
    format!(
        "[mqtt]\nserverAddress=\"{server}\"\nbaseTopic=\"{base}\"\nclientid=\"{id}\"\nkeepAlive={KEEP_ALIVE}\n\
         [http]\nbind=\"127.0.0.1:{http}\"\n\
         [failover]\nenabled=true\npriority={priority}\n\n{devices}"
    )
}

/// `GET /instance` of the instance on `http`.
fn role(http: u16) -> serde_json::Value {
    let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", http)) else {
        return serde_json::Value::Null;
    };
    drop(s);
    let (_, _, body) = http_get(http, "/instance");
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// Waits until the instance on `http` says `want` (its role).
fn wait_role(http: u16, want: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    assert!(
        wait_until(timeout, || role(http)["role"] == want),
        "instance on {http} not {want} within {timeout:?}: {}",
        role(http)
    );
    start.elapsed()
}

/// Every message on `filters`, recorded by a thread of its own.
struct Recorder {
    msgs: Arc<Mutex<Vec<Msg>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    fn start(port: u16, filters: &[&str]) -> Recorder {
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let (m, st) = (msgs.clone(), stop.clone());
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        let thread = std::thread::spawn(move || {
            let f: Vec<&str> = filters.iter().map(String::as_str).collect();
            let c = Client::connect(port, &f);
            let _ = ready_tx.send(());
            while !st.load(Ordering::SeqCst) {
                if let Some(msg) = c.next(Duration::from_millis(100)) {
                    m.lock().unwrap().push(msg);
                }
            }
        });
        ready.recv().unwrap();
        Recorder {
            msgs,
            stop,
            thread: Some(thread),
        }
    }

    fn on(&self, topic: &str) -> Vec<Msg> {
        self.msgs
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect()
    }

    /// Waits for a message on `topic` received after `after_ms`.
    fn wait(&self, topic: &str, after_ms: u64, timeout: Duration) -> Option<Msg> {
        let mut found = None;
        wait_until(timeout, || {
            found = self
                .on(topic)
                .into_iter()
                .find(|m| m.at_ms >= after_ms && !m.retained);
            found.is_some()
        });
        found
    }

    /// The `B/up` values so far; asserts they follow each other by one
    /// (one publisher at every moment, continuing across takeovers).
    fn ups(&self, base: &str) -> Vec<u64> {
        let ups: Vec<u64> = self
            .on(&format!("{base}/up"))
            .iter()
            .filter(|m| !m.retained)
            .map(|m| m.text().parse().unwrap())
            .collect();
        for w in ups.windows(2) {
            assert_eq!(w[1], w[0] + 1, "B/up from two publishers or reset: {ups:?}");
        }
        ups
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until `B/up` counted `n` more from now.
fn wait_ups(rec: &Recorder, base: &str, n: usize) {
    let start = rec.ups(base).len();
    assert!(
        wait_until(10 * S + S * n as u32, || rec.ups(base).len() >= start + n),
        "B/up stopped: {:?}",
        rec.ups(base)
    );
}

const DEVICES: &str = "[device_quiet]\nwatchTimeOut=4\nwatchTopics=\"t/fo/quiet/#\"\n\
    [device_dev]\nwatchTimeOut=600\nwatchTopics=\"t/fo/dev/#\"\nstateTopics=\"t/fo/dev/state/#\"\nhelloTopic=\"t/fo/dev/hello\"\n";

#[test]
fn a_killed_leader_is_replaced_and_restarted_it_stays_standby() {
    let broker = Broker::start();
    let server = broker.url();
    let (ha, hb) = (free_port(), free_port());
    let base = "t/fo1";
    let dir_a = workdir(&instance(&server, base, "fo1-a", 10, ha, DEVICES));
    let dir_b = workdir(&instance(&server, base, "fo1-b", 5, hb, DEVICES));
    let rec = Recorder::start(
        broker.port,
        &[
            &format!("{base}/up"),
            &format!("{base}/expired/#"),
            "t/fo/dev/state/#",
        ],
    );
    let dev = Client::connect(broker.port, &[]);
    let mut a = Iotmonitor::start(dir_a.path(), &[]);
    wait_role(ha, "active", 15 * S);
    let _b = Iotmonitor::start(dir_b.path(), &[]);
    wait_role(hb, "standby", 15 * S);
    assert_eq!(role(hb)["leader"], "fo1-a");
    wait_ups(&rec, base, 2);

    // A state recorded while B is standby; quiet keeps talking.
    dev.publish("t/fo/dev/state/led", b"on");
    dev.publish("t/fo/quiet/x", b"1");
    assert!(wait_until(5 * S, || rec.on("t/fo/dev/state/led").len() == 1));
    let states_before = 1;
    wait_ups(&rec, base, 1);

    // The leader dies; quiet goes silent at the same moment.
    let killed_ms = epoch_ms();
    a.kill9();
    let took = wait_role(hb, "active", Duration::from_secs(KEEP_ALIVE + 2));
    eprintln!("takeover after {took:?}");
    assert_eq!(role(hb)["leader"], "fo1-b");
    assert_eq!(role(hb)["takeovers"], 1);
    let (_, head, _) = http_get(hb, "/status");
    assert!(head.contains("X-Iotmonitor-Role: active"), "{head}");
    assert!(
        head.contains("X-Iotmonitor-Peers: fo1-a=offline (priority 10)"),
        "{head}"
    );
    assert!(head.contains("X-Iotmonitor-Last-Takeover: "), "{head}");
    let (_, _, metrics) = http_get(hb, "/metrics");
    for sample in [
        "iotmonitor_failover_role{role=\"active\"} 1",
        "iotmonitor_failover_leader{leader=\"fo1-b\"} 1",
        "iotmonitor_failover_takeovers_total 1",
    ] {
        assert!(metrics.contains(sample), "{sample} missing:\n{metrics}");
    }
    // Quiet expires 4 s after its last message: the new leader alerts.
    let alert = rec
        .wait(&format!("{base}/expired/quiet"), killed_ms, 10 * S)
        .expect("alert for the device silent during the switch");
    assert!(alert.at_ms <= killed_ms + 4_000 + 2_000, "alert late");
    // No replay burst at takeover, and B/up went on by one.
    wait_ups(&rec, base, 2);
    assert_eq!(rec.on("t/fo/dev/state/led").len(), states_before);
    // The state recorded while standby is replayed on hello.
    let hello_ms = epoch_ms();
    dev.publish("t/fo/dev/hello", b"");
    let replay = rec
        .wait("t/fo/dev/state/led", hello_ms, 5 * S)
        .expect("state replayed by the new leader");
    assert_eq!(replay.text(), "on");

    // The old leader comes back: it stays standby, publishes nothing of
    // the leader's (B/up still by one), replays nothing.
    let back_ms = epoch_ms();
    let _a = Iotmonitor::start(dir_a.path(), &[]);
    wait_role(ha, "standby", 15 * S);
    assert_eq!(role(ha)["leader"], "fo1-b");
    wait_ups(&rec, base, 3);
    assert!(
        rec.on("t/fo/dev/state/led")
            .iter()
            .all(|m| m.at_ms < back_ms || m.retained),
        "a replay burst from the restarted instance"
    );
    rec.ups(base);
    assert_eq!(role(hb)["role"], "active");
}

#[test]
fn a_clean_stop_hands_over_within_two_seconds() {
    let broker = Broker::start();
    let server = broker.url();
    let (ha, hb) = (free_port(), free_port());
    let base = "t/fo2";
    let dir_a = workdir(&instance(&server, base, "fo2-a", 10, ha, ""));
    let dir_b = workdir(&instance(&server, base, "fo2-b", 5, hb, ""));
    let rec = Recorder::start(
        broker.port,
        &[&format!("{base}/up"), &format!("{base}/status")],
    );
    let mut a = Iotmonitor::start(dir_a.path(), &[]);
    wait_role(ha, "active", 15 * S);
    let _b = Iotmonitor::start(dir_b.path(), &[]);
    wait_role(hb, "standby", 15 * S);
    wait_ups(&rec, base, 2);
    let start = Instant::now();
    a.signal(libc::SIGTERM);
    wait_role(hb, "active", 2 * S);
    eprintln!("handover after {:?}", start.elapsed());
    assert!(a.wait(10 * S).expect("stopped").success());
    wait_ups(&rec, base, 2);
    rec.ups(base);
    // A standby was there to take over: B/status never said offline.
    assert!(
        rec.on(&format!("{base}/status"))
            .iter()
            .all(|m| m.text() == "online"),
        "B/status flapped at a clean handover"
    );
}

#[test]
fn after_a_broker_restart_exactly_one_leader() {
    let mut broker = Broker::start();
    let server = broker.url();
    let (ha, hb) = (free_port(), free_port());
    let base = "t/fo3";
    let dir_a = workdir(&instance(&server, base, "fo3-a", 1, ha, ""));
    let dir_b = workdir(&instance(&server, base, "fo3-b", 1, hb, ""));
    let _a = Iotmonitor::start(dir_a.path(), &[]);
    let _b = Iotmonitor::start(dir_b.path(), &[]);
    let one_leader = || {
        let (ra, rb) = (role(ha), role(hb));
        let roles = [ra["role"].clone(), rb["role"].clone()];
        roles.contains(&"active".into())
            && roles.contains(&"standby".into())
            && ra["leader"] == rb["leader"]
            && !ra["leader"].is_null()
    };
    assert!(wait_until(20 * S, one_leader), "{} {}", role(ha), role(hb));
    let before = role(ha)["leader"].clone();
    // Restarted without persistence: the retained lease is gone.
    broker.restart();
    let rec = Recorder::start(
        broker.port,
        &[&format!("{base}/up"), &format!("{base}/leader")],
    );
    assert!(wait_until(30 * S, one_leader), "{} {}", role(ha), role(hb));
    assert_eq!(role(ha)["leader"], before, "the same instance leads again");
    wait_ups(&rec, base, 3);
    rec.ups(base);
    let leases: Vec<String> = rec
        .on(&format!("{base}/leader"))
        .iter()
        .map(|m| m.text())
        .collect();
    assert_eq!(
        leases.last().map(String::as_str),
        before.as_str(),
        "the lease on the broker: {leases:?}"
    );
}

#[test]
fn a_cut_off_leader_is_replaced_and_one_leader_remains_when_the_link_heals() {
    let broker = Broker::start();
    let relay = Relay::start(broker.port);
    let (ha, hb) = (free_port(), free_port());
    let base = "t/fo4";
    let agents = Agents::new(&["foled"]);
    let led = agents.name(0).to_string();
    let agent = format!(
        "[agent_{led}]\nexec=\"sleep 600\"\nwatchTimeOut=600\nwatchTopics=\"t/fo4/led/#\"\n"
    );
    let dir_a = workdir(&instance(&relay.url(), base, "fo4-a", 10, ha, &agent));
    let dir_b = workdir(&instance(&broker.url(), base, "fo4-b", 5, hb, &agent));
    let a = Iotmonitor::start(dir_a.path(), &[]);
    wait_role(ha, "active", 15 * S);
    let first = agents.wait_pids(0, "the leader launches the agent", |p| p.len() == 1);
    let b = Iotmonitor::start(dir_b.path(), &[]);
    wait_role(hb, "standby", 15 * S);
    // The standby launches nothing: still one process with the tag.
    let rec = Recorder::start(broker.port, &[&format!("{base}/up")]);
    wait_ups(&rec, base, 3);
    assert_eq!(agents.pids(0), first, "an agent under the leader only");

    // A's link stops forwarding, sockets open: the broker drops A after
    // its keep-alive, its last wills clear the lease, B takes over and
    // adopts the running agent.
    relay.blackhole();
    wait_role(hb, "active", Duration::from_secs(3 * KEEP_ALIVE));
    assert_eq!(agents.pids(0), first, "adopted, not launched twice");
    wait_ups(&rec, base, 2);

    // The link heals: A learns it was deposed, stays standby and stops
    // the agent it launched; B, active, launches it again.
    relay.heal();
    assert!(
        wait_until(Duration::from_secs(4 * KEEP_ALIVE), || role(ha)["role"]
            == "standby"),
        "the cut-off leader is not standby after the link healed: {}\n{}",
        role(ha),
        a.log()
    );
    assert_eq!(role(ha)["leader"], "fo4-b");
    assert_eq!(role(hb)["role"], "active");
    let again = agents.wait_pids(
        0,
        "stopped by the deposed leader, relaunched by the new one",
        |p| p.len() == 1 && p != first.as_slice(),
    );
    assert_eq!(again.len(), 1);
    wait_ups(&rec, base, 3);
    rec.ups(base);
    assert!(
        b.log().contains("now the active one"),
        "takeover logged: {}",
        b.log()
    );
}

#[test]
fn a_second_instance_with_the_same_client_id_is_an_error() {
    let broker = Broker::start();
    let server = broker.url();
    let (ha, hb) = (free_port(), free_port());
    let dir_a = workdir(&instance(&server, "t/fo5", "fo5-same", 1, ha, ""));
    let dir_b = workdir(&instance(&server, "t/fo5", "fo5-same", 1, hb, ""));
    let mut a = Iotmonitor::start(dir_a.path(), &[]);
    wait_role(ha, "active", 15 * S);
    let mut b = Iotmonitor::start(dir_b.path(), &[]);
    let Some(status) = b.wait(30 * S) else {
        panic!(
            "the second instance did not stop:\n{}\nfirst:\n{}",
            b.log(),
            a.log()
        );
    };
    assert_eq!(status.code(), Some(1));
    assert!(
        b.log()
            .contains("another instance already uses the client id 'fo5-same'"),
        "{}",
        b.log()
    );
    // The first one goes on.
    wait_role(ha, "active", 15 * S);
    assert!(a.terminate().success());
}
