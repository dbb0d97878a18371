//! The idempotency check: physical calls per key against effect records.

use checker::{RunData, Validity};
use formats::effects::Ledger;
use formats::history::F;
use serde_json::json;

use crate::support::{legal_run, Run};

fn idempotency(run: &Run) -> checker::Verdict<checker::checks::idempotency::Details> {
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = RunData::load(dir.path()).expect("loads");
    checker::checks::idempotency::check(&data.history, &data.final_state)
}

/// Proves the legal run passes and lists the keys presented more than once (a replayed charge,
/// a client key sent twice) each with exactly one record.
#[test]
fn repeated_keys_with_one_record_pass() {
    let mut run = legal_run();
    // The client re-sent o3's key after a timeout; the service deduplicated it.
    run.op(
        5,
        F::PlaceOrder,
        19.5,
        0.01,
        formats::history::OpType::Ok,
        json!({"key": "key-o3", "customer": "c1", "items": [{"sku": "sku-1", "qty": 1}], "amount": 500}),
        json!({"key": "key-o3", "order_id": "o3"}),
    );
    let r = idempotency(&run);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    let repeated = &r.details.repeated_keys;
    let find = |key: &str| {
        repeated
            .iter()
            .find(|k| k.key == key)
            .unwrap_or_else(|| panic!("{key} listed in {repeated:?}"))
    };
    assert_eq!(find("o20:charge").calls, 2);
    assert_eq!(find("o20:charge").records, 1);
    assert_eq!(find("key-o3").calls, 2);
    assert_eq!(find("key-o3").ledger, Ledger::Orders);
    assert!(
        r.summary.contains("presented more than once"),
        "{}",
        r.summary
    );
}

/// Proves a key that produced two payment records (idempotency off) is invalid, and so is a
/// client key that made two orders, and a shipment key with two records.
#[test]
fn key_with_two_records_is_flagged() {
    let mut run = legal_run();
    let again = run.state.payments[4].clone();
    run.state.payments.push(again.clone());
    let r = idempotency(&run);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    let v = &r.details.violations[0];
    assert_eq!(v.ledger, Ledger::Payments);
    assert_eq!(v.key, again.key);
    assert_eq!(v.records, 2);
    assert_eq!(v.calls, 2);

    let mut run = legal_run();
    let mut twin = run.state.orders[1].clone();
    twin.order_id = "o999".into();
    run.state.orders.push(twin);
    let r = idempotency(&run);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    assert_eq!(r.details.violations[0].ledger, Ledger::Orders);
    assert_eq!(r.details.violations[0].order_ids, ["o2", "o999"]);

    let mut run = legal_run();
    let dup = run.state.shipments[0].clone();
    run.state.shipments.push(dup);
    let r = idempotency(&run);
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.details.violations[0].ledger, Ledger::Shipments);
}
