//! The stock workload end to end: clients call the inventory's client API on two contended
//! SKUs while a partition stands, and the run's `linearizability` check judges the history.
//! Linearizable mode must pass; eventual mode, the same run with the protection off, must fail
//! with the failing operation named in `linearizability.html`.

use std::collections::BTreeMap;
use std::path::Path;

use formats::history::{Op, OpType, Process, F};
use serde_json::Value;

use crate::{faultproxy_bin, harness, latest, pipeline_bin, processes_mentioning, text};

/// Units of each contended SKU at the start.
const INITIAL_STOCK: i64 = 10;

/// One stock run under a partition from 2 s to 7 s of a 10 s workload; returns the exit code,
/// stdout and the run directory. The seed makes the partition isolate the inventory leader in
/// linearizable mode (the leader the nemesis aims at in a stock run).
fn stock_run(mode: &str, out: &Path) -> (Option<i32>, String, std::path::PathBuf) {
    let initial = INITIAL_STOCK.to_string();
    let o = harness(&[
        "run",
        "--workload",
        "stock",
        "--inventory-mode",
        mode,
        "--stock-skus",
        "2",
        "--initial-stock",
        &initial,
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "5s",
        "--fault-at",
        "2s",
        "--fault-for",
        "5s",
        "--time-limit",
        "10s",
        "--rate",
        "100",
        "--concurrency",
        "6",
        "--seed",
        "1",
        "--scenario",
        mode,
        "--out",
    ])
    .arg(out)
    .arg("--pipeline-bin")
    .arg(pipeline_bin())
    .arg("--faultproxy-bin")
    .arg(faultproxy_bin())
    .output()
    .expect("runs");
    let stdout = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(
        matches!(o.status.code(), Some(0..=2)),
        "the run did not reach a verdict: {}",
        text(&o)
    );
    (o.status.code(), stdout, latest(out))
}

/// Every check's verdict and summary, for failure messages.
fn verdicts(run: &Path) -> String {
    let results = json(&run.join("results.json"));
    let checks = results["checks"].as_array().cloned().unwrap_or_default();
    let lines: Vec<String> = checks
        .iter()
        .map(|c| format!("{} {}: {}", c["name"], c["validity"], c["summary"]))
        .collect();
    format!("{}\n{}", run.display(), lines.join("\n"))
}

fn json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("json")
}

/// The run's `linearizability` check from results.json.
/// The linearizability check's verdict, summary and typed details from `results.json`.
fn lin_check(
    run: &Path,
) -> (
    formats::Validity,
    String,
    checker::lincheck::inventory::Details,
) {
    let text = std::fs::read(run.join("results.json")).expect("results.json");
    let results: checker::Results = serde_json::from_slice(&text).expect("results parse");
    let r = results
        .get(checker::CheckId::Linearizability)
        .expect("a linearizability check");
    let d = r
        .details_of::<checker::checks::Linearizability>()
        .expect("typed details");
    (r.validity, r.summary.clone(), d)
}

/// Per SKU, the most units that were certainly reserved and not possibly given back at any
/// moment: ok reserves count from their completion (they happened by then), releases that
/// may have happened (ok or info) from their invocation (the earliest they could). Above the
/// initial stock, every order of the operations takes stock below zero: an oversell, shown
/// without the checker.
fn certain_oversell_peaks(run: &Path) -> BTreeMap<String, i64> {
    let data = checker::RunData::load(run).expect("run dir parses");
    let mut invokes: BTreeMap<u64, &Op> = BTreeMap::new();
    // (time, change) per SKU
    let mut changes: BTreeMap<String, Vec<(u64, i64)>> = BTreeMap::new();
    for op in &data.history.ops {
        let Process::Client(p) = op.process else {
            continue;
        };
        if op.op_type == OpType::Invoke {
            invokes.insert(p, op);
            continue;
        }
        let inv = invokes.remove(&p).expect("a completion has its invoke");
        let sku = inv.value["sku"].as_str().unwrap_or_default().to_owned();
        let qty = inv.value["qty"].as_i64().unwrap_or(0);
        match (op.f, op.op_type) {
            (F::Reserve, OpType::Ok) => changes.entry(sku).or_default().push((op.time_ns, qty)),
            (F::Release, OpType::Ok | OpType::Info) => {
                changes.entry(sku).or_default().push((inv.time_ns, -qty))
            }
            _ => {}
        }
    }
    // A release invoked but never completed may also have happened.
    for inv in invokes.values().filter(|i| i.f == F::Release) {
        let sku = inv.value["sku"].as_str().unwrap_or_default().to_owned();
        let qty = inv.value["qty"].as_i64().unwrap_or(0);
        changes.entry(sku).or_default().push((inv.time_ns, -qty));
    }
    changes
        .into_iter()
        .map(|(sku, mut ch)| {
            // Releases first at equal times: the bound stays a certain one.
            ch.sort_by_key(|&(t, d)| (t, d));
            let (mut net, mut peak) = (0i64, 0i64);
            for (_, d) in ch {
                net += d;
                peak = peak.max(net);
            }
            (sku, peak)
        })
        .collect()
}

