//! The inventory check over a run's `history.jsonl` (contract §6 shapes) and
//! `final-state.json` (initial stock per SKU).

use checker::lincheck::{inventory, write_inventory_html, HTML_FILE};
use checker::rundir::History;
use checker::{RunData, Validity};
use formats::final_state::{FinalState, StockRecord};
use formats::history::{Header, Op, OpType, Process, F, SCHEMA_VERSION};
use formats::Role;
use serde_json::{json, Value};

/// Builds a history from (process, type, f, value) events, one time unit apart, with a nemesis
/// event and an unrelated place-order in the middle that the check must ignore.
fn history(events: &[(u64, OpType, &str, Value)]) -> History {
    let mut ops = Vec::new();
    for (i, (p, t, f, v)) in events.iter().enumerate() {
        ops.push(Op {
            index: i as u64,
            time_ns: i as u64 * 1_000_000,
            process: Process::Client(*p),
            op_type: *t,
            f: serde_json::from_value::<F>(json!(f)).expect("an f"),
            value: v.clone(),
            node: Some("n1".into()),
            error: None,
        });
    }
    let n = ops.len() as u64;
    ops.push(Op {
        index: n,
        time_ns: n * 1_000_000,
        process: Process::NEMESIS,
        op_type: OpType::Info,
        f: F::FaultStart,
        value: json!({"id": "f1", "fault": "partition"}),
        node: None,
        error: None,
    });
    History {
        header: Header {
            schema_version: SCHEMA_VERSION,
            run_id: "t/1".into(),
            started_unix_ms: 0,
        },
        ops,
    }
}

fn state(initial: &[(&str, i64)]) -> FinalState {
    FinalState {
        services: vec![Role::Inventory],
        stock: initial
            .iter()
            .map(|(sku, n)| StockRecord {
                sku: (*sku).into(),
                available: 0,
                initial: *n,
            })
            .collect(),
        ..FinalState::default()
    }
}

