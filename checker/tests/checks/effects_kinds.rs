//! Every effect violation kind, old and new, over hand-made run directories: each is flagged in
//! a run that breaks exactly its rule and absent from the nearest legal run. The base run is a
//! full ledger: a completed order of two items, an order rejected at its second item's reserve,
//! a compensated order, and stock clients' reservations (one held, one released), with stock
//! records that account for every unit.

use formats::effects::EffectViolation as V;

use crate::effects_ledger::effects_of;
use crate::effects_ledger::{cases, ledger_run, payment};
use checker::Validity;

/// Proves the base run is a legal ledger in which every record is accounted for: the effects
/// check is valid and reports each SKU's units.
#[test]
fn the_base_ledger_is_legal() {
    let v = effects_of(&ledger_run());
    assert_eq!(v.validity, Validity::Valid, "{v:#?}");
    let sku1 = v
        .details
        .stock
        .iter()
        .find(|s| s.sku == "sku-1")
        .expect("sku-1");
    assert_eq!(
        (sku1.initial, sku1.available, sku1.committed, sku1.reserved),
        (100, 97, 1, 2)
    );
    assert_eq!(v.details.release_records, 3);
}

/// Proves every violation kind, old and new, is flagged by name (with the order or SKU named in
/// its evidence) in a run that breaks its rule, and that the nearest run keeping the rule
/// passes; and that every kind the checker knows has such a pair.
#[test]
fn every_kind_is_flagged_and_its_legal_neighbour_passes() {
    let cases = cases();
    for kind in V::ALL {
        assert!(
            cases.iter().any(|(k, _, _)| *k == kind),
            "{kind} has no case"
        );
    }
    for (kind, flag, pass) in cases {
        let mut bad = ledger_run();
        flag(&mut bad);
        let v = effects_of(&bad);
        assert_eq!(v.validity, Validity::Invalid, "{kind}: {v:#?}");
        let found: Vec<_> = v
            .details
            .violations
            .iter()
            .filter(|f| f.kind == kind)
            .collect();
        assert!(
            !found.is_empty(),
            "{kind} not named in {:?}",
            v.details.violation_counts
        );
        assert!(
            found
                .iter()
                .all(|f| f.order_id.is_some() || f.sku.is_some()),
            "{kind}: evidence names an order or a SKU: {found:?}"
        );
        let mut good = ledger_run();
        pass(&mut good);
        let v = effects_of(&good);
        assert_eq!(v.validity, Validity::Valid, "{kind} neighbour: {v:#?}");
    }
}

/// Proves the evidence of a money and a stock violation carries the typed amounts and keys a
/// person needs, and the report table shows them.
#[test]
fn evidence_carries_keys_and_amounts() {
    let mut run = ledger_run();
    payment(&mut run, "o1:charge").amount = 499;
    run.state.stock[1].available -= 1;
    let v = effects_of(&run);
    let charge = v
        .details
        .violations
        .iter()
        .find(|f| f.kind == V::ChargeAmountMismatch)
        .expect("charge");
    assert_eq!(charge.order_id.as_deref(), Some("o1"));
    assert_eq!(charge.keys, ["o1:charge"]);
    assert_eq!(
        (charge.amounts["order amount"], charge.amounts["charged"]),
        (500, 499)
    );
    let stock = v
        .details
        .violations
        .iter()
        .find(|f| f.kind == V::StockNotConserved)
        .expect("stock");
    assert_eq!(stock.sku.as_deref(), Some("sku-2"));
    assert_eq!(stock.amounts["difference"], 1);
    let tables = <checker::checks::Effects as checker::check::Check>::tables(&v.details);
    let rows = &tables[0].rows;
    assert!(
        rows.iter().any(|r| r[0] == "charge-amount-mismatch"
            && r[3] == "o1:charge"
            && r[4].contains("charged 499")),
        "{rows:?}"
    );
}
