//! Flood benchmark ("Performance at 10,000 devices").
//!
//! For each N in FLOOD_DEVICES and each of FLOOD_RUNS runs: a real
//! mosquitto on a free loopback port; a configuration with N devices
//! (`home/d<i>/sensors/#` watched, `home/d<i>/state/#` states, `home/d<i>`
//! hello) plus `watchme` (watchTimeOut=3, never any traffic); a database
//! pre-filled with FLOOD_STATES states; the release daemon, timed from spawn
//! to the first `B/up`; then FLOOD_MESSAGES QoS 0 messages from a raw-socket
//! publisher, half sensor traffic, half state updates. Completion is seen
//! through hello replays of ~50 sampled devices (the daemon handles messages
//! in order, so once their first replay is in, everything before was
//! handled); all their replays check that every state holds the latest
//! value published. The floor is a process that only drains a `home/#`
//! subscription during an identical flood. Each run is done twice: with the
//! daemon running during the flood, and with the daemon stopped (SIGSTOP)
//! while the flood is written, then resumed (SIGCONT) to drain the backlog
//! the broker queued. Measured: CPU (whole process, Paho's receive thread,
//! main loop), thread wake-ups (voluntary context switches), system calls
//! (perf stat), RSS (idle before the flood, peak
//! of the flood, peak of the run); and, once, the idle RSS of a daemon with
//! one device and a broker without TLS, for the default build and for one
//! without the `tls` feature (which the bench builds into `target/notls`).
//!
//! `cargo bench --bench flood`; environment (defaults): FLOOD_DEVICES
//! (1000,10000), FLOOD_MESSAGES (200000), FLOOD_RUNS (3), FLOOD_STATES
//! (100000); FLOOD_BIN (this package's release binary): the daemon to
//! measure, to compare two builds; FLOOD_DEBUG=1 prints each run's
//! timeline on stderr;
//! FLOOD_SOAK_S (0: no soak) and FLOOD_SOAK_WARMUP_S (30) run the soak.
//!
//! Also measured: the idle RSS with N devices and an empty database (the
//! memory per device beyond its configured strings, against one device);
//! after each live run, the main loop's time applying a SIGHUP reload and
//! the delay from the hello of a device whose state filter starts with a
//! wildcard (`+/d<i>/state/#`) to its last replayed state; with
//! FLOOD_SOAK_S, the RSS growth of a daemon with 100 devices receiving 200
//! messages a second.
//! `flood prepare DIR PORT N STATES` (the bench binary) writes the
//! configuration and database of a run, to profile the daemon by hand.
//!
//! Timeline of a run, wall clock: the daemon is spawned 20 ms after a
//! wall-clock second X, so the first deadline of `watchme` is X+4 s (X+5 s
//! when start-up takes more than a second; deadlines are whole seconds
//! rounded up); the flood starts 400 ms before X+4, once the start-up replay
//! is over. The idle CPU rate is measured over 2 s after completion (before
//! the flood there is no room for 2 quiet seconds between the end of the
//! start-up replay and the deadline); it is the same steady state: the
//! 1-second tick and its helloTopicCount round.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{
    epoch_ms, free_port, mqtt_connect, mqtt_string, publish, varint, workdir, Broker, Client,
    Iotmonitor, Msg,
};
use iotmonitor::record::Record;
use iotmonitor::store::Store;

const BASE: &str = "bench/mon";
const WATCHME_TIMEOUT_S: u64 = 3;
/// Devices whose hello replays are checked.
const SAMPLE: usize = 50;
/// State topics per device touched by the flood (`s0` … `s3`).
const SLOTS: usize = 4;
/// Published after the flood, before the hellos: on the verifying client,
/// everything after it on a state topic is a replay.
const MARKER: &str = "bench/flood/marker";
/// QoS 0 messages to a slow subscriber are dropped by mosquitto beyond
/// max_queued_messages (default 1000): room for the whole flood.
const BROKER_EXTRA: &str = "max_queued_messages 1000000\nmax_queued_bytes 0\n";
/// The flood starts this long before watchme's deadline.
const LEAD_MS: u64 = 400;
const CHUNK: usize = 1 << 16;
/// The hello of the device whose state filter starts with a wildcard.
const WILD_HELLO: &str = "bench/wild";
const S: Duration = Duration::from_secs(1);

// Targets of the performance issue.
const T_CPU_US: f64 = 2.0;
const T_RSS_MB: f64 = 16.0;
const T_STARTUP_MS: f64 = 500.0;
const T_ALERT_MS: f64 = 1000.0;
const T_IDLE_RSS_MB: f64 = 6.0;
const T_DEVICE_BYTES: f64 = 512.0;
const T_SOAK_GROWTH_MB: f64 = 1.0;
const T_RELOAD_MS: f64 = 50.0;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn parse_env<T: std::str::FromStr>(name: &str, default: &str) -> T {
    let v = env_or(name, default);
    v.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid number"))
}

// ---------------------------------------------------------------------
// A minimal MQTT 3.1.1 encoder and packet splitter for the raw sockets.

/// Splits a byte stream into MQTT packets, returning their types.
struct Packets {
    buf: Vec<u8>,
    at: usize,
    end: usize,
}

impl Packets {
    fn new() -> Packets {
        Packets {
            buf: vec![0; CHUNK],
            at: 0,
            end: 0,
        }
    }

    /// Type and total length of the packet at the front, once its fixed
    /// header is complete.
    fn header(&self) -> io::Result<Option<(u8, usize)>> {
        let b = &self.buf[self.at..self.end];
        let Some(&first) = b.first() else {
            return Ok(None);
        };
        let mut len = 0usize;
        for i in 1..5 {
            let Some(&byte) = b.get(i) else {
                return Ok(None);
            };
            len |= ((byte & 0x7f) as usize) << (7 * (i - 1));
            if byte & 0x80 == 0 {
                return Ok(Some((first >> 4, 1 + i + len)));
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed remaining length",
        ))
    }

    /// The type of the next complete packet (its bytes are skipped).
    fn next(&mut self, stream: &mut impl Read) -> io::Result<u8> {
        loop {
            let need = match self.header()? {
                Some((kind, len)) if self.end - self.at >= len => {
                    self.at += len;
                    return Ok(kind);
                }
                Some((_, len)) => len,
                None => 5,
            };
            if self.at > 0 {
                self.buf.copy_within(self.at..self.end, 0);
                self.end -= self.at;
                self.at = 0;
            }
            if self.buf.len() < need.max(self.end + 1) {
                self.buf.resize(need.max(2 * self.buf.len()), 0);
            }
            let n = stream.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.end += n;
        }
    }
}

// ---------------------------------------------------------------------
// /proc measurements.

/// utime + stime of a process, in seconds (fields 14 and 15 of
/// /proc/<pid>/stat, in clock ticks).
fn cpu_s(pid: i32) -> f64 {
    stat_cpu_s(&format!("/proc/{pid}/stat")).1
}

