//! The monitor core driven with an injected clock through the scenarios of
//! the daemon: clock steps, restarts, hellos, reloads, agents, Home
//! Assistant.

use super::*;

/// Wall-clock epoch ms at monotonic 0: a whole second, as the real clock.
const WALL0: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

/// The clocks `ms` milliseconds after the origin, wall clock not stepped.
fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_ms: WALL0 + ms,
    }
}

/// The same instant with the wall clock stepped by `step_ms`.
fn stepped(now: Now, step_ms: i64) -> Now {
    Now {
        wall_ms: now.wall_ms.checked_add_signed(step_ms).unwrap(),
        ..now
    }
}

fn agent(name: &str, timeout: u64, watch: &str) -> DeviceConfig {
    DeviceConfig {
        exec: Some("sleep 100".into()),
        restart_on_expire: true,
        ..DeviceConfig::for_test(name, timeout, &[watch], &[], None)
    }
}

fn settings(ha: bool) -> Settings {
    Settings {
        base_topic: "B".into(),
        client_id: "iotmonitor".into(),
        retain_states: false,
        failover: None,
        homeassistant: ha.then(|| HomeAssistant {
            prefix: "ha".into(),
        }),
    }
}

/// A core started at 300 ms with `devices`, connected.
fn started(devices: Vec<DeviceConfig>, announced: &[(&str, bool)]) -> (Monitor, Outbox) {
    let announced: HashMap<String, bool> =
        announced.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    let mut m = Monitor::new(settings(false), devices, &announced, at(300));
    let mut out = Outbox::default();
    m.on_connected(at(350), &mut out);
    while m.next_counts(usize::MAX, &mut out) {}
    (m, out)
}

/// (topic, payload) of every publish, in order.
fn published(out: &Outbox) -> Vec<(String, String)> {
    out.publishes
        .iter()
        .map(|p| {
            (
                p.topic.clone(),
                String::from_utf8_lossy(&p.payload).into_owned(),
            )
        })
        .collect()
}

fn on(out: &Outbox, topic: &str) -> Vec<String> {
    published(out)
        .into_iter()
        .filter(|(t, _)| t == topic)
        .map(|(_, p)| p)
        .collect()
}

fn kinds(out: &Outbox) -> Vec<(EventKind, String)> {
    out.events
        .iter()
        .map(|e| (e.kind, e.subject.clone()))
        .collect()
}

/// Ticks at every whole second + 5 ms from `from_s` to `to_s` (inclusive),
/// with the wall clock stepped by `step_ms`; returns everything published.
fn tick_range(m: &mut Monitor, from_s: u64, to_s: u64, step_ms: i64) -> Outbox {
    let mut out = Outbox::default();
    for s in from_s..=to_s {
        m.tick(stepped(at(s * 1000 + 5), step_ms), &mut out);
        while m.next_counts(usize::MAX, &mut out) {}
        m.next_announcements(usize::MAX, &mut out);
    }
    out
}

/// A live message, and the announcements it made (which the daemon takes
/// right after, as the link has room).
fn msg(m: &mut Monitor, topic: &str, payload: &str, now: Now) -> (bool, Outbox) {
    let mut out = Outbox::default();
    let state = m.on_message(topic, payload.as_bytes(), false, now, &mut out);
    m.next_announcements(usize::MAX, &mut out);
    (state, out)
}

#[test]
fn up_counts_one_per_tick_and_first_tick_runs_at_connection() {
    let (mut m, out) = started(vec![], &[]);
    assert_eq!(
        on(&out, "B/up"),
        ["1"],
        "B/up at once on the first connection"
    );
    let out = tick_range(&mut m, 1, 3, 0);
    assert_eq!(on(&out, "B/up"), ["2", "3", "4"]);
    m.up = UP_WRAP - 1;
    let out = tick_range(&mut m, 4, 4, 0);
    assert_eq!(on(&out, "B/up"), ["0"], "wraps like the original");
}

