//! The status page (`GET /` from a browser): one self-contained HTML page —
//! no external asset, so a LAN without internet renders it — readable on a
//! phone. It is rendered on the server from the same [`Facts`] as the JSON
//! and the metrics, so it shows everything without JavaScript; a few lines
//! of inline JavaScript then refresh it every 5 seconds by fetching the page
//! again and swapping its content in place (no full-page flash, nothing
//! rendered twice in two languages), and keep the "12 s ago" times current
//! between refreshes.

use std::time::{Duration, UNIX_EPOCH};

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::event::Event;
use crate::monitor::failover::Role;
use crate::monitor::Verdict;
use crate::status::{self, DeviceStatus, Facts, Strip};

/// The availability strip: 24 hours in 48 beats of 30 minutes.
const BEATS: u64 = 48;
const BEAT_MS: u64 = 30 * 60_000;
const STRIP_MS: u64 = BEATS * BEAT_MS;

const STYLE: &str = r#"
:root{--bg:#f6f7f9;--fg:#1d2330;--mute:#6b7385;--card:#fff;--line:#e3e6ec;--ok:#1e9e5a;--bad:#d23c3c;--off:#8e2b2b;--unk:#9aa1b1}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--fg:#e6e9ef;--mute:#98a0b3;--card:#1b1f27;--line:#2a303b;--unk:#5d6577}}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{padding:12px 16px;background:var(--card);border-bottom:1px solid var(--line)}
h1{font-size:18px;margin:0 0 6px}h2{font-size:15px;margin:18px 16px 8px}
.facts{display:flex;flex-wrap:wrap;gap:6px 14px;color:var(--mute);font-size:13px}.facts b{color:var(--fg);font-weight:600}
.summary{display:flex;gap:8px;margin:12px 16px 0;flex-wrap:wrap}.summary span{padding:4px 10px;border-radius:12px;background:var(--card);border:1px solid var(--line)}
main{padding-bottom:24px}.wrap{overflow-x:auto;margin:0 16px;background:var(--card);border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%;min-width:720px}th,td{text-align:left;padding:7px 9px;border-bottom:1px solid var(--line);white-space:nowrap}
th{font-size:12px;color:var(--mute);font-weight:600}tr:last-child td{border-bottom:0}
.pill{display:inline-block;min-width:64px;text-align:center;padding:2px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
.st-online{background:var(--ok)}.st-expired{background:var(--bad)}.st-offline{background:var(--off)}.st-unknown{background:var(--unk)}
.mute{color:var(--mute)}.late{color:var(--bad);font-weight:600}
svg.strip{width:168px;height:14px;display:block}svg.strip rect{width:2.4px;height:10px}
svg.strip .up{fill:var(--ok)}svg.strip .down{fill:var(--bad)}svg.strip .unknown{fill:var(--unk)}
ol.events{list-style:none;margin:0 16px;padding:0;background:var(--card);border:1px solid var(--line);border-radius:8px}
ol.events li{padding:6px 10px;border-bottom:1px solid var(--line);display:flex;gap:10px;flex-wrap:wrap}ol.events li:last-child{border-bottom:0}
.kind{font-weight:600}.k-expired,.k-agent_died,.k-broker_lost,.k-store_error,.k-deposed{color:var(--bad)}.k-back,.k-first_heard,.k-broker_regained,.k-store_recovered{color:var(--ok)}
#stale{display:none;margin:8px 16px;padding:6px 10px;border-radius:6px;background:var(--bad);color:#fff}
@media (max-width:600px){th.opt,td.opt{display:none}table{min-width:0}}
"#;

const SCRIPT: &str = r#"
(function(){
function ago(ms){var s=Math.round(Math.abs(ms)/1000);if(s<60)return s+" s";if(s<3600)return Math.round(s/60)+" min";if(s<86400)return Math.round(s/3600)+" h";return Math.round(s/86400)+" d";}
function tick(){var now=Date.now();document.querySelectorAll("[data-ago]").forEach(function(e){e.textContent=ago(now-Number(e.dataset.ago))+" ago";});
document.querySelectorAll("[data-until]").forEach(function(e){var d=Number(e.dataset.until)-now;e.textContent=d>=0?"in "+ago(d):"overdue "+ago(d);e.classList.toggle("late",d<0);});
document.querySelectorAll("[data-at]").forEach(function(e){if(!e.title)e.title=new Date(Number(e.dataset.at)).toLocaleString();});}
function refresh(){fetch(location.pathname,{headers:{Accept:"text/html"},cache:"no-store"}).then(function(r){if(!r.ok)throw r.status;return r.text();}).then(function(t){
var doc=new DOMParser().parseFromString(t,"text/html");var next=doc.getElementById("app");if(next){document.getElementById("app").replaceWith(next);}
document.getElementById("stale").style.display="none";tick();}).catch(function(){document.getElementById("stale").style.display="block";});}
tick();setInterval(tick,1000);setInterval(refresh,5000);
})();
"#;

/// "12 s", "5 min", "3 h", "2 d".
fn span(ms: u64) -> String {
    let s = (ms + 500) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min", (s + 30) / 60),
        3_600..86_400 => format!("{} h", (s + 1_800) / 3_600),
        _ => format!("{} d", (s + 43_200) / 86_400),
    }
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A past time as "12 s ago", the exact time on hover.
fn ago(now_ms: u64, at_ms: u64) -> Markup {
    html! {
        span data-ago=(at_ms) data-at=(at_ms) title=(rfc3339(at_ms)) {
            (span(now_ms.saturating_sub(at_ms))) " ago"
        }
    }
}

fn state_label(v: Verdict) -> &'static str {
    match v {
        Verdict::Online => "online",
        Verdict::Expired => "expired",
        Verdict::Offline => "offline",
        Verdict::Unknown => "not yet heard",
    }
}

/// Rows sort expired first, then offline, not yet heard, online; by name.
fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Expired => 0,
        Verdict::Offline => 1,
        Verdict::Unknown => 2,
        Verdict::Online => 3,
    }
}

