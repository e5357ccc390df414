//! Routing of incoming topics to devices: which devices a topic refreshes
//! (watch filters), whether it is a state to store (state filters), whose
//! helloTopic it is, and the broker subscriptions that cover all of them.

use std::collections::HashMap;

use crate::config::DeviceConfig;
use crate::filter::{minimal_cover, Filter, TopicIndex};

/// Device positions are `u32` indexes into the daemon's device list.
pub struct Routes {
    watch: TopicIndex<u32>,
    state: TopicIndex<u32>,
    hello: HashMap<String, Vec<u32>>,
    subscriptions: Vec<String>,
}

impl Routes {
    pub fn build<'a>(devices: impl IntoIterator<Item = &'a DeviceConfig>) -> Routes {
        let mut watch = TopicIndex::new();
        let mut state = TopicIndex::new();
        let mut hello: HashMap<String, Vec<u32>> = HashMap::new();
        let mut all: Vec<Filter> = Vec::new();
        for (i, d) in devices.into_iter().enumerate() {
            let i = i as u32;
            for f in &d.watch_topics {
                watch.insert(f, i);
                all.push(f.clone());
            }
            for f in &d.state_topics {
                state.insert(f, i);
                all.push(f.clone());
            }
            if let Some(h) = &d.hello_topic {
                hello.entry(h.clone()).or_default().push(i);
                all.push(Filter::exact(h));
            }
        }
        watch.shrink_to_fit();
        state.shrink_to_fit();
        let subscriptions = minimal_cover(&all)
            .into_iter()
            .map(|f| f.as_str().to_string())
            .collect();
        Routes {
            watch,
            state,
            hello,
            subscriptions,
        }
    }

    /// Devices whose watch filters match `topic` (a device may be reported
    /// once per matching filter).
    pub fn watchers(&self, topic: &str, f: impl FnMut(&u32)) {
        self.watch.for_each_match(topic, f)
    }

    /// Is `topic` a state of some configured device?
    pub fn is_state(&self, topic: &str) -> bool {
        self.state.matches_any(topic)
    }

    /// Devices whose helloTopic is `topic`.
    pub fn hello(&self, topic: &str) -> &[u32] {
        self.hello.get(topic).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The filters to subscribe to: the union of everything configured,
    /// without filters covered by others (so each message comes once).
    pub fn subscriptions(&self) -> &[String] {
        &self.subscriptions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, watch: &[&str], state: &[&str], hello: Option<&str>) -> DeviceConfig {
        DeviceConfig {
            name: name.into(),
            watch_timeout: 30,
            hello_topic: hello.map(String::from),
            watch_topics: watch.iter().map(|f| Filter::parse(f).unwrap()).collect(),
            state_topics: state.iter().map(|f| Filter::parse(f).unwrap()).collect(),
            exec: None,
            restart_on_expire: false,
        }
    }

    #[test]
    fn routes_topics_to_devices() {
        let devs = [
            device("a", &["home/a/#"], &["home/a/state/#"], Some("home/a")),
            device("b", &["home/b/sensors"], &[], Some("home/b")),
        ];
        let r = Routes::build(&devs);
        let mut got = Vec::new();
        r.watchers("home/a/x", |&i| got.push(i));
        r.watchers("home/b/sensors/t", |&i| got.push(i));
        r.watchers("home/bb/sensors", |&i| got.push(i));
        assert_eq!(got, [0, 1]);
        assert!(r.is_state("home/a/state/led"));
        assert!(!r.is_state("home/a/other"));
        assert_eq!(r.hello("home/b"), &[1]);
        assert!(r.hello("home/b/x").is_empty());
        let mut subs = r.subscriptions().to_vec();
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
        let r = Routes::build(&devs);
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
            r.hello(t);
        }
    }
}
