//! Order intake, decoupled from the saga leader: every order node accepts an order into its own
//! partition of the intake log (store domain `order-intake`, unfenced, token 0) with one quorum
//! write, and answers 202 once a write quorum has it. Only the node a partition is named after
//! appends to it, one append at a time, so within a partition a record is written only after
//! the one before it was acknowledged or given up on. The order leader consumes every partition
//! ([`super::consume`]).
//!
//! Store layout (domain `order-intake`):
//! - `p/<node>/log/<incarnation>.<offset>` → [`IntakeRecord`]; keys sort by position.
//! - `p/<node>/end` → [`PartitionEnd`], written with every record.
//! - `claim/<order_id>` → the same record, to find an order by its id before it is consumed.
//!
//! The three are written in one write, atomic per replica. A partition's **incarnation** is
//! the process's start in Unix milliseconds (above any incarnation the partition had before),
//! so a restarted node never reuses a position its earlier process may have written but not
//! had acknowledged: its records sort after every earlier one.

use serde::{Deserialize, Serialize};

use super::model::{Item, OrderRecord, OrderRequest, Progress, Status};
use crate::http::ApiError;
use crate::quorum::{Quorum, WriteOutcome};
use crate::roles::common::now_ms;
use crate::roles::leader::{store_unavailable, write_error};

/// The store domain of the intake log.
pub const DOMAIN: &str = "order-intake";
/// Attempts of an append whose outcome is unknown.
const APPEND_ATTEMPTS: u32 = 3;

/// A position in one partition: incarnation first, then offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    /// The appending process's incarnation (its start, Unix ms).
    pub incarnation: u64,
    /// Offset within the incarnation, from 0.
    pub offset: u64,
}

/// The next position of a partition: `p/<node>/end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionEnd {
    /// The incarnation now appending.
    pub incarnation: u64,
    /// Records it has appended (its next offset).
    pub next: u64,
}

/// One accepted order as the intake log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeRecord {
    /// Derived from the idempotency key.
    pub order_id: String,
    /// The client's key.
    pub idempotency_key: String,
    /// The node that accepted it (its partition).
    pub node: String,
    /// Where in the partition.
    pub pos: Pos,
    /// Customer.
    pub customer: String,
    /// Items.
    pub items: Vec<Item>,
    /// Cents.
    pub amount: i64,
    /// When it was accepted.
    pub accepted_unix_ms: u64,
}

impl IntakeRecord {
    /// Same key and order as `req`?
    pub fn same_request(&self, key: &str, req: &OrderRequest) -> bool {
        self.idempotency_key == key
            && self.customer == req.customer
            && self.items == req.items
            && self.amount == req.amount
    }

    /// The order this record makes, before its saga starts.
    pub fn to_order(&self) -> OrderRecord {
        OrderRecord {
            order_id: self.order_id.clone(),
            idempotency_key: self.idempotency_key.clone(),
            offset: self.pos.offset,
            partition: self.node.clone(),
            status: Status::Accepted,
            reason: None,
            customer: self.customer.clone(),
            items: self.items.clone(),
            amount: self.amount,
            steps: Vec::new(),
            progress: Progress::default(),
            accepted_unix_ms: self.accepted_unix_ms,
        }
    }
}

/// Whether `order` is the order `rec` asks for (same key, customer, items and amount).
pub fn same_order(order: &OrderRecord, rec: &IntakeRecord) -> bool {
    order.idempotency_key == rec.idempotency_key
        && order.customer == rec.customer
        && order.items == rec.items
        && order.amount == rec.amount
}

/// Keys of partition `node`'s records start with this.
pub fn log_prefix(node: &str) -> String {
    format!("p/{node}/log/")
}

/// The key of the record at `pos` in partition `node` (sorts by position).
pub fn log_key(node: &str, pos: Pos) -> String {
    format!("p/{node}/log/{:013}.{:012}", pos.incarnation, pos.offset)
}

/// The key of partition `node`'s end.
pub fn end_key(node: &str) -> String {
    format!("p/{node}/end")
}

/// The key of the claim on `order_id`.
pub fn claim_key(order_id: &str) -> String {
    format!("claim/{order_id}")
}