/// The availability of the last 24 hours as an inline SVG bar of 48
/// half-hour beats (like Uptime Kuma's heartbeat bar): red when the device
/// was down at any moment of the beat (so a few seconds of outage are not
/// lost in a day), green when it was up, grey when nothing is known; each
/// beat says on hover how long it was up and down.
fn strip(now_ms: u64, s: Option<&Strip>) -> Markup {
    let start = now_ms.saturating_sub(STRIP_MS);
    // (from, to, state) over the window.
    let mut segments: Vec<(u64, u64, Option<bool>)> = Vec::new();
    let mut from = start;
    let mut state = s.and_then(|s| s.initial);
    for &(at, online) in s.map(|s| s.changes.as_slice()).unwrap_or(&[]) {
        let at = at.clamp(start, now_ms);
        if at > from {
            segments.push((from, at, state));
        }
        from = at;
        state = Some(online);
    }
    if now_ms > from {
        segments.push((from, now_ms, state));
    }
    let beats = (0..BEATS).map(|i| {
        let (a, b) = (start + i * BEAT_MS, start + (i + 1) * BEAT_MS);
        let (mut up, mut down) = (0, 0);
        for &(x, y, st) in &segments {
            let overlap = y.min(b).saturating_sub(x.max(a));
            match st {
                Some(true) => up += overlap,
                Some(false) => down += overlap,
                None => {}
            }
        }
        let class = if down > 0 {
            "down"
        } else if up > 0 {
            "up"
        } else {
            "unknown"
        };
        (i, a, b, class, up, down)
    });
    let (mut up_total, mut down_total) = (0, 0);
    let beats: Vec<_> = beats
        .inspect(|&(_, _, _, _, up, down)| {
            up_total += up;
            down_total += down;
        })
        .collect();
    // Small markup (a page may hold hundreds of strips): sizes in the
    // style sheet, a hover text only for the beats with an outage.
    html! {
        svg.strip viewBox=(format!("0 0 {} 10", BEATS * 3)) preserveAspectRatio="none" role="img" aria-label="availability, last 24 hours" {
            title { "last 24 h: up " (span(up_total)) ", down " (span(down_total)) }
            @for (i, a, b, class, up, down) in beats {
                @if down > 0 {
                    rect class=(class) x=(i * 3) {
                        title { (clock_of(a)) "–" (clock_of(b)) " UTC: up " (span(up)) ", down " (span(down)) }
                    }
                } @else {
                    rect class=(class) x=(i * 3) {}
                }
            }
        }
    }
}