/// Counts of (f, type) over the client completions of a run.
fn outcome_counts(run: &Path) -> BTreeMap<(String, String), usize> {
    let data = checker::RunData::load(run).expect("run dir parses");
    let mut counts = BTreeMap::new();
    for op in &data.history.ops {
        if op.process.is_nemesis() || op.op_type == OpType::Invoke {
            continue;
        }
        let kind = serde_json::to_value(op.op_type).expect("serializes");
        let kind = kind.as_str().unwrap_or_default().to_owned();
        *counts.entry((op.f.as_str().to_owned(), kind)).or_default() += 1;
    }
    counts
}

/// The partition the nemesis started: its shape, after checking it did start.
fn partition_shape(run: &Path) -> String {
    let data = checker::RunData::load(run).expect("run dir parses");
    let started: Vec<_> = data
        .history
        .ops
        .iter()
        .filter(|o| o.process.is_nemesis() && o.f == F::FaultStart && o.op_type == OpType::Info)
        .collect();
    assert_eq!(started.len(), 1, "one partition: {started:?}");
    assert!(started[0].error.is_none(), "it started: {:?}", started[0]);
    assert_eq!(started[0].value["fault"], "partition");
    started[0].value["detail"]["shape"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Proves that in linearizable mode the inventory stays linearizable through a partition that
/// isolates its leader: the stock workload's reserves, releases and reads on two contended
/// SKUs (stock ran out: some reserves were refused) pass the `linearizability` check with
/// at least 150 operations checked, a new leader took over on the majority side, the
/// final state reports the initial stock the harness configured, and no moment of the history
/// certainly reserved more than the initial stock.
#[test]
fn linearizable_inventory_passes_under_partition() {
    let out = tempfile::tempdir().expect("tempdir");
    let (code, stdout, run) = stock_run("linearizable", out.path());
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "valid"),
        "{}",
        verdicts(&run)
    );
    let (validity, _, d) = lin_check(&run);
    assert_eq!(validity, formats::Validity::Valid, "{d:#?}");
    assert!(!d.skipped, "stock operations were checked");
    assert!(d.operations >= 150, "{d:#?}");
    assert_eq!(d.skus.len(), 2, "{d:#?}");
    for s in &d.skus {
        assert_eq!(s.initial, Some(INITIAL_STOCK), "{s:?}");
        assert!(s.operations >= 50, "{s:?}");
        assert_eq!(s.validity, formats::Validity::Valid, "{s:?}");
    }
    let counts = outcome_counts(&run);
    for (f, t) in [
        ("reserve", "ok"),
        ("reserve", "fail"),
        ("release", "ok"),
        ("read-stock", "ok"),
    ] {
        assert!(
            counts
                .get(&(f.to_owned(), t.to_owned()))
                .copied()
                .unwrap_or(0)
                > 0,
            "no {f} {t}: {counts:?}"
        );
    }
    assert_eq!(partition_shape(&run), "isolate-leader");
    let elections: usize = ["n1", "n2", "n3"]
        .iter()
        .map(|n| {
            let log = std::fs::read_to_string(run.join(format!("nodes/{n}/inventory.log")))
                .unwrap_or_default();
            log.matches("\"became leader\"").count()
        })
        .sum();
    assert!(elections >= 2, "the inventory failed over: {elections}");
    let state = json(&run.join("final-state.json"));
    let initial: BTreeMap<&str, i64> = state["stock"]
        .as_array()
        .expect("stock")
        .iter()
        .filter_map(|s| Some((s["sku"].as_str()?, s["initial"].as_i64()?)))
        .collect();
    assert_eq!(initial.get("stock-0"), Some(&INITIAL_STOCK));
    assert_eq!(initial.get("stock-1"), Some(&INITIAL_STOCK));
    for (sku, peak) in certain_oversell_peaks(&run) {
        assert!(peak <= INITIAL_STOCK, "{sku}: {peak} units certainly out");
    }
    assert!(processes_mentioning(&out.path().to_string_lossy()).is_empty());
}