#[test]
fn a_silent_device_expires_at_its_deadline_with_the_deadline_as_payload() {
    let (mut m, _) = started(
        vec![DeviceConfig::for_test("d", 2, &["t/d/#"], &[], None)],
        &[],
    );
    // Start at 300 ms + 2 s, rounded up: 3 s.
    assert!(on(&tick_range(&mut m, 1, 2, 0), "B/expired/d").is_empty());
    let out = tick_range(&mut m, 3, 3, 0);
    assert_eq!(on(&out, "B/expired/d"), [(WALL0 / 1000 + 3).to_string()]);
    assert_eq!(on(&out, "B/availability/d"), ["offline"]);
    assert_eq!(kinds(&out), [(EventKind::Expired, "d".to_string())]);
    assert_eq!(out.verdicts, [("d".to_string(), Some(false))]);
    // Still offline: nothing more to persist (the store writes each one).
    assert!(tick_range(&mut m, 4, 5, 0).verdicts.is_empty());
    // Repeated every second with the same deadline, announced once.
    let out = tick_range(&mut m, 4, 5, 0);
    assert_eq!(on(&out, "B/expired/d").len(), 2);
    assert!(on(&out, "B/expired/d")
        .iter()
        .all(|p| *p == (WALL0 / 1000 + 3).to_string()));
    assert!(on(&out, "B/availability/d").is_empty());
    assert!(out.events.is_empty());
}

#[test]
fn activity_moves_the_deadline_and_brings_an_expired_device_back() {
    let (mut m, _) = started(
        vec![DeviceConfig::for_test("d", 2, &["t/d/#"], &[], None)],
        &[],
    );
    let (_, out) = msg(&mut m, "t/d/temp", "20", at(1_500));
    assert_eq!(on(&out, "B/availability/d"), ["online"]);
    assert_eq!(kinds(&out), [(EventKind::FirstHeard, "d".to_string())]);
    assert!(on(&tick_range(&mut m, 2, 3, 0), "B/expired/d").is_empty());
    let out = tick_range(&mut m, 4, 4, 0);
    assert_eq!(on(&out, "B/expired/d"), [(WALL0 / 1000 + 4).to_string()]);
    let (_, out) = msg(&mut m, "t/d", "x", at(4_200));
    assert_eq!(on(&out, "B/availability/d"), ["online"]);
    assert_eq!(kinds(&out), [(EventKind::Back, "d".to_string())]);
    assert!(on(&tick_range(&mut m, 5, 6, 0), "B/expired/d").is_empty());
    // A message of another device or a sibling topic does not count.
    msg(&mut m, "t/dd", "x", at(6_500));
    assert_eq!(on(&tick_range(&mut m, 7, 7, 0), "B/expired/d").len(), 1);
}

#[test]
fn a_forward_wall_clock_step_causes_no_alert() {
    let (mut m, _) = started(
        vec![DeviceConfig::for_test("d", 5, &["t/d"], &[], None)],
        &[],
    );
    tick_range(&mut m, 1, 9, 0);
    msg(&mut m, "t/d", "x", at(9_100));
    // NTP steps the clock one hour forward: heard 1 s ago, not expired.
    let out = tick_range(&mut m, 10, 13, HOUR as i64);
    assert!(on(&out, "B/expired/d").is_empty(), "{:?}", published(&out));
    assert!(on(&out, "B/availability/d").is_empty());
    assert_eq!(on(&out, "B/up"), ["11", "12", "13", "14"], "counts by one");
    // Its deadline (9.1 + 5 s, rounded up) still comes on time, and the
    // payload is that deadline as the stepped clock reads it.
    let out = tick_range(&mut m, 14, 15, HOUR as i64);
    assert_eq!(
        on(&out, "B/expired/d"),
        [((WALL0 + HOUR) / 1000 + 15).to_string()]
    );
}

#[test]
fn a_backward_wall_clock_step_does_not_blind_the_watchdog() {
    let (mut m, _) = started(
        vec![DeviceConfig::for_test("d", 5, &["t/d"], &[], None)],
        &[],
    );
    msg(&mut m, "t/d", "x", at(1_000));
    tick_range(&mut m, 1, 2, 0);
    // The clock steps back one hour: the silent device still expires 5 s
    // after it was heard, not an hour later.
    assert!(on(&tick_range(&mut m, 3, 5, -(HOUR as i64)), "B/expired/d").is_empty());
    let out = tick_range(&mut m, 6, 6, -(HOUR as i64));
    assert_eq!(
        on(&out, "B/expired/d"),
        [((WALL0 - HOUR) / 1000 + 6).to_string()]
    );
    assert_eq!(on(&out, "B/up"), ["7"]);
}