/// `HH:MM` of epoch milliseconds, UTC.
fn clock_of(ms: u64) -> String {
    let minutes = ms / 60_000 % 1440;
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn row(f: &Facts, d: &DeviceStatus) -> Markup {
    let v = &d.view;
    let verdict = v.verdict;
    html! {
        tr data-name=(v.name) data-state=(verdict.as_str()) {
            td { span class=(format!("pill st-{}", verdict.as_str())) { (state_label(verdict)) } }
            td { b { (v.name) } }
            td.mute { (if v.agent { "agent" } else { "device" }) }
            td {
                @match v.last_contact_ms {
                    Some(t) => (ago(f.now_ms, t)),
                    None => span.mute { "never since start" },
                }
            }
            td.opt { (v.timeout_s) " s" }
            td {
                @if verdict == Verdict::Expired {
                    span.late data-until=(v.deadline_ms) title=(rfc3339(v.deadline_ms)) {
                        "overdue " (span(f.now_ms.saturating_sub(v.deadline_ms)))
                    }
                } @else {
                    span data-until=(v.deadline_ms) title=(rfc3339(v.deadline_ms)) {
                        "in " (span(v.deadline_ms.saturating_sub(f.now_ms)))
                    }
                }
            }
            td.opt { (v.hello_count) }
            td.opt {
                @if v.agent {
                    @match d.pid { Some(pid) => { "pid " (pid) }, None => span.late { "not running" } }
                    " · " (d.launches) @if d.launches == 1 { " launch" } @else { " launches" }
                    @if let Some(t) = v.last_launch_ms { " · last " (ago(f.now_ms, t)) }
                }
            }
            td { (strip(f.now_ms, f.strips.get(&v.name))) }
        }
    }
}

fn event_item(now_ms: u64, e: &Event) -> Markup {
    html! {
        li {
            span.mute { (ago(now_ms, e.at_ms)) }
            span class=(format!("kind k-{}", e.kind.as_str())) { (e.kind.as_str().replace('_', " ")) }
            @if !e.subject.is_empty() { b { (e.subject) } }
            @if !e.detail.is_empty() { span.mute { (e.detail) } }
        }
    }
}

/// The whole page.
pub fn render(f: &Facts) -> String {
    let mut devices: Vec<&DeviceStatus> = f.devices.iter().collect();
    devices.sort_by(|a, b| {
        (rank(a.view.verdict), &a.view.name).cmp(&(rank(b.view.verdict), &b.view.name))
    });
    let count = |v: Verdict| f.devices.iter().filter(|d| d.view.verdict == v).count();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "iotmonitor" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                div #stale { "The daemon does not answer: this page is not being updated." }
                div #app {
                    header {
                        h1 { "iotmonitor" }
                        div.facts {
                            span { "version " b { (crate::VERSION) } }
                            span { "up " b { (span(f.uptime_s * 1000)) } }
                            span #broker {
                                "broker " (f.broker.url) " "
                                @if f.broker.connected { b { "connected" } } @else { b.late { "disconnected" } }
                                @if let Some(t) = f.broker.since_ms { " since " (ago(f.now_ms, t)) }
                            }
                            span { "states written " b { (f.states_stored) } }
                            span { "database " b { (f.database.path) } }
                            span #store {
                                "store "
                                @if f.database.healthy { b { "healthy" } } @else {
                                    b.late { "failing" }
                                    @if let Some(e) = &f.database.last_error { " (" (e) ")" }
                                    " · " (f.database.pending) " states kept in memory"
                                }
                            }
                            @if let Some(v) = &f.failover {
                                span #failover {
                                    "failover: this instance " b { (v.id) } " is "
                                    b class=(if v.role == Role::Active { "" } else { "mute" }) { (status::role_name(v.role)) }
                                    " · leader " b { (v.leader.as_deref().unwrap_or("none")) }
                                    @for (id, p) in &v.peers {
                                        " · " (id) " " (p.presence) " (priority " (p.priority) ")"
                                    }
                                    @if let Some(t) = v.last_takeover_ms { " · last takeover " (ago(f.now_ms, t)) }
                                }
                            }
                            @if !f.broker.refused.is_empty() {
                                span.late { "subscriptions refused: " (f.broker.refused.join(", ")) }
                            }
                        }
                    }
                    main {
                        div.summary {
                            span { b { (count(Verdict::Expired)) } " expired" }
                            span { b { (count(Verdict::Offline) + count(Verdict::Unknown)) } " not heard" }
                            span { b { (count(Verdict::Online)) } " online" }
                        }
                        h2 { "Devices and agents" }
                        div.wrap {
                            table #devices {
                                thead { tr {
                                    th { "state" } th { "name" } th { "kind" } th { "last seen" }
                                    th.opt { "timeout" } th { "deadline" } th.opt { "hellos" } th.opt { "agent" }
                                    th { "last 24 h" }
                                } }
                                tbody {
                                    @for d in &devices { (row(f, d)) }
                                }
                            }
                        }
                        h2 { "Last events" }
                        ol.events #events {
                            @for e in &f.events { (event_item(f.now_ms, e)) }
                            @if f.events.is_empty() { li.mute { "nothing happened yet" } }
                        }
                    }
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    markup.into_string()
}

