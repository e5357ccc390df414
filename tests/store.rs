//! Black-box tests of the state store inside the real daemon: a full disk
//! (a small tmpfs filled up) degrades it without blinding the watchdog and
//! loses no state; the log sync cadence, seen with strace.

mod common;
#[path = "common/disk.rs"]
mod disk;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use disk::SmallDisk;

const S: Duration = Duration::from_secs(1);

/// Status and body of a GET, None while nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    try_http_get(port, path).map(|(status, _, body)| (status, body))
}

/// A sample of the daemon's Prometheus metrics (without labels).
fn metric(port: u16, name: &str) -> Option<u64> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `cond` until it holds; panics naming `what` after `timeout`.
fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `n` states are recorded and none waits for the disk.
fn wait_committed(http: u16, n: u64) {
    wait_until(10 * S, &format!("{n} states committed"), || {
        metric(http, "iotmonitor_states_stored_total") >= Some(n)
            && metric(http, "iotmonitor_store_pending_writes") == Some(0)
    });
}

/// Sends the hello of device `dev` and returns what is replayed (topic →
/// payload), once `want` states have arrived.
fn hello(port: u16, want: usize) -> BTreeMap<String, Vec<u8>> {
    let replays = Client::connect(port, &["fd/dev/state/#"]);
    replays.publish("fd/dev/hello", b"");
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + 10 * S;
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match replays.next(left) {
            Some(m) => {
                got.insert(m.topic, m.payload);
            }
            None => panic!("replayed {} of {want} states: {got:?}", got.len()),
        }
    }
    got
}

#[test]
fn a_full_disk_keeps_alerting_and_loses_no_state() {
    // Declared first, dropped last: unmounted after the daemon is gone.
    let disk = SmallDisk::mount(2 << 20);
    let broker = Broker::start();
    let http = free_port();
    let dir = workdir(&format!(
        "{}[http]\nbind=\"127.0.0.1:{http}\"\n\
         [device_dev]\nwatchTimeOut=60\nwatchTopics=\"fd/dev/#\"\n\
         stateTopics=\"fd/dev/state/#\"\nhelloTopic=\"fd/dev/hello\"\n\
         [device_quiet]\nwatchTimeOut=1\nwatchTopics=\"fd/quiet/#\"\n",
        mqtt_section(broker.port, "t/fd")
    ));
    let db = disk.path().join("iotdb.leveldb");
    let db_arg = db.to_str().unwrap();
    let c = Client::connect(broker.port, &["t/fd/#"]);
    let mut daemon = Iotmonitor::start(dir.path(), &["--database", db_arg]);
    c.wait_topic("t/fd/up", 10 * S).expect("up");
    let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut state = |topic: &str, payload: Vec<u8>| {
        c.publish(topic, &payload);
        want.insert(topic.to_string(), payload);
    };
    state("fd/dev/state/before", b"b".to_vec());
    wait_committed(http, 1);
    assert_eq!(http_get(http, "/healthz").unwrap().0, 200);

    let filler = disk.fill();
    // Big enough to need new pages on the full disk.
    for i in 0..6u8 {
        state(&format!("fd/dev/state/during{i}"), vec![b'0' + i; 8192]);
    }
    wait_until(10 * S, "/healthz unhealthy", || {
        http_get(http, "/healthz").is_some_and(|(code, _)| code == 503)
    });
    let (_, body) = http_get(http, "/healthz").unwrap();
    assert!(body.contains("No space left on device"), "{body}");
    assert!(metric(http, "iotmonitor_store_failures_total") >= Some(1));
    assert_eq!(metric(http, "iotmonitor_store_healthy"), Some(0));
    // The six states and the history's record of the failure.
    assert_eq!(metric(http, "iotmonitor_store_pending_writes"), Some(7));

    // The watchdog goes on: B/up counts, the silent device is alerted.
    let mut ups = 0;
    let mut alerts = 0;
    c.wait_for(10 * S, |m| {
        ups += usize::from(m.topic == "t/fd/up");
        alerts += usize::from(m.topic == "t/fd/expired/quiet");
        ups >= 3 && alerts >= 3
    })
    .unwrap_or_else(|| panic!("during the outage: {ups} B/up, {alerts} alerts"));
    // A hello during the outage replays the latest states, pending ones too.
    assert_eq!(hello(broker.port, want.len()), want);

    disk.empty(filler);
    wait_until(40 * S, "/healthz healthy again", || {
        http_get(http, "/healthz").is_some_and(|(code, _)| code == 200)
    });
    c.publish("fd/dev/state/after", b"a");
    want.insert("fd/dev/state/after".into(), b"a".to_vec());
    wait_committed(http, 8);
    assert_eq!(hello(broker.port, want.len()), want);

    // Everything is on disk: a restarted daemon replays it all.
    assert!(daemon.terminate().success());
    let mut daemon = Iotmonitor::start(dir.path(), &["--database", db_arg]);
    c.wait_topic("t/fd/up", 10 * S).expect("up after restart");
    assert_eq!(hello(broker.port, want.len()), want);
    let (code, out, err) = run(dir.path(), &["--database", db_arg, "dump"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), want.len(), "{out}");
    assert!(daemon.terminate().success());
}

