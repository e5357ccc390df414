//! Topic lookups among many devices (`cargo bench --bench routes`): the
//! trie of the flood benchmark's devices (`home/d<i>/sensors/#` watched,
//! `home/d<i>/state/#` states, `home/d<i>` hello, inserted device by
//! device as the routes are), then the flood's topics in its order (device
//! p % N for pair p, a sensor topic then a state topic), so that successive
//! lookups share nothing in the processor's caches beyond the first
//! levels. Prints nanoseconds per lookup (the median of 7 passes of
//! 1,000,000 lookups) for each N: at 10,000 devices the trie (about 1.2
//! MB) no longer fits a core's second-level cache, and what a lookup costs
//! is mostly its cache misses. No broker, one thread: steadier than the
//! flood benchmark, though a busy machine still moves it (compare two
//! builds in turn, several times).
//!
//! Knobs: `ROUTES_DEVICES=1000,10000`.

use std::hint::black_box;
use std::time::Instant;

use iotmonitor::filter::{Filter, TopicIndex};

const LOOKUPS: usize = 1_000_000;
const PASSES: usize = 7;

fn index(n: usize) -> TopicIndex<u32> {
    let mut index = TopicIndex::new();
    for i in 0..n {
        let at = i as u32;
        for f in [
            format!("home/d{i}/sensors/#"),
            format!("home/d{i}/state/#"),
            format!("home/d{i}"),
        ] {
            index.insert(&Filter::normalised(&f), at);
        }
    }
    index.shrink_to_fit();
    index
}

fn topics(n: usize) -> Vec<String> {
    (0..LOOKUPS)
        .map(|j| {
            let d = (j / 2) % n;
            if j % 2 == 0 {
                format!("home/d{d}/sensors/t")
            } else {
                format!("home/d{d}/state/s{}", (j / 2 / n) % 4)
            }
        })
        .collect()
}

fn main() {
    let devices: Vec<usize> = std::env::var("ROUTES_DEVICES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|v| v.trim().parse().expect("ROUTES_DEVICES: numbers"))
        .collect();
    println!("| N devices | ns per lookup (median of {PASSES} passes of {LOOKUPS}) | range |");
    println!("|---|---|---|");
    for n in devices {
        let index = index(n);
        let topics = topics(n);
        let mut found = 0u64;
        let mut ns: Vec<f64> = (0..PASSES)
            .map(|_| {
                let start = Instant::now();
                for t in &topics {
                    index.for_each_match(black_box(t), |&d| found += u64::from(d));
                }
                start.elapsed().as_nanos() as f64 / LOOKUPS as f64
            })
            .collect();
        black_box(found);
        ns.sort_by(f64::total_cmp);
        println!(
            "| {n} | {:.1} | {:.1}–{:.1} |",
            ns[PASSES / 2],
            ns[0],
            ns[PASSES - 1]
        );
    }
}
