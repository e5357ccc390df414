//! The filters the link subscribes to, and what changes when a reload
//! replaces them: kept sorted in one string (about 4 bytes per filter
//! beyond its text: a hash set of `String`s took about 110), so that a
//! reload with n filters costs O(n log n) to sort and O(n) to compare (a
//! list compared with `contains` cost O(n²): about a second at 10,000
//! devices).

use std::cmp::Ordering;

/// Filters per SUBSCRIBE or UNSUBSCRIBE packet.
pub(crate) const CHUNK: usize = 500;

#[derive(Default)]
pub(crate) struct Subscriptions {
    /// The filters, sorted and distinct, one after the other ...
    text: String,
    /// ... each ending there.
    ends: Vec<u32>,
}

/// What a replacement changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Subscriptions {
    fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.text[a as usize..b as usize])
    }

    pub fn replace(&mut self, mut filters: Vec<String>) -> Change {
        filters.sort_unstable();
        filters.dedup();
        let mut change = Change::default();
        let mut old = self.iter().peekable();
        let mut new = filters.iter().peekable();
        loop {
            let order = match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(o), Some(n)) => (*o).cmp(n.as_str()),
            };
            match order {
                Ordering::Less => change.removed.extend(old.next().map(String::from)),
                Ordering::Greater => change.added.extend(new.next().cloned()),
                Ordering::Equal => {
                    old.next();
                    new.next();
                }
            }
        }
        drop(old);
        let mut text = String::with_capacity(filters.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(filters.len());
        for f in &filters {
            text.push_str(f);
            ends.push(text.len() as u32);
        }
        self.text = text;
        self.ends = ends;
        change
    }

    /// Every filter, in packets of `CHUNK`.
    pub fn all(&self) -> Vec<Vec<String>> {
        chunks(self.iter().map(String::from).collect())
    }
}

/// `filters` in packets of `CHUNK`.
pub(crate) fn chunks(filters: Vec<String>) -> Vec<Vec<String>> {
    let mut out = Vec::with_capacity(filters.len().div_ceil(CHUNK));
    let mut rest = filters.into_iter().peekable();
    while rest.peek().is_some() {
        out.push(rest.by_ref().take(CHUNK).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("home/dev{i}/#")).collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn a_reload_changes_only_what_differs() {
        let mut s = Subscriptions::default();
        let first = s.replace(names(0..3));
        assert_eq!(sorted(first.added), sorted(names(0..3)));
        assert!(first.removed.is_empty());
        let change = s.replace(names(1..4));
        assert_eq!(change.added, names(3..4));
        assert_eq!(change.removed, names(0..1));
        assert_eq!(s.replace(names(1..4)), Change::default());
    }

    #[test]
    fn ten_thousand_devices_with_a_few_changes() {
        // 100,000 filters: with the old list comparison this was 10^10
        // string comparisons; sorted, it is immediate.
        let mut s = Subscriptions::default();
        s.replace(names(0..100_000));
        let mut next = names(5..100_000);
        next.push("home/new/#".into());
        let change = s.replace(next);
        assert_eq!(change.added, ["home/new/#"]);
        assert_eq!(sorted(change.removed), sorted(names(0..5)));
        let all = s.all();
        assert_eq!(all.len(), 100_000_usize.div_ceil(CHUNK));
        assert!(all.iter().all(|c| c.len() <= CHUNK && !c.is_empty()));
        assert_eq!(all.iter().map(Vec::len).sum::<usize>(), 99_996);
    }

    #[test]
    fn chunking() {
        assert!(chunks(Vec::new()).is_empty());
        let c = chunks(names(0..CHUNK + 1));
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), [CHUNK, 1]);
        assert_eq!(c.concat(), names(0..CHUNK + 1));
    }
}
