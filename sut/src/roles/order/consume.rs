//! The order leader consumes every intake partition ([`super::intake`]): it reads the
//! partitions' ends, scans each one past the last position it took, and turns every record into
//! the order's saga record `orders/<id>` (domain `order`, fenced) in one write together with
//! the partition's new taken position `meta/taken/<node>`. A record whose order already exists
//! (the same key accepted again, here or on another node) makes no second order: one key, one
//! order, whichever node accepted it how often.
//!
//! `consumer_lag_records`, on every order node: the records accepted into the partitions and
//! not yet taken in (from the stored ends and taken positions), as a Kafka consumer's lag is
//! the records past its committed offset. Sagas taken in and not ended are `sagas_open` (the
//! leader's own count): they grow with load and saga time, the lag only when nobody consumes.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::intake::{self, IntakeRecord, PartitionEnd, Pos};
use super::model::OrderRecord;
use super::{order_key, Orders, Term};
use crate::http::ApiError;
use crate::quorum::WriteOutcome;
use crate::roles::leader::{store_unavailable, write_error};

/// Records taken in by one write at most (each is one key, plus the taken position).
const TAKE_BATCH: usize = 32;

/// Where the leader keeps the last position it took from partition `node`.
pub fn taken_key(node: &str) -> String {
    format!("meta/taken/{node}")
}

impl Orders {
    /// Every partition's end, in the order of `self.partitions`.
    async fn ends(&self) -> Result<Vec<Option<PartitionEnd>>, ApiError> {
        let keys: Vec<String> = self.partitions.iter().map(|n| intake::end_key(n)).collect();
        let recs = self
            .intake
            .quorum()
            .read(&keys)
            .await
            .map_err(store_unavailable)?;
        Ok(recs
            .into_iter()
            .map(|r| r.and_then(|r| serde_json::from_value(r.value).ok()))
            .collect())
    }

    /// Every partition's stored taken position, in the order of `self.partitions`.
    pub(super) async fn stored_taken(&self) -> Result<Vec<Option<Pos>>, ApiError> {
        let keys: Vec<String> = self.partitions.iter().map(|n| taken_key(n)).collect();
        let recs = self.quorum.read(&keys).await.map_err(store_unavailable)?;
        Ok(recs
            .into_iter()
            .map(|r| r.and_then(|r| serde_json::from_value(r.value).ok()))
            .collect())
    }

    /// Records accepted but not taken in, as this node sees them (see the module docs).
    pub(super) async fn lag(&self) -> Result<u64, ApiError> {
        let (ends, taken) = futures::join!(self.ends(), self.stored_taken());
        Ok(ends?
            .into_iter()
            .zip(taken?)
            .map(|(e, t)| intake::unconsumed(e, t))
            .fold(0u64, u64::saturating_add))
    }

    /// Sagas this node took in as leader and has not ended (0 on a non-leader).
    pub(super) fn sagas_open(&self) -> usize {
        self.current_term().map_or(0, |t| t.open())
    }

    /// One round of consumption: takes in at most one batch per partition that has records
    /// past its taken position. Returns whether a partition had more than one batch.
    pub(super) async fn consume(&self, term: &std::sync::Arc<Term>) -> Result<bool, ApiError> {
        let ends = self.ends().await?;
        let mut more = false;
        for (node, end) in self.partitions.iter().zip(ends) {
            let taken = term.taken(node);
            if intake::unconsumed(end, taken) == 0 {
                continue;
            }
            more |= self.take_batch(term, node, taken).await?;
        }
        Ok(more)
    }

