//! Flood benchmark: a real mosquitto, the release daemon with N devices and
//! pre-stored states, and a raw-socket publisher sending M QoS 0 messages
//! (half sensor traffic, half state updates). Prints the daemon's CPU-µs per
//! message, messages/s, peak RSS, start-up time to the first `B/up`, expiry
//! alert latency during the flood, and lost/stale states checked through
//! hello replays; plus the CPU of a subscriber that only drains its socket,
//! as the floor.
//!
//! `cargo bench --bench flood`; environment: FLOOD_DEVICES (default
//! "1000,10000"), FLOOD_MESSAGES (200000), FLOOD_RUNS (3), FLOOD_STATES
//! (100000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use iotmonitor::store::Store;

const S: Duration = Duration::from_secs(1);
const SAMPLE: usize = 50;
const STATE_SLOTS: usize = 4;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

// ---- a minimal MQTT 3.1.1 encoder for the raw-socket clients ----

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn connect(port: u16, client_id: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02, 0, 0]); // v3.1.1, clean session, no keep-alive
    string(client_id.as_bytes(), &mut body);
    let mut pkt = vec![0x10];
    varint(body.len(), &mut pkt);
    pkt.extend_from_slice(&body);
    stream.write_all(&pkt).unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    assert_eq!(connack[0], 0x20, "no CONNACK");
    stream
}

fn publish(topic: &str, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x30);
    varint(2 + topic.len() + payload.len(), out);
    string(topic.as_bytes(), out);
    out.extend_from_slice(payload);
}

// ---- /proc measurements ----

fn clk_tck() -> f64 {
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// utime + stime of a process, in seconds.
fn cpu_s(pid: i32) -> f64 {
    let fields = proc_stat(pid);
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / clk_tck()
}

fn peak_rss_mb(pid: i32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn http_get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(5 * S)).unwrap();
    let _ = write!(s, "GET {path} HTTP/1.0\r\n\r\n");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp
}

