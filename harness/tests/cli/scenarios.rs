//! Named scenarios end to end (`harness scenario run NAME --pair`: the protection on, then
//! off with the same seed) on local clusters (the suite and the nightly job: `suite.rs`). Each pair proves its
//! protection from `results.json`: with it on, the check shows the protection working and the
//! verdict is valid; with it off, the same check is invalid.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use super::{faultproxy_bin, harness, pipeline_bin, text};

/// The pairs run one at a time: two clusters of fifteen processes at once on two cores would
/// stretch the timings the scenarios are tuned for.
pub(super) static ONE_PAIR_AT_A_TIME: Mutex<()> = Mutex::new(());

fn json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {results}"))
}

/// The pair's out directory: removed when dropped, or kept (`SCENARIO_KEEP_RUNS`).
enum Keep {
    Removed(#[allow(dead_code)] tempfile::TempDir),
    Kept(#[allow(dead_code)] PathBuf),
}

/// A finished pair: both run directories and their results (removed when dropped).
struct Pair {
    _out: Keep,
    on_dir: PathBuf,
    off_dir: PathBuf,
    on: Value,
    off: Value,
    stdout: String,
}

/// Runs `harness scenario run NAME --pair` and returns both runs; asserts the exit code says
/// both expectations held and that each run's `results.json` says so too.
fn run_pair(name: &str, seed: &str) -> Pair {
    let _one = ONE_PAIR_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (_, _) = (pipeline_bin(), faultproxy_bin());
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().to_owned();
    // SCENARIO_KEEP_RUNS=1 keeps the runs for reading after the test.
    let tmp = if std::env::var_os("SCENARIO_KEEP_RUNS").is_some() {
        eprintln!("scenario {name}: runs kept under {}", out.display());
        Keep::Kept(tmp.keep())
    } else {
        Keep::Removed(tmp)
    };
    let out_s = out.display().to_string();
    let result = harness(&[
        "scenario", "run", name, "--pair", "--seed", seed, "--out", &out_s,
    ])
    .output()
    .expect("harness runs");
    let report = text(&result);
    let latest = |folder: &str| -> PathBuf {
        let dir = out.join(folder);
        let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}\n{report}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        runs.sort();
        runs.pop()
            .unwrap_or_else(|| panic!("no run in {}\n{report}", dir.display()))
    };
    let (on_dir, off_dir) = (latest(name), latest(&format!("{name}-off")));
    let (on, off) = (
        json(&on_dir.join("results.json")),
        json(&off_dir.join("results.json")),
    );
    assert_eq!(
        result.status.code(),
        Some(0),
        "both expectations should hold\non: {}\noff: {}\n{report}",
        on["expectation"],
        off["expectation"]
    );
    assert_eq!(on["expectation"]["outcome"], "held", "{report}");
    assert_eq!(on["expectation"]["protection_on"], true);
    assert_eq!(off["expectation"]["outcome"], "held", "{report}");
    assert_eq!(off["expectation"]["protection_on"], false);
    assert_eq!(on["validity"], "valid", "{}", on);
    assert_eq!(off["validity"], "invalid", "{}", off);
    // The runs are linked: the second names the first, and the first's report draws both.
    let off_spec = json(&off_dir.join("spec.json"));
    let on_id = on_dir.strip_prefix(&out).expect("under out");
    assert_eq!(off_spec["paired_with"], on_id.display().to_string());
    assert_eq!(off_spec["expectation"]["scenario"], name);
    let html = std::fs::read_to_string(on_dir.join("index.html")).expect("index.html");
    assert!(html.contains("Scenario expectation"), "report shows it");
    assert!(
        html.contains(&format!("{name}-off/")),
        "report names the compared run"
    );
    // Every planned fault started (its target was found), in both runs.
    for dir in [&on_dir, &off_dir] {
        let history = std::fs::read_to_string(dir.join("history.jsonl")).expect("history");
        let starts: Vec<Value> = history
            .lines()
            .filter(|l| l.contains("\"process\":\"nemesis\"") && l.contains("\"f\":\"start\""))
            .map(|l| serde_json::from_str(l).expect("history line"))
            .filter(|op: &Value| op["type"] == "info")
            .collect();
        let planned = off_spec["faults"].as_array().expect("faults").len();
        assert_eq!(starts.len(), planned, "{}", dir.display());
        for op in &starts {
            assert!(
                op["value"].get("error").is_none(),
                "a fault did not start: {op}"
            );
        }
    }
    let index = std::fs::read_to_string(out.join("index.html")).expect("runs index");
    let protection = on["expectation"]["protection"]
        .as_str()
        .expect("protection");
    assert!(index.contains(&format!("{protection} on: held")), "{index}");
    assert!(
        index.contains(&format!("{protection} off: held")),
        "{index}"
    );
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(stdout.contains("expectation=held"), "{report}");
    Pair {
        _out: tmp,
        on_dir,
        off_dir,
        on,
        off,
        stdout,
    }
}

/// Proves `stale-leader`: with fencing on, the order leader paused past its lease (and acting
/// on its stale leadership flag after SIGCONT, `--no-lease-check`) has its late writes refused
/// by the store replicas, listed by the fencing check with the stale and the current token,
/// while the verdict stays valid; with `--no-fencing` the replicas accept them and the fencing
/// check is invalid.
#[test]
fn stale_leader_is_fenced_and_not_without_fencing() {
    let p = run_pair("stale-leader", "11");
    let fencing = check(&p.on, "fencing");
    assert_eq!(fencing["validity"], "valid");
    let rejected = fencing["details"]["rejected_by_domain"]["order"]
        .as_u64()
        .unwrap_or(0);
    assert!(rejected > 0, "no stale order write rejected: {fencing}");
    let r = &fencing["details"]["rejections"][0];
    assert!(
        r["rejected_token"].as_u64() < r["current_token"].as_u64(),
        "a rejection names a stale token below the current one: {r}"
    );
    let off = check(&p.off, "fencing");
    assert_eq!(off["validity"], "invalid", "{off}");
    let stale_order: Vec<&Value> = off["details"]["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter(|v| v["domain"] == "order")
        .collect();
    assert!(
        !stale_order.is_empty(),
        "no stale order write accepted: {off}"
    );
    assert!(stale_order[0]["token"].as_u64() < stale_order[0]["prior_token"].as_u64());
    let spec = json(&p.on_dir.join("spec.json"));
    assert_eq!(spec["no_lease_check"], true);
    assert!(p.off_dir.join("nodes/n1/store.log").is_file());
}

/// Proves `lost-response`: with replies from payment dropped while requests still arrive,
/// charge keys are presented more than once and each made exactly one ledger record, and every
/// order has exactly its effects; with `--no-idempotency` the same faults charge orders twice.
#[test]
fn lost_responses_are_retried_once_and_double_charge_without_idempotency() {
    let p = run_pair("lost-response", "3");
    let idem = check(&p.on, "idempotency");
    assert_eq!(idem["validity"], "valid");
    let replayed: Vec<&Value> = idem["details"]["repeated_keys"]
        .as_array()
        .expect("repeated keys")
        .iter()
        .filter(|k| {
            k["ledger"] == "payments" && k["key"].as_str().unwrap_or("").ends_with(":charge")
        })
        .collect();
    assert!(!replayed.is_empty(), "no charge key replayed: {idem}");
    for k in &replayed {
        assert!(k["calls"].as_u64() > Some(1) && k["records"] == 1, "{k}");
    }
    assert_eq!(check(&p.on, "effects")["validity"], "valid");
    let effects = check(&p.off, "effects");
    assert_eq!(effects["validity"], "invalid");
    assert!(
        effects["details"]["violation_counts"]["double-charge"].as_u64() > Some(0),
        "{effects}"
    );
}

/// Proves `retried-compensation`: with most sagas compensating and the replies between the
/// order and payment leaders dropped, refunds are presented more than once and each made one
/// refund, compensated orders are legal; with `--no-idempotency` orders are refunded twice.
#[test]
fn retried_refunds_refund_once_and_twice_without_idempotency() {
    let p = run_pair("retried-compensation", "3");
    let idem = check(&p.on, "idempotency");
    assert_eq!(idem["validity"], "valid");
    let refunds: Vec<&Value> = idem["details"]["repeated_keys"]
        .as_array()
        .expect("repeated keys")
        .iter()
        .filter(|k| {
            k["ledger"] == "payments" && k["key"].as_str().unwrap_or("").ends_with(":refund")
        })
        .collect();
    assert!(!refunds.is_empty(), "no refund key replayed: {idem}");
    assert!(refunds.iter().all(|k| k["records"] == 1), "{refunds:?}");
    let effects = check(&p.on, "effects");
    assert_eq!(effects["validity"], "valid");
    assert!(effects["details"]["by_status"]["compensated"].as_u64() > Some(0));
    let off = check(&p.off, "effects");
    assert_eq!(off["validity"], "invalid");
    assert!(
        off["details"]["violation_counts"]["double-refund"].as_u64() > Some(0),
        "{off}"
    );
}

/// Proves `retry-storm`: with every link into payment slowed past the callers' timeout, the
/// order leader's retries stay within the budget in every window while the budget refuses
/// some, and the requests per key at payment stay within the budget's bound; with
/// `--no-retry-budget` a window is over the budget, at least 3 requests per key arrive at
/// payment, and the check is invalid. Both runs measure payment's goodput after the heal, and
/// the pair's first report draws both runs on one retry-load and one goodput graph.
#[test]
fn retry_storm_stays_in_budget_and_not_without_it() {
    let p = run_pair("retry-storm", "3");
    let load = check(&p.on, "retry-load");
    assert_eq!(load["validity"], "valid");
    assert_eq!(load["details"]["over_budget_total"], 0);
    let payment = load["details"]["per_downstream"]
        .as_array()
        .expect("per downstream")
        .iter()
        .find(|d| d["downstream"] == "payment")
        .expect("payment")
        .clone();
    assert!(payment["refused"].as_f64() > Some(0.0), "{payment}");
    assert!(payment["retries"].as_f64() > Some(0.0), "{payment}");
    let off = check(&p.off, "retry-load");
    assert_eq!(off["validity"], "invalid", "{off}");
    assert!(off["details"]["over_budget_total"].as_u64() > Some(0));
    assert_eq!(off["details"]["budget_on"], false);
    let amp = |d: &serde_json::Value| {
        let a = &d["details"]["amplification"][0];
        (
            a["amplification"].as_f64().expect("amplification"),
            a["bound"].as_f64().expect("bound"),
        )
    };
    let (with, bound) = amp(load);
    assert!(
        with <= bound,
        "with the budget: {with} over its bound {bound}"
    );
    let (without, bound_off) = amp(off);
    assert!(
        without >= 3.0 && without > bound_off,
        "without: {without} (bound {bound_off})"
    );
    for run in [&load, &off] {
        let g = &run["details"]["goodput"];
        assert!(g["baseline_per_s"].as_f64() > Some(0.0), "{g}");
        assert_eq!(g["recovery"].as_array().map(Vec::len), Some(1), "{g}");
    }
    for file in ["retry-load.png", "goodput.png"] {
        let png = std::fs::read(p.on_dir.join(file)).expect("png");
        assert!(png.starts_with(b"\x89PNG"), "{file}: a PNG");
    }
    assert!(p.stdout.contains("retry-storm-off"), "{}", p.stdout);
}

/// Proves an unknown scenario is one clear line naming it and the known ones, exit 254, and
/// that nothing is written.
#[test]
fn unknown_scenario_exits_254() {
    let out = tempfile::tempdir().expect("tempdir");
    let o = out.path().display().to_string();
    let result = harness(&["scenario", "run", "no-such-scenario", "--out", &o])
        .output()
        .expect("runs");
    assert_eq!(result.status.code(), Some(254), "{}", text(&result));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("'no-such-scenario'") && stderr.contains("stale-leader"));
    assert_eq!(std::fs::read_dir(out.path()).expect("dir").count(), 0);
}