/// Records of partition (`end`) after the position `taken` (the last one consumed): what the
/// consumer has not taken in yet, as far as these two values tell. Records an earlier
/// incarnation left after `taken` are not counted.
pub fn unconsumed(end: Option<PartitionEnd>, taken: Option<Pos>) -> u64 {
    match (end, taken) {
        (None, _) => 0,
        (Some(e), None) => e.next,
        (Some(e), Some(t)) if e.incarnation == t.incarnation => {
            e.next.saturating_sub(t.offset.saturating_add(1))
        }
        (Some(e), Some(t)) if e.incarnation > t.incarnation => e.next,
        (Some(_), Some(_)) => 0,
    }
}

/// The position that must follow `prev` in a partition for `pos` to be next: the next offset
/// of the same incarnation, or offset 0 of a newer one (a restarted appender starts its own
/// incarnation at 0). `pos` follows `prev` when it is that position; otherwise that is the
/// position missing before it.
fn expected(prev: Option<Pos>, pos: Pos) -> Pos {
    match prev {
        Some(p) if p.incarnation == pos.incarnation => Pos {
            incarnation: p.incarnation,
            offset: p.offset.saturating_add(1),
        },
        _ => Pos {
            incarnation: pos.incarnation,
            offset: 0,
        },
    }
}

/// How many of `positions` (in key order, after `taken`) the consumer may take in: up to the
/// first gap, a missing position before one that is there. A scan merges replicas read at
/// slightly different moments, and a replica may apply an append after the one that followed
/// it (the slow request of record 62 arrives after record 63's), so a gap is usually a record
/// acknowledged by a write quorum that this scan's replies just missed; taking the record past
/// it would move the taken position over an acknowledged order for good. A gap is skipped only
/// once `hole_is_old(missing)` says it outlived any in-flight write: an append that failed
/// (its position is never handed out again) and was never acknowledged.
pub fn takeable(taken: Option<Pos>, positions: &[Pos], hole_is_old: impl Fn(Pos) -> bool) -> usize {
    let mut prev = taken;
    for (i, &pos) in positions.iter().enumerate() {
        if prev.is_some_and(|p| p >= pos) {
            return i; // not in position order: a record whose key and position disagree
        }
        let missing = expected(prev, pos);
        if missing != pos && !hole_is_old(missing) {
            return i;
        }
        prev = Some(pos);
    }
    positions.len()
}

/// This node's partition: the only writer of its records.
pub struct Partition {
    node: String,
    quorum: Quorum,
    /// Incarnation (chosen at the first append) and next offset; the lock serializes appends.
    state: tokio::sync::Mutex<Option<PartitionEnd>>,
}

impl Partition {
    /// The partition of `node`, written through `quorum` (domain [`DOMAIN`]).
    pub fn new(node: String, quorum: Quorum) -> Partition {
        assert_eq!(quorum.domain(), DOMAIN, "the intake log's quorum client");
        Partition {
            node,
            quorum,
            state: tokio::sync::Mutex::new(None),
        }
    }

    /// The intake quorum client.
    pub fn quorum(&self) -> &Quorum {
        &self.quorum
    }

    /// The incarnation of a fresh process: its start, above the one the store last saw.
    async fn incarnation(&self) -> Result<u64, ApiError> {
        let stored: Option<PartitionEnd> = self
            .quorum
            .read_value(&end_key(&self.node))
            .await
            .map_err(store_unavailable)?;
        let now = now_ms();
        Ok(stored.map_or(now, |s| now.max(s.incarnation.saturating_add(1))))
    }

