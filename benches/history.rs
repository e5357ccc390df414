//! The event history under a flood of transitions (`cargo bench --bench
//! history`): the release daemon with N devices of 1-second timeout,
//! a publisher making every device come back and expire again and again
//! (two transitions per device per round), until the history holds
//! `HISTORY_EVENTS` (default 10,000) transitions, then two, three and four
//! times as many. Prints how long the status page, `/events` and `/status`
//! take to answer (median of 20 requests each) and the size of the
//! database, to show the history stays bounded.
//!
//! Knobs: `HISTORY_DEVICES=500 HISTORY_EVENTS=10000`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One GET with an `Accept` header: (milliseconds to the whole answer,
/// body length).
fn get(port: u16, path: &str, accept: &str) -> (f64, usize) {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    (start.elapsed().as_secs_f64() * 1000.0, body.len())
}

/// Median time of 20 requests, and the size of the answer.
fn timed(port: u16, path: &str, accept: &str) -> (f64, usize) {
    let mut times: Vec<f64> = Vec::new();
    let mut size = 0;
    for _ in 0..20 {
        let (ms, len) = get(port, path, accept);
        times.push(ms);
        size = len;
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], size)
}

/// Sum of the history's `expired` and `back` events since start.
fn transitions(port: u16) -> u64 {
    let (_, _, metrics) = http_get(port, "/metrics");
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("iotmonitor_events_total{kind=\"expired\"}")
                || l.starts_with("iotmonitor_events_total{kind=\"back\"}")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Makes every device come back, round after round, until the history
/// counted `target` transitions since start.
fn flood(c: &Client, http: u16, devices: usize, target: u64) {
    let mut round = 0;
    while transitions(http) < target {
        for i in 0..devices {
            c.publish(&format!("t/hist/d{i}"), b"1");
        }
        round += 1;
        // Long enough for every device to expire again (1 s timeout).
        wait_until(Duration::from_secs(10), || {
            transitions(http) >= (2 * devices * round) as u64
        });
    }
}

fn report(http: u16, db: &Path, label: &str) {
    let (page_ms, page_len) = timed(http, "/", "text/html");
    let (events_ms, events_len) = timed(http, "/events?limit=10000", "application/json");
    let (device_ms, _) = timed(http, "/events?device=d0&limit=100", "application/json");
    let (status_ms, _) = timed(http, "/status", "application/json");
    let (_, _, all) = http_get(http, "/events?limit=10000");
    let kept = serde_json::from_str::<serde_json::Value>(&all)
        .map(|v| v.as_array().map_or(0, Vec::len))
        .unwrap_or(0);
    println!(
        "{label}: transitions {:>6} | kept in history {kept:>6} | page {page_ms:6.2} ms ({page_len} B) | /events?limit=10000 {events_ms:6.2} ms ({events_len} B) | one device's events {device_ms:5.2} ms | /status {status_ms:5.2} ms | database {:.2} MB",
        transitions(http),
        dir_size(db) as f64 / 1e6
    );
}

fn main() {
    let devices = env("HISTORY_DEVICES", 500);
    let events = env("HISTORY_EVENTS", 10_000) as u64;
    let broker = Broker::start();
    let http = free_port();
    let mut config = format!(
        "{}[http]\nbind=\"127.0.0.1:{http}\"\n",
        mqtt_section(broker.port, "t/histmon")
    );
    for i in 0..devices {
        config.push_str(&format!(
            "[device_d{i}]\nwatchTimeOut=1\nwatchTopics=\"t/hist/d{i}\"\n"
        ));
    }
    let dir = workdir(&config);
    let daemon = Iotmonitor::start_with_env(dir.path(), &[], &[("RUST_LOG", "warn")]);
    wait_http(http);
    let c = Client::connect(broker.port, &[]);
    let db = dir.path().join("iotdb.leveldb");
    println!(
        "history bench: {devices} devices, up to {} transitions",
        4 * events
    );
    for n in 1..=4 {
        flood(&c, http, devices, n * events);
        report(http, &db, &format!("after {n}N"));
    }
    drop(daemon);
}