#[test]
fn restart_keeps_offline_devices_offline_and_announces_nothing_unheard() {
    let devices = || {
        vec![
            DeviceConfig::for_test("off", 5, &["t/off"], &[], None),
            DeviceConfig::for_test("on", 5, &["t/on"], &[], None),
            DeviceConfig::for_test("new", 5, &["t/new"], &[], None),
        ]
    };
    let (mut m, out) = started(devices(), &[("off", false), ("on", true)]);
    assert!(
        published(&out)
            .iter()
            .all(|(t, _)| !t.contains("availability")),
        "nothing announced at connection: {:?}",
        published(&out)
    );
    let out = tick_range(&mut m, 1, 4, 0);
    assert!(on(&out, "B/availability/off").is_empty());
    assert!(on(&out, "B/availability/on").is_empty());
    assert!(on(&out, "B/availability/new").is_empty());
    let view = m.view(at(4_500));
    let verdict = |n: &str| view.iter().find(|v| v.name == n).unwrap().verdict;
    assert_eq!(verdict("off"), Verdict::Offline);
    assert_eq!(verdict("on"), Verdict::Unknown);
    assert_eq!(verdict("new"), Verdict::Unknown);
    // The offline one heard: back online, once.
    let (_, out) = msg(&mut m, "t/off", "x", at(4_600));
    assert_eq!(on(&out, "B/availability/off"), ["online"]);
    assert_eq!(kinds(&out), [(EventKind::Back, "off".to_string())]);
    // The one online before the restart, heard: already online, no flap.
    let (_, out) = msg(&mut m, "t/on", "x", at(4_700));
    assert!(on(&out, "B/availability/on").is_empty());
    assert!(out.verdicts.is_empty());
    assert_eq!(kinds(&out), [(EventKind::FirstHeard, "on".to_string())]);
    // The never-heard one: offline when its first deadline passes.
    let out = tick_range(&mut m, 5, 6, 0);
    assert_eq!(on(&out, "B/availability/new"), ["offline"]);
    assert!(on(&out, "B/availability/off").is_empty());
}

#[test]
fn an_offline_device_not_heard_expires_without_a_new_transition() {
    let (mut m, _) = started(
        vec![DeviceConfig::for_test("off", 2, &["t/off"], &[], None)],
        &[("off", false)],
    );
    let out = tick_range(&mut m, 1, 3, 0);
    assert_eq!(on(&out, "B/expired/off").len(), 1, "alerts as usual");
    assert!(on(&out, "B/availability/off").is_empty(), "still offline");
    assert!(out.events.is_empty(), "no new transition");
}

#[test]
fn reconnection_sends_established_verdicts_again() {
    let (mut m, _) = started(
        vec![
            DeviceConfig::for_test("a", 2, &["t/a"], &[], None),
            DeviceConfig::for_test("b", 100, &["t/b"], &[], None),
            DeviceConfig::for_test("c", 100, &["t/c"], &[], None),
        ],
        &[("c", false)],
    );
    msg(&mut m, "t/b", "x", at(500));
    tick_range(&mut m, 1, 3, 0);
    let mut out = Outbox::default();
    m.on_disconnected(at(3_500), &mut out);
    m.on_connected(at(4_000), &mut out);
    // Taken a page at a time (the link's room): a, then b.
    assert!(m.next_announcements(1, &mut out), "one left");
    assert!(!m.next_announcements(1, &mut out));
    assert_eq!(on(&out, "B/availability/a"), ["offline"]);
    assert_eq!(on(&out, "B/availability/b"), ["online"]);
    assert!(on(&out, "B/availability/c").is_empty());
    assert_eq!(
        kinds(&out),
        [
            (EventKind::BrokerLost, String::new()),
            (EventKind::BrokerRegained, String::new())
        ]
    );
    assert!(on(&out, "B/up").is_empty(), "B/up goes on at ticks");
}

