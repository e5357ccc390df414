//! Test harness: a real mosquitto on a free loopback port, the real
//! iotmonitor binary in a temporary directory, a real MQTT client, and a
//! TCP relay to break the link between them on demand. Everything started
//! here is stopped by pid (threads: joined or told to stop) when dropped.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use paho_mqtt as mqtt;

pub const BIN: &str = env!("CARGO_BIN_EXE_iotmonitor");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn mosquitto_bin() -> PathBuf {
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("mosquitto is not installed: run ./scripts/test.sh, which installs it");
}

/// A mosquitto broker listening on 127.0.0.1:port.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Extra mosquitto.conf lines (more listeners, TLS).
    extra: String,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Broker {
        Broker::start_with(port, "")
    }

    /// A broker on `port` with extra configuration lines after its
    /// plain listener.
    pub fn start_with(port: u16, extra: &str) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Broker {
            port,
            child: None,
            dir,
            extra: extra.to_string(),
        };
        b.restart();
        b
    }

    /// (Re)starts the broker process on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "user root\nlistener {} 127.0.0.1\nallow_anonymous true\npersistence false\n{}\n",
                self.port, self.extra
            ),
        )
        .unwrap();
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `[mqtt]` section for a broker port with base topic `base`.
pub fn mqtt_section(port: u16, base: &str) -> String {
    format!(
        "[mqtt]\nserverAddress=\"tcp://127.0.0.1:{port}\"\nbaseTopic=\"{base}\"\nclientid=\"iotmonitor-{base}\"\n\n"
    )
}

/// The iotmonitor binary running in a directory.
pub struct Iotmonitor {
    child: Option<Child>,
    pub dir: PathBuf,
    log: PathBuf,
}

impl Iotmonitor {
    /// Starts the binary in `dir` with `args`; stderr goes to
    /// `dir/iotmonitor-<n>.log`.
    pub fn start(dir: &Path, args: &[&str]) -> Iotmonitor {
        Iotmonitor::start_with_env(dir, args, &[])
    }

    /// `start` with more environment variables (RUST_LOG is `info` unless
    /// given).
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Iotmonitor {
        Iotmonitor::start_binary(Path::new(BIN), dir, args, env)
    }