/// A device's strip from its events (oldest first) and the last event
/// before the window.
pub fn strip_of<'a>(before: Option<&Event>, events: impl IntoIterator<Item = &'a Event>) -> Strip {
    Strip {
        initial: before.and_then(|e| e.kind.availability()),
        changes: events
            .into_iter()
            .filter_map(|e| e.kind.availability().map(|up| (e.at_ms, up)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use crate::monitor::DeviceView;

    const NOW: u64 = 1_700_000_000_000;

    fn dev(name: &str, verdict: Verdict, agent: bool) -> DeviceStatus {
        DeviceStatus {
            view: DeviceView {
                name: name.into(),
                agent,
                verdict,
                timeout_s: 30,
                last_contact_ms: (verdict == Verdict::Online).then_some(NOW - 12_000),
                deadline_ms: NOW + 18_000,
                hello_count: 1,
                expirations: 0,
                verdict_since_ms: NOW - 60_000,
                last_launch_ms: agent.then_some(NOW - 300_000),
            },
            pid: agent.then_some(4242),
            launches: 2,
            relaunches: 1,
        }
    }

    #[test]
    fn expired_rows_come_first_and_names_are_escaped() {
        let f = Facts {
            now_ms: NOW,
            devices: vec![
                dev("a-online", Verdict::Online, false),
                dev("<b>", Verdict::Expired, false),
                dev("c-new", Verdict::Unknown, false),
                dev("led", Verdict::Online, true),
            ],
            ..Default::default()
        };
        let page = render(&f);
        let pos = |s: &str| page.find(s).unwrap_or_else(|| panic!("{s} missing"));
        assert!(pos("data-name=\"&lt;b&gt;\"") < pos("data-name=\"c-new\""));
        assert!(pos("data-name=\"c-new\"") < pos("data-name=\"a-online\""));
        assert!(page.contains("<b>&lt;b&gt;</b>"), "names are escaped");
        assert!(page.contains("12 s ago"));
        assert!(page.contains("in 18 s"));
        assert!(page.contains("not yet heard"));
        assert!(page.contains("pid 4242"));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external asset"
        );
    }

    #[test]
    fn strip_is_green_and_red_by_time() {
        let e = |at: u64, kind| Event {
            at_ms: at,
            kind,
            subject: "d".into(),
            detail: String::new(),
        };
        let before = e(NOW - 30 * 3_600_000, EventKind::FirstHeard);
        let during = [
            e(NOW - 12 * 3_600_000, EventKind::Expired),
            e(NOW - 6 * 3_600_000, EventKind::Back),
            e(NOW - 5 * 3_600_000, EventKind::AgentLaunched),
        ];
        let s = strip_of(Some(&before), &during);
        assert_eq!(s.initial, Some(true));
        assert_eq!(s.changes.len(), 2);
        let svg = strip(NOW, Some(&s)).into_string();
        let beats: Vec<&str> = svg
            .split("<rect class=\"")
            .skip(1)
            .map(|r| r.split('"').next().unwrap())
            .collect();
        assert_eq!(beats.len(), 48);
        // Up for 12 h, down for 6 h, up again for the last 6 h.
        assert!(beats[..24].iter().all(|&b| b == "up"), "{beats:?}");
        assert!(beats[24..36].iter().all(|&b| b == "down"), "{beats:?}");
        assert!(beats[36..].iter().all(|&b| b == "up"), "{beats:?}");
        // A few seconds down are a red beat.
        let blip = Strip {
            initial: Some(true),
            changes: vec![(NOW - 10_000, false), (NOW - 6_000, true)],
        };
        let svg = strip(NOW, Some(&blip)).into_string();
        assert!(svg.contains("class=\"down\""));
        assert!(svg.contains("down 4 s"), "{svg}");
        let unknown = strip(NOW, None).into_string();
        assert_eq!(unknown.matches("class=\"unknown\"").count(), 48);
    }

    #[test]
    fn spans_read_like_people_write_them() {
        assert_eq!(span(12_000), "12 s");
        assert_eq!(span(5 * 60_000), "5 min");
        assert_eq!(span(3 * 3_600_000), "3 h");
        assert_eq!(span(2 * 86_400_000), "2 d");
    }
}