#[test]
fn own_topics_and_retained_messages_do_not_count() {
    let (mut m, _) = started(
        vec![DeviceConfig::for_test(
            "d",
            2,
            &["B/#", "t/d"],
            &["t/d/state/#"],
            None,
        )],
        &[],
    );
    for own in ["B/up", "B/expired/d", "B/availability/d", "B/status"] {
        let (state, out) = msg(&mut m, own, "1", at(500));
        assert!(!state && out.publishes.is_empty(), "{own}");
    }
    let mut out = Outbox::default();
    assert!(m.on_message("t/d/state/led", b"on", true, at(600), &mut out));
    assert!(out.publishes.is_empty(), "retained: stale news");
    assert_eq!(on(&tick_range(&mut m, 1, 3, 0), "B/expired/d").len(), 1);
}

#[test]
fn hellos_count_and_replay_the_device_states_once_per_burst() {
    let (mut m, _) = started(
        vec![
            DeviceConfig::for_test("a", 30, &["t/a/#"], &["t/a/state/#", "t/a"], Some("t/a")),
            DeviceConfig::for_test("b", 30, &["t/b/#"], &["t/b/state/#"], Some("t/b/hello")),
        ],
        &[],
    );
    let (state, _) = msg(&mut m, "t/a/state/led", "on", at(400));
    assert!(state);
    let (state, _) = msg(&mut m, "t/b/other", "x", at(400));
    assert!(!state);
    for _ in 0..3 {
        msg(&mut m, "t/a", "", at(500));
    }
    msg(&mut m, "t/b/hello", "", at(510));
    let plan = m.next_replay().unwrap();
    assert_eq!(plan.device, "a");
    assert!(plan.wants("t/a/state/led"));
    assert!(!plan.wants("t/a"), "never the hello itself");
    assert!(!plan.wants("t/b/state/x"), "never another device's states");
    assert_eq!(m.next_replay().unwrap().device, "b");
    assert!(
        m.next_replay().is_none(),
        "three hellos in a burst: one replay"
    );
    let out = tick_range(&mut m, 1, 1, 0);
    assert_eq!(on(&out, "B/helloTopicCount/a"), ["3"]);
    assert_eq!(on(&out, "B/helloTopicCount/b"), ["1"]);
    // The start-up replay skips hello topics, even when they match a state
    // filter.
    assert!(m.is_replayable("t/a/state/led"));
    assert!(!m.is_replayable("t/a"));
    assert!(!m.is_replayable("t/x"));
}

#[test]
fn startup_replay_is_due_once_after_the_first_connection() {
    let mut m = Monitor::new(settings(false), vec![], &HashMap::new(), at(0));
    assert!(!m.take_startup_replay());
    let mut out = Outbox::default();
    m.on_connected(at(100), &mut out);
    assert!(m.take_startup_replay());
    assert!(!m.take_startup_replay());
    m.on_disconnected(at(200), &mut out);
    m.on_connected(at(300), &mut out);
    assert!(!m.take_startup_replay(), "not after a reconnection");
}

#[test]
fn hello_counts_come_in_pages() {
    let devices: Vec<DeviceConfig> = (0..25)
        .map(|i| DeviceConfig::for_test(&format!("d{i}"), 30, &[&format!("t/{i}")], &[], None))
        .collect();
    let (mut m, _) = started(devices, &[]);
    let mut out = Outbox::default();
    m.tick(at(1_005), &mut out);
    assert!(m.next_counts(10, &mut out));
    assert!(m.next_counts(10, &mut out));
    assert!(!m.next_counts(10, &mut out));
    assert!(!m.next_counts(10, &mut out));
    let counts = published(&out)
        .into_iter()
        .filter(|(t, _)| t.starts_with("B/helloTopicCount/"))
        .count();
    assert_eq!(counts, 25);
    // A round not finished at the next tick is finished first.
    let mut out = Outbox::default();
    m.tick(at(2_005), &mut out);
    m.next_counts(10, &mut out);
    m.tick(at(3_005), &mut out);
    while m.next_counts(10, &mut out) {}
    let counts = published(&out)
        .into_iter()
        .filter(|(t, _)| t.starts_with("B/helloTopicCount/"))
        .count();
    assert_eq!(counts, 50);
}

