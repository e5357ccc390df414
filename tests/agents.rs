//! Agents as real detached processes, supervised by the real daemon against
//! a real mosquitto. Every process a test starts is killed by process group
//! when the test ends (see `Agents`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rustix::process::{self, Pid, Signal};

const S: Duration = Duration::from_secs(1);

fn agent(name: &str, exec: &str, extra: &str) -> String {
    format!("[agent_{name}]\nexec=\"{exec}\"\nwatchTopics=\"t/ag/{name}/#\"\n{extra}\n")
}

/// The session id from `/proc/PID/stat` (0 when the session leader lives
/// outside this pid namespace, as in CI containers; `getsid` cannot say so).
fn session_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
    after_comm
        .split(' ')
        .nth(3)
        .and_then(|s| s.parse().ok())
        .expect("session field")
}

#[test]
fn launches_detached_with_tag_log_and_startedprocess() {
    let a = Agents::new(&["launch"]);
    let broker = Broker::start();
    let dir = workdir(&format!(
        "{}{}",
        mqtt_section(broker.port, "t/ag1"),
        agent(a.name(0), "echo agent-says-hi; sleep 300", "")
    ));
    let c = Client::connect(broker.port, &["t/ag1/startedprocess/#"]);
    let before = epoch_ms() / 1000;
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    let started = c
        .wait_topic(&format!("t/ag1/startedprocess/{}", a.name(0)), 10 * S)
        .expect("startedprocess");
    let at: u64 = started.text().parse().unwrap();
    assert!(at >= before && at <= epoch_ms() / 1000 + 1, "{at}");
    let pids = a.wait_pids(0, "agent running", |p| p.len() == 1);
    let pid = pids[0];
    assert_eq!(session_of(pid), pid, "agent has its own session");
    assert_ne!(session_of(pid), session_of(daemon.pid()));
    let log = dir
        .path()
        .join("agent-logs")
        .join(format!("{}.log", a.name(0)));
    let deadline = Instant::now() + 10 * S;
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("agent-says-hi")
    {
        assert!(
            Instant::now() < deadline,
            "agent output not in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains(&format!("IOTMONITORMAGIC_{}", a.name(0))));
    assert!(daemon.log().contains("launched"), "{}", daemon.log());

    // Stopping the daemon leaves the agent running; a new daemon adopts it.
    assert!(daemon.terminate().success());
    std::thread::sleep(S);
    assert_eq!(a.pids(0), vec![pid], "agent survives SIGTERM of the daemon");
    let mut daemon = Iotmonitor::start(dir.path(), &[]);
    assert!(
        c.wait_topic(&format!("t/ag1/startedprocess/{}", a.name(0)), 3 * S)
            .is_none(),
        "relaunched although running"
    );
    assert_eq!(a.pids(0), vec![pid], "no duplicate after restart");
    // Same after SIGKILL of the daemon.
    daemon.kill9();
    let _daemon = Iotmonitor::start(dir.path(), &[]);
    assert!(c
        .wait_topic(&format!("t/ag1/startedprocess/{}", a.name(0)), 3 * S)
        .is_none());
    assert_eq!(
        a.pids(0),
        vec![pid],
        "no duplicate after SIGKILL and restart"
    );
}

#[test]
fn relaunch_after_kill_with_backoff_and_no_zombies() {
    let a = Agents::new(&["relaunch", "crash"]);
    let broker = Broker::start();
    let dir = workdir(&format!(
        "{}{}{}",
        mqtt_section(broker.port, "t/ag2"),
        agent(a.name(0), "sleep 300", ""),
        agent(a.name(1), "exit 1", "")
    ));
    let c = Client::connect(broker.port, &["t/ag2/startedprocess/#"]);
    let daemon = Iotmonitor::start(dir.path(), &[]);
    let topic = format!("t/ag2/startedprocess/{}", a.name(0));
    c.wait_topic(&topic, 10 * S).expect("first launch");
    let pid = a.wait_pids(0, "running", |p| p.len() == 1)[0];
    let killed_at = Instant::now();
    process::kill_process_group(Pid::from_raw(pid).unwrap(), Signal::KILL).unwrap();
    c.wait_topic(&topic, 10 * S).expect("relaunch after kill");
    eprintln!("relaunch latency after SIGKILL: {:?}", killed_at.elapsed());
    let new = a.wait_pids(0, "relaunched", |p| p.len() == 1 && p[0] != pid);
    assert_ne!(new[0], pid);

    // A command that keeps dying is relaunched with growing delays.
    let crash = format!("t/ag2/startedprocess/{}", a.name(1));
    let mut times = Vec::new();
    let deadline = Instant::now() + 30 * S;
    while times.len() < 4 && Instant::now() < deadline {
        if let Some(m) = c.wait_topic(&crash, 12 * S) {
            times.push(m.at_ms);
        }
    }
    assert_eq!(times.len(), 4, "launches of the crashing agent: {times:?}");
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("relaunch gaps of a crashing agent (ms): {gaps:?}");
    assert!(
        gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "no back-off: {gaps:?}"
    );
    // Seen dead at the next tick, then 1 s, 2 s, 4 s of back-off.
    assert!(gaps[2] >= 4_000, "back-off too short: {gaps:?}");

    // No zombie children stay behind (a child that just died is reaped at
    // the next tick).
    let daemon_pid = daemon.pid().to_string();
    let zombies = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| {
                let fields = proc_stat(pid);
                fields.first().map(String::as_str) == Some("Z")
                    && fields.get(1) == Some(&daemon_pid)
            })
            .map(|pid| pid.to_string())
            .collect()
    };
    let before = zombies();
    std::thread::sleep(Duration::from_millis(1500));
    let lasting: Vec<String> = zombies()
        .into_iter()
        .filter(|z| before.contains(z))
        .collect();
    assert!(lasting.is_empty(), "zombies: {lasting:?}");
}

