//! Property tests of the topic-filter semantics: the trie index against the
//! reference matcher, filter inclusion, and the subscription cover.

use iotmonitor::filter::{minimal_cover, Filter, TopicIndex};
use proptest::prelude::*;

fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("ab".to_string()),
        Just(String::new()),
        Just("$SYS".to_string()),
    ]
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..6)
        .prop_map(|l| l.join("/"))
        .prop_filter("MQTT topics are not empty", |t| !t.is_empty())
}

fn filter() -> impl Strategy<Value = Filter> {
    let lvl = prop_oneof![4 => level(), 2 => Just("+".to_string())];
    (prop::collection::vec(lvl, 1..5), any::<bool>()).prop_filter_map(
        "not empty",
        |(mut levels, hash)| {
            if hash {
                levels.push("#".into());
            }
            Filter::parse(&levels.join("/")).ok()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn index_matches_like_the_reference(filters in prop::collection::vec(filter(), 1..12),
                                        topics in prop::collection::vec(topic(), 1..12)) {
        let mut index = TopicIndex::new();
        for (i, f) in filters.iter().enumerate() {
            index.insert(f, i);
        }
        for t in &topics {
            let mut got = Vec::new();
            index.for_each_match(t, |&i| got.push(i));
            got.sort();
            got.dedup();
            let want: Vec<usize> = (0..filters.len()).filter(|&i| filters[i].matches(t)).collect();
            prop_assert_eq!(got, want, "topic {:?}", t);
        }
    }

    #[test]
    fn covers_means_inclusion(a in filter(), b in filter(), topics in prop::collection::vec(topic(), 1..20)) {
        if a.covers(&b) {
            for t in &topics {
                if b.matches(t) && !t.starts_with('$') {
                    prop_assert!(a.matches(t), "{} covers {} but not {:?}", a, b, t);
                }
            }
        }
    }

    #[test]
    fn cover_matches_the_same_topics(filters in prop::collection::vec(filter(), 1..12),
                                     topics in prop::collection::vec(topic(), 1..20)) {
        let cover = minimal_cover(&filters);
        prop_assert!(cover.len() <= filters.len());
        for t in &topics {
            let before = filters.iter().any(|f| f.matches(t));
            let after = cover.iter().any(|f| f.matches(t));
            prop_assert_eq!(before, after, "topic {:?}, cover {:?}", t, cover);
        }
        // Nothing in the cover is covered by another member.
        for (i, f) in cover.iter().enumerate() {
            for (j, g) in cover.iter().enumerate() {
                prop_assert!(i == j || !g.covers(f) || (f.as_str().starts_with('$') != g.as_str().starts_with('$')),
                    "{} covered by {}", f, g);
            }
        }
    }

    #[test]
    fn wildcard_free_filters_match_at_level_boundaries(t in topic(), suffix in topic()) {
        let f = Filter::parse(&t).unwrap();
        prop_assert!(f.matches(&t));
        let below = format!("{}/{}", t, suffix);
        prop_assert!(f.matches(&below));
        let glued = format!("{}{}", t, suffix.trim_start_matches('/'));
        if glued != t && !glued.starts_with(&format!("{t}/")) {
            prop_assert!(!f.matches(&glued), "{} matched {:?}", t, glued);
        }
    }
}