#[test]
fn many_devices_expiring_together_are_alerted_each() {
    let devices: Vec<DeviceConfig> = (0..500)
        .map(|i| DeviceConfig::for_test(&format!("d{i}"), 2, &[&format!("t/{i}")], &[], None))
        .collect();
    let (mut m, _) = started(devices, &[]);
    let out = tick_range(&mut m, 1, 3, 0);
    let alerts = published(&out)
        .into_iter()
        .filter(|(t, _)| t.starts_with("B/expired/"))
        .count();
    assert_eq!(alerts, 500);
    assert_eq!(out.events.len(), 500);
}

#[test]
fn reload_keeps_deadlines_and_counts_and_clears_removed_devices() {
    let (mut m, _) = started(
        vec![
            DeviceConfig::for_test("keep", 10, &["t/keep"], &[], Some("t/keep/hello")),
            DeviceConfig::for_test("gone", 10, &["t/gone"], &[], None),
            DeviceConfig::for_test("longer", 2, &["t/longer"], &[], None),
        ],
        &[],
    );
    msg(&mut m, "t/keep/hello", "", at(500));
    msg(&mut m, "t/keep", "x", at(600));
    msg(&mut m, "t/gone", "x", at(600));
    let mut out = Outbox::default();
    let reloaded = vec![
        DeviceConfig::for_test("longer", 20, &["t/longer"], &[], None),
        DeviceConfig::for_test("added", 3, &["t/added"], &[], None),
        DeviceConfig::for_test(
            "keep",
            10,
            &["t/keep", "t/keep2"],
            &[],
            Some("t/keep/hello"),
        ),
    ];
    let mut subs = m.subscriptions(Routes::subscriptions(&reloaded));
    m.reload(reloaded, None, at(1_500), &mut out);
    assert_eq!(on(&out, "B/availability/gone"), [""], "retained cleared");
    assert!(out.verdicts.contains(&("gone".to_string(), None)));
    assert_eq!(kinds(&out), [(EventKind::ConfigReloaded, String::new())]);
    // The queued hello replay follows its device to its new position.
    assert_eq!(m.next_replay().unwrap().device, "keep");
    subs.sort();
    assert_eq!(subs, ["t/added/#", "t/keep/#", "t/keep2/#", "t/longer/#"]);
    // keep: deadline 0.6 + 10 s kept; new filter routed.
    msg(&mut m, "t/keep2", "x", at(9_000));
    // longer: timeout 20 s from the start (0.3 s).
    // added: 1.5 + 3 s.
    let out = tick_range(&mut m, 1, 18, 0);
    assert_eq!(
        on(&out, "B/expired/added")[0],
        (WALL0 / 1000 + 5).to_string()
    );
    assert!(on(&out, "B/expired/keep").is_empty());
    assert!(on(&out, "B/expired/longer").is_empty());
    assert!(on(&out, "B/expired/gone").is_empty());
    assert_eq!(on(&out, "B/helloTopicCount/keep")[0], "1");
    let out = tick_range(&mut m, 19, 21, 0);
    assert_eq!(
        on(&out, "B/expired/keep")[0],
        (WALL0 / 1000 + 19).to_string()
    );
    assert_eq!(
        on(&out, "B/expired/longer")[0],
        (WALL0 / 1000 + 21).to_string()
    );
}

#[test]
fn agents_expire_and_launches_wait_for_the_broker() {
    let (mut m, _) = started(
        vec![
            agent("led", 2, "t/led"),
            DeviceConfig::for_test("d", 2, &["t/d"], &[], None),
        ],
        &[],
    );
    assert!(!m.is_expired("led"));
    tick_range(&mut m, 1, 3, 0);
    assert!(m.is_expired("led"));
    assert!(!m.is_expired("d"), "only agents are asked about");
    msg(&mut m, "t/led", "x", at(3_500));
    assert!(!m.is_expired("led"));
    let mut out = Outbox::default();
    m.on_disconnected(at(3_600), &mut out);
    m.agent_launched("led", EventKind::AgentRestarted, 42, at(3_700), &mut out);
    m.agent_launched("led", EventKind::AgentRelaunched, 43, at(4_700), &mut out);
    assert!(on(&out, "B/startedprocess/led").is_empty());
    let mut out = Outbox::default();
    m.on_connected(at(5_000), &mut out);
    assert_eq!(
        on(&out, "B/startedprocess/led"),
        [(WALL0 / 1000 + 4).to_string()],
        "the last launch, once the broker is back"
    );
    let mut out = Outbox::default();
    m.agent_launched("led", EventKind::AgentLaunched, 44, at(6_000), &mut out);
    assert_eq!(on(&out, "B/startedprocess/led").len(), 1);
    assert_eq!(kinds(&out), [(EventKind::AgentLaunched, "led".to_string())]);
}