    /// Appends the record `build` makes for the next position and returns it once a write
    /// quorum has it. A position is never handed out twice, also when its write failed.
    pub async fn append(
        &self,
        build: impl FnOnce(&str, Pos) -> IntakeRecord,
    ) -> Result<IntakeRecord, ApiError> {
        let mut state = self.state.lock().await;
        let end = match *state {
            Some(e) => e,
            None => {
                let e = PartitionEnd {
                    incarnation: self.incarnation().await?,
                    next: 0,
                };
                tracing::info!(
                    node = %self.node,
                    incarnation = e.incarnation,
                    "intake partition opened"
                );
                e
            }
        };
        let pos = Pos {
            incarnation: end.incarnation,
            offset: end.next,
        };
        let next = PartitionEnd {
            incarnation: end.incarnation,
            next: end.next.checked_add(1).expect("intake offsets never wrap"),
        };
        *state = Some(next);
        let rec = build(&self.node, pos);
        let value = serde_json::to_value(&rec).unwrap_or_default();
        let entries = vec![
            (log_key(&self.node, pos), value.clone()),
            (
                end_key(&self.node),
                serde_json::to_value(next).unwrap_or_default(),
            ),
            (claim_key(&rec.order_id), value),
        ];
        let mut outcome = WriteOutcome::Unknown {
            fenced_by: None,
            reason: "not attempted".into(),
        };
        for _ in 0..APPEND_ATTEMPTS {
            outcome = self.quorum.write(0, entries.clone()).await;
            if !matches!(outcome, WriteOutcome::Unknown { .. }) {
                break;
            }
        }
        drop(state);
        match outcome {
            WriteOutcome::Ok(_) => Ok(rec),
            other => Err(write_error(&other, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves record keys sort by position, across incarnations too, and that a partition's
    /// prefix does not match another node's whose name it begins.
    #[test]
    fn keys_sort_by_position() {
        let p = |incarnation, offset| Pos {
            incarnation,
            offset,
        };
        let keys = [
            log_key("n1", p(1_700_000_000_000, 9)),
            log_key("n1", p(1_700_000_000_000, 10)),
            log_key("n1", p(1_700_000_000_001, 0)),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert!(keys[0].starts_with(&log_prefix("n1")));
        assert!(!log_key("n10", p(1, 0)).starts_with(&log_prefix("n1")));
    }

    /// Proves the consumer takes records up to the first gap in a partition (a missing offset
    /// within an incarnation, or a newer incarnation not starting at 0) and past it only once
    /// the hole is old; a partition read from its start must begin at offset 0.
    #[test]
    fn takeable_stops_at_a_fresh_gap() {
        let p = |incarnation, offset| Pos {
            incarnation,
            offset,
        };
        let young = |_| false;
        let old = |_| true;
        let run = [p(5, 3), p(5, 4), p(5, 6), p(5, 7)];
        assert_eq!(takeable(Some(p(5, 2)), &run, young), 2);
        assert_eq!(takeable(Some(p(5, 2)), &run, old), 4);
        assert_eq!(takeable(Some(p(5, 1)), &run, young), 0, "offset 2 missing");
        let missing = std::cell::Cell::new(None);
        takeable(Some(p(5, 2)), &run, |m| {
            missing.set(Some(m));
            false
        });
        assert_eq!(missing.get(), Some(p(5, 5)));
        assert_eq!(takeable(Some(p(5, 9)), &[p(6, 0), p(6, 1)], young), 2);
        assert_eq!(takeable(Some(p(5, 9)), &[p(6, 1)], young), 0);
        assert_eq!(takeable(None, &[p(5, 0), p(5, 1)], young), 2);
        assert_eq!(takeable(None, &[p(5, 1)], young), 0);
        assert_eq!(takeable(None, &[], young), 0);
    }

    /// Proves the unconsumed count: within one incarnation the records after the taken
    /// position, all of a newer incarnation, none when nothing was appended.
    #[test]
    fn unconsumed_counts_records_after_the_taken_position() {
        let end = |incarnation, next| Some(PartitionEnd { incarnation, next });
        let at = |incarnation, offset| {
            Some(Pos {
                incarnation,
                offset,
            })
        };
        assert_eq!(unconsumed(None, None), 0);
        assert_eq!(unconsumed(end(5, 3), None), 3);
        assert_eq!(unconsumed(end(5, 3), at(5, 2)), 0);
        assert_eq!(unconsumed(end(5, 10), at(5, 2)), 7);
        assert_eq!(unconsumed(end(6, 4), at(5, 2)), 4);
        assert_eq!(unconsumed(end(5, 4), at(6, 0)), 0);
    }
}
