//! Checks a generated history of 1,000,000 operations (500,000 invoke/completion pairs: 100,000
//! orders with every effect and 400,000 order reads, over 25 processes, with 20 faults), with a
//! metrics.csv of 600 s and 3 store logs of 100,000 lines each. Measures reading the run
//! directory, running every check (`check_all`), and writing the report (PNGs, 100 timeline
//! pages, CSVs, index.html), separately.
//!
//! `cargo bench -p checker --bench check`

use std::fmt::Write as _;
use std::path::Path;

use checker::{Params, RunData};
use criterion::{criterion_group, criterion_main, Criterion};
use formats::final_state::{
    FinalState, Item, OrderRecord, OrderStatus, PaymentKind, PaymentRecord, ReservationRecord,
    ReservationStatus, ShipmentRecord, ShipmentStatus, StockRecord,
};
use formats::history::{Header, Op, OpType, Process, F, SCHEMA_VERSION};
use formats::Role;
use serde_json::json;

/// Operations in the generated history.
const OPS: usize = 1_000_000;
/// Client processes.
const PROCESSES: u64 = 25;
/// Every fifth pair places an order.
const ORDER_EVERY: usize = 5;

fn generate(dir: &Path) {
    let pairs = OPS / 2;
    let mut state = FinalState {
        services: vec![
            Role::Order,
            Role::Payment,
            Role::Inventory,
            Role::Shipping,
            Role::Store,
        ],
        ..FinalState::default()
    };
    let header = Header {
        schema_version: SCHEMA_VERSION,
        run_id: "bench/1".into(),
        started_unix_ms: 0,
    };
    let mut text = serde_json::to_string(&header).expect("header") + "\n";
    let mut index = 0u64;
    let mut push = |text: &mut String, op: Op| {
        let op = Op { index, ..op };
        index += 1;
        text.push_str(&serde_json::to_string(&op).expect("op"));
        text.push('\n');
    };
    let step_ns = 1_000_000u64; // one pair per ms: a 500 s run
    for i in 0..pairs {
        let t = i as u64 * step_ns;
        if i % 25_000 == 0 && i > 0 {
            let id = format!("f{}", (i + 25_000) / 50_000);
            let v = json!({"id": id, "fault": "pause", "target": "n1/order"});
            let heal = if i % 50_000 == 0 {
                F::FaultHeal
            } else {
                F::FaultStart
            };
            for op_type in [OpType::Invoke, OpType::Info] {
                push(
                    &mut text,
                    Op {
                        index: 0,
                        time_ns: t,
                        process: Process::NEMESIS,
                        op_type,
                        f: heal,
                        value: v.clone(),
                        node: None,
                        error: None,
                    },
                );
            }
        }
        let process = Process::Client(i as u64 % PROCESSES);
        let (name, value, done) = if i % ORDER_EVERY == 0 {
            let id = format!("o{i}");
            let key = format!("k{i}");
            state.orders.push(OrderRecord {
                order_id: id.clone(),
                idempotency_key: key.clone(),
                status: OrderStatus::Completed,
                amount: 100,
                items: vec![Item {
                    sku: "sku-1".into(),
                    qty: 1,
                }],
                reason: None,
            });
            state.payments.push(PaymentRecord {
                key: format!("{id}:charge"),
                kind: PaymentKind::Charge,
                order_id: id.clone(),
                amount: 100,
                charge: None,
                replays: 0,
            });
            state.shipments.push(ShipmentRecord {
                key: format!("{id}:ship"),
                order_id: id.clone(),
                status: ShipmentStatus::Created,
                replays: 0,
            });
            state.reservations.push(ReservationRecord {
                key: format!("{id}:reserve:0"),
                order_id: id.clone(),
                sku: "sku-1".into(),
                qty: 1,
                status: ReservationStatus::Committed,
                replays: None,
            });
            (
                F::PlaceOrder,
                json!({"key": key, "customer": "c", "items": [{"sku": "sku-1", "qty": 1}], "amount": 100}),
                json!({"key": key, "order_id": id}),
            )
        } else {
            (
                F::ReadOrder,
                json!({"order_id": "o0"}),
                json!({"order_id": "o0", "status": "completed"}),
            )
        };
        push(
            &mut text,
            Op {
                index: 0,
                time_ns: t,
                process,
                op_type: OpType::Invoke,
                f: name,
                value,
                node: Some("n1".into()),
                error: None,
            },
        );
        let outcome = if i % 97 == 0 {
            OpType::Fail
        } else {
            OpType::Ok
        };
        push(
            &mut text,
            Op {
                index: 0,
                time_ns: t + step_ns / 2,
                process,
                op_type: outcome,
                f: name,
                value: done,
                node: Some("n1".into()),
                error: None,
            },
        );
    }
    std::fs::write(dir.join("history.jsonl"), text).expect("history");
    let initial = i64::try_from(OPS).expect("fits");
    let held = i64::try_from(state.reservations.len()).expect("fits");
    state.stock.push(StockRecord {
        sku: "sku-1".into(),
        available: initial - held,
        initial,
    });
    std::fs::write(
        dir.join("final-state.json"),
        serde_json::to_vec(&state).expect("state"),
    )
    .expect("state");
    std::fs::write(dir.join("spec.json"), r#"{"scenario":"bench","seed":1,"roles":["store","order","payment","inventory","shipping"]}"#).expect("spec");
    let mut csv = String::from("t_s,node,role,metric,labels,value\n");
    for s in 0..600u32 {
        for node in ["n1", "n2", "n3"] {
            let t = f64::from(s) + 0.01;
            let _ = writeln!(
                csv,
                "{t},{node},order,requests_total,\"{{downstream=\"\"payment\"\"}}\",{}",
                s * 40
            );
            let _ = writeln!(
                csv,
                "{t},{node},order,retry_attempts_total,\"{{downstream=\"\"payment\"\"}}\",{}",
                s
            );
            let _ = writeln!(csv, "{t},{node},order,consumer_lag_records,,{}", s % 7);
            for le in ["0.001", "0.01", "0.1", "1", "+Inf"] {
                let _ = writeln!(csv, "{t},{node},store,quorum_write_duration_seconds_bucket,\"{{state=\"\"order\"\",le=\"\"{le}\"\"}}\",{}", s * 30);
            }
        }
    }
    std::fs::write(dir.join("metrics.csv"), csv).expect("metrics");
    for node in ["n1", "n2", "n3"] {
        let path = dir.join("nodes").join(node);
        std::fs::create_dir_all(&path).expect("mkdir");
        let mut log = String::new();
        for i in 0..100_000u64 {
            let line = json!({"timestamp": "2026-01-01T00:00:00Z", "level": "INFO", "fields": {"message": "write accepted", "domain": "order", "key": format!("saga/o{i}"), "token": 1 + i / 10_000, "version": i}});
            let _ = writeln!(log, "{line}");
        }
        std::fs::write(path.join("store.log"), log).expect("log");
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(dir.path());
    let run = RunData::load(dir.path()).expect("loads");
    assert_eq!(
        run.history.ops.len(),
        OPS + 2 * 19,
        "1,000,000 client ops and the faults"
    );
    let mut group = c.benchmark_group("1M operations");
    group.sample_size(10);
    group.bench_function("read run directory", |b| {
        b.iter(|| RunData::load(dir.path()).expect("loads"))
    });
    group.bench_function("check_all", |b| {
        b.iter(|| {
            let checked = checker::checks::check_all(&run, &Params::default());
            assert_eq!(
                checked.results.checks.len(),
                checker::CheckId::ALL.len(),
                "every check, linearizability and alerts included"
            );
            checked
        })
    });
    let params = Params::default();
    let checked = checker::checks::check_all(&run, &params);
    group.bench_function("write_report", |b| {
        b.iter(|| checker::report::write_report(&run, &checked, &params, None).expect("report"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotting needs system fonts, which CI machines may lack.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
