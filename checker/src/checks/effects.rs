//! The effects check: the final state is a ledger, and every record in it is accounted for in
//! both directions. No double effect, no lost effect, no effect nobody asked for, no unit of
//! stock unaccounted, no stuck saga.
//!
//! - Per order, against the order itself ([`orders`]): `completed` is 1 charge of the order's
//!   amount, 0 refunds, 1 live shipment (if shipping runs) and every item's reservation
//!   committed; `rejected` is no charge and no refund at all and nothing held; `compensated`
//!   is 1 charge, 1 refund of it that names it, no live shipment, every item's reservation
//!   released. Every item of an order past the reserve step has exactly one reservation, of its
//!   SKU and quantity.
//! - Per record, against the orders ([`records`]): every payment, shipment, order reservation
//!   and order release belongs to an order the order service knows, under the key the pipeline
//!   derives for that order and step (`<order_id>:<step>`); stock-workload records are under
//!   keys a stock client used.
//! - Per SKU ([`stock`]): available is never negative, `initial - available` equals the units
//!   its live reservations hold (reserved or committed, orders' and stock clients' alike), and
//!   no release returns more than its reservation held.
//! - Against the clients ([`clients`]): every acknowledged order exists under its key with the
//!   items and amount the client placed, every order was placed by a client, one key made one
//!   order, and a terminal status a client read is the status at the end (it never changes).

mod clients;
mod orders;
mod records;
mod stock;

use std::collections::BTreeMap;

use formats::effects::EffectViolation as Violation;
use formats::final_state::{FinalState, OrderStatus};
use serde::{Deserialize, Serialize};

pub use self::stock::SkuLedger;
use super::Params;
use crate::check::{Check, Verdict};
use crate::report::table::Table;
use crate::rundir::{History, RunData};
use crate::verdict::{CheckId, Validity};

/// How many violations are listed in full; the counts always cover all of them.
pub const MAX_LISTED_VIOLATIONS: usize = 1000;

/// One violation with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What went wrong.
    pub kind: Violation,
    /// The order, where the violation is one order's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The SKU, where it is one SKU's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// The idempotency keys of the records involved.
    #[serde(default)]
    pub keys: Vec<String>,
    /// The amounts and quantities involved, by name (`order amount`, `charged`, `held`, ...).
    #[serde(default)]
    pub amounts: BTreeMap<String, i128>,
    /// What a person needs to see it: statuses, records, history indexes.
    pub evidence: String,
}

impl Finding {
    /// A finding of `kind` with its evidence text.
    pub fn new(kind: Violation, evidence: impl Into<String>) -> Finding {
        Finding {
            kind,
            order_id: None,
            sku: None,
            keys: Vec::new(),
            amounts: BTreeMap::new(),
            evidence: evidence.into(),
        }
    }

    /// Names the order.
    pub fn order(mut self, id: &str) -> Finding {
        self.order_id = Some(id.to_owned());
        self
    }

    /// Names the SKU.
    pub fn sku(mut self, sku: &str) -> Finding {
        self.sku = Some(sku.to_owned());
        self
    }

    /// Adds record keys.
    pub fn keys<'a>(mut self, keys: impl IntoIterator<Item = &'a str>) -> Finding {
        self.keys.extend(keys.into_iter().map(str::to_owned));
        self
    }

    /// Adds a named amount.
    pub fn amount(mut self, name: &str, value: impl Into<i128>) -> Finding {
        self.amounts.insert(name.to_owned(), value.into());
        self
    }
}

/// What the check counted and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// Orders the order service knows.
    pub orders: usize,
    /// Payment ledger records.
    pub payment_records: usize,
    /// Shipment records.
    #[serde(default)]
    pub shipment_records: usize,
    /// Reservation records (orders' and stock clients').
    #[serde(default)]
    pub reservation_records: usize,
    /// Release records.
    #[serde(default)]
    pub release_records: usize,
    /// Orders per final status.
    pub by_status: BTreeMap<OrderStatus, usize>,
    /// Each SKU's stock, as accounted from the records.
    #[serde(default)]
    pub stock: Vec<SkuLedger>,
    /// Violations per kind (all of them).
    pub violation_counts: BTreeMap<Violation, usize>,
    /// Violations, at most [`MAX_LISTED_VIOLATIONS`].
    pub violations: Vec<Finding>,
    /// Violations beyond those listed.
    pub violations_not_listed: usize,
    /// Final-state reads that failed.
    pub read_errors: Vec<String>,
    /// Orders not terminal at the end (each also a `stuck-saga` violation).
    #[serde(default)]
    pub open_sagas: usize,
    /// Rules that compare separate reads of the final state and were not judged because
    /// sagas were still open when it was read (`effects/stock.rs`), each with its evidence.
    #[serde(default)]
    pub not_judged: Vec<String>,
}