    /// `start_with_env` of another build of the daemon.
    pub fn start_binary(bin: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Iotmonitor {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("iotmonitor-{n}.log"));
        let child = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start iotmonitor");
        Iotmonitor {
            child: Some(child),
            dir: dir.to_path_buf(),
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits for the process to exit by itself (at most `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(15))
            .expect("iotmonitor did not stop within 15 s of SIGTERM")
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Iotmonitor {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs the binary to completion (for --check, bad configs, dump).
pub fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("iotmonitor {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code().unwrap_or(-1),
        out.join().unwrap(),
        err.join().unwrap(),
    )
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retained: bool,
    /// Epoch milliseconds when the test received it.
    pub at_ms: u64,
}

impl Msg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// An MQTT client subscribed to some filters, collecting what arrives.
pub struct Client {
    client: mqtt::Client,
    rx: mqtt::SyncReceiver<Option<mqtt::Message>>,
}

static CLIENT_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Client {
    pub fn connect(port: u16, filters: &[&str]) -> Client {
        let n = CLIENT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let create = mqtt::CreateOptionsBuilder::new()
            .server_uri(format!("tcp://127.0.0.1:{port}"))
            .client_id(format!("test-{}-{n}", std::process::id()))
            .persistence(mqtt::PersistenceType::None)
            .finalize();
        let client = mqtt::Client::new(create).unwrap();
        let rx = client.start_consuming();
        let opts = mqtt::ConnectOptionsBuilder::new()
            .clean_session(true)
            .connect_timeout(Duration::from_secs(5))
            .finalize();
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.connect(opts.clone()).is_err() {
            assert!(
                Instant::now() < deadline,
                "test client cannot connect to {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        if !filters.is_empty() {
            let qos = vec![0; filters.len()];
            client.subscribe_many(filters, &qos).unwrap();
        }
        Client { client, rx }
    }

    pub fn publish(&self, topic: &str, payload: &[u8]) {
        self.client
            .publish(mqtt::Message::new(topic, payload, 1))
            .unwrap();
    }

    pub fn publish_retained(&self, topic: &str, payload: &[u8]) {
        self.client
            .publish(mqtt::Message::new_retained(topic, payload, 1))
            .unwrap();
    }

    /// Next message within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Msg> {
        match self.rx.recv_timeout(timeout) {
            Ok(Some(m)) => Some(Msg {
                topic: m.topic().to_string(),
                payload: m.payload().to_vec(),
                retained: m.retained(),
                at_ms: epoch_ms(),
            }),
            _ => None,
        }
    }

    /// The first message satisfying `pred` within `timeout`.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&Msg) -> bool) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            if let Some(m) = self.next(left) {
                if pred(&m) {
                    return Some(m);
                }
            }
        }
    }

    /// The first message on `topic` within `timeout`.
    pub fn wait_topic(&self, topic: &str, timeout: Duration) -> Option<Msg> {
        self.wait_for(timeout, |m| m.topic == topic)
    }

    /// Everything that arrives during `duration`.
    pub fn collect(&self, duration: Duration) -> Vec<Msg> {
        let deadline = Instant::now() + duration;
        let mut out = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(m) = self.next(left) {
                out.push(m);
            }
        }
        out
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.client.disconnect(None);
    }
}

/// The fields of `/proc/<pid>/stat` after the command name (state first),
/// empty when the process is gone.
pub fn proc_stat(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_default()
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// A temporary directory holding `config.toml` with `text`.
pub fn workdir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), text).unwrap();
    dir
}

/// Unique agent names for this test process; kills every process carrying
/// their tags (by process group) on drop.
pub struct Agents(Vec<String>);

impl Agents {
    pub fn new(names: &[&str]) -> Agents {
        Agents(
            names
                .iter()
                .map(|n| format!("{n}{}", std::process::id()))
                .collect(),
        )
    }

    pub fn name(&self, i: usize) -> &str {
        &self.0[i]
    }

    pub fn pids(&self, i: usize) -> Vec<i32> {
        iotmonitor::procfs::scan_tags()
            .expect("scan of /proc")
            .remove(self.name(i))
            .unwrap_or_default()
    }

    pub fn wait_pids(&self, i: usize, what: &str, mut ok: impl FnMut(&[i32]) -> bool) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let pids = self.pids(i);
            if ok(&pids) {
                return pids;
            }
            assert!(Instant::now() < deadline, "{what}: pids {pids:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        let mut found = iotmonitor::procfs::scan_tags().unwrap_or_default();
        for name in &self.0 {
            for pid in found.remove(name).unwrap_or_default() {
                let group = iotmonitor::procfs::process_group(&pid.to_string());
                if group.is_some_and(|g| g > 1)
                    && group != iotmonitor::procfs::process_group("self")
                {
                    if let Some(g) = group.and_then(rustix::process::Pid::from_raw) {
                        let _ =
                            rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
                    }
                }
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1: (status, head, body).
pub fn http_get(port: u16, path: &str) -> (u16, String, String) {
    try_http_get(port, path).unwrap_or_else(|| panic!("GET {path} on port {port} failed"))
}

/// [`http_get`], None when nothing answers (yet) or the answer is cut.
pub fn try_http_get(port: u16, path: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_string(), body.to_string()))
}

/// Waits until something listens on the status port.
pub fn wait_http(port: u16) {
    let listening = || TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(
        wait_until(Duration::from_secs(10), listening),
        "status page did not listen on {port}"
    );
}

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes
/// (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelayMode {
    Forward,
    /// Nothing forwarded either way, sockets kept open.
    Blackhole,
    /// At most this many bytes a second each way.
    Throttle(usize),
    /// Each chunk read is written this much later (a distant broker).
    Delay(Duration),
}

struct RelayShared {
    target: AtomicU16,
    mode: Mutex<RelayMode>,
    changed: Condvar,
    /// Both sockets of every connection, to drop them on demand.
    sockets: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

impl RelayShared {
    /// The mode once not blackholed (None: stopping).
    fn open_mode(&self) -> Option<RelayMode> {
        let mut mode = self.mode.lock().unwrap();
        while *mode == RelayMode::Blackhole && !self.stop.load(Ordering::SeqCst) {
            mode = self
                .changed
                .wait_timeout(mode, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        (!self.stop.load(Ordering::SeqCst)).then_some(*mode)
    }
}

/// A TCP relay on a free loopback port in front of a broker: it forwards
/// both ways until told to blackhole (stop forwarding in both directions,
/// every socket kept open: a half-open link whose data is delivered after
/// `heal`, as TCP would after an outage), to throttle, to drop its
/// connections, or to send new connections to another port.
pub struct Relay {
    pub port: u16,
    shared: Arc<RelayShared>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    pub fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // A small receive buffer (inherited by accepted sockets), so that
        // a throttled link fills up in seconds rather than after the
        // megabytes loopback TCP would otherwise buffer.
        let rcvbuf: libc::c_int = 16 << 10;
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&listener),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &rcvbuf as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(RelayShared {
            target: AtomicU16::new(target),
            mode: Mutex::new(RelayMode::Forward),
            changed: Condvar::new(),
            sockets: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            for down in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(down) = down else { continue };
                let target = s.target.load(Ordering::SeqCst);
                // Nothing behind: the client sees its connection closed.
                let Ok(up) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = down.set_nodelay(true);
                let _ = up.set_nodelay(true);
                {
                    let mut sockets = s.sockets.lock().unwrap();
                    sockets.push(down.try_clone().unwrap());
                    sockets.push(up.try_clone().unwrap());
                }
                for (from, to) in [
                    (down.try_clone().unwrap(), up.try_clone().unwrap()),
                    (up, down),
                ] {
                    let s = s.clone();
                    std::thread::spawn(move || relay_pump(&s, from, to));
                }
            }
        });
        Relay {
            port,
            shared,
            accept: Some(accept),
        }
    }

    fn set(&self, mode: RelayMode) {
        *self.shared.mode.lock().unwrap() = mode;
        self.shared.changed.notify_all();
    }

    /// Stops forwarding both ways; connections stay open.
    pub fn blackhole(&self) {
        self.set(RelayMode::Blackhole);
    }

    /// Forwards again at full speed (what was held back first).
    pub fn heal(&self) {
        self.set(RelayMode::Forward);
    }

    /// At most `bytes_per_s` each way.
    pub fn throttle(&self, bytes_per_s: usize) {
        self.set(RelayMode::Throttle(bytes_per_s));
    }

    /// Holds what it reads `delay` before writing it on, each way.
    pub fn delay(&self, delay: Duration) {
        self.set(RelayMode::Delay(delay));
    }

    /// New connections go to this port from now on.
    pub fn retarget(&self, port: u16) {
        self.shared.target.store(port, Ordering::SeqCst);
    }

    /// Closes every connection (both ends).
    pub fn drop_connections(&self) {
        for s in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

/// Copies `from` to `to` as the relay's mode allows, until either closes.
fn relay_pump(shared: &RelayShared, mut from: TcpStream, mut to: TcpStream) {
    const SLICE: Duration = Duration::from_millis(50);
    let _ = from.set_read_timeout(Some(SLICE));
    let mut buf = vec![0u8; 64 << 10];
    while let Some(mode) = shared.open_mode() {
        let max = match mode {
            RelayMode::Throttle(rate) => (rate / 20).max(1),
            _ => buf.len(),
        };
        match from.read(&mut buf[..max]) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                // Read just as a blackhole began: held until it ends.
                let Some(mode) = shared.open_mode() else {
                    break;
                };
                if let RelayMode::Delay(d) = mode {
                    std::thread::sleep(d);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if let RelayMode::Throttle(_) = mode {
                    std::thread::sleep(SLICE);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        self.drop_connections();
        // Unblocks the accept loop, which then sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------
// A raw MQTT 3.1.1 publisher: packets written by hand, so that a test or
// the bench decides how they are cut into writes.

/// Appends an MQTT variable byte integer (a remaining length).
pub fn varint(mut n: usize, out: &mut Vec<u8>) {
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

/// Appends a length-prefixed MQTT string.
pub fn mqtt_string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// Appends a QoS 0, not retained PUBLISH.
pub fn publish(topic: &str, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x30);
    varint(2 + topic.len() + payload.len(), out);
    mqtt_string(topic.as_bytes(), out);
    out.extend_from_slice(payload);
}

/// Connects with MQTT 3.1.1, clean session, no keep-alive; waits for the
/// CONNACK (10 s at most). Writes time out after 300 s.
pub fn mqtt_connect(port: u16, client_id: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot connect to the broker on {port}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let mut body = Vec::new();
    mqtt_string(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02, 0, 0]); // 3.1.1, clean session, keep-alive 0
    mqtt_string(client_id.as_bytes(), &mut body);
    let mut pkt = vec![0x10];
    varint(body.len(), &mut pkt);
    pkt.extend_from_slice(&body);
    stream.write_all(&pkt).unwrap();
    let mut connack = [0u8; 4];
    stream
        .read_exact(&mut connack)
        .unwrap_or_else(|e| panic!("{client_id}: no CONNACK within 10 s: {e}"));
    assert!(
        connack[0] == 0x20 && connack[3] == 0,
        "{client_id}: connection refused: {connack:?}"
    );
    stream
}

// ---------------------------------------------------------------------
// A throw-away PKI made with the openssl command.

pub fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed by scripts/deps.sh");
    assert!(
        st.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// `openssl req` making a new P-256 key `<name>.key` and, with `extra`,
/// a self-signed certificate or a signing request `<out>`.
pub fn new_key_request(dir: &Path, name: &str, out: &str, extra: &[&str]) {
    let key = format!("{name}.key");
    let subject = format!("/CN={name}");
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        out,
        "-subj",
        &subject,
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
}

/// A self-signed CA, `<ca>.crt/.key`.
pub fn make_ca(dir: &Path, ca: &str) {
    new_key_request(dir, ca, &format!("{ca}.crt"), &["-x509", "-days", "2"]);
}

/// A certificate+key signed by `ca`, named `<name>.crt/.key`.
pub fn make_cert(dir: &Path, ca: &str, name: &str, san: &str) {
    new_key_request(dir, name, &format!("{name}.csr"), &[]);
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName={san}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// A CA and a server certificate for 127.0.0.1 in `dir`; the mosquitto
/// configuration lines of a TLS listener on `port` using them.
pub fn tls_listener(dir: &Path, port: u16) -> String {
    make_ca(dir, "ca");
    make_cert(dir, "ca", "server", "IP:127.0.0.1,DNS:localhost");
    format!(
        "listener {port} 127.0.0.1\ncafile {0}/ca.crt\ncertfile {0}/server.crt\nkeyfile {0}/server.key\n",
        dir.display()
    )
}
