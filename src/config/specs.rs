//! The devices' configuration as the monitor core keeps it while running:
//! every string of every device (name, helloTopic, watch and state filters,
//! exec) one after the other in one text, and per device where each part
//! ends. A [`DeviceConfig`] takes six heap blocks, about 190 bytes of
//! allocation overhead beyond its text (with 10,000 devices, more than the
//! text itself); here a device costs its text and 24 bytes.

use super::DeviceConfig;
use crate::filter::Filter;

/// Between the filters of one kind (no filter contains it).
const SEP: char = '\0';
/// `Ends::flags`: the device is an agent (it has an exec) ...
const AGENT: u8 = 1;
/// ... restarted when it expires.
const RESTART: u8 = 2;

/// Where a device's parts end in the text; the device starts where the
/// previous one ends.
#[derive(Debug, Clone, Copy)]
struct Ends {
    name: u32,
    hello: u32,
    watch: u32,
    state: u32,
    exec: u32,
    flags: u8,
}

/// The devices, in configuration order.
#[derive(Debug, Default)]
pub struct Specs {
    text: String,
    ends: Vec<Ends>,
}

impl Specs {
    pub fn new(devices: &[DeviceConfig]) -> Specs {
        let filters = |fs: &[Filter]| {
            fs.iter().map(|f| f.as_str().len()).sum::<usize>() + fs.len().saturating_sub(1)
        };
        let len: usize = devices
            .iter()
            .map(|d| {
                d.name.len()
                    + d.hello_topic.as_ref().map_or(0, String::len)
                    + filters(&d.watch_topics)
                    + filters(&d.state_topics)
                    + d.exec.as_ref().map_or(0, String::len)
            })
            .sum();
        assert!(u32::try_from(len).is_ok(), "configuration too large");
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(devices.len());
        let end = |text: &String| text.len() as u32;
        let join = |text: &mut String, fs: &[crate::filter::Filter]| {
            for (k, f) in fs.iter().enumerate() {
                if k > 0 {
                    text.push(SEP);
                }
                text.push_str(f.as_str());
            }
        };
        for d in devices {
            text.push_str(&d.name);
            let name = end(&text);
            text.push_str(d.hello_topic.as_deref().unwrap_or(""));
            let hello = end(&text);
            join(&mut text, &d.watch_topics);
            let watch = end(&text);
            join(&mut text, &d.state_topics);
            let state = end(&text);
            text.push_str(d.exec.as_deref().unwrap_or(""));
            let mut flags = 0;
            if d.exec.is_some() {
                flags |= AGENT;
            }
            if d.restart_on_expire {
                flags |= RESTART;
            }
            ends.push(Ends {
                name,
                hello,
                watch,
                state,
                exec: end(&text),
                flags,
            });
        }
        Specs { text, ends }
    }

    pub fn count(&self) -> usize {
        self.ends.len()
    }

    fn start(&self, i: usize) -> u32 {
        i.checked_sub(1).map_or(0, |p| self.ends[p].exec)
    }

    fn part(&self, from: u32, to: u32) -> &str {
        &self.text[from as usize..to as usize]
    }

    pub fn name(&self, i: usize) -> &str {
        self.part(self.start(i), self.ends[i].name)
    }

    /// Its helloTopic (never empty when configured).
    pub fn hello(&self, i: usize) -> Option<&str> {
        let e = &self.ends[i];
        Some(self.part(e.name, e.hello)).filter(|h| !h.is_empty())
    }

    /// Its watch filters, normalised (`Filter::as_str`).
    pub fn watch(&self, i: usize) -> impl Iterator<Item = &str> {
        let e = &self.ends[i];
        filters(self.part(e.hello, e.watch))
    }

    /// Its state filters, normalised (`Filter::as_str`).
    pub fn state(&self, i: usize) -> impl Iterator<Item = &str> {
        let e = &self.ends[i];
        filters(self.part(e.watch, e.state))
    }

    pub fn is_agent(&self, i: usize) -> bool {
        self.ends[i].flags & AGENT != 0
    }

    /// Whether device `i` here and device `j` of `other` have the same
    /// configuration but for their watch timeout (which the monitor keeps
    /// with their deadline).
    pub fn same(&self, i: usize, other: &Specs, j: usize) -> bool {
        let (a, b) = (&self.ends[i], &other.ends[j]);
        let (sa, sb) = (self.start(i), other.start(j));
        let relative = |e: &Ends, s: u32| [e.name - s, e.hello - s, e.watch - s, e.state - s];
        a.flags == b.flags
            && relative(a, sa) == relative(b, sb)
            && self.part(sa, a.exec) == other.part(sb, b.exec)
    }
}

fn filters(part: &str) -> impl Iterator<Item = &str> {
    (!part.is_empty())
        .then(|| part.split(SEP))
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, watch: &[&str], state: &[&str], hello: Option<&str>) -> DeviceConfig {
        DeviceConfig::for_test(name, 30, watch, state, hello)
    }

    #[test]
    fn keeps_every_part_of_every_device() {
        let agent = DeviceConfig {
            exec: Some("sleep 1".into()),
            restart_on_expire: true,
            ..device("x", &["x/up"], &[], None)
        };
        let devs = [
            device("a", &["a/1", "a/2/#"], &["s/+"], Some("a/hello")),
            device("b", &[], &[], None),
            agent,
        ];
        let s = Specs::new(&devs);
        assert_eq!(s.count(), 3);
        assert_eq!(s.name(0), "a");
        assert_eq!(s.hello(0), Some("a/hello"));
        assert_eq!(s.watch(0).collect::<Vec<_>>(), ["a/1/#", "a/2/#"]);
        assert_eq!(s.state(0).collect::<Vec<_>>(), ["s/+"]);
        assert!(!s.is_agent(0));
        assert_eq!(s.name(1), "b");
        assert_eq!(s.hello(1), None);
        assert_eq!(s.watch(1).count(), 0);
        assert_eq!(s.state(1).count(), 0);
        assert_eq!(s.name(2), "x");
        assert!(s.is_agent(2));
        assert_eq!(s.text.len(), s.text.capacity());
    }

    #[test]
    fn same_compares_everything_but_the_timeout() {
        let base = device("a", &["a/1"], &["a/s"], Some("a/h"));
        let variants = [
            DeviceConfig {
                watch_timeout: 99,
                ..base.clone()
            },
            device("a", &["a/1", "a/s"], &[], Some("a/h")),
            device("a", &["a/1"], &["a/s"], None),
            device("a", &["a/1"], &["a/s"], Some("a/hh")),
            DeviceConfig {
                exec: Some(String::new()),
                ..base.clone()
            },
            DeviceConfig {
                exec: Some("x".into()),
                restart_on_expire: true,
                ..base.clone()
            },
        ];
        let old = Specs::new(&[device("z", &[], &[], None), base.clone()]);
        let new = Specs::new(&variants);
        assert!(old.same(1, &new, 0), "only the timeout differs");
        for j in 1..variants.len() {
            assert!(!old.same(1, &new, j), "variant {j}");
        }
        assert!(old.same(1, &Specs::new(&[base]), 0));
    }
}