/// Epoch seconds of every fsync or fdatasync started, from an strace
/// output file.
fn syncs(trace: &str) -> Vec<f64> {
    trace
        .lines()
        .filter(|l| l.contains("fdatasync(") || l.contains("fsync("))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

#[test]
fn the_log_is_synced_once_a_second_under_writes_and_never_when_idle() {
    let broker = Broker::start();
    let http = free_port();
    let dir = workdir(&format!(
        "{}[http]\nbind=\"127.0.0.1:{http}\"\n\
         [device_dev]\nwatchTimeOut=60\nwatchTopics=\"fd/dev/#\"\nstateTopics=\"fd/dev/state/#\"\n",
        mqtt_section(broker.port, "t/sync")
    ));
    let c = Client::connect(broker.port, &["t/sync/up"]);
    let daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_topic("t/sync/up", 10 * S).expect("up");
    let trace = dir.path().join("strace.txt");
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-ttt", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&trace)
        .args(["-p", &daemon.pid().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace is installed (scripts/test.sh installs it)");
    let tasks = format!("/proc/{}/task", daemon.pid());
    wait_until(10 * S, "strace attached to every thread", || {
        std::fs::read_dir(&tasks).unwrap().all(|t| {
            std::fs::read_to_string(t.unwrap().path().join("status"))
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with("TracerPid:") && l.trim_end() != "TracerPid:\t0")
        })
    });

    // 50 states a second for 4 s.
    let start = epoch_ms() as f64 / 1000.0;
    let paced = Instant::now();
    for i in 0..200u32 {
        let at = paced + Duration::from_millis(20 * u64::from(i));
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        c.publish(&format!("fd/dev/state/s{}", i % 10), &i.to_be_bytes());
    }
    let written = epoch_ms() as f64 / 1000.0;
    wait_committed(http, 200);
    // The last commit is synced within a second; then nothing is written:
    // idle for four ticks of the daemon.
    let idle_from = epoch_ms() as f64 / 1000.0 + 1.2;
    for _ in 0..6 {
        c.wait_topic("t/sync/up", 5 * S).expect("up while idle");
    }
    let end = epoch_ms() as f64 / 1000.0;
    // SAFETY: signalling the strace we started, by its pid.
    unsafe { libc::kill(strace.id() as i32, libc::SIGINT) };
    strace.wait().unwrap();

    let all = syncs(&std::fs::read_to_string(&trace).unwrap());
    let steady: Vec<f64> = all
        .iter()
        .copied()
        .filter(|&t| t >= start && t < idle_from)
        .collect();
    let busy = idle_from - start;
    assert!(
        steady.len() as f64 >= busy - 2.0 && steady.len() as f64 <= busy + 1.0,
        "{} syncs in {busy:.1} s of writes: {steady:?}",
        steady.len()
    );
    for pair in steady.windows(2) {
        assert!(
            pair[1] - pair[0] >= 0.95,
            "two syncs within a second: {steady:?}"
        );
    }
    assert!(
        steady.last().is_some_and(|&t| t >= written - 1.0),
        "the last writes were not synced: {steady:?} (writes until {written})"
    );
    let idle: Vec<f64> = all.iter().copied().filter(|&t| t >= idle_from).collect();
    assert!(
        idle.is_empty(),
        "syncs while idle from {idle_from} to {end}: {idle:?}"
    );
}
