//! The effects check and the readers' errors over small hand-made run directories: a legal run
//! must pass, a partial one is unknown, and unreadable input must give an error naming the
//! file, never a panic. (Every violation kind: `effects_kinds`; corrupted real runs:
//! `effects_real`.)

use std::path::Path;

use checker::checks::Effects;
use checker::{ReadError, RunData, Validity};
use formats::final_state::{FinalState, OrderRecord, OrderStatus, PaymentKind, PaymentRecord};
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
        charge: (kind == PaymentKind::Refund).then(|| key.replace(":refund", ":charge")),
        replays: 0,
    }
}

/// The amount `legal_state` gives order `id`.
fn amount_of(id: &str) -> i64 {
    match id {
        "o1" => 500,
        "o2" => 700,
        _ => 900,
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
                json!({"key": format!("key-{id}"), "customer": "c", "items": [], "amount": amount_of(id)}),
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

/// Proves the builder's legal run (every order completed with its effects, stock accounted)
/// passes, and that completing an order is not enough: its stock must be committed.
#[test]
fn completed_orders_commit_their_stock() {
    let mut run = crate::support::legal_run();
    assert_eq!(
        crate::effects_ledger::effects_of(&run).validity,
        Validity::Valid
    );
    run.state.reservations[0].status = formats::final_state::ReservationStatus::Reserved;
    let v = crate::effects_ledger::effects_of(&run);
    assert_eq!(v.validity, Validity::Invalid);
    assert_eq!(
        v.details
            .violation_counts
            .keys()
            .map(|k| k.as_str())
            .collect::<Vec<_>>(),
        ["stock-not-committed"],
        "{v:#?}"
    );
}

/// Proves a partial final state (a node could not be read) gives unknown, not valid.
#[test]
fn partial_state_is_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = legal_state();
    state
        .read_errors
        .push("n2/payment: connection refused".into());
    write_run(dir.path(), &history_lines(&["o1", "o2", "o3"]), &state);
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