#[test]
fn home_assistant_discovery_at_connection_and_on_request() {
    let mut m = Monitor::new(
        settings(true),
        vec![DeviceConfig::for_test("esp", 5, &["t/esp"], &[], None)],
        &HashMap::new(),
        at(0),
    );
    assert!(m
        .subscriptions(Vec::new())
        .contains(&"ha/status".to_string()));
    let mut out = Outbox::default();
    m.on_connected(at(100), &mut out);
    let configs: Vec<&Publish> = out
        .publishes
        .iter()
        .filter(|p| p.topic.starts_with("ha/"))
        .collect();
    assert_eq!(configs.len(), 4, "the hub and three entities");
    assert!(configs
        .iter()
        .all(|p| p.retain && p.class == Class::Retained));
    let (_, out) = msg(&mut m, "ha/status", "online", at(200));
    assert_eq!(
        out.publishes
            .iter()
            .filter(|p| p.topic.starts_with("ha/"))
            .count(),
        4
    );
    // Last seen: on the first message, then at most once a minute.
    let (_, out) = msg(&mut m, "t/esp", "x", at(300));
    assert_eq!(on(&out, "B/lastseen/esp"), ["2023-11-14T22:13:20Z"]);
    let (_, out) = msg(&mut m, "t/esp", "x", at(30_000));
    assert!(on(&out, "B/lastseen/esp").is_empty());
    let (_, out) = msg(&mut m, "t/esp", "x", at(60_300));
    assert_eq!(on(&out, "B/lastseen/esp").len(), 1);
    // Removed by a reload: its configs are cleared.
    let mut out = Outbox::default();
    m.reload(
        vec![],
        Some(&HomeAssistant {
            prefix: "ha".into(),
        }),
        at(61_000),
        &mut out,
    );
    let cleared: Vec<String> = published(&out)
        .into_iter()
        .filter(|(t, p)| t.starts_with("ha/") && p.is_empty())
        .map(|(t, _)| t)
        .collect();
    assert_eq!(cleared.len(), 3, "{cleared:?}");
}

#[test]
fn view_reports_times_on_the_current_wall_clock() {
    let (mut m, _) = started(
        vec![DeviceConfig::for_test("d", 10, &["t/d"], &[], None)],
        &[],
    );
    msg(&mut m, "t/d", "x", at(2_000));
    let now = stepped(at(5_000), -(HOUR as i64));
    let v = &m.view(now)[0];
    assert_eq!(v.verdict, Verdict::Online);
    assert_eq!(v.last_contact_ms, Some(WALL0 - HOUR + 2_000));
    assert_eq!(v.deadline_ms, WALL0 - HOUR + 12_000);
    assert_eq!(v.timeout_s, 10);
}

/// A failover instance `id` (priority 0), connected at 300 ms, with the
/// retained state `leader` and the leader's presence.
fn instance(id: &str, devices: Vec<DeviceConfig>, leader: &str) -> (Monitor, Outbox) {
    let mut s = settings(false);
    s.client_id = id.into();
    s.failover = Some(0);
    let mut m = Monitor::new(s, devices, &HashMap::new(), at(300));
    let mut out = Outbox::default();
    m.on_connected(at(300), &mut out);
    if !leader.is_empty() {
        m.on_message(
            &format!("B/instances/{leader}"),
            b"active",
            true,
            at(320),
            &mut out,
        );
    }
    m.on_message("B/leader", leader.as_bytes(), true, at(330), &mut out);
    (m, out)
}

/// Publishes that belong to the leader (everything but presences).
fn leader_topics(out: &Outbox) -> Vec<(String, String)> {
    published(out)
        .into_iter()
        .filter(|(t, _)| !t.starts_with("B/instances/"))
        .collect()
}