fn reserve(
    p: u64,
    key: &str,
    sku: &str,
    qty: i64,
    done: OpType,
) -> [(u64, OpType, &'static str, Value); 2] {
    let v = json!({"key": key, "sku": sku, "qty": qty});
    [
        (p, OpType::Invoke, "reserve", v.clone()),
        (p, done, "reserve", v),
    ]
}

fn read(p: u64, sku: &str, available: i64) -> [(u64, OpType, &'static str, Value); 2] {
    [
        (p, OpType::Invoke, "read-stock", json!({"sku": sku})),
        (
            p,
            OpType::Ok,
            "read-stock",
            json!({"sku": sku, "available": available}),
        ),
    ]
}

/// Proves a linearizable run passes, and an oversold SKU (two reservations succeeding on stock
/// for one, as an eventual-mode partition allows) is invalid with the SKU and the operation
/// named in the summary and details.
#[test]
fn oversell_is_invalid_and_named() {
    let mut events = Vec::new();
    events.extend(reserve(0, "r1", "sku-a", 2, OpType::Ok));
    events.extend(reserve(1, "r2", "sku-b", 1, OpType::Ok));
    events.extend(read(2, "sku-a", 1));
    events.extend(reserve(1, "r3", "sku-a", 2, OpType::Fail));
    let good = inventory(&history(&events), &state(&[("sku-a", 3), ("sku-b", 1)]));
    assert_eq!(good.validity, Validity::Valid, "{good:#?}");

    events.extend(reserve(0, "r4", "sku-a", 1, OpType::Ok));
    events.extend(reserve(1, "r5", "sku-a", 1, OpType::Ok));
    let bad = inventory(&history(&events), &state(&[("sku-a", 3), ("sku-b", 1)]));
    assert_eq!(bad.validity, Validity::Invalid, "{bad:#?}");
    assert!(
        bad.summary.contains("sku-a") && bad.summary.contains("reserve 1 ok"),
        "{}",
        bad.summary
    );
    let failure = bad.details.failure.as_ref().expect("a failure");
    assert_eq!(failure.sku, "sku-a");
    assert_eq!(failure.operation.index, 10, "the second oversold reserve");
    assert_eq!(failure.stock_after_prefix, "0");
}

/// Proves an info reserve whose late effect explains a read passes, and a read above the
/// initial stock (no release ever) fails.
#[test]
fn info_reserve_and_impossible_read() {
    let mut events = Vec::new();
    events.extend(reserve(0, "r1", "s", 2, OpType::Info));
    events.extend(read(1, "s", 5));
    events.extend(read(1, "s", 3));
    let run = state(&[("s", 5)]);
    assert_eq!(inventory(&history(&events), &run).validity, Validity::Valid);
    events.extend(read(1, "s", 6));
    assert_eq!(
        inventory(&history(&events), &run).validity,
        Validity::Invalid
    );
}

/// Proves the check cannot silently pass what it cannot check: a SKU without initial stock and
/// a malformed stock operation both give unknown with the reason; no stock operations at all is
/// valid and says it checked nothing.
#[test]
fn unknowns_and_nothing_to_check() {
    let mut events = Vec::new();
    events.extend(reserve(0, "r1", "mystery", 1, OpType::Ok));
    let r = inventory(&history(&events), &state(&[]));
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert!(r.summary.contains("mystery"), "{}", r.summary);

    let bad = vec![(0, OpType::Invoke, "reserve", json!({"sku": "s"}))];
    let r = inventory(&history(&bad), &state(&[("s", 1)]));
    assert_eq!(r.validity, Validity::Unknown);
    assert!(
        r.summary.contains("index 0") && r.summary.contains("qty"),
        "{}",
        r.summary
    );

    let r = inventory(&history(&[]), &state(&[]));
    assert_eq!(r.validity, Validity::Valid);
    assert!(r.details.skipped);
}

/// Proves the run-directory helper writes linearizability.html with the failing SKU drawn.
#[test]
fn html_written_into_run_dir() {
    let mut events = Vec::new();
    events.extend(reserve(0, "r1", "sku-z", 1, OpType::Ok));
    events.extend(read(1, "sku-z", 1));
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunData {
        dir: dir.path().to_owned(),
        spec: formats::spec::Spec::from_json(json!({}))
            .expect("a v1 spec")
            .0,
        spec_note: None,
        history: history(&events),
        final_state: state(&[("sku-z", 1)]),
        metrics: None,
    };
    let path = write_inventory_html(&run).expect("written");
    assert_eq!(path, dir.path().join(HTML_FILE));
    let page = std::fs::read_to_string(path).expect("read");
    assert!(page.contains("sku-z") && page.contains("<svg") && page.contains("invalid"));
}

/// Proves a reserve refused as unavailable (`"refused": "unavailable"`, contract §6) constrains
/// nothing: with stock available a refusal for lack of stock is invalid, while the same refusal
/// marked unavailable is left out and the history is valid; and the operations around it (a
/// process opening its next operation) still pair.
#[test]
fn unavailable_refusal_is_left_out() {
    let refused = |marked: bool| {
        let mut v = json!({"key": "r1", "sku": "s", "qty": 1});
        if marked {
            v["refused"] = json!("unavailable");
        }
        let mut events = vec![
            (
                0,
                OpType::Invoke,
                "reserve",
                json!({"key": "r1", "sku": "s", "qty": 1}),
            ),
            (0, OpType::Fail, "reserve", v),
        ];
        events.extend(reserve(0, "r2", "s", 1, OpType::Ok));
        events.extend(read(1, "s", 4));
        inventory(&history(&events), &state(&[("s", 5)]))
    };
    let short = refused(false);
    assert_eq!(short.validity, Validity::Invalid, "{short:#?}");
    let unavailable = refused(true);
    assert_eq!(unavailable.validity, Validity::Valid, "{unavailable:#?}");
    assert_eq!(unavailable.details.operations, 2, "{unavailable:#?}");
}
