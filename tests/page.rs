//! The status page in a real browser (headless Chromium, Debian package
//! `chromium`, installed by the test script), and the event history it
//! shows surviving a restart of the daemon.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const S: Duration = Duration::from_secs(1);

/// Chromium, headless, with nothing that reaches beyond this machine.
fn chromium(profile: &Path, args: &[&str]) -> String {
    let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chromium is not installed: run ./scripts/test.sh, which installs it");
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `/status` until `ok` holds for the device list.
fn wait_status(http: u16, what: &str, ok: impl Fn(&[serde_json::Value]) -> bool) {
    let deadline = Instant::now() + 20 * S;
    loop {
        let (_, _, body) = http_get(http, "/status");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if ok(v.as_array().unwrap()) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn state_of<'a>(list: &'a [serde_json::Value], name: &str) -> &'a str {
    list.iter()
        .find(|d| d["name"] == name)
        .and_then(|d| d["state"].as_str())
        .unwrap_or("")
}

/// The rows of the device table, in page order: (name, state, row html).
fn rows(dom: &str) -> Vec<(String, String, String)> {
    let table = dom
        .split("id=\"devices\"")
        .nth(1)
        .expect("the device table")
        .split("</table>")
        .next()
        .unwrap();
    table
        .split("<tr data-name=\"")
        .skip(1)
        .map(|row| {
            let (name, rest) = row.split_once('"').unwrap();
            let state = rest
                .split("data-state=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("");
            (name.to_string(), state.to_string(), row.to_string())
        })
        .collect()
}

#[test]
fn the_page_in_a_browser_shows_rows_states_strips_and_events_and_history_survives_a_restart() {
    let broker = Broker::start();
    let http = free_port();
    let agents = Agents::new(&["pageled"]);
    let led = agents.name(0).to_string();
    let config = format!(
        "{}[http]\nbind=\"127.0.0.1:{http}\"\n\
         [device_kitchen]\nwatchTimeOut=2\nwatchTopics=\"t/pg/kitchen/#\"\n\
         [device_porch]\nwatchTimeOut=2\nwatchTopics=\"t/pg/porch/#\"\n\
         [device_garage]\nwatchTimeOut=600\nwatchTopics=\"t/pg/garage/#\"\n\
         [device_cellar]\nwatchTimeOut=600\nwatchTopics=\"t/pg/cellar/#\"\n\
         [agent_{led}]\nexec=\"sleep 600\"\nwatchTimeOut=600\nwatchTopics=\"t/pg/led/#\"\n",
        mqtt_section(broker.port, "t/pgmon")
    );
    let dir = workdir(&config);
    let c = Client::connect(broker.port, &[]);
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    wait_http(http);
    c.publish("t/pg/garage/t", b"21");
    wait_status(http, "kitchen and porch expire", |l| {
        state_of(l, "kitchen") == "expired" && state_of(l, "porch") == "expired"
    });
    c.publish("t/pg/porch/t", b"on");
    c.publish("t/pg/garage/t", b"21");
    wait_status(http, "porch back, agent running", |l| {
        state_of(l, "porch") == "online"
            && l.iter()
                .any(|d| d["name"] == led.as_str() && d["pid"].is_i64())
    });

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{http}/");
    let dom = chromium(
        profile.path(),
        &["--virtual-time-budget=2000", "--dump-dom", &url],
    );
    let rows = rows(&dom);
    let names: Vec<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(rows.len(), 5, "one row per device and agent: {names:?}");
    assert_eq!(rows[0].0, "kitchen", "expired rows first: {names:?}");
    assert_eq!(rows[0].1, "expired");
    assert!(rows[0].2.contains("st-expired") && rows[0].2.contains("overdue"));
    let row = |n: &str| rows.iter().find(|(name, _, _)| name == n).unwrap();
    assert_eq!(row("cellar").1, "unknown");
    assert!(row("cellar").2.contains("not yet heard"));
    assert_eq!(row("garage").1, "online");
    assert!(row("garage").2.contains(" ago"), "last seen as a time ago");
    assert!(row(&led).2.contains("pid ") && row(&led).2.contains("1 launch"));
    // The 24-hour strips: 48 beats, the last one red for a device that
    // was down in the last half hour (porch, although back since), green
    // for one always up since it was first heard, grey when never heard.
    let beats = |n: &str| -> Vec<String> {
        row(n)
            .2
            .split("<rect class=\"")
            .skip(1)
            .map(|r| r.split('"').next().unwrap().to_string())
            .collect()
    };
    for name in ["kitchen", "porch", "garage", "cellar"] {
        assert_eq!(beats(name).len(), 48, "{name}");
    }
    assert_eq!(beats("porch").last().unwrap(), "down");
    assert_eq!(beats("kitchen").last().unwrap(), "down");
    assert_eq!(beats("garage").last().unwrap(), "up");
    assert!(beats("cellar").iter().all(|b| b == "unknown"));
    assert!(dom.contains("connected"), "broker state in the header");
    let events = dom.split("id=\"events\"").nth(1).expect("the event list");
    assert!(events.contains("expired") && events.contains("back"));

    // A picture for people (the README shows it).
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    chromium(
        profile.path(),
        &[
            "--window-size=1280,660",
            "--virtual-time-budget=500",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    assert!(std::fs::metadata(&shot)
        .map(|m| m.len() > 10_000)
        .unwrap_or(false));

    // The history survives a restart.
    let (_, _, before) = http_get(http, "/events?device=porch");
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    let kinds: Vec<&str> = before
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["back", "expired"], "porch's events, newest first");
    assert!(daemon.terminate().success());
    let _daemon = Iotmonitor::start(dir.path(), &[]);
    wait_http(http);
    let (_, _, after) = http_get(http, "/events?device=porch&limit=10");
    let after: serde_json::Value = serde_json::from_str(&after).unwrap();
    for e in before.as_array().unwrap() {
        assert!(
            after.as_array().unwrap().contains(e),
            "{e} lost in the restart: {after}"
        );
    }
    let (code, states, _) = run(dir.path(), &["dump"]);
    assert_eq!(code, 0);
    assert!(states.trim().is_empty(), "events are not states: {states}");
    drop(agents);
}