#[test]
fn adopts_an_agent_started_with_the_original_command_line() {
    let a = Agents::new(&["byhand"]);
    let broker = Broker::start();
    let exec = "sleep 300";
    let mut by_hand = Command::new("setsid")
        .arg("/bin/bash")
        .arg("-c")
        .arg(format!(
            "echo IOTMONITORMAGIC_{};{exec};echo END",
            a.name(0)
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = a.wait_pids(0, "hand-started agent", |p| p.len() == 1)[0];
    let dir = workdir(&format!(
        "{}{}",
        mqtt_section(broker.port, "t/ag3"),
        agent(a.name(0), exec, "")
    ));
    let c = Client::connect(broker.port, &["t/ag3/#"]);
    let daemon = Iotmonitor::start(dir.path(), &[]);
    c.wait_topic("t/ag3/up", 10 * S).unwrap();
    assert!(c
        .wait_topic(&format!("t/ag3/startedprocess/{}", a.name(0)), 3 * S)
        .is_none());
    assert_eq!(a.pids(0), vec![pid]);
    assert!(
        daemon
            .log()
            .contains(&format!("agent {} is running (pid {pid})", a.name(0))),
        "{}",
        daemon.log()
    );
    drop(daemon);
    drop(a); // kills the agent
    let _ = by_hand.wait();
}

#[test]
fn restart_on_expire_and_publishing_agents() {
    let a = Agents::new(&["stuck", "talker"]);
    let broker = Broker::start();
    let talker = format!(
        "while true; do mosquitto_pub -p {} -t t/ag/{}/alive -m 1; sleep 1; done",
        broker.port,
        a.name(1)
    );
    let dir = workdir(&format!(
        "{}{}{}",
        mqtt_section(broker.port, "t/ag4"),
        agent(
            a.name(0),
            "sleep 300",
            "watchTimeOut=2\nrestartOnExpire=true"
        ),
        agent(a.name(1), &talker, "watchTimeOut=3\nrestartOnExpire=true")
    ));
    let c = Client::connect(broker.port, &["t/ag4/#"]);
    let _daemon = Iotmonitor::start(dir.path(), &[]);
    let stuck = format!("t/ag4/startedprocess/{}", a.name(0));
    c.wait_topic(&stuck, 10 * S).expect("first launch");
    let first = a.wait_pids(0, "running", |p| p.len() == 1)[0];
    c.wait_topic(&format!("t/ag4/expired/{}", a.name(0)), 10 * S)
        .expect("expires");
    c.wait_topic(&stuck, 15 * S)
        .expect("restarted after expiry");
    let second = a.wait_pids(0, "restarted", |p| p.len() == 1 && p[0] != first);
    assert_ne!(second[0], first);
    // The talker publishes on its watch topic: never expired, never restarted.
    let msgs = c.collect(3 * S);
    assert!(!msgs
        .iter()
        .any(|m| m.topic == format!("t/ag4/expired/{}", a.name(1))));
    assert_eq!(
        msgs.iter()
            .filter(|m| m.topic == format!("t/ag4/startedprocess/{}", a.name(1)))
            .count(),
        0
    );
    assert_eq!(a.pids(1).len(), 1);
}