#[test]
fn a_standby_tracks_everything_and_publishes_nothing_of_the_leaders() {
    let (mut m, out) = instance(
        "b",
        vec![
            DeviceConfig::for_test("d", 2, &["t/d"], &["t/d/state/#"], Some("t/d/hello")),
            DeviceConfig::for_test("e", 30, &["t/e"], &[], None),
        ],
        "a",
    );
    assert_eq!(
        published(&out),
        [("B/instances/b/priority".to_string(), "0".to_string())],
        "the link's birth says standby"
    );
    assert!(m
        .subscriptions(Vec::new())
        .contains(&"B/leader".to_string()));
    let mut out = tick_range(&mut m, 1, 4, 0);
    let (state, o) = msg(&mut m, "t/d/state/led", "on", at(4_100));
    assert!(state, "a standby records states");
    let (_, o2) = msg(&mut m, "t/d/hello", "", at(4_200));
    let (_, o3) = msg(&mut m, "t/e", "x", at(4_300));
    for o in [o, o2, o3] {
        out.publishes.extend(o.publishes);
    }
    assert!(leader_topics(&out).is_empty(), "{:?}", published(&out));
    assert!(
        m.next_replay().is_none(),
        "the leader replays, not a standby"
    );
    assert!(!m.take_startup_replay());
    let view = m.view(at(4_500));
    assert_eq!(view[0].verdict, Verdict::Online, "heard at 4.1 s");
    assert_eq!(view[0].hello_count, 1);
    assert_eq!(view[1].verdict, Verdict::Online);
    assert_eq!(m.failover_view(at(4_500)).unwrap().role, Role::Standby);
}

#[test]
fn takeover_continues_where_the_leader_was() {
    let (mut m, _) = instance(
        "b",
        vec![
            DeviceConfig::for_test("quiet", 2, &["t/quiet"], &[], None),
            DeviceConfig::for_test("talks", 30, &["t/talks"], &[], None),
            DeviceConfig::for_test("back", 30, &["t/back"], &[], None),
        ],
        "a",
    );
    let mut out = Outbox::default();
    // The leader's view, followed by the standby.
    m.on_message("B/up", b"41", false, at(500), &mut out);
    m.on_message("B/availability/talks", b"online", true, at(500), &mut out);
    m.on_message("B/availability/back", b"offline", true, at(500), &mut out);
    msg(&mut m, "t/talks", "x", at(600));
    msg(&mut m, "t/back", "x", at(700));
    tick_range(&mut m, 1, 3, 0);
    m.on_message("B/up", b"44", false, at(3_500), &mut out);
    // quiet expired at 3 s while standby; the leader dies before saying so.
    let mut out = Outbox::default();
    m.on_message("B/instances/a", b"offline", false, at(4_000), &mut out);
    m.on_message("B/leader", b"", false, at(4_000), &mut out);
    assert_eq!(out.failover, [Action::Claim]);
    m.on_message("B/leader", b"b", false, at(4_050), &mut out);
    let out = tick_range(&mut m, 5, 5, 0);
    assert_eq!(out.failover, [Action::BecameActive { fresh: false }]);
    assert_eq!(
        on(&out, "B/up"),
        ["45"],
        "B/up continues from the last seen"
    );
    assert_eq!(
        on(&out, "B/expired/quiet").len(),
        1,
        "alerted at the first tick"
    );
    assert_eq!(on(&out, "B/availability/quiet"), ["offline"]);
    assert!(
        on(&out, "B/availability/talks").is_empty(),
        "unchanged: not re-announced"
    );
    assert_eq!(
        on(&out, "B/availability/back"),
        ["online"],
        "changed while standby"
    );
    assert_eq!(on(&out, "B/instances/b"), ["active"]);
    assert!(kinds(&out).contains(&(EventKind::Takeover, String::new())));
    assert!(!m.take_startup_replay(), "no replay burst at takeover");
    let view = m.failover_view(at(5_100)).unwrap();
    assert_eq!((view.role, view.takeovers), (Role::Active, 1));
    assert_eq!(view.leader.as_deref(), Some("b"));
}