/// Proves the check fails when the protection is off: the same run in eventual mode (W = R = 1,
/// no leader) is not linearizable; the check names the failing operation (SKU, history index,
/// process) and `linearizability.html` shows it; and the history alone proves an oversell
/// (more units certainly reserved at one moment than the SKU ever had).
#[test]
fn eventual_inventory_fails_under_partition() {
    let out = tempfile::tempdir().expect("tempdir");
    let (code, stdout, run) = stock_run("eventual", out.path());
    assert_eq!(
        (code, stdout.as_str()),
        (Some(1), "invalid"),
        "{}",
        verdicts(&run)
    );
    let (validity, summary, d) = lin_check(&run);
    assert_eq!(validity, formats::Validity::Invalid, "{d:#?}");
    let failure = d.failure.as_ref().expect("a failing operation");
    let index = failure.operation.index;
    let described = failure.operation.op.as_str();
    assert!(failure.sku.starts_with("stock-"), "{failure:#?}");
    assert!(
        summary.contains(&format!("at index {index}")) && summary.contains(described),
        "{summary}"
    );
    let html = std::fs::read_to_string(run.join("linearizability.html")).expect("html view");
    assert!(
        html.contains("is not linearizable"),
        "the view says what failed"
    );
    assert!(
        html.contains(&format!("index {index}")) && html.contains(&described.replace('>', "&gt;")),
        "the view names the failing operation: index {index}, {described}"
    );
    let index_html = std::fs::read_to_string(run.join("index.html")).expect("report");
    assert!(index_html.contains("linearizability.html"), "linked");
    assert!(!partition_shape(&run).is_empty());
    let peaks = certain_oversell_peaks(&run);
    assert!(
        peaks.values().any(|&p| p > INITIAL_STOCK),
        "an oversell the history proves alone: {peaks:?} (initial {INITIAL_STOCK})"
    );
    assert!(processes_mentioning(&out.path().to_string_lossy()).is_empty());
}

/// Proves `--workload mixed` runs both workloads side by side (orders through the saga, stock
/// calls straight to the inventory, on process numbers that do not collide) and both are
/// checked: the orders end legally and the stock operations are linearizable.
#[test]
fn mixed_workload_runs_orders_and_stock() {
    let out = tempfile::tempdir().expect("tempdir");
    let o = harness(&[
        "run",
        "--workload",
        "mixed",
        "--nemesis",
        "none",
        "--time-limit",
        "4s",
        "--rate",
        "20",
        "--concurrency",
        "3",
        "--seed",
        "5",
        "--out",
    ])
    .arg(out.path())
    .arg("--pipeline-bin")
    .arg(pipeline_bin())
    .output()
    .expect("runs");
    let run = latest(out.path());
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), verdicts(&run));
    let counts = outcome_counts(&run);
    let ok = |f: &str| {
        counts
            .get(&(f.to_owned(), "ok".to_owned()))
            .copied()
            .unwrap_or(0)
    };
    assert!(ok("place-order") > 0 && ok("reserve") > 0, "{counts:?}");
    let data = checker::RunData::load(&run).expect("run dir parses");
    for op in &data.history.ops {
        if let Process::Client(p) = op.process {
            let stock_op = ["reserve", "release", "read-stock"].contains(&op.f.as_str());
            assert_eq!(stock_op, p >= 1_000_000, "process {p} ran {}", op.f);
        }
    }
    assert_eq!(lin_check(&run).0, formats::Validity::Valid);
    let spec = json(&run.join("spec.json"));
    assert_eq!(spec["workload"], "mixed");
    let rerun = spec["rerun"].as_str().unwrap_or_default();
    assert!(
        rerun.contains("--workload mixed --stock-skus 2 --initial-stock 10"),
        "{rerun}"
    );
}

/// Proves bad stock workload arguments exit 254 with a message naming the flag, before
/// anything starts.
#[test]
fn bad_stock_arguments_exit_254() {
    for args in [
        &["--workload", "stocks"][..],
        &["--workload", "stock", "--stock-skus", "0"][..],
        &["--workload", "stock", "--initial-stock", "-1"][..],
    ] {
        let o = harness(&["run"]).args(args).output().expect("runs");
        assert_eq!(o.status.code(), Some(254), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(args[args.len() - 2]), "{args:?}: {err}");
    }
}

/// Proves `harness bench consistency` checks its arguments before it starts anything: a fault
/// that does not fit in the time limit or a zero SKU count is an error whose first line names
/// the flag, exit 254, and nothing is written.
#[test]
fn bench_consistency_bad_arguments_exit_254() {
    let out = tempfile::tempdir().expect("tempdir");
    for args in [
        &[
            "--time-limit",
            "5s",
            "--fault-at",
            "4s",
            "--fault-for",
            "5s",
        ][..],
        &["--stock-skus", "0"][..],
    ] {
        let o = harness(&["bench", "consistency", "--out"])
            .arg(out.path())
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(254), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("harness: ") || first.starts_with("error: "),
            "{args:?}: {err}"
        );
        assert!(first.contains(args[args.len() - 2]), "{args:?}: {err}");
        assert!(
            std::fs::read_dir(out.path()).expect("out").next().is_none(),
            "{args:?} wrote something"
        );
    }
}