    /// Takes in the records of partition `node` after `taken`, one batch.
    async fn take_batch(
        &self,
        term: &std::sync::Arc<Term>,
        node: &str,
        taken: Option<Pos>,
    ) -> Result<bool, ApiError> {
        let after = taken.map(|p| intake::log_key(node, p));
        let (records, next) = self
            .intake
            .quorum()
            .scan(&intake::log_prefix(node), after.as_deref(), TAKE_BATCH)
            .await
            .map_err(store_unavailable)?;
        let mut batch: Vec<IntakeRecord> = Vec::new();
        for r in records {
            match serde_json::from_value::<IntakeRecord>(r.value) {
                Ok(rec) => batch.push(rec),
                Err(e) => {
                    tracing::warn!(key = %r.key, error = %e, "unreadable intake record skipped")
                }
            }
        }
        let positions: Vec<Pos> = batch.iter().map(|r| r.pos).collect();
        let n = intake::takeable(taken, &positions, |missing| term.hole_is_old(node, missing));
        let gap = n < batch.len();
        batch.truncate(n);
        let Some(last) = batch.last().map(|r| r.pos) else {
            return Ok(false);
        };
        let keys: Vec<String> = batch.iter().map(|r| order_key(&r.order_id)).collect();
        let existing = self.quorum.read(&keys).await.map_err(store_unavailable)?;
        let mut fresh: BTreeMap<String, OrderRecord> = BTreeMap::new();
        let mut known: HashSet<String> = HashSet::new();
        for (rec, found) in batch.iter().zip(existing) {
            let stored = found.and_then(|r| serde_json::from_value::<OrderRecord>(r.value).ok());
            match stored {
                Some(o) if intake::same_order(&o, rec) => {
                    if !o.is_terminal() {
                        known.insert(o.order_id);
                    }
                }
                Some(o) => conflict(rec, &o),
                None => match fresh.get(&rec.order_id) {
                    Some(o) if intake::same_order(o, rec) => {}
                    Some(o) => conflict(rec, o),
                    None => {
                        fresh.insert(rec.order_id.clone(), rec.to_order());
                    }
                },
            }
        }
        let mut entries: Vec<(String, serde_json::Value)> = fresh
            .values()
            .map(|o| {
                (
                    order_key(&o.order_id),
                    serde_json::to_value(o).unwrap_or_default(),
                )
            })
            .collect();
        entries.push((taken_key(node), json!(last)));
        let outcome = self.quorum.write(term.token, entries).await;
        if !matches!(outcome, WriteOutcome::Ok(_)) {
            return Err(write_error(&outcome, Some(self.leader.elector())));
        }
        term.set_taken(node, last);
        if gap {
            metrics::counter!("intake_gaps_waited_total").increment(1);
        }
        metrics::counter!("orders_consumed_total").increment(batch.len() as u64);
        for id in fresh.into_keys().chain(known) {
            self.enqueue(term, id);
        }
        Ok(next.is_some() && !gap)
    }

    /// The orders accepted into the partitions and not yet taken in, as orders in status
    /// `accepted` (for the admin read, so that an order the leader has not consumed is listed
    /// as not terminal instead of missing).
    pub(super) async fn unconsumed_orders(&self) -> Result<Vec<OrderRecord>, ApiError> {
        let taken = self.stored_taken().await?;
        let mut out: BTreeMap<String, OrderRecord> = BTreeMap::new();
        for (node, taken) in self.partitions.iter().zip(taken) {
            let after = taken.map(|p| intake::log_key(node, p));
            let records = self
                .intake
                .quorum()
                .scan_all_after(&intake::log_prefix(node), after.as_deref(), 500)
                .await
                .map_err(store_unavailable)?;
            for r in records {
                if let Ok(rec) = serde_json::from_value::<IntakeRecord>(r.value) {
                    out.entry(rec.order_id.clone())
                        .or_insert_with(|| rec.to_order());
                }
            }
        }
        if out.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = out.keys().map(|id| order_key(id)).collect();
        let mut missing = Vec::new();
        for chunk in keys.chunks(crate::store::wire::MAX_BATCH_ENTRIES) {
            let found = self.quorum.read(chunk).await.map_err(store_unavailable)?;
            for (key, f) in chunk.iter().zip(found) {
                if f.is_none() {
                    missing.push(key.trim_start_matches(super::ORDERS).to_owned());
                }
            }
        }
        Ok(missing
            .into_iter()
            .filter_map(|id| out.remove(&id))
            .collect())
    }
}

/// The same key under another payload, accepted concurrently on two nodes before either saw
/// the other: the order keeps the payload consumed first (see docs/pipeline.md).
fn conflict(rec: &IntakeRecord, order: &OrderRecord) {
    metrics::counter!("intake_conflicts_total").increment(1);
    tracing::warn!(
        order_id = %rec.order_id,
        key = %rec.idempotency_key,
        node = %rec.node,
        kept_from = %order.partition,
        "intake record conflicts with the order its key placed; kept the first"
    );
}