#[test]
fn alone_at_a_cold_start_it_leads_and_replays() {
    let (mut m, out) = instance(
        "a",
        vec![DeviceConfig::for_test("d", 30, &["t/d"], &[], None)],
        "",
    );
    assert!(leader_topics(&out).is_empty());
    assert!(tick_range(&mut m, 1, 1, 0).failover.is_empty(), "settling");
    let out = tick_range(&mut m, 2, 2, 0);
    assert_eq!(out.failover, [Action::Claim], "settled after 1 s");
    let mut out = Outbox::default();
    m.on_message("B/leader", b"a", false, at(2_100), &mut out);
    let out = tick_range(&mut m, 3, 3, 0);
    assert_eq!(out.failover, [Action::BecameActive { fresh: true }]);
    assert_eq!(on(&out, "B/up"), ["1"]);
    assert!(m.take_startup_replay(), "a cold start replays the states");
}

#[test]
fn a_reconnecting_instance_finding_another_leader_publishes_nothing() {
    let (mut m, _) = instance(
        "a",
        vec![DeviceConfig::for_test("d", 2, &["t/d"], &[], None)],
        "",
    );
    tick_range(&mut m, 1, 1, 0);
    m.on_message("B/leader", b"a", false, at(1_100), &mut Outbox::default());
    tick_range(&mut m, 2, 3, 0);
    assert!(m.leading());
    let mut out = Outbox::default();
    m.on_disconnected(at(3_500), &mut out);
    m.on_connected(at(40_000), &mut out);
    m.on_message("B/instances/b", b"active", true, at(40_010), &mut out);
    m.on_message("B/leader", b"b", true, at(40_020), &mut out);
    let more = tick_range(&mut m, 40, 41, 0);
    out.publishes.extend(more.publishes);
    out.failover.extend(more.failover);
    out.events.extend(more.events);
    assert!(leader_topics(&out).is_empty(), "{:?}", published(&out));
    assert_eq!(
        out.failover,
        [Action::Deposed {
            by: "b".to_string()
        }]
    );
    assert!(kinds(&out).contains(&(EventKind::Deposed, String::new())));
    assert_eq!(on(&out, "B/instances/a").last().unwrap(), "standby");
}

#[test]
fn a_device_record_stays_small() {
    // 10,000 devices: every 8 bytes here is 80 kB of the daemon's memory.
    assert!(std::mem::size_of::<Device>() <= 72);
}

#[test]
fn announcements_wait_as_device_positions_and_say_the_verdict_when_they_leave() {
    let devices = |ids: &[usize]| -> Vec<DeviceConfig> {
        ids.iter()
            .map(|i| DeviceConfig::for_test(&format!("d{i}"), 2, &[&format!("t/d{i}")], &[], None))
            .collect()
    };
    let availability = |out: &Outbox| {
        published(out)
            .into_iter()
            .filter(|(t, _)| t.starts_with("B/availability/"))
            .collect::<Vec<_>>()
    };
    let (mut m, _) = started(devices(&[0, 1, 2, 3, 4]), &[]);
    let mut out = Outbox::default();
    for i in 0..5 {
        m.on_message(&format!("t/d{i}"), b"x", false, at(400), &mut out);
    }
    assert!(availability(&out).is_empty(), "queued, not published");
    assert_eq!(out.verdicts.len(), 5, "each verdict persisted at once");
    // Silent past their deadline before any announcement left.
    m.tick(at(3_005), &mut out);
    assert!(m.announcements_pending());
    let mut out = Outbox::default();
    assert!(m.next_announcements(2, &mut out), "three left");
    assert_eq!(
        availability(&out),
        [
            ("B/availability/d0".to_string(), "offline".to_string()),
            ("B/availability/d1".to_string(), "offline".to_string())
        ],
        "oldest first, once each, as the verdict is when it leaves"
    );
    // A reload removes d1 and d2 and moves the others: what waits follows
    // them by name.
    let mut out = Outbox::default();
    m.reload(devices(&[4, 3, 0]), None, at(3_100), &mut out);
    assert_eq!(on(&out, "B/availability/d1"), [""], "retained cleared");
    assert_eq!(on(&out, "B/availability/d2"), [""], "retained cleared");
    let mut out = Outbox::default();
    assert!(!m.next_announcements(usize::MAX, &mut out));
    assert_eq!(
        availability(&out),
        [
            ("B/availability/d3".to_string(), "offline".to_string()),
            ("B/availability/d4".to_string(), "offline".to_string())
        ]
    );
    assert!(!m.announcements_pending());
}
