//! The filters the link subscribes to, and what changes when a reload
//! replaces them: hash sets, so a reload with n filters costs O(n) (a list
//! compared with `contains` cost O(n²): about a second at 10,000 devices).

use std::collections::HashSet;

/// Filters per SUBSCRIBE or UNSUBSCRIBE packet.
pub(crate) const CHUNK: usize = 500;

#[derive(Default)]
pub(crate) struct Subscriptions {
    filters: HashSet<String>,
}

/// What a replacement changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Subscriptions {
    pub fn replace(&mut self, filters: Vec<String>) -> Change {
        let new: HashSet<String> = filters.into_iter().collect();
        let added = new
            .iter()
            .filter(|f| !self.filters.contains(*f))
            .cloned()
            .collect();
        let old = std::mem::replace(&mut self.filters, new);
        let removed = old
            .into_iter()
            .filter(|f| !self.filters.contains(f))
            .collect();
        Change { added, removed }
    }

    /// Every filter, in packets of `CHUNK`.
    pub fn all(&self) -> Vec<Vec<String>> {
        chunks(self.filters.iter().cloned().collect())
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
        // string comparisons; with hash sets it is immediate.
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
