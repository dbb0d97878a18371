//! The effects check and the readers' errors over small hand-made run directories: each
//! violation kind must be flagged, a legal run must pass, and unreadable input must give an error
//! naming the file, never a panic.

use std::path::Path;

use checker::checks::Effects;
use checker::{ReadError, RunData, Validity};
use formats::final_state::{
    FinalState, OrderRecord, OrderStatus, PaymentKind, PaymentRecord, ReservationStatus,
};
use formats::history::{Header, Op, OpType, Process, F, SCHEMA_VERSION};
use formats::Role;
use serde_json::json;

fn order(id: &str, status: OrderStatus, amount: i64) -> OrderRecord {
    OrderRecord {
        order_id: id.into(),
        idempotency_key: format!("key-{id}"),
        status,
        amount,
        items: vec![],
        reason: None,
    }
}

fn pay(key: &str, kind: PaymentKind, order_id: &str, amount: i64) -> PaymentRecord {
    PaymentRecord {
        key: key.into(),
        kind,
        order_id: order_id.into(),
        amount,
        replays: 0,
    }
}

/// A history in which process 0 placed each of `acked` orders successfully.
fn history_lines(acked: &[&str]) -> Vec<String> {
    let header = Header {
        schema_version: SCHEMA_VERSION,
        run_id: "test/run".into(),
        started_unix_ms: 0,
    };
    let mut lines = vec![serde_json::to_string(&header).expect("header")];
    let mut index = 0;
    for (i, id) in acked.iter().enumerate() {
        for (op_type, value) in [
            (
                OpType::Invoke,
                json!({"key": format!("key-{id}"), "customer": "c", "items": [], "amount": 1}),
            ),
            (
                OpType::Ok,
                json!({"key": format!("key-{id}"), "order_id": id}),
            ),
        ] {
            let op = Op {
                index,
                time_ns: (i as u64 + 1) * 1_000_000_000 + index,
                process: Process::Client(0),
                op_type,
                f: F::PlaceOrder,
                value,
                node: Some("n1".into()),
                error: None,
            };
            lines.push(serde_json::to_string(&op).expect("op"));
            index += 1;
        }
    }
    lines
}

fn write_run(dir: &Path, history: &[String], state: &FinalState) {
    std::fs::write(dir.join("spec.json"), r#"{"scenario":"test","seed":1}"#).expect("spec");
    std::fs::write(dir.join("history.jsonl"), history.join("\n") + "\n").expect("history");
    std::fs::write(
        dir.join("final-state.json"),
        serde_json::to_vec(state).expect("state"),
    )
    .expect("state");
}

fn legal_state() -> FinalState {
    FinalState {
        services: vec![Role::Order, Role::Payment],
        orders: vec![
            order("o1", OrderStatus::Completed, 500),
            order("o2", OrderStatus::Rejected, 700),
            order("o3", OrderStatus::Compensated, 900),
        ],
        payments: vec![
            pay("o1:charge", PaymentKind::Charge, "o1", 500),
            pay("o3:charge", PaymentKind::Charge, "o3", 900),
            pay("o3:refund", PaymentKind::Refund, "o3", 900),
        ],
        ..FinalState::default()
    }
}

type EffectsVerdict = (Validity, checker::checks::effects::Details);

fn effects_of(dir: &Path) -> EffectsVerdict {
    let results = checker::analyze(dir, &checker::Params::default()).expect("analyzes");
    results.check::<Effects>().expect("effects check present")
}

/// Whether `kind` is named in the counts.
fn counted(d: &checker::checks::effects::Details, kind: &str) -> bool {
    d.violation_counts.keys().any(|k| k.as_str() == kind)
}

/// Proves a run in which every order has exactly its effects passes the effects check, and that
/// a run without `metrics.csv` is unknown overall (retry load cannot be measured), not valid.
#[test]
fn legal_run_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run(
        dir.path(),
        &history_lines(&["o1", "o2", "o3"]),
        &legal_state(),
    );
    let results = checker::analyze(dir.path(), &checker::Params::default()).expect("analyzes");
    let by_name = |n: checker::CheckId| {
        results
            .get(n)
            .unwrap_or_else(|| panic!("{n} present"))
            .validity
    };
    assert_eq!(
        by_name(checker::CheckId::Effects),
        Validity::Valid,
        "{results:#?}"
    );
    assert_eq!(by_name(checker::CheckId::History), Validity::Valid);
    assert_eq!(by_name(checker::CheckId::RetryLoad), Validity::Unknown);
    assert_eq!(results.validity, Validity::Unknown);
    assert_eq!(results.validity.exit_code(), 2);
}

/// The effects check on the builder's legal run after `mutate`, read back from disk.
fn effects_after(
    mutate: fn(&mut FinalState),
) -> checker::Verdict<checker::checks::effects::Details> {
    let mut run = crate::support::legal_run();
    assert_eq!(run.state.orders[0].order_id, "o1");
    assert_eq!(run.state.reservations[0].order_id, "o1");
    mutate(&mut run.state);
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = RunData::load(dir.path()).expect("loads");
    checker::checks::effects::check(&data.history, &data.final_state)
}

/// Makes order o1 of the legal run rejected before payment (no charge, no shipment).
fn reject_o1(s: &mut FinalState) {
    s.orders[0].status = OrderStatus::Rejected;
    s.payments.retain(|p| p.order_id != "o1");
    s.shipments.retain(|x| x.order_id != "o1");
}