/// The command name and utime + stime (seconds) in a `stat` file of /proc.
fn stat_cpu_s(path: &str) -> (String, f64) {
    let stat = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (did the process die?)"));
    // Fields after the command name, which is in parentheses: the first one
    // is field 3.
    let (name, rest) = stat.rsplit_once(')').unwrap_or_default();
    let name = name.split_once('(').map_or("", |(_, n)| n).to_string();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> f64 {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{path}: no field {n}"))
    };
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (name, (field(14) + field(15)) / tck)
}

/// CPU seconds of some threads of the daemon.
#[derive(Debug, Clone, Copy)]
struct ThreadCpu {
    /// Paho C's receive thread.
    receive: f64,
    /// The main thread (the main loop).
    main: f64,
    /// The store's sync thread (fdatasync of the log).
    sync: f64,
    /// Voluntary context switches of all threads: each is a sleep, and
    /// the wake-up that ended it.
    wakes: f64,
}

fn thread_cpu_s(pid: i32) -> ThreadCpu {
    let (mut receive, mut main, mut sync, mut wakes) = (0.0, 0.0, 0.0, 0.0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
    {
        let Ok(task) = task else { continue };
        let (name, cpu) = stat_cpu_s(&format!("{}/stat", task.path().display()));
        wakes += std::fs::read_to_string(task.path().join("status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if task.file_name().to_str() == Some(&pid.to_string()) {
            main = cpu;
        } else if name == "MQTTAsync_rcv" {
            receive = cpu;
        } else if name == "store-sync" {
            sync = cpu;
        }
    }
    ThreadCpu {
        receive,
        main,
        sync,
        wakes,
    }
}

/// A `/proc/<pid>/status` field given in kB (`VmRSS`, `VmHWM`), in MB.
fn status_mb(pid: i32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1024.0
}

/// Peak RSS (VmHWM) of a process, in MB.
fn peak_rss_mb(pid: i32) -> f64 {
    status_mb(pid, "VmHWM")
}

/// Current RSS (VmRSS) of a process, in MB.
fn rss_mb(pid: i32) -> f64 {
    status_mb(pid, "VmRSS")
}

/// Resets the peak RSS of a process to its current RSS (Linux >= 4.0), so
/// that the next `peak_rss_mb` is the peak of what follows.
fn reset_peak_rss(pid: i32) {
    if let Err(e) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("cannot reset the peak RSS of {pid}: {e}");
    }
}

/// Tracepoints counted by `perf stat`: all system calls, and the ones of
/// the read path (recv(2) is recvfrom on Linux; poll(2) is ppoll on some
/// architectures), and the store's log syncs.
const SYSCALL_EVENTS: [&str; 5] = [
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_enter_poll",
    "syscalls:sys_enter_ppoll",
    "syscalls:sys_enter_fdatasync",
];

/// System calls per message: all of them, recv(2), poll(2); and the number
/// of fdatasync(2) calls (log, tables and manifest).
#[derive(Debug, Clone, Copy)]
struct Calls {
    all: f64,
    recv: f64,
    poll: f64,
    syncs: f64,
}

/// The system calls of a process (all its threads), counted by `perf stat`
/// from `start` to `finish`: tracepoints counted in the kernel, which do not
/// slow the process down as strace would. (/proc/<pid>/io is no help here:
/// its syscr/syscw do not count socket calls.) The tracepoints are under
/// tracefs, which a machine may not have mounted: the bench mounts it when
/// it can (as root). Without perf, or without the tracepoints, the counts
/// are missing (NaN in the tables).
struct SyscallCount(Option<Child>);

const TRACEFS: &str = "/sys/kernel/tracing";

impl SyscallCount {
    fn start(pid: i32) -> SyscallCount {
        if !Path::new(TRACEFS).join("events").exists() {
            let _ = Command::new("mount")
                .args(["-t", "tracefs", "nodev", TRACEFS])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let events: Vec<&str> = SYSCALL_EVENTS
            .into_iter()
            .filter(|e| {
                let (group, name) = e.split_once(':').unwrap_or_default();
                Path::new(TRACEFS)
                    .join("events")
                    .join(group)
                    .join(name)
                    .exists()
            })
            .collect();
        if events.is_empty() {
            eprintln!("no syscall tracepoints: no system call counts");
            return SyscallCount(None);
        }
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", &events.join(","), "-p"])
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok();
        if child.is_none() {
            eprintln!("perf is not available: no system call counts");
        }
        SyscallCount(child)
    }

    /// Stops counting (SIGINT to perf, which then prints its counts) and
    /// divides by `m` messages.
    fn finish(mut self, m: usize) -> Calls {
        let mut out = String::new();
        if let Some(mut child) = self.0.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut out);
            }
            let _ = child.wait();
        }
        // One line per event: count,unit,event,...
        let count = |event: &str| -> Option<f64> {
            out.lines()
                .find(|l| l.split(',').nth(2) == Some(event))
                .and_then(|l| l.split(',').next()?.parse::<f64>().ok())
        };
        let all = count(SYSCALL_EVENTS[0]);
        if all.is_none() && !out.is_empty() {
            eprintln!("perf stat counted nothing: {}", out.trim());
        }
        let per_msg = |c: Option<f64>| c.map_or(f64::NAN, |c| c / m as f64);
        let polls = match (count(SYSCALL_EVENTS[2]), count(SYSCALL_EVENTS[3])) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        Calls {
            all: per_msg(all),
            recv: per_msg(count(SYSCALL_EVENTS[1])),
            poll: per_msg(polls),
            syncs: count(SYSCALL_EVENTS[4]).unwrap_or(f64::NAN),
        }
    }
}