/// The check.
pub struct Effects;

fn amounts_text(f: &Finding) -> String {
    f.amounts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Check for Effects {
    const ID: CheckId = CheckId::Effects;
    type Details = Details;

    fn run(run: &RunData, _: &Params) -> Verdict<Details> {
        check(&run.history, &run.final_state)
    }

    fn tables(d: &Details) -> Vec<Table> {
        vec![
            Table::of(
                "Violations",
                &["kind", "order", "SKU", "keys", "amounts", "evidence"],
                &d.violations,
                d.violations_not_listed,
                |f| {
                    vec![
                        f.kind.to_string(),
                        f.order_id.clone().unwrap_or_default(),
                        f.sku.clone().unwrap_or_default(),
                        f.keys.join(", "),
                        amounts_text(f),
                        f.evidence.clone(),
                    ]
                },
            ),
            Table::pairs(
                "Violations by kind",
                "kind",
                "violations",
                d.violation_counts.iter(),
            ),
            Table::pairs(
                "Orders by final status",
                "status",
                "orders",
                d.by_status.iter(),
            ),
            Table::of(
                "Stock per SKU (initial - available must equal the units held)",
                &[
                    "SKU",
                    "initial",
                    "available",
                    "held (reserved + committed)",
                    "reserved",
                    "committed",
                    "released",
                ],
                &d.stock,
                0,
                |s| {
                    vec![
                        s.sku.clone(),
                        s.initial.to_string(),
                        s.available.to_string(),
                        (s.reserved + s.committed).to_string(),
                        s.reserved.to_string(),
                        s.committed.to_string(),
                        s.released.to_string(),
                    ]
                },
            ),
            Table::list("Final-state read errors", &d.read_errors, 0),
            Table::list("Not judged (read while sagas were open)", &d.not_judged, 0),
        ]
    }
}

/// Runs the effects check.
pub fn check(history: &History, state: &FinalState) -> Verdict<Details> {
    let mut findings = Vec::new();
    let index = records::Index::of(state);
    // Without the orders (their read failed) nothing can be accounted against them.
    let orders_read = state.has_service(formats::Role::Order);
    if orders_read {
        orders::check(&index, state, &mut findings);
        records::check(&index, history, state, &mut findings);
    }
    let open = state
        .orders
        .iter()
        .filter(|o| !o.status.is_terminal())
        .count();
    let mut not_judged = Vec::new();
    let stock = stock::check(state, open, &mut findings, &mut not_judged);
    if orders_read {
        clients::check(history, state, &mut findings);
    }
    summarize(state, stock, findings, open, not_judged)
}

fn summarize(
    state: &FinalState,
    stock: Vec<SkuLedger>,
    findings: Vec<Finding>,
    open_sagas: usize,
    not_judged: Vec<String>,
) -> Verdict<Details> {
    let mut by_status: BTreeMap<OrderStatus, usize> = BTreeMap::new();
    for o in &state.orders {
        *by_status.entry(o.status).or_default() += 1;
    }
    let mut counts: BTreeMap<Violation, usize> = BTreeMap::new();
    for finding in &findings {
        *counts.entry(finding.kind).or_default() += 1;
    }
    let validity = if !findings.is_empty() {
        Validity::Invalid
    } else if !state.read_errors.is_empty() || !not_judged.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let mut summary = match validity {
        Validity::Valid => format!(
            "all {} orders ended in a legal state with exactly their effects; every record and \
             unit of stock is accounted for",
            state.orders.len()
        ),
        Validity::Invalid => {
            let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            format!("{} violations: {}", findings.len(), parts.join(", "))
        }
        Validity::Unknown if state.read_errors.is_empty() => format!(
            "not quiesced: {open_sagas} sagas open; {} stock rules not judged",
            not_judged.len()
        ),
        Validity::Unknown => format!(
            "final state is partial ({} read errors); cannot prove every effect",
            state.read_errors.len()
        ),
    };
    if validity == Validity::Invalid && !not_judged.is_empty() {
        summary.push_str(&format!(
            "; not quiesced: {open_sagas} sagas open, {} stock rules not judged",
            not_judged.len()
        ));
    }
    let violations_not_listed = findings.len().saturating_sub(MAX_LISTED_VIOLATIONS);
    Verdict::new(
        validity,
        summary,
        Details {
            orders: state.orders.len(),
            payment_records: state.payments.len(),
            shipment_records: state.shipments.len(),
            reservation_records: state.reservations.len(),
            release_records: state.releases.len(),
            by_status,
            stock,
            violation_counts: counts,
            violations: findings.into_iter().take(MAX_LISTED_VIOLATIONS).collect(),
            violations_not_listed,
            read_errors: state.read_errors.clone(),
            open_sagas,
            not_judged,
        },
    )
}