/// Proves every shipment and stock rule, in both directions, on the builder's legal run: a
/// completed order needs a live shipment and held stock; a rejected order may have released its
/// stock or never reserved any, but may not keep it or a live shipment.
#[test]
fn shipment_and_stock_rules() {
    type Mutate = fn(&mut FinalState);
    let passing: Vec<(&str, Mutate)> = vec![
        ("legal as built", |_| {}),
        ("rejected, stock released", |s| {
            reject_o1(s);
            s.reservations[0].status = ReservationStatus::Released;
        }),
        ("rejected, never reserved", |s| {
            reject_o1(s);
            s.reservations.retain(|r| r.order_id != "o1");
        }),
    ];
    let failing: Vec<(&str, Mutate)> = vec![
        ("stock-not-committed", |s| {
            s.reservations.retain(|r| r.order_id != "o1")
        }),
        ("stock-released-on-completed", |s| {
            s.reservations[0].status = ReservationStatus::Released
        }),
        ("missing-shipment", |s| {
            s.shipments.retain(|x| x.order_id != "o1")
        }),
        ("refund-on-completed", |s| {
            let mut r = s.payments[0].clone();
            r.kind = PaymentKind::Refund;
            r.key = "o1:refund".into();
            s.payments.push(r);
        }),
        ("stock-not-released", reject_o1),
        ("shipment-not-cancelled", |s| {
            reject_o1(s);
            s.reservations[0].status = ReservationStatus::Released;
            let mut x = s.shipments[0].clone();
            x.order_id = "o1".into();
            x.key = "o1:ship".into();
            s.shipments.push(x);
        }),
    ];
    for (name, mutate) in passing {
        let effects = effects_after(mutate);
        assert_eq!(effects.validity, Validity::Valid, "{name}: {effects:#?}");
    }
    for (kind, mutate) in failing {
        let effects = effects_after(mutate);
        assert_eq!(effects.validity, Validity::Invalid, "{kind}: {effects:#?}");
        let counts = &effects.details.violation_counts;
        assert!(
            counted(&effects.details, kind),
            "{kind} not named in {counts:?}"
        );
        assert_eq!(counts.len(), 1, "{kind} only: {counts:?}");
    }
}

/// Proves each effect violation is flagged by name, each in an otherwise legal run.
#[test]
fn every_violation_kind_is_flagged() {
    type Mutate = fn(&mut FinalState);
    let cases: Vec<(&str, Mutate)> = vec![
        ("double-charge", |s| {
            s.payments
                .push(pay("o1:charge#2", PaymentKind::Charge, "o1", 500))
        }),
        ("double-refund", |s| {
            s.payments
                .push(pay("o3:refund#2", PaymentKind::Refund, "o3", 900))
        }),
        ("refund-without-charge", |s| {
            s.payments
                .push(pay("o2:refund", PaymentKind::Refund, "o2", 700))
        }),
        ("lost-refund", |s| {
            s.payments.retain(|p| p.key != "o3:refund")
        }),
        ("lost-charge", |s| {
            s.payments.retain(|p| p.key != "o1:charge")
        }),
        ("refund-amount-mismatch", |s| {
            s.payments
                .iter_mut()
                .filter(|p| p.key == "o3:refund")
                .for_each(|p| p.amount = 1)
        }),
        ("stuck-saga", |s| s.orders[0].status = OrderStatus::Charging),
        ("acknowledged-order-missing", |s| {
            s.orders.retain(|o| o.order_id != "o2")
        }),
        ("effect-without-order", |s| {
            s.payments
                .push(pay("o9:charge", PaymentKind::Charge, "o9", 1))
        }),
    ];
    for (kind, mutate) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = legal_state();
        mutate(&mut state);
        write_run(dir.path(), &history_lines(&["o1", "o2", "o3"]), &state);
        let (validity, details) = effects_of(dir.path());
        assert_eq!(validity, Validity::Invalid, "{kind}: {details:#?}");
        assert!(
            counted(&details, kind),
            "{kind} not named in {:?}",
            details.violation_counts
        );
    }
}

/// Proves a partial final state (a node could not be read) gives unknown, not valid.
#[test]
fn partial_state_is_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = legal_state();
    state
        .read_errors
        .push("n2/payment: connection refused".into());
    write_run(dir.path(), &history_lines(&["o1"]), &state);
    assert_eq!(effects_of(dir.path()).0, Validity::Unknown);
}

/// Proves a history cut mid-line is reported as truncated at its line, naming the file.
#[test]
fn truncated_history_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run(dir.path(), &history_lines(&["o1", "o2"]), &legal_state());
    let path = dir.path().join("history.jsonl");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, &text[..text.len() - 20]).expect("truncate");
    let err = RunData::load(dir.path()).expect_err("must not load");
    assert!(
        matches!(err, ReadError::Truncated { line: 5, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("history.jsonl") && msg.contains("line 5"),
        "{msg}"
    );
}

/// Proves a malformed middle line, a wrong schema version and a missing file each name the file.
#[test]
fn malformed_inputs_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = history_lines(&["o1", "o2"]);
    lines[2] = "{not json".into();
    write_run(dir.path(), &lines, &legal_state());
    let err = RunData::load(dir.path()).expect_err("malformed");
    assert!(
        matches!(err, ReadError::Malformed { line: 3, .. }),
        "{err:?}"
    );

    let mut lines = history_lines(&["o1"]);
    lines[0] = lines[0].replace(
        &format!("\"schema_version\":{SCHEMA_VERSION}"),
        "\"schema_version\":99",
    );
    write_run(dir.path(), &lines, &legal_state());
    let err = RunData::load(dir.path()).expect_err("version");
    assert!(err.to_string().contains("schema version 99"), "{err}");

    std::fs::remove_file(dir.path().join("final-state.json")).expect("rm");
    write_run(dir.path(), &history_lines(&["o1"]), &legal_state());
    std::fs::remove_file(dir.path().join("final-state.json")).expect("rm");
    let err = RunData::load(dir.path()).expect_err("missing");
    assert!(err.to_string().contains("final-state.json"), "{err}");
}