impl Drop for SyscallCount {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sleep_until_epoch_ms(at: u64) {
    let now = epoch_ms();
    if at > now {
        std::thread::sleep(Duration::from_millis(at - now));
    }
}

// ---------------------------------------------------------------------
// The flood.

struct Flood {
    /// M PUBLISH packets, ready to write.
    bytes: Vec<u8>,
    /// Latest payload of each state topic the flood touches.
    latest: HashMap<String, String>,
}

/// Message j: pair p = j / 2 goes to device p % N; even j is sensor
/// traffic, odd j a state update of slot (p / N) % 4 with payload j.
fn make_flood(n: usize, m: usize) -> Flood {
    let mut bytes = Vec::with_capacity(m * 32);
    let mut latest = HashMap::new();
    for j in 0..m {
        let p = j / 2;
        let d = p % n;
        if j % 2 == 0 {
            publish(&format!("home/d{d}/sensors/t"), b"21.5", &mut bytes);
        } else {
            let topic = format!("home/d{d}/state/s{}", (p / n) % SLOTS);
            let payload = j.to_string();
            publish(&topic, payload.as_bytes(), &mut bytes);
            latest.insert(topic, payload);
        }
    }
    Flood { bytes, latest }
}

fn write_flood(publisher: &mut TcpStream, bytes: &[u8]) {
    for chunk in bytes.chunks(CHUNK) {
        publisher
            .write_all(chunk)
            .unwrap_or_else(|e| panic!("flood publisher: {e}"));
    }
}

/// The device whose states the `wild` device (state filter
/// `+/d<i>/state/#`, a wildcard first) replays.
fn wild_device(n: usize) -> usize {
    n / 2
}

/// Pre-stored state k: device k % N, topic `home/d<k % N>/state/s<k / N>`.
fn seed_topic(k: usize, n: usize) -> String {
    format!("home/d{}/state/s{}", k % n, k / n)
}

fn seed_payload(k: usize) -> String {
    format!("seed{k}")
}

/// Fills the database; returns the greatest key (the start-up replay goes
/// in key order, so its arrival means the replay is over).
fn seed(path: &Path, n: usize, states: usize) -> Option<String> {
    let mut store = Store::open(path).unwrap();
    let mut last: Option<String> = None;
    for k in 0..states {
        let topic = seed_topic(k, n);
        store.record(Record::new(topic.as_bytes(), seed_payload(k).as_bytes()));
        if k % 10_000 == 9_999 {
            store.commit(Instant::now());
        }
        if last.as_deref().is_none_or(|l| topic.as_str() > l) {
            last = Some(topic);
        }
    }
    store.close().unwrap();
    last
}

/// What a hello of device d must replay: its pre-stored states, then the
/// flood's latest values.
fn expected_states(d: usize, n: usize, states: usize, flood: &Flood) -> HashMap<String, String> {
    let mut want = HashMap::new();
    let mut k = d;
    while k < states {
        want.insert(seed_topic(k, n), seed_payload(k));
        k += n;
    }
    for slot in 0..SLOTS {
        let topic = format!("home/d{d}/state/s{slot}");
        if let Some(v) = flood.latest.get(&topic) {
            want.insert(topic, v.clone());
        }
    }
    want
}

fn config_text(port: u16, n: usize) -> String {
    let mut t = format!(
        "[mqtt]\nserverAddress=\"tcp://127.0.0.1:{port}\"\nbaseTopic=\"{BASE}\"\nclientid=\"iotmonitor-bench\"\n\n\
         [device_watchme]\nwatchTimeOut={WATCHME_TIMEOUT_S}\nwatchTopics=\"bench/watchme\"\n\n\
         [device_wild]\nwatchTimeOut=3600\nwatchTopics=\"bench/wild/sensors\"\nstateTopics=\"+/d{}/state/#\"\nhelloTopic=\"{WILD_HELLO}\"\n\n",
        wild_device(n)
    );
    for i in 0..n {
        let _ = write!(
            t,
            "[device_d{i}]\nwatchTimeOut=3600\nwatchTopics=\"home/d{i}/sensors/#\"\nstateTopics=\"home/d{i}/state/#\"\nhelloTopic=\"home/d{i}\"\n\n"
        );
    }
    t
}

// ---------------------------------------------------------------------
// An observer on its own thread, so that arrival times are taken when
// messages arrive, not when the main thread gets round to them.

struct Observer {
    rx: mpsc::Receiver<Msg>,
    seen: Vec<Msg>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Observer {
    fn start(port: u16, filters: &[&str]) -> Observer {
        let client = Client::connect(port, filters);
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Some(m) = client.next(Duration::from_millis(100)) {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
            }
        });
        Observer {
            rx,
            seen: Vec::new(),
            stop,
            thread: Some(thread),
        }
    }

    /// The first message (already seen or arriving within `timeout`)
    /// satisfying `pred`.
    fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        if let Some(m) = self.seen.iter().find(|m| pred(m)) {
            return Some(m.clone());
        }
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let m = self.rx.recv_timeout(left).ok()?;
            self.seen.push(m.clone());
            if pred(&m) {
                return Some(m);
            }
        }
    }

    fn all(&mut self) -> &[Msg] {
        self.seen.extend(self.rx.try_iter());
        &self.seen
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------
// One run against the daemon.

#[derive(Debug, Clone, Copy)]
enum Alert {
    /// Milliseconds after the deadline.
    Ms(f64),
    /// The deadline fell outside the flood.
    Outside,
    /// No alert at all.
    Missing,
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Alert::Ms(ms) => write!(f, "{ms:.0}"),
            Alert::Outside => write!(f, "n/a"),
            Alert::Missing => write!(f, "MISSING"),
        }
    }
}

/// How the daemon meets the flood.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Running: it handles the messages as they come.
    Live,
    /// Stopped (SIGSTOP) while the whole flood is written, which the
    /// broker queues for it; then resumed (SIGCONT), it drains the backlog.
    Backlog,
}

#[derive(Debug, Clone)]
struct Run {
    startup_ms: f64,
    cpu_us: f64,
    cpu_us_net: f64,
    /// System calls per message.
    calls: Calls,
    /// CPU-µs per message of Paho's receive thread and of the main loop.
    receive_us: f64,
    main_us: f64,
    /// CPU-µs per message of the store's log sync thread.
    sync_us: f64,
    /// Thread wake-ups (voluntary context switches) per 1,000 messages.
    wakes_per_k: f64,
    msgs_per_s: f64,
    /// Peak RSS of the whole run.
    rss_mb: f64,
    /// RSS just before the flood (start-up replay over, idle).
    idle_rss_mb: f64,
    /// Peak RSS from the flood's first byte to the end of the run.
    flood_rss_mb: f64,
    lost: usize,
    stale: usize,
    alert: Alert,
    idle_pct: f64,
    write_s: f64,
    elapsed_s: f64,
    replays_s: f64,
    floor_cpu_us: f64,
    floor_msgs_per_s: f64,
    /// Hello to last replay of the device with a wildcard-first state
    /// filter, ms.
    wild_ms: f64,
    /// Main loop busy applying a SIGHUP reload, ms.
    reload_ms: f64,
}

