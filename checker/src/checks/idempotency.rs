//! The idempotency check: each idempotency key produced at most one effect record, however often
//! it was presented.
//!
//! Physical calls per key are `replays + 1` summed over its records (a service counts a repeat
//! of a key that found the stored result as a replay). Client orders are covered too: the
//! history shows how often each `place-order` key was sent, the final state how many orders it
//! made. A key with more than one record is a violation; keys presented more than once that
//! made exactly one record are the evidence that the protection worked.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use crate::final_state::FinalState;
use crate::history::{f, OpType};
use crate::rundir::History;
use crate::verdict::{CheckResult, Validity};

/// How many keys are listed per table; counts always cover all of them.
pub const MAX_LISTED_KEYS: usize = 500;

/// One key's calls and records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyUse {
    /// Which ledger: `orders`, `payments`, `shipments`, `reservations`.
    pub ledger: &'static str,
    /// The idempotency key.
    pub key: String,
    /// Physical calls: replays + 1 per record (or invocations, for client orders).
    pub calls: u64,
    /// Effect records it produced.
    pub records: usize,
    /// Orders the records belong to.
    pub order_ids: Vec<String>,
}

#[derive(Default)]
struct Tally {
    calls: u64,
    records: usize,
    order_ids: Vec<String>,
}

impl Tally {
    fn add(&mut self, order_id: &str, replays: u64) {
        self.calls += replays + 1;
        self.records += 1;
        if !self.order_ids.iter().any(|o| o == order_id) {
            self.order_ids.push(order_id.to_owned());
        }
    }
}

fn ledger_uses(ledger: &'static str, tallies: BTreeMap<String, Tally>) -> Vec<KeyUse> {
    tallies
        .into_iter()
        .map(|(key, t)| KeyUse {
            ledger,
            key,
            calls: t.calls,
            records: t.records,
            order_ids: t.order_ids,
        })
        .collect()
}

/// Every key of every ledger with its calls and records.
pub fn key_uses(history: &History, state: &FinalState) -> Vec<KeyUse> {
    let mut out = Vec::new();
    let mut payments: BTreeMap<String, Tally> = BTreeMap::new();
    for p in &state.payments {
        payments
            .entry(p.key.clone())
            .or_default()
            .add(&p.order_id, p.replays);
    }
    out.extend(ledger_uses("payments", payments));
    let mut shipments: BTreeMap<String, Tally> = BTreeMap::new();
    for s in &state.shipments {
        shipments
            .entry(s.key.clone())
            .or_default()
            .add(&s.order_id, s.replays);
    }
    out.extend(ledger_uses("shipments", shipments));
    let mut reservations: BTreeMap<String, Tally> = BTreeMap::new();
    for r in &state.reservations {
        // A reservation is per (key, SKU): one key may reserve several SKUs of one order.
        reservations
            .entry(format!("{} [{}]", r.key, r.sku))
            .or_default()
            .add(&r.order_id, r.replays.unwrap_or(0));
    }
    out.extend(ledger_uses("reservations", reservations));
    out.extend(order_uses(history, state));
    out
}

/// Client keys: invocations of `place-order` per key against orders carrying that key.
fn order_uses(history: &History, state: &FinalState) -> Vec<KeyUse> {
    let mut orders: BTreeMap<String, Tally> = BTreeMap::new();
    for op in &history.ops {
        if op.f != f::PLACE_ORDER || op.op_type != OpType::Invoke {
            continue;
        }
        if let Some(key) = op.value.get("key").and_then(|k| k.as_str()) {
            orders.entry(key.to_owned()).or_default().calls += 1;
        }
    }
    for o in &state.orders {
        let t = orders.entry(o.idempotency_key.clone()).or_default();
        t.records += 1;
        t.order_ids.push(o.order_id.clone());
    }
    ledger_uses("orders", orders)
}

/// Runs the check.
pub fn check(history: &History, state: &FinalState) -> CheckResult {
    let uses = key_uses(history, state);
    let mut per_ledger: BTreeMap<&str, (usize, usize, usize, u64)> = BTreeMap::new();
    for u in &uses {
        let e = per_ledger.entry(u.ledger).or_default();
        e.0 += 1;
        e.1 += u.records;
        e.2 += usize::from(u.calls > 1);
        e.3 += u.calls;
    }
    let violations: Vec<&KeyUse> = uses.iter().filter(|u| u.records > 1).collect();
    let repeated: Vec<&KeyUse> = uses
        .iter()
        .filter(|u| u.calls > 1 && u.records <= 1)
        .collect();
    let validity = if !violations.is_empty() {
        Validity::Invalid
    } else if !state.read_errors.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let repeated_total = repeated.len();
    let summary = match validity {
        Validity::Invalid => format!(
            "{} keys produced more than one effect record (first: {} key {} made {} records)",
            violations.len(),
            violations[0].ledger,
            violations[0].key,
            violations[0].records
        ),
        Validity::Unknown => format!(
            "final state is partial ({} read errors); cannot count every record",
            state.read_errors.len()
        ),
        Validity::Valid => format!(
            "{} keys, each at most one record; {repeated_total} keys were presented more than once and each made one",
            uses.len()
        ),
    };
    let ledgers: Vec<serde_json::Value> = per_ledger
        .iter()
        .map(|(l, (keys, records, repeated, calls))| {
            json!({"ledger": l, "keys": keys, "records": records,
                   "physical_calls": calls, "keys_presented_more_than_once": repeated})
        })
        .collect();
    CheckResult {
        name: "idempotency".into(),
        validity,
        summary,
        details: json!({
            "ledgers": ledgers,
            "violations": violations.iter().take(MAX_LISTED_KEYS).collect::<Vec<_>>(),
            "violations_not_listed": violations.len().saturating_sub(MAX_LISTED_KEYS),
            "repeated_keys": repeated.iter().take(MAX_LISTED_KEYS).collect::<Vec<_>>(),
            "repeated_keys_not_listed": repeated_total.saturating_sub(MAX_LISTED_KEYS),
        }),
    }
}