fn messages_seen(http: u16) -> u64 {
    http_get(http, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix("iotmonitor_messages_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

// ---- the floor: a subscriber that only drains its socket ----

fn drain(port: u16, count: u64) {
    let mut stream = connect(port, "flood-drain");
    let mut sub = vec![0x82];
    let mut body = vec![0, 1];
    string(b"home/#", &mut body);
    body.push(0);
    varint(body.len(), &mut sub);
    sub.extend_from_slice(&body);
    stream.write_all(&sub).unwrap();
    println!("subscribed");
    let mut buf = vec![0u8; 1 << 16];
    let mut pending: Vec<u8> = Vec::new();
    let mut publishes = 0;
    while publishes < count {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "broker closed the drain connection");
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        loop {
            let mut len = 0usize;
            let mut shift = 0;
            let mut i = at + 1;
            let complete = loop {
                let Some(&b) = pending.get(i) else {
                    break false;
                };
                len |= ((b & 0x7f) as usize) << shift;
                shift += 7;
                i += 1;
                if b & 0x80 == 0 {
                    break true;
                }
            };
            if !complete || pending.len() < i + len {
                break;
            }
            if pending[at] >> 4 == 3 {
                publishes += 1;
            }
            at = i + len;
        }
        pending.drain(..at);
    }
    // Report our own CPU time: the parent cannot read it once we are gone.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    println!("done {}", tv(usage.ru_utime) + tv(usage.ru_stime));
}

struct Flood {
    bytes: Vec<u8>,
    /// Latest payload of each state topic the flood touches.
    latest: HashMap<String, String>,
}

/// M messages: even ones sensor traffic, odd ones state updates.
fn make_flood(n: usize, m: usize, first: &[(&str, &[u8])]) -> Flood {
    let mut bytes = Vec::with_capacity(m * 40);
    let mut latest = HashMap::new();
    for (t, p) in first {
        publish(t, p, &mut bytes);
    }
    for j in 0..m {
        let d = (j / 2) % n;
        if j % 2 == 0 {
            publish(&format!("home/d{d}/sensors/t"), b"21.5", &mut bytes);
        } else {
            let topic = format!("home/d{d}/state/s{}", (j / 2 / n) % STATE_SLOTS);
            let payload = j.to_string();
            publish(&topic, payload.as_bytes(), &mut bytes);
            latest.insert(topic, payload);
        }
    }
    Flood { bytes, latest }
}

fn broker() -> Broker {
    Broker::start_with(free_port(), "max_queued_messages 0\nmax_queued_bytes 0\n")
}

#[derive(Debug, Clone, Default)]
struct Run {
    startup_ms: f64,
    cpu_us: f64,
    cpu_us_net: f64,
    msgs_per_s: f64,
    rss_mb: f64,
    lost: usize,
    stale: usize,
    alert_ms: Option<f64>,
}

fn run_once(n: usize, m: usize, states: usize) -> Run {
    let broker = broker();
    let http = free_port();
    let mut text = format!(
        "[mqtt]\nserverAddress=\"tcp://127.0.0.1:{}\"\nbaseTopic=\"bench/mon\"\nclientid=\"iotmonitor-bench\"\n\
         [http]\nbind=\"127.0.0.1:{http}\"\n[device_watchme]\nwatchTimeOut=1\nwatchTopics=\"bench/watchme\"\n",
        broker.port
    );
    for i in 0..n {
        text.push_str(&format!(
            "[device_d{i}]\nwatchTimeOut=3600\nwatchTopics=\"home/d{i}/sensors/#\"\nstateTopics=\"home/d{i}/state/#\"\nhelloTopic=\"home/d{i}\"\n"
        ));
    }
    let dir = workdir(&text);
    let mut seeded: HashMap<String, String> = HashMap::new();
    {
        let mut store = Store::open(&dir.path().join("iotdb.leveldb")).unwrap();
        for k in 0..states {
            let topic = format!("home/d{}/state/s{}", k % n, k / n);
            let payload = format!("seed{k}");
            store.record(topic.as_bytes(), payload.as_bytes());
            if k % 1000 == 999 {
                store.commit().unwrap();
            }
            seeded.insert(topic, payload);
        }
        store.close().unwrap();
    }

    let alerts = Client::connect(broker.port, &["bench/mon/up", "bench/mon/expired/watchme"]);
    let spawned = Instant::now();
    let daemon = Iotmonitor::start(dir.path(), &[]);
    alerts
        .wait_topic("bench/mon/up", 30 * S)
        .expect("first B/up");
    let startup_ms = spawned.elapsed().as_secs_f64() * 1000.0;
    let pid = daemon.pid();

    // Let the start-up replay finish, then measure the idle rate.
    let deadline = Instant::now() + 60 * S;
    while http_get(http, "/healthz").is_empty() {
        assert!(Instant::now() < deadline, "status page never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(2 * S);
    let idle0 = cpu_s(pid);
    std::thread::sleep(2 * S);
    let idle_rate = (cpu_s(pid) - idle0) / 2.0;
    let _ = alerts.collect(Duration::from_millis(10));

    let flood = make_flood(n, m, &[("bench/watchme", b"x")]);
    let base = messages_seen(http);
    let mut publisher = connect(broker.port, "flood-publisher");
    let cpu0 = cpu_s(pid);
    let t0 = Instant::now();
    let flood_start_ms = epoch_ms();
    for chunk in flood.bytes.chunks(1 << 16) {
        publisher.write_all(chunk).unwrap();
    }
    let target = base + m as u64 + 1;
    let deadline = Instant::now() + 600 * S;
    while messages_seen(http) < target {
        assert!(
            Instant::now() < deadline,
            "the daemon did not see all {m} messages"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_s(pid) - cpu0;
    let rss_mb = peak_rss_mb(pid);
    let flood_end_ms = flood_start_ms + (elapsed * 1000.0) as u64;

    // Alert latency: the first alert for a deadline inside the flood.
    let alert_ms = alerts
        .collect(Duration::from_millis(100))
        .iter()
        .filter(|a| a.topic == "bench/mon/expired/watchme")
        .filter_map(|a| Some((a.at_ms, a.text().parse::<u64>().ok()? * 1000)))
        .find(|&(_, deadline)| deadline > flood_start_ms && deadline <= flood_end_ms)
        .map(|(at, deadline)| at.saturating_sub(deadline) as f64);

    // Verification through hello replays of a sample of devices.
    let step = (n / SAMPLE).max(1);
    let sampled: Vec<usize> = (0..n).step_by(step).take(SAMPLE).collect();
    let filters: Vec<String> = sampled
        .iter()
        .map(|d| format!("home/d{d}/state/#"))
        .collect();
    let refs: Vec<&str> = filters.iter().map(String::as_str).collect();
    let verify = Client::connect(broker.port, &refs);
    let mut hellos = Vec::new();
    for d in &sampled {
        publish(&format!("home/d{d}"), b"hello", &mut hellos);
    }
    publisher.write_all(&hellos).unwrap();
    let replays = verify.collect(3 * S);
    let got: HashMap<&str, String> = replays
        .iter()
        .map(|m| (m.topic.as_str(), m.text()))
        .collect();
    let (mut lost, mut stale) = (0, 0);
    for d in &sampled {
        let prefix = format!("home/d{d}/state/");
        for (topic, want) in flood.latest.iter().filter(|(t, _)| t.starts_with(&prefix)) {
            match got.get(topic.as_str()) {
                None => lost += 1,
                Some(v) if v != want => stale += 1,
                Some(_) => {}
            }
        }
        for (topic, want) in seeded.iter().filter(|(t, _)| t.starts_with(&prefix)) {
            if !flood.latest.contains_key(topic) && got.get(topic.as_str()) != Some(want) {
                lost += 1;
            }
        }
    }
    drop(daemon);
    Run {
        startup_ms,
        cpu_us: cpu * 1e6 / m as f64,
        cpu_us_net: (cpu - idle_rate * elapsed).max(0.0) * 1e6 / m as f64,
        msgs_per_s: m as f64 / elapsed,
        rss_mb,
        lost,
        stale,
        alert_ms,
    }
}

/// The floor: CPU-µs per message of a process that only drains its socket.
fn floor(m: usize) -> (f64, f64) {
    let broker = broker();
    let me = std::env::current_exe().unwrap();
    let mut child = Command::new(me)
        .args(["drain", &broker.port.to_string(), &m.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut line = [0u8; 11];
    out.read_exact(&mut line).unwrap();
    let flood = make_flood(1000, m, &[]);
    let mut publisher = connect(broker.port, "flood-publisher");
    let t0 = Instant::now();
    for chunk in flood.bytes.chunks(1 << 16) {
        publisher.write_all(chunk).unwrap();
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let _ = child.wait();
    let cpu: f64 = rest
        .trim()
        .strip_prefix("done ")
        .and_then(|v| v.parse().ok())
        .expect("drain reports its CPU time");
    let elapsed = t0.elapsed().as_secs_f64();
    (cpu * 1e6 / m as f64, m as f64 / elapsed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("drain") {
        drain(args[2].parse().unwrap(), args[3].parse().unwrap());
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // cargo test --benches asks for a list
    }
    let ns: Vec<usize> = env_or("FLOOD_DEVICES", "1000,10000")
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect();
    let m: usize = env_or("FLOOD_MESSAGES", "200000").parse().unwrap();
    let runs: usize = env_or("FLOOD_RUNS", "3").parse().unwrap();
    let states: usize = env_or("FLOOD_STATES", "100000").parse().unwrap();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cpu}, {cores} cores; M = {m} messages, {states} stored states, {runs} runs"
    );

    let mut table = Vec::new();
    for &n in &ns {
        let mut results = Vec::new();
        for r in 0..runs {
            let res = run_once(n, m, states);
            println!("N={n} run {r}: {res:?}");
            results.push(res);
        }
        table.push((n, results));
    }
    let (floor_us, floor_rate) = floor(m);
    println!("floor (drain-only subscriber): {floor_us:.2} CPU-µs/msg, {floor_rate:.0} msg/s");

    println!();
    println!("| N devices | CPU-µs/msg (net of idle) | msg/s | peak RSS MB | start-up to first B/up ms | expiry alert after deadline ms | lost | stale |");
    println!("|---|---|---|---|---|---|---|---|");
    for (n, results) in &table {
        let med = |f: &dyn Fn(&Run) -> f64| median(results.iter().map(f).collect());
        let alerts: Vec<f64> = results.iter().filter_map(|r| r.alert_ms).collect();
        println!(
            "| {n} | {:.2} ({:.2}) | {:.0} | {:.1} | {:.0} | {} | {} | {} |",
            med(&|r| r.cpu_us),
            med(&|r| r.cpu_us_net),
            med(&|r| r.msgs_per_s),
            med(&|r| r.rss_mb),
            med(&|r| r.startup_ms),
            if alerts.is_empty() {
                "n/a".to_string()
            } else {
                format!("{:.0}", median(alerts))
            },
            results.iter().map(|r| r.lost).sum::<usize>(),
            results.iter().map(|r| r.stale).sum::<usize>(),
        );
    }
    println!("| floor: drain-only subscriber | {floor_us:.2} | {floor_rate:.0} | | | | | |");
    println!();
    println!("targets: ≤ 2 CPU-µs/msg at N=1,000 and 10,000; 0 lost/stale; peak RSS ≤ 16 MB at N=10,000; start-up ≤ 500 ms; alert ≤ 1000 ms after its deadline");
}
