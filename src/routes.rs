//! Routing of incoming topics to devices: which devices a topic refreshes
//! (watch filters), whether it is a state to store (state filters), whose
//! helloTopic it is, and the broker subscriptions that cover all of them.

use crate::config::{DeviceConfig, Specs};
use crate::filter::{minimal_cover, Filter, TopicIndex};

/// What a topic is to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// It matches one of the device's watch filters (once per filter).
    Watch,
    /// It matches one of its state filters (once per filter).
    State,
    /// It is its helloTopic.
    Hello,
}

/// One device a topic is routed to: a device position (a `u32` index into
/// the daemon's device list, below 2^30) and the kind in the two high bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit(u32);

const KIND_SHIFT: u32 = 30;
const INDEX_MASK: u32 = (1 << KIND_SHIFT) - 1;

impl Hit {
    fn new(kind: Kind, device: u32) -> Hit {
        let tag = match kind {
            Kind::Watch => 0,
            Kind::State => 1,
            Kind::Hello => 2,
        };
        Hit(tag << KIND_SHIFT | device)
    }

    pub fn kind(self) -> Kind {
        match self.0 >> KIND_SHIFT {
            0 => Kind::Watch,
            1 => Kind::State,
            _ => Kind::Hello,
        }
    }

    pub fn device(self) -> u32 {
        self.0 & INDEX_MASK
    }
}

/// One trie for the watch filters, the state filters and the helloTopics
/// of every device (a hello is an exact filter), so that one walk of a
/// topic finds everything it means.
pub struct Routes {
    index: TopicIndex<Hit>,
}

impl Routes {
    pub fn build(devices: &Specs) -> Routes {
        assert!(
            devices.count() <= INDEX_MASK as usize + 1,
            "too many devices"
        );
        let mut index = TopicIndex::new();
        for i in 0..devices.count() {
            let at = i as u32;
            for f in devices.watch(i) {
                index.insert(&Filter::normalised(f), Hit::new(Kind::Watch, at));
            }
            for f in devices.state(i) {
                index.insert(&Filter::normalised(f), Hit::new(Kind::State, at));
            }
            if let Some(h) = devices.hello(i) {
                index.insert(&Filter::normalised(h), Hit::new(Kind::Hello, at));
            }
        }
        index.shrink_to_fit();
        Routes { index }
    }

    /// Everything `topic` means, in one walk: `f` is called for each
    /// device and kind (see [`Kind`]).
    pub fn route(&self, topic: &str, mut f: impl FnMut(Hit)) {
        self.index.for_each_match(topic, |&h| f(h));
    }

    /// Devices whose watch filters match `topic` (a device may be reported
    /// once per matching filter).
    pub fn watchers(&self, topic: &str, mut f: impl FnMut(u32)) {
        self.route(topic, |h| {
            if h.kind() == Kind::Watch {
                f(h.device());
            }
        });
    }

    /// Is `topic` a state of some configured device?
    pub fn is_state(&self, topic: &str) -> bool {
        self.index.find(topic, &mut |h| h.kind() == Kind::State)
    }

    /// Is `topic` a state of some device and nobody's helloTopic (what the
    /// start-up replay republishes)?
    pub fn is_replayable(&self, topic: &str) -> bool {
        let (mut state, mut hello) = (false, false);
        self.route(topic, |h| match h.kind() {
            Kind::State => state = true,
            Kind::Hello => hello = true,
            Kind::Watch => {}
        });
        state && !hello
    }

    /// The filters to subscribe to for `devices`: the union of everything
    /// configured, without filters covered by others (so each message
    /// comes once).
    pub fn subscriptions<'a>(devices: impl IntoIterator<Item = &'a DeviceConfig>) -> Vec<String> {
        let mut all: Vec<Filter> = Vec::new();
        for d in devices {
            all.extend(d.watch_topics.iter().cloned());
            all.extend(d.state_topics.iter().cloned());
            all.extend(d.hello_topic.as_deref().map(Filter::normalised));
        }
        minimal_cover(&all)
            .into_iter()
            .map(|f| f.as_str().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, watch: &[&str], state: &[&str], hello: Option<&str>) -> DeviceConfig {
        DeviceConfig::for_test(name, 30, watch, state, hello)
    }

    #[test]
    fn routes_topics_to_devices() {
        let devs = [
            device("a", &["home/a/#"], &["home/a/state/#"], Some("home/a")),
            device("b", &["home/b/sensors"], &[], Some("home/b")),
        ];
        let r = Routes::build(&Specs::new(&devs));
        let mut got = Vec::new();
        r.watchers("home/a/x", |i| got.push(i));
        r.watchers("home/b/sensors/t", |i| got.push(i));
        r.watchers("home/bb/sensors", |i| got.push(i));
        assert_eq!(got, [0, 1]);
        assert!(r.is_state("home/a/state/led"));
        assert!(!r.is_state("home/a/other"));
        let hellos = |t: &str| {
            let mut h = Vec::new();
            r.route(t, |hit| {
                if hit.kind() == Kind::Hello {
                    h.push(hit.device());
                }
            });
            h
        };
        assert_eq!(hellos("home/b"), [1]);
        assert!(hellos("home/b/x").is_empty());
        // One walk: home/a/state/led is a state of a and a watched topic.
        let mut all = Vec::new();
        r.route("home/a/state/led", |h| all.push((h.kind(), h.device())));
        all.sort_by_key(|&(k, d)| (d, k as u8));
        assert_eq!(all, [(Kind::Watch, 0), (Kind::State, 0)]);
        assert!(r.is_replayable("home/a/state/led"));
        assert!(!r.is_replayable("home/a"));
        let mut subs = Routes::subscriptions(&devs);
        subs.sort();
        // home/a (hello) and home/a/state/# are covered by home/a/#.
        assert_eq!(subs, ["home/a/#", "home/b", "home/b/sensors/#"]);
    }

    #[test]
    fn hostile_topics_route_without_panic() {
        let devs = [device(
            "a",
            &["home/#"],
            &["home/+/state/#"],
            Some("home/a"),
        )];
        let r = Routes::build(&Specs::new(&devs));
        let deep = format!("home/{}", vec!["x"; 10_000].join("/"));
        let mut hits = 0;
        r.watchers(&deep, |_| hits += 1);
        assert_eq!(hits, 1);
        assert!(!r.is_state(&deep));
        assert!(r.is_state(&format!("home/x/state/{deep}")));
        for t in [
            "",
            "/",
            "//",
            "home/\u{0}",
            "\u{fffd}\u{fffd}",
            "+/#",
            "$SYS/x",
        ] {
            r.watchers(t, |_| {});
            r.is_state(t);
            r.is_replayable(t);
        }
    }
}
