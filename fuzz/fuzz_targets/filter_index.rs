//! The topic-filter index against the naive reference matcher: the input
//! is split into filters and topics (lines; a line starting with '>' is a
//! topic), every topic must match exactly the filters the reference says.
#![no_main]

use iotmonitor::filter::{minimal_cover, Filter, TopicIndex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut filters = Vec::new();
    let mut topics = Vec::new();
    for line in text.split('\n') {
        match line.strip_prefix('>') {
            Some(t) => topics.push(t),
            None => {
                if let Ok(f) = Filter::parse(line) {
                    filters.push(f);
                }
            }
        }
    }
    let mut index = TopicIndex::new();
    for (i, f) in filters.iter().enumerate() {
        index.insert(f, i);
    }
    let cover = minimal_cover(&filters);
    for t in topics {
        let mut got = Vec::new();
        index.for_each_match(t, |&i| got.push(i));
        got.sort_unstable();
        got.dedup();
        let want: Vec<usize> = (0..filters.len()).filter(|&i| filters[i].matches(t)).collect();
        assert_eq!(got, want, "topic {t:?}");
        assert_eq!(
            !want.is_empty(),
            cover.iter().any(|f| f.matches(t)),
            "cover changes what {t:?} matches"
        );
    }
});
