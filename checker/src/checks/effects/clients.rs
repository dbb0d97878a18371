//! Against the clients: every acknowledged order exists under its key with what the client
//! placed, every order was placed by a client, one key made one order, and a terminal status a
//! client read is the status the order has at the end (a terminal status never changes).

use std::collections::{BTreeMap, HashMap};

use formats::effects::EffectViolation as Violation;
use formats::final_state::{FinalState, OrderRecord, OrderStatus};
use formats::history::{values, OpType, Process, F};

use super::Finding;
use crate::rundir::History;

/// One ok `read-order`: when it was invoked and completed, and what it saw.
struct Read {
    invoked_ns: u64,
    completed_ns: u64,
    index: u64,
    status: OrderStatus,
}

/// Runs the rules against the clients.
pub(super) fn check(history: &History, state: &FinalState, out: &mut Vec<Finding>) {
    let mut by_id: BTreeMap<&str, Vec<&OrderRecord>> = BTreeMap::new();
    let mut by_key: BTreeMap<&str, Vec<&OrderRecord>> = BTreeMap::new();
    for o in &state.orders {
        by_id.entry(o.order_id.as_str()).or_default().push(o);
        by_key
            .entry(o.idempotency_key.as_str())
            .or_default()
            .push(o);
    }
    doubles(&by_id, &by_key, out);
    placed(history, &by_id, &by_key, out);
    reads(history, &by_id, out);
}

fn doubles(
    by_id: &BTreeMap<&str, Vec<&OrderRecord>>,
    by_key: &BTreeMap<&str, Vec<&OrderRecord>>,
    out: &mut Vec<Finding>,
) {
    for (key, orders) in by_key.iter().filter(|(_, v)| v.len() > 1) {
        let ids: Vec<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
        out.push(
            Finding::new(
                Violation::DoubleOrder,
                format!("one client key made {} orders: {ids:?}", orders.len()),
            )
            .order(ids[0])
            .keys([*key]),
        );
    }
    for (id, orders) in by_id.iter().filter(|(_, v)| v.len() > 1) {
        out.push(
            Finding::new(
                Violation::DoubleOrder,
                format!("the order service lists order {id} {} times", orders.len()),
            )
            .order(id)
            .keys(orders.iter().map(|o| o.idempotency_key.as_str())),
        );
    }
}

/// Acknowledged orders exist under their key; every order's key was placed, with its payload.
fn placed(
    history: &History,
    by_id: &BTreeMap<&str, Vec<&OrderRecord>>,
    by_key: &BTreeMap<&str, Vec<&OrderRecord>>,
    out: &mut Vec<Finding>,
) {
    let mut asked: HashMap<String, (u64, values::PlaceOrder)> = HashMap::new();
    for op in history.ops.iter().filter(|op| op.f == F::PlaceOrder) {
        match op.op_type {
            OpType::Invoke => {
                if let Some(p) = op.payload::<values::PlaceOrder>() {
                    asked.entry(p.key.clone()).or_insert((op.index, p));
                }
            }
            OpType::Ok => {
                let Some(placed) = op.payload::<values::Placed>() else {
                    continue;
                };
                let Some(id) = placed.order_id else { continue };
                let at = format!("history index {} (process {})", op.index, op.process);
                let found = by_id.get(id.as_str()).and_then(|v| v.first());
                let why = match found {
                    None => format!("{at} acknowledged it; the final state has no such order"),
                    Some(o) if o.idempotency_key != placed.key => format!(
                        "{at} acknowledged it for key {:?}; the order service has it under {:?}",
                        placed.key, o.idempotency_key
                    ),
                    Some(_) => continue,
                };
                out.push(
                    Finding::new(Violation::AcknowledgedOrderMissing, why)
                        .order(&id)
                        .keys([placed.key.as_str()]),
                );
            }
            _ => {}
        }
    }
    for (key, orders) in by_key {
        let o = orders[0];
        let Some((index, p)) = asked.get(*key) else {
            out.push(
                Finding::new(
                    Violation::OrderNotPlaced,
                    format!(
                        "no place-order in the history used key {key:?} (status {}, amount {})",
                        o.status, o.amount
                    ),
                )
                .order(&o.order_id)
                .keys([*key])
                .amount("amount", o.amount),
            );
            continue;
        };
        if p.items != o.items || p.amount != o.amount {
            out.push(
                Finding::new(
                    Violation::OrderPayloadMismatch,
                    format!(
                        "history index {index} placed items {:?} for {} cents; the order holds \
                         {:?} for {} cents",
                        p.items, p.amount, o.items, o.amount
                    ),
                )
                .order(&o.order_id)
                .keys([*key])
                .amount("placed amount", p.amount)
                .amount("order amount", o.amount),
            );
        }
    }
}

/// A terminal status a client read is the status later reads and the final state show.
fn reads(history: &History, by_id: &BTreeMap<&str, Vec<&OrderRecord>>, out: &mut Vec<Finding>) {
    let mut open: HashMap<Process, u64> = HashMap::new();
    let mut reads: BTreeMap<String, Vec<Read>> = BTreeMap::new();
    for op in history.ops.iter().filter(|op| op.f == F::ReadOrder) {
        match op.op_type {
            OpType::Invoke => {
                open.insert(op.process, op.time_ns);
            }
            t => {
                let invoked_ns = open.remove(&op.process).unwrap_or(op.time_ns);
                if t != OpType::Ok {
                    continue;
                }
                if let Some(r) = op.payload::<values::OrderRead>() {
                    reads.entry(r.order_id).or_default().push(Read {
                        invoked_ns,
                        completed_ns: op.time_ns,
                        index: op.index,
                        status: r.status,
                    });
                }
            }
        }
    }
    for (id, rs) in &reads {
        let end = by_id
            .get(id.as_str())
            .and_then(|v| v.first())
            .map(|o| o.status);
        let Some(end) = end else {
            let r = &rs[0];
            out.push(
                Finding::new(
                    Violation::AcknowledgedOrderMissing,
                    format!(
                        "history index {} read it as {}; the final state has no such order",
                        r.index, r.status
                    ),
                )
                .order(id),
            );
            continue;
        };
        for t in rs.iter().filter(|r| r.status.is_terminal()) {
            // A read that began after the terminal read ended must see the same status.
            let later = rs
                .iter()
                .find(|r| r.invoked_ns > t.completed_ns && r.status != t.status);
            let why = match (later, end != t.status) {
                (Some(l), _) => format!(
                    "history index {} read {}, the later read at index {} read {}",
                    t.index, t.status, l.index, l.status
                ),
                (None, true) => format!(
                    "history index {} read {}; the order ends {end}",
                    t.index, t.status
                ),
                (None, false) => continue,
            };
            out.push(Finding::new(Violation::TerminalStatusChanged, why).order(id));
            break;
        }
    }
}
