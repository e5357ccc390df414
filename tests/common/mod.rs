//! Test harness: a real mosquitto on a free loopback port, the real
//! iotmonitor binary in a temporary directory, and a real MQTT client.
//! Everything started here is stopped by pid when dropped.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("iotmonitor-{n}.log"));
        let child = Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
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
