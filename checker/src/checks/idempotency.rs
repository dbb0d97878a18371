//! The idempotency check: each idempotency key produced at most one effect record, however often
//! it was presented.
//!
//! Physical calls per key are `replays + 1` summed over its records (a service counts a repeat
//! of a key that found the stored result as a replay). Client orders are covered too: the
//! history shows how often each `place-order` key was sent, the final state how many orders it
//! made. A key with more than one record is a violation; keys presented more than once that
//! made exactly one record are the evidence that the protection worked.

use std::collections::BTreeMap;

use formats::effects::Ledger;
use formats::final_state::FinalState;
use formats::history::{values, OpType, F};
use serde::{Deserialize, Serialize};

use super::Params;
use crate::check::{Check, Verdict};
use crate::report::table::Table;
use crate::rundir::{History, RunData};
use crate::verdict::{CheckId, Validity};

/// How many keys are listed per table; counts always cover all of them.
pub const MAX_LISTED_KEYS: usize = 500;

/// One key's calls and records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyUse {
    /// Which ledger.
    pub ledger: Ledger,
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

fn ledger_uses(ledger: Ledger, tallies: BTreeMap<String, Tally>) -> Vec<KeyUse> {
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
    out.extend(ledger_uses(Ledger::Payments, payments));
    let mut shipments: BTreeMap<String, Tally> = BTreeMap::new();
    for s in &state.shipments {
        shipments
            .entry(s.key.clone())
            .or_default()
            .add(&s.order_id, s.replays);
    }
    out.extend(ledger_uses(Ledger::Shipments, shipments));
    let mut reservations: BTreeMap<String, Tally> = BTreeMap::new();
    for r in &state.reservations {
        // A reservation is per (key, SKU): one key may reserve several SKUs of one order.
        reservations
            .entry(format!("{} [{}]", r.key, r.sku))
            .or_default()
            .add(&r.order_id, r.replays.unwrap_or(0));
    }
    out.extend(ledger_uses(Ledger::Reservations, reservations));
    out.extend(order_uses(history, state));
    out
}

/// Client keys: invocations of `place-order` per key against orders carrying that key.
fn order_uses(history: &History, state: &FinalState) -> Vec<KeyUse> {
    let mut orders: BTreeMap<String, Tally> = BTreeMap::new();
    for op in &history.ops {
        if op.f != F::PlaceOrder || op.op_type != OpType::Invoke {
            continue;
        }
        if let Some(p) = op.payload::<values::PlaceOrder>() {
            orders.entry(p.key).or_default().calls += 1;
        }
    }
    for o in &state.orders {
        let t = orders.entry(o.idempotency_key.clone()).or_default();
        t.records += 1;
        t.order_ids.push(o.order_id.clone());
    }
    ledger_uses(Ledger::Orders, orders)
}

/// Keys, records and calls of one ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerStats {
    /// Which ledger.
    pub ledger: Ledger,
    /// Distinct keys.
    pub keys: usize,
    /// Effect records.
    pub records: usize,
    /// Physical calls.
    pub physical_calls: u64,
    /// Keys presented more than once.
    pub keys_presented_more_than_once: usize,
}

/// What the check counted and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// Per ledger.
    pub ledgers: Vec<LedgerStats>,
    /// Keys with more than one record, at most [`MAX_LISTED_KEYS`].
    pub violations: Vec<KeyUse>,
    /// Violations beyond those listed.
    pub violations_not_listed: usize,
    /// Keys presented more than once that made at most one record: the protection at work.
    pub repeated_keys: Vec<KeyUse>,
    /// Repeated keys beyond those listed.
    pub repeated_keys_not_listed: usize,
}

/// The check.
pub struct Idempotency;

fn key_table(title: &str, keys: &[KeyUse], not_listed: usize) -> Table {
    Table::of(
        title,
        &["ledger", "key", "physical calls", "records", "orders"],
        keys,
        not_listed,
        |u| {
            vec![
                u.ledger.to_string(),
                u.key.clone(),
                u.calls.to_string(),
                u.records.to_string(),
                u.order_ids.join(", "),
            ]
        },
    )
}

impl Check for Idempotency {
    const ID: CheckId = CheckId::Idempotency;
    type Details = Details;

    fn run(run: &RunData, _: &Params) -> Verdict<Details> {
        check(&run.history, &run.final_state)
    }

    fn tables(d: &Details) -> Vec<Table> {
        vec![
            key_table(
                "Keys with more than one effect record",
                &d.violations,
                d.violations_not_listed,
            ),
            Table::of(
                "Keys per ledger",
                &[
                    "ledger",
                    "keys",
                    "records",
                    "physical calls",
                    "keys presented more than once",
                ],
                &d.ledgers,
                0,
                |l| {
                    vec![
                        l.ledger.to_string(),
                        l.keys.to_string(),
                        l.records.to_string(),
                        l.physical_calls.to_string(),
                        l.keys_presented_more_than_once.to_string(),
                    ]
                },
            ),
            key_table(
                "Keys presented more than once (each made at most one record)",
                &d.repeated_keys,
                d.repeated_keys_not_listed,
            ),
        ]
    }
}

/// Runs the check.
pub fn check(history: &History, state: &FinalState) -> Verdict<Details> {
    let uses = key_uses(history, state);
    let mut per_ledger: BTreeMap<Ledger, LedgerStats> = BTreeMap::new();
    for u in &uses {
        let e = per_ledger.entry(u.ledger).or_insert(LedgerStats {
            ledger: u.ledger,
            keys: 0,
            records: 0,
            physical_calls: 0,
            keys_presented_more_than_once: 0,
        });
        e.keys += 1;
        e.records += u.records;
        e.keys_presented_more_than_once += usize::from(u.calls > 1);
        e.physical_calls += u.calls;
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
    let listed = |keys: &[&KeyUse]| -> Vec<KeyUse> {
        keys.iter()
            .take(MAX_LISTED_KEYS)
            .map(|u| (*u).clone())
            .collect()
    };
    Verdict::new(
        validity,
        summary,
        Details {
            ledgers: per_ledger.into_values().collect(),
            violations: listed(&violations),
            violations_not_listed: violations.len().saturating_sub(MAX_LISTED_KEYS),
            repeated_keys: listed(&repeated),
            repeated_keys_not_listed: repeated_total.saturating_sub(MAX_LISTED_KEYS),
        },
    )
}