fn run_daemon(
    n: usize,
    m: usize,
    states: usize,
    flood: &Flood,
    sampled: &[usize],
    mode: Mode,
) -> Run {
    let broker = Broker::start_with(free_port(), BROKER_EXTRA);
    let dir = workdir(&config_text(broker.port, n));
    let last_state = seed(&dir.path().join("iotdb.leveldb"), n, states);

    let up_topic = format!("{BASE}/up");
    let alert_topic = format!("{BASE}/expired/watchme");
    let mut filters = vec![up_topic.as_str(), alert_topic.as_str()];
    filters.extend(last_state.as_deref());
    let mut mon = Observer::start(broker.port, &filters);

    // Spawn just after a wall-clock second X: the daemon's start lies in
    // [spawn, first B/up]; within X's second, watchme's deadline is X+4.
    sleep_until_epoch_ms((epoch_ms() / 1000 + 1) * 1000 + 20);
    let spawn_ms = epoch_ms();
    let mut daemon = Iotmonitor::start_binary(&daemon_binary(), dir.path(), &[], &[]);
    let pid = daemon.pid();
    let Some(up) = mon.wait_for(60 * S, |m| m.topic == up_topic) else {
        panic!("no {up_topic} within 60 s; daemon log:\n{}", daemon.log());
    };
    let startup_ms = up.at_ms.saturating_sub(spawn_ms) as f64;
    let deadline_of = |start_ms: u64| (start_ms + WATCHME_TIMEOUT_S * 1000).div_ceil(1000) * 1000;
    let (d_lo, d_hi) = (deadline_of(spawn_ms), deadline_of(up.at_ms));
    // When start-up took more than a second (the broker is slow to take
    // tens of thousands of subscriptions, and B/up comes after them), the
    // deadline is X+4 or X+5: aim at X+4, a flood that lasts more than
    // 1.4 s covers both.
    let deadline_ms = d_lo;

    // The start-up replay republishes every stored state in key order.
    let mut replay_done_ms = up.at_ms;
    if let Some(last) = &last_state {
        if let Some(m) = mon.wait_for(120 * S, |m| &m.topic == last) {
            replay_done_ms = m.at_ms;
        } else {
            panic!(
                "the start-up replay did not reach {last} within 120 s; daemon log:\n{}",
                daemon.log()
            );
        }
    }

    // The verifying client: sampled devices' states and the marker. It
    // also gets the flood on those topics, all of it before the marker
    // (one publisher connection: the broker keeps its order).
    let mut verify_filters: Vec<String> = sampled
        .iter()
        .map(|d| format!("home/d{d}/state/#"))
        .collect();
    verify_filters.push(MARKER.to_string());
    let refs: Vec<&str> = verify_filters.iter().map(String::as_str).collect();
    let verify = Client::connect(broker.port, &refs);
    let mut want: HashMap<String, String> = HashMap::new();
    for &d in sampled {
        want.extend(expected_states(d, n, states, flood));
    }
    let mut tail = Vec::new();
    publish(MARKER, b"end of flood", &mut tail);
    for &d in sampled {
        publish(&format!("home/d{d}"), b"hello", &mut tail);
    }

    let mut publisher = mqtt_connect(broker.port, "flood-publisher");
    let idle_rss_mb = rss_mb(pid);
    let mut syscalls = Some(SyscallCount::start(pid));
    // perf needs a moment to attach.
    sleep_until_epoch_ms(deadline_ms.saturating_sub(LEAD_MS).max(epoch_ms() + 200));
    let startup_peak_mb = peak_rss_mb(pid);
    reset_peak_rss(pid);
    let cpu0 = cpu_s(pid);
    let threads0 = thread_cpu_s(pid);
    if mode == Mode::Backlog {
        daemon.signal(libc::SIGSTOP);
        let deadline = Instant::now() + 10 * S;
        while common::proc_stat(pid).first().map(String::as_str) != Some("T") {
            assert!(Instant::now() < deadline, "the daemon did not stop");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let t0 = Instant::now();
    let t0_ms = epoch_ms();
    write_flood(&mut publisher, &flood.bytes);
    let write_s = t0.elapsed().as_secs_f64();
    publisher.write_all(&tail).unwrap();
    let tail_sent = Instant::now();
    // The drain starts when the daemon resumes.
    let start = if mode == Mode::Backlog {
        daemon.signal(libc::SIGCONT);
        Instant::now()
    } else {
        t0
    };

    // Replays: everything after the marker.
    let mut marker = false;
    let mut got: HashMap<String, String> = HashMap::new();
    let mut dupes = 0usize;
    let mut last_arrival: Option<Instant> = None;
    // Completion: the first replay. The daemon handles messages in order
    // and the hellos follow the whole flood, so by then every flood
    // message has been handled and the states committed; the rest of the
    // replays are the verification, not counted.
    let mut first: Option<(Instant, f64, ThreadCpu, Calls)> = None;
    let hard = Instant::now() + 600 * S;
    let mut busy_probe = (Instant::now(), cpu_s(pid));
    let mut busy = true;
    while got.len() < want.len() && Instant::now() < hard {
        let Some(msg) = verify.next(Duration::from_millis(200)) else {
            // Give up after 30 s without a replay, unless the daemon is
            // still working through a backlog.
            if busy_probe.0.elapsed() >= S {
                let c = cpu_s(pid);
                busy = c - busy_probe.1 > 0.5 * busy_probe.0.elapsed().as_secs_f64();
                busy_probe = (Instant::now(), c);
            }
            let quiet = last_arrival.unwrap_or(tail_sent).elapsed();
            if quiet > 30 * S && !busy {
                break;
            }
            continue;
        };
        if msg.topic == MARKER {
            marker = true;
            continue;
        }
        if !marker || !want.contains_key(&msg.topic) {
            continue;
        }
        let now = Instant::now();
        last_arrival = Some(now);
        if got.insert(msg.topic.clone(), msg.text()).is_some() {
            dupes += 1;
        }
        if first.is_none() {
            let cpu = cpu_s(pid);
            let threads = thread_cpu_s(pid);
            let calls = syscalls.take().map(|c| c.finish(m));
            first = Some((now, cpu, threads, calls.expect("counted once")));
        }
    }
    assert!(marker, "the marker never came back from the broker");
    let Some((done, cpu_done, threads, calls)) = first else {
        panic!(
            "no hello replay within the time allowed; daemon log:\n{}",
            daemon.log()
        );
    };
    let elapsed = done.duration_since(start).as_secs_f64();
    let replays_s = last_arrival.map_or(0.0, |l| l.duration_since(done).as_secs_f64());
    let done_ms = t0_ms + done.duration_since(t0).as_millis() as u64;
    let cpu = cpu_done - cpu0;
    let (mut lost, mut stale) = (0, 0);
    for (topic, value) in &want {
        match got.get(topic) {
            None => lost += 1,
            Some(v) if v != value => stale += 1,
            Some(_) => {}
        }
    }
    if lost + stale + dupes > 0 {
        let mut bad: Vec<String> = want
            .iter()
            .filter(|(t, v)| got.get(*t) != Some(v))
            .take(10)
            .map(|(t, v)| format!("{t}: want {v}, got {:?}", got.get(t)))
            .collect();
        bad.sort();
        eprintln!(
            "N={n}: {lost} lost, {stale} stale, {dupes} replayed twice; e.g.\n  {}",
            bad.join("\n  ")
        );
    }

    if std::env::var_os("FLOOD_DEBUG").is_some() {
        let alerts: Vec<String> = mon
            .all()
            .iter()
            .filter(|m| m.topic == alert_topic)
            .map(|m| format!("{}@{:+}", m.text(), m.at_ms as i64 - t0_ms as i64))
            .collect();
        eprintln!(
            "N={n}: times from the first flood byte: spawn {:+} up {:+} start-up replay done {:+} planned deadline {:+} ({}certain), flood written +{:.0}, done +{:.0} ms; alerts (payload@arrival): {alerts:?}",
            spawn_ms as i64 - t0_ms as i64,
            up.at_ms as i64 - t0_ms as i64,
            replay_done_ms as i64 - t0_ms as i64,
            deadline_ms as i64 - t0_ms as i64,
            if d_lo == d_hi { "" } else { "un" },
            write_s * 1000.0,
            elapsed * 1000.0
        );
    }
    // The first expiry alert of watchme, when its deadline falls inside the
    // flood (first byte written .. completion): its delay, even if it
    // arrives after completion.
    let alert = match mon.all().iter().find(|m| m.topic == alert_topic) {
        // A stopped daemon alerts late by design.
        _ if mode == Mode::Backlog => Alert::Outside,
        None => Alert::Missing,
        Some(a) => match a.text().parse::<u64>() {
            Ok(s) if s * 1000 >= t0_ms && s * 1000 <= done_ms => {
                Alert::Ms(a.at_ms.saturating_sub(s * 1000) as f64)
            }
            Ok(_) => Alert::Outside,
            Err(_) => panic!("bad alert payload {:?}", a.text()),
        },
    };

    // Idle rate, over 2 s between two half-seconds (the tick runs just
    // after each whole second: exactly two ticks inside).
    let idle_from = (epoch_ms() / 1000 + 1) * 1000 + 500;
    sleep_until_epoch_ms(idle_from);
    let idle0 = cpu_s(pid);
    sleep_until_epoch_ms(idle_from + 2000);
    let idle_rate = (cpu_s(pid) - idle0) / 2.0;
    let flood_rss_mb = peak_rss_mb(pid);

    let (wild_ms, reload_ms) = if mode == Mode::Live {
        (
            wild_hello_ms(broker.port, &mut publisher, n, states, flood),
            reload_ms(&daemon),
        )
    } else {
        (f64::NAN, f64::NAN)
    };

    if daemon.wait(Duration::ZERO).is_some() {
        panic!("the daemon died during the run; log:\n{}", daemon.log());
    }
    drop(publisher);
    drop(verify);
    drop(mon);
    drop(daemon);
    drop(broker);
    Run {
        startup_ms,
        cpu_us: cpu * 1e6 / m as f64,
        cpu_us_net: (cpu - idle_rate * elapsed) * 1e6 / m as f64,
        calls,
        receive_us: (threads.receive - threads0.receive) * 1e6 / m as f64,
        main_us: (threads.main - threads0.main) * 1e6 / m as f64,
        sync_us: (threads.sync - threads0.sync) * 1e6 / m as f64,
        wakes_per_k: (threads.wakes - threads0.wakes) * 1e3 / m as f64,
        msgs_per_s: m as f64 / elapsed,
        rss_mb: startup_peak_mb.max(flood_rss_mb),
        idle_rss_mb,
        flood_rss_mb,
        lost,
        stale,
        alert,
        idle_pct: idle_rate * 100.0,
        write_s,
        elapsed_s: elapsed,
        replays_s,
        floor_cpu_us: f64::NAN,
        floor_msgs_per_s: f64::NAN,
        wild_ms,
        reload_ms,
    }
}

/// Milliseconds from the hello of the device whose state filter starts
/// with a wildcard (`+/d<i>/state/#`) to the arrival of the last of its
/// states: a seek per first level from the store's index, not a read of
/// every stored state.
fn wild_hello_ms(
    port: u16,
    publisher: &mut TcpStream,
    n: usize,
    states: usize,
    flood: &Flood,
) -> f64 {
    let w = wild_device(n);
    let want = expected_states(w, n, states, flood).len();
    let c = Client::connect(port, &[&format!("home/d{w}/state/#")]);
    let mut hello = Vec::new();
    publish(WILD_HELLO, b"hello", &mut hello);
    let t0 = Instant::now();
    publisher.write_all(&hello).unwrap();
    let mut seen = HashSet::new();
    while seen.len() < want {
        let Some(m) = c.next(10 * S) else {
            eprintln!("wild hello: {} of {want} states replayed", seen.len());
            return f64::NAN;
        };
        seen.insert(m.topic);
    }
    t0.elapsed().as_secs_f64() * 1000.0
}

/// SIGHUP with the same configuration: how long the main loop spent
/// applying it, as the daemon logs it (the file is read by the signal
/// thread).
fn reload_ms(daemon: &Iotmonitor) -> f64 {
    daemon.signal(libc::SIGHUP);
    let deadline = Instant::now() + 30 * S;
    while Instant::now() < deadline {
        let found = daemon.log().lines().find_map(|l| {
            l.split_once("reload applied in ")?
                .1
                .strip_suffix(" ms")?
                .parse::<f64>()
                .ok()
        });
        if let Some(ms) = found {
            return ms;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("no reload within 30 s; log:\n{}", daemon.log());
    f64::NAN
}

// ---------------------------------------------------------------------
// The floor: a process that only drains its socket.

/// `drain PORT COUNT`: subscribes to `home/#` at QoS 0, says `ready` once
/// subscribed, counts COUNT PUBLISH packets, says `done`, then waits (60 s
/// at most) for the parent to close its stdin, so that the parent can read
/// its CPU time while it is still alive.
fn drain_main(args: &[String]) -> i32 {
    let (Some(port), Some(count)) = (
        args.first().and_then(|v| v.parse::<u16>().ok()),
        args.get(1).and_then(|v| v.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: flood drain PORT COUNT");
        return 2;
    };
    let mut stream = mqtt_connect(port, "flood-drain");
    stream.set_read_timeout(Some(120 * S)).unwrap();
    let mut body = vec![0, 1];
    mqtt_string(b"home/#", &mut body);
    body.push(0);
    let mut sub = vec![0x82];
    varint(body.len(), &mut sub);
    sub.extend_from_slice(&body);
    stream.write_all(&sub).unwrap();
    let mut packets = Packets::new();
    loop {
        match packets.next(&mut stream) {
            Ok(9) => break, // SUBACK
            Ok(_) => {}
            Err(e) => {
                eprintln!("drain: no SUBACK: {e}");
                return 1;
            }
        }
    }
    println!("ready");
    let _ = io::stdout().flush();
    let mut seen = 0u64;
    while seen < count {
        match packets.next(&mut stream) {
            Ok(3) => seen += 1,
            Ok(_) => {}
            Err(e) => {
                eprintln!("drain: {e} after {seen} of {count} messages");
                return 1;
            }
        }
    }
    println!("done");
    let _ = io::stdout().flush();
    let mut fds = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    unsafe { libc::poll(&mut fds, 1, 60_000) };
    0
}

/// `prepare DIR PORT N STATES`: writes the configuration and the database
/// of a run into DIR, to profile the daemon by hand.
fn prepare_main(args: &[String]) -> i32 {
    let [dir, port, n, states] = args else {
        eprintln!("usage: flood prepare DIR PORT N STATES");
        return 2;
    };
    let (Ok(port), Ok(n), Ok(states)) = (port.parse(), n.parse(), states.parse()) else {
        eprintln!("usage: flood prepare DIR PORT N STATES");
        return 2;
    };
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.toml"), config_text(port, n)).unwrap();
    seed(&dir.join("iotdb.leveldb"), n, states);
    0
}

/// A child process killed (by its pid) and reaped when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn expect_line(lines: &mpsc::Receiver<String>, want: &str, timeout: Duration) {
    match lines.recv_timeout(timeout) {
        Ok(l) if l.trim() == want => {}
        Ok(l) => panic!("drain said {l:?}, expected {want:?}"),
        Err(_) => panic!("drain did not say {want:?} within {timeout:?}"),
    }
}

/// CPU-µs per message and messages/s of the drain-only subscriber.
fn run_floor(m: usize, flood: &Flood) -> (f64, f64) {
    let broker = Broker::start_with(free_port(), BROKER_EXTRA);
    let me = std::env::current_exe().unwrap();
    let mut child = ChildGuard(
        Command::new(me)
            .args(["drain", &broker.port.to_string(), &m.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("re-exec the bench as the drain"),
    );
    let pid = child.0.id() as i32;
    let stdin: Option<ChildStdin> = child.0.stdin.take();
    let stdout = child.0.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    expect_line(&lines, "ready", 30 * S);
    let mut publisher = mqtt_connect(broker.port, "flood-floor-publisher");
    let cpu0 = cpu_s(pid);
    let t0 = Instant::now();
    write_flood(&mut publisher, &flood.bytes);
    expect_line(&lines, "done", 600 * S);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_s(pid) - cpu0;
    drop(stdin);
    let deadline = Instant::now() + 10 * S;
    while child.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(child);
    drop(broker);
    (cpu * 1e6 / m as f64, m as f64 / elapsed)
}

// ---------------------------------------------------------------------
// Reporting.

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let k = v.len();
    if k % 2 == 1 {
        v[k / 2]
    } else {
        (v[k / 2 - 1] + v[k / 2]) / 2.0
    }
}

/// Medians of the per-message costs, as table cells: CPU-µs of Paho's
/// receive thread, of the main loop and of the log sync thread, thread
/// wake-ups per 1,000 messages, the number of log syncs, system calls
/// (all, recv, poll).
fn cost_cells(results: &[Run]) -> String {
    let med = |f: fn(&Run) -> f64| median(results.iter().map(f).collect());
    format!(
        "{:.2} | {:.2} | {:.3} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2}",
        med(|r| r.receive_us),
        med(|r| r.main_us),
        med(|r| r.sync_us),
        med(|r| r.wakes_per_k),
        med(|r| r.calls.syncs),
        med(|r| r.calls.all),
        med(|r| r.calls.recv),
        med(|r| r.calls.poll)
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let nproc = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    format!("{model}, nproc {nproc}")
}

const RUN_HEADER: &str = "| N | M | mode | run | start-up ms | CPU-µs/msg | net of idle | Paho receive thread | main loop | log sync thread | wake-ups per 1,000 msg | fdatasync calls | syscalls/msg | recv/msg | poll/msg | msg/s | idle RSS MB | flood peak RSS MB | peak RSS MB | lost | stale | alert ms after deadline | floor CPU-µs/msg | floor msg/s | idle CPU % | publisher write s | flood s | replays s | reload ms | wildcard hello ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => "flood",
        Mode::Backlog => "backlog",
    }
}

fn run_row(n: usize, m: usize, mode: Mode, i: usize, r: &Run) -> String {
    format!(
        "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {:.3} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} |",
        thousands(n as f64),
        thousands(m as f64),
        mode_name(mode),
        i + 1,
        r.startup_ms,
        r.cpu_us,
        r.cpu_us_net,
        r.receive_us,
        r.main_us,
        r.sync_us,
        r.wakes_per_k,
        r.calls.syncs,
        r.calls.all,
        r.calls.recv,
        r.calls.poll,
        thousands(r.msgs_per_s),
        r.idle_rss_mb,
        r.flood_rss_mb,
        r.rss_mb,
        r.lost,
        r.stale,
        r.alert,
        r.floor_cpu_us,
        thousands(r.floor_msgs_per_s),
        r.idle_pct,
        r.write_s,
        r.elapsed_s,
        r.replays_s,
        r.reload_ms,
        r.wild_ms,
    )
}

/// The daemon measured: FLOOD_BIN (another build, to compare two), or
/// this package's release binary.
fn daemon_binary() -> std::path::PathBuf {
    std::env::var_os("FLOOD_BIN")
        .map(Into::into)
        .unwrap_or_else(|| common::BIN.into())
}

/// The daemon built without the `tls` feature (no libssl/libcrypto
/// loaded), into `target/notls`: the build a broker without TLS needs.
fn build_without_tls() -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target/notls");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--no-default-features",
            "--features",
            "broker",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(root)
        .stdout(Stdio::null())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the daemon without TLS failed");
    target.join("release/iotmonitor")
}

/// `idle_rss_of` the daemon measured.
fn idle_rss(n: usize) -> f64 {
    idle_rss_of(&daemon_binary(), n)
}

/// RSS of the daemon `bin` with `n` devices (the flood's configuration; one
/// device: its own), no TLS and an empty database, once idle (from its
/// third `B/up`): the median of samples every 50 ms over 2 s, as it varies
/// within each second (the round of hello counts: 1,000 publishes in
/// flight at once, then given back).
fn idle_rss_of(bin: &Path, n: usize) -> f64 {
    let broker = Broker::start();
    let config = if n == 1 {
        format!(
            "[mqtt]\nserverAddress=\"tcp://127.0.0.1:{}\"\nbaseTopic=\"{BASE}\"\nclientid=\"iotmonitor-bench-one\"\n\n\
             [device_one]\nwatchTimeOut=60\nwatchTopics=\"home/one/sensors/#\"\nstateTopics=\"home/one/state/#\"\nhelloTopic=\"home/one\"\n",
            broker.port
        )
    } else {
        config_text(broker.port, n)
    };
    let dir = workdir(&config);
    let up_topic = format!("{BASE}/up");
    let client = Client::connect(broker.port, &[&up_topic]);
    let daemon = Iotmonitor::start_binary(bin, dir.path(), &[], &[]);
    if client
        .wait_for(60 * S, |m| m.topic == up_topic && m.text() == "3")
        .is_none()
    {
        panic!("no third {up_topic} within 60 s; log:\n{}", daemon.log());
    }
    let samples = (0..40)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            rss_mb(daemon.pid())
        })
        .collect();
    median(samples)
}

/// Bytes of configured strings per device of the flood's configuration:
/// name, watch, state and hello topics.
fn config_bytes_per_device(n: usize) -> f64 {
    let total: usize = (0..n)
        .map(|i| {
            format!("d{i}").len()
                + format!("home/d{i}/sensors/#").len()
                + format!("home/d{i}/state/#").len()
                + format!("home/d{i}").len()
        })
        .sum();
    total as f64 / n as f64
}

/// The soak: 100 devices, 200 messages a second (half of them state
/// updates over 400 state topics) for FLOOD_SOAK_S seconds after a warm-up
/// of FLOOD_SOAK_WARMUP_S; the RSS at the end of the warm-up, at the end,
/// and the peak in between.
fn soak(secs: u64, warmup: u64) -> (f64, f64, f64) {
    const DEVICES: usize = 100;
    const RATE: u64 = 200;
    let broker = Broker::start();
    let dir = workdir(&config_text(broker.port, DEVICES));
    let up_topic = format!("{BASE}/up");
    let client = Client::connect(broker.port, &[&up_topic]);
    let daemon = Iotmonitor::start_binary(&daemon_binary(), dir.path(), &[], &[]);
    if client.wait_for(30 * S, |m| m.topic == up_topic).is_none() {
        panic!("no {up_topic} within 30 s; log:\n{}", daemon.log());
    }
    let pid = daemon.pid();
    let mut publisher = mqtt_connect(broker.port, "flood-soak-publisher");
    let start = Instant::now();
    let mut rss0 = f64::NAN;
    let mut j = 0u64;
    let tick = Duration::from_millis(10);
    let mut next = Instant::now();
    while start.elapsed() < Duration::from_secs(warmup + secs) {
        if rss0.is_nan() && start.elapsed() >= Duration::from_secs(warmup) {
            rss0 = rss_mb(pid);
            reset_peak_rss(pid);
        }
        let mut bytes = Vec::new();
        for _ in 0..RATE / 100 {
            let d = j as usize / 2 % DEVICES;
            if j % 2 == 0 {
                publish(&format!("home/d{d}/sensors/t"), b"21.5", &mut bytes);
            } else {
                let slot = j as usize / 2 / DEVICES % SLOTS;
                publish(
                    &format!("home/d{d}/state/s{slot}"),
                    j.to_string().as_bytes(),
                    &mut bytes,
                );
            }
            j += 1;
        }
        publisher.write_all(&bytes).unwrap();
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    if daemon.log().contains("panicked") {
        panic!("the daemon panicked; log:\n{}", daemon.log());
    }
    (rss0, rss_mb(pid), peak_rss_mb(pid))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("drain") {
        std::process::exit(drain_main(&args[2..]));
    }
    if args.get(1).map(String::as_str) == Some("prepare") {
        std::process::exit(prepare_main(&args[2..]));
    }
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` runs bench targets without --bench.
        println!("flood: a benchmark; run it with `cargo bench --bench flood`");
        return;
    }
    let ns: Vec<usize> = env_or("FLOOD_DEVICES", "1000,10000")
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or_else(|| panic!("FLOOD_DEVICES: {v:?} is not a positive number"))
        })
        .collect();
    let m: usize = parse_env("FLOOD_MESSAGES", "200000");
    let runs: usize = parse_env("FLOOD_RUNS", "3");
    let states: usize = parse_env("FLOOD_STATES", "100000");
    assert!(m >= 2 && runs >= 1, "FLOOD_MESSAGES >= 2, FLOOD_RUNS >= 1");
    let machine = machine();

    println!("# iotmonitor flood benchmark");
    println!();
    println!(
        "machine: {machine}; M = {} QoS 0 messages (half sensor traffic, half state updates), {} pre-stored states, {runs} run(s) per N, {} sampled devices checked through hello replays",
        thousands(m as f64),
        thousands(states as f64),
        SAMPLE
    );
    println!();
    let one: Vec<f64> = (0..runs).map(|_| idle_rss(1)).collect();
    let one_rss = median(one);
    let without_tls = build_without_tls();
    let bare_rss = median((0..runs).map(|_| idle_rss_of(&without_tls, 1)).collect());
    println!(
        "Idle RSS with one device, a broker without TLS, empty database (median of {runs}): {bare_rss:.1} MB built without the `tls` feature (target ≤ {T_IDLE_RSS_MB} MB) {}; {one_rss:.1} MB for the default build (Paho's TLS code in the binary; OpenSSL is loaded for a TLS broker only)",
        verdict(bare_rss <= T_IDLE_RSS_MB)
    );
    let mut idle: Vec<(usize, f64)> = Vec::new();
    for &n in ns.iter().filter(|&&n| n > 1) {
        let rss = median((0..runs).map(|_| idle_rss(n)).collect());
        let per_device = (rss - one_rss) * 1024.0 * 1024.0 / (n - 1) as f64;
        let strings = config_bytes_per_device(n);
        println!(
            "Idle RSS with {} devices, empty database (median of {runs}): {rss:.1} MB: {per_device:.0} bytes per device, {strings:.0} of them configured strings; beyond them {:.0} (target ≤ {T_DEVICE_BYTES}) {}",
            thousands(n as f64),
            per_device - strings,
            verdict(per_device - strings <= T_DEVICE_BYTES)
        );
        idle.push((n, rss));
    }
    // What one more device costs, between the smallest and the largest N,
    // without what comes once with the first thousand devices: the hello
    // counts go out in pages of a thousand publishes, whose buffers (the
    // publish batch, the outbox's slots, Paho's queue in its threads'
    // heaps) stay allocated for the next round (README, Performance II,
    // fourth round).
    if let (Some(&(n0, rss0)), Some(&(n1, rss1))) = (idle.first(), idle.last()) {
        if n1 > n0 {
            let per_device = (rss1 - rss0) * 1024.0 * 1024.0 / (n1 - n0) as f64;
            let strings = (config_bytes_per_device(n1) * n1 as f64
                - config_bytes_per_device(n0) * n0 as f64)
                / (n1 - n0) as f64;
            println!(
                "Idle RSS from {} to {} devices: {per_device:.0} bytes per device added, {strings:.0} of them configured strings; beyond them {:.0} (target ≤ {T_DEVICE_BYTES}) {}",
                thousands(n0 as f64),
                thousands(n1 as f64),
                per_device - strings,
                verdict(per_device - strings <= T_DEVICE_BYTES)
            );
        }
    }
    let soak_s: u64 = parse_env("FLOOD_SOAK_S", "0");
    if soak_s > 0 {
        let warmup: u64 = parse_env("FLOOD_SOAK_WARMUP_S", "30");
        let (rss0, rss1, peak) = soak(soak_s, warmup);
        println!(
            "Soak (100 devices, 200 msg/s, half state updates, {soak_s} s after a {warmup} s warm-up): RSS {rss0:.2} MB → {rss1:.2} MB, growth {:.2} MB (target < {T_SOAK_GROWTH_MB} MB) {}, peak {peak:.2} MB",
            rss1 - rss0,
            verdict(rss1 - rss0 < T_SOAK_GROWTH_MB)
        );
    }
    println!();
    println!("{RUN_HEADER}");
    let mut table: Vec<(usize, Vec<Run>, Vec<Run>)> = Vec::new();
    for &n in &ns {
        let flood = make_flood(n, m);
        let s = SAMPLE.min(n);
        let sampled: Vec<usize> = (0..s).map(|i| i * (n - 1) / (s - 1).max(1)).collect();
        let sampled: Vec<usize> = {
            let mut seen = HashSet::new();
            sampled.into_iter().filter(|d| seen.insert(*d)).collect()
        };
        let (mut results, mut backlog) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let mut r = run_daemon(n, m, states, &flood, &sampled, Mode::Live);
            let (floor_cpu_us, floor_msgs_per_s) = run_floor(m, &flood);
            r.floor_cpu_us = floor_cpu_us;
            r.floor_msgs_per_s = floor_msgs_per_s;
            println!("{}", run_row(n, m, Mode::Live, i, &r));
            results.push(r);
            let b = run_daemon(n, m, states, &flood, &sampled, Mode::Backlog);
            println!("{}", run_row(n, m, Mode::Backlog, i, &b));
            backlog.push(b);
        }
        table.push((n, results, backlog));
    }

    println!();
    println!("## Medians of {runs} run(s) — {machine}");
    println!();
    println!("| N devices | CPU-µs/msg (target ≤ {T_CPU_US}) | net of idle | Paho receive thread | main loop | log sync thread | wake-ups per 1,000 msg | fdatasync calls | syscalls/msg | recv/msg | poll/msg | msg/s | idle RSS MB | flood peak RSS MB | peak RSS MB (target ≤ {T_RSS_MB} at 10,000) | start-up to first B/up ms (target ≤ {T_STARTUP_MS} at 10,000 with 100,000 states) | expiry alert after deadline ms (target ≤ {T_ALERT_MS}) | lost / stale, all runs (target 0) | floor CPU-µs/msg | floor msg/s | SIGHUP reload, main loop busy ms (target ≤ {T_RELOAD_MS}) | hello of a `+/…` state filter to its last replay ms (target ≤ {T_RELOAD_MS}) |");
    println!(
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (n, results, _) in &table {
        let med = |f: fn(&Run) -> f64| median(results.iter().map(f).collect());
        let alerts: Vec<f64> = results
            .iter()
            .filter_map(|r| match r.alert {
                Alert::Ms(v) => Some(v),
                _ => None,
            })
            .collect();
        let missing = results
            .iter()
            .filter(|r| matches!(r.alert, Alert::Missing))
            .count();
        let alert = if alerts.is_empty() {
            if missing > 0 {
                "MISSING".to_string()
            } else {
                "n/a".to_string()
            }
        } else {
            let a = median(alerts.clone());
            format!(
                "{a:.0} {}{}",
                verdict(a <= T_ALERT_MS),
                if alerts.len() < results.len() {
                    format!(" ({} of {} runs)", alerts.len(), results.len())
                } else {
                    String::new()
                }
            )
        };
        let (cpu, net, rss, startup) = (
            med(|r| r.cpu_us),
            med(|r| r.cpu_us_net),
            med(|r| r.rss_mb),
            med(|r| r.startup_ms),
        );
        let (reload, wild) = (med(|r| r.reload_ms), med(|r| r.wild_ms));
        let lost: usize = results.iter().map(|r| r.lost).sum();
        let stale: usize = results.iter().map(|r| r.stale).sum();
        let big = *n >= 10_000;
        println!(
            "| {} | {cpu:.2} {} | {net:.2} | {} | {} | {:.1} | {:.1} | {rss:.1}{} | {startup:.0}{} | {alert} | {lost} / {stale} {} | {:.3} | {} | {reload:.0} {} | {wild:.0} {} |",
            thousands(*n as f64),
            verdict(cpu <= T_CPU_US),
            cost_cells(results),
            thousands(med(|r| r.msgs_per_s)),
            med(|r| r.idle_rss_mb),
            med(|r| r.flood_rss_mb),
            if big {
                format!(" {}", verdict(rss <= T_RSS_MB))
            } else {
                String::new()
            },
            if big && states >= 100_000 {
                format!(" {}", verdict(startup <= T_STARTUP_MS))
            } else {
                String::new()
            },
            verdict(lost + stale == 0),
            med(|r| r.floor_cpu_us),
            thousands(med(|r| r.floor_msgs_per_s)),
            verdict(reload <= T_RELOAD_MS),
            verdict(wild <= T_RELOAD_MS),
        );
    }
    println!();
    println!("Backlog drain: the daemon stopped (SIGSTOP) while the whole flood is written (the broker queues it), then resumed (SIGCONT).");
    println!();
    println!("| N devices | CPU-µs/msg | net of idle | Paho receive thread | main loop | log sync thread | wake-ups per 1,000 msg | fdatasync calls | syscalls/msg | recv/msg | poll/msg | msg/s from SIGCONT | drain peak RSS MB | lost / stale, all runs |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (n, _, results) in &table {
        let med = |f: fn(&Run) -> f64| median(results.iter().map(f).collect());
        let lost: usize = results.iter().map(|r| r.lost).sum();
        let stale: usize = results.iter().map(|r| r.stale).sum();
        println!(
            "| {} | {:.2} | {:.2} | {} | {} | {:.1} | {lost} / {stale} {} |",
            thousands(*n as f64),
            med(|r| r.cpu_us),
            med(|r| r.cpu_us_net),
            cost_cells(results),
            thousands(med(|r| r.msgs_per_s)),
            med(|r| r.flood_rss_mb),
            verdict(lost + stale == 0),
        );
    }
    println!();
    println!("Targets: ≤ {T_CPU_US} CPU-µs per message at N = 1,000 and 10,000 with M = 200,000; 0 lost / stale; peak RSS ≤ {T_RSS_MB} MB at N = 10,000; start-up to the first B/up ≤ {T_STARTUP_MS} ms with 10,000 devices and 100,000 stored states; expiry alert ≤ {T_ALERT_MS} ms after its deadline during the flood; idle RSS ≤ {T_IDLE_RSS_MB} MB with one device and no TLS.");
    println!("CPU: the daemon's utime+stime (/proc/<pid>/stat, in 1/{} s ticks) from the first flood byte written to the arrival of the first hello replay (flood s; the daemon handles messages in order, so all of the flood was handled); net = minus the idle rate (tick and helloTopicCount round, measured over 2 s after the run) × that time. Backlog: CPU from the first flood byte (the daemon is stopped then) to the first replay, flood s and msg/s from SIGCONT. syscalls/msg: every system call of the daemon (all threads) over the same span, counted by perf stat (raw_syscalls:sys_enter; NaN without perf), including the idle activity of that span (a few hundred calls a second; at N = 10,000 the helloTopicCount round adds about one write per device a second); recv/msg and poll/msg: the recvfrom and poll/ppoll calls among them. Paho receive thread, main loop, log sync thread: CPU-µs per message of those threads of the daemon (/proc/<pid>/task), over the same span; the rest is Paho's send thread and the others. Wake-ups: voluntary context switches of all the daemon's threads (/proc/<pid>/task/*/status) per 1,000 messages, over the same span: each is a thread going to sleep and being woken, which costs two context switches (on a virtual machine, more than the work they wait for). fdatasync calls: all of them over the span (perf stat, syscalls:sys_enter_fdatasync): the log's by the sync thread, at most one a second while states are written, and those of the tables and manifest LevelDB writes when it flushes its memory table or merges tables (on the main loop, in its CPU): the cost of surviving a power cut. idle RSS: VmRSS once the start-up replay is over, before the flood; flood peak RSS: VmHWM reset (clear_refs) at the first flood byte; peak RSS: the whole run. msg/s = M / flood s. replays s: first to last replay of the {SAMPLE} sampled devices (verification only). Alert: delay of watchme's first B/expired after its deadline, which falls 400 ms into the flood (1.4 s when start-up takes over 1 s); n/a when the deadline fell outside the flood. Floor: a raw-socket subscriber to home/# that only splits packets, during an identical flood.", unsafe { libc::sysconf(libc::_SC_CLK_TCK) });
}
