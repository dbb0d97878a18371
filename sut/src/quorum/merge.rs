//! Merging the replicas' answers: the newest version of each key, what a stale answerer lacks
//! (read repair), and scan pages merged without skipping a key.

use crate::store::wire::{Record, ScanReply, Version};
use std::collections::BTreeMap;

/// The newest version of each of `n_keys` keys among the answers.
pub(super) fn newest_per_key(
    n_keys: usize,
    answers: &[(usize, Vec<Option<Record>>)],
) -> Vec<Option<Record>> {
    (0..n_keys)
        .map(|k| {
            answers
                .iter()
                .filter_map(|(_, recs)| recs[k].as_ref())
                .max_by_key(|r| r.version)
                .cloned()
        })
        .collect()
}

/// The newest records `have` lacks or holds in an older version.
pub(super) fn stale_records(newest: &[Option<Record>], have: &[Option<Record>]) -> Vec<Record> {
    newest
        .iter()
        .zip(have)
        .filter_map(|(n, h)| match (n, h) {
            (Some(n), Some(h)) if h.version < n.version => Some(n.clone()),
            (Some(n), None) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// Merges scan pages: every key up to the smallest last key of a full page (beyond it some
/// replica's keys were not seen), newest version per key, at most `limit` records.
pub(super) fn merge_pages(
    pages: &[(usize, ScanReply)],
    limit: usize,
) -> (Vec<Record>, Option<String>) {
    let cutoff: Option<&str> = pages.iter().filter_map(|(_, p)| p.next.as_deref()).min();
    let mut merged: BTreeMap<&str, &Record> = BTreeMap::new();
    for (_, page) in pages {
        for rec in &page.items {
            if cutoff.is_some_and(|c| rec.key.as_str() > c) {
                continue;
            }
            let slot = merged.entry(rec.key.as_str()).or_insert(rec);
            if slot.version < rec.version {
                *slot = rec;
            }
        }
    }
    let truncated = merged.len() > limit;
    let items: Vec<Record> = merged.into_values().take(limit).cloned().collect();
    let next = if truncated || cutoff.is_some() {
        items.last().map(|r| r.key.clone())
    } else {
        None
    };
    (items, next)
}

/// Records of `merged` that `page` lacks or holds in an older version.
pub(super) fn missing_from(merged: &[Record], page: &[Record]) -> Vec<Record> {
    let have: BTreeMap<&str, Version> = page.iter().map(|r| (r.key.as_str(), r.version)).collect();
    merged
        .iter()
        .filter(|r| have.get(r.key.as_str()).is_none_or(|v| *v < r.version))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, token: u64, seq: u64) -> Record {
        Record {
            key: key.into(),
            domain: "order".into(),
            token,
            version: Version { token, seq },
            value: serde_json::json!(seq),
        }
    }

    /// Proves versions order by token before sequence, so a newer leader's write beats a
    /// fenced-out leader's later-sequenced one.
    #[test]
    fn token_beats_sequence() {
        assert!(Version { token: 2, seq: 1 } > Version { token: 1, seq: 999 });
        let answers = vec![
            (0, vec![Some(rec("a", 1, 999))]),
            (1, vec![Some(rec("a", 2, 1))]),
        ];
        let newest = newest_per_key(1, &answers);
        assert_eq!(newest[0].as_ref().map(|r| r.token), Some(2));
        assert_eq!(stale_records(&newest, &answers[0].1).len(), 1);
        assert!(stale_records(&newest, &answers[1].1).is_empty());
    }

    /// Proves a scan merge never skips a key: it stops at the smallest last key of a full page.
    #[test]
    fn scan_merge_stops_at_the_shortest_full_page() {
        let full = ScanReply {
            items: vec![rec("a", 1, 1), rec("b", 1, 1)],
            next: Some("b".into()),
            current_token: 1,
        };
        let other = ScanReply {
            items: vec![rec("a", 1, 2), rec("c", 1, 1)],
            next: None,
            current_token: 1,
        };
        let (items, next) = merge_pages(&[(0, full), (1, other)], 2);
        let keys: Vec<&str> = items.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(items[0].version.seq, 2, "newest version of a");
        assert_eq!(next.as_deref(), Some("b"), "c comes on the next page");
        let m = missing_from(&items, &[rec("a", 1, 1)]);
        assert_eq!(m.len(), 2, "a is stale and b is missing");
    }
}
