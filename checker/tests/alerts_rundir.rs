//! The alerts check over a real recorded run directory (`tests/fixtures/fault-free-run`: a
//! fault-free `harness run` with the run's own Prometheus, trimmed of logs and the TSDB
//! snapshot): the run fires no alert in the checker's evaluation and agrees with its
//! Prometheus; each copy of it whose `metrics.csv` is changed the way a real defect or fault
//! would change it (a key applied twice, lost replies retried, a deposed leader writing, a new
//! leader, a stuck consumer, slow quorum writes and reads, a retry budget running out, a paused
//! process) fires exactly the alert meant for it, within its `for:` of the change.

use std::path::{Path, PathBuf};

use checker::checks::alerts::{self, Span};
use checker::checks::Params;
use checker::{RunData, Validity};

/// The change starts this many seconds into the run (past the rules' 10 s start-up guard).
const FROM_S: f64 = 25.0;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fault-free-run")
}

/// A copy of the fixture in a fresh directory, judged by the rules shipped now
/// (`sut/prometheus/alerts.yml`) instead of the older ones it was recorded with.
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture(), dir.path());
    std::fs::write(
        dir.path().join("alerts.yml"),
        checker::promql::rules::SHIPPED,
    )
    .expect("the shipped rules");
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("fixture").flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// One row of metrics.csv.
struct Row {
    t_s: f64,
    node: String,
    role: String,
    metric: String,
    labels: String,
    value: f64,
}

fn read_rows(dir: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(dir.join("metrics.csv")).expect("metrics.csv");
    r.records()
        .map(|rec| {
            let rec = rec.expect("row");
            Row {
                t_s: rec[0].parse().expect("t_s"),
                node: rec[1].into(),
                role: rec[2].into(),
                metric: rec[3].into(),
                labels: rec[4].into(),
                value: rec[5].parse().expect("value"),
            }
        })
        .collect()
}

/// Rewrites metrics.csv through `change` (a row kept as changed, or dropped), and removes the
/// run's Prometheus record: its Prometheus scraped the run as it was.
fn rewrite(dir: &Path, change: impl Fn(Row) -> Option<Row>) {
    let rows = read_rows(dir);
    let mut w = csv::Writer::from_path(dir.join("metrics.csv")).expect("write");
    w.write_record(["t_s", "node", "role", "metric", "labels", "value"])
        .expect("header");
    let mut kept = 0;
    for row in rows.into_iter().filter_map(change) {
        w.write_record([
            format!("{:.3}", row.t_s),
            row.node,
            row.role,
            row.metric,
            row.labels,
            format!("{}", row.value),
        ])
        .expect("row");
        kept += 1;
    }
    w.flush().expect("flush");
    assert!(kept > 1000, "the run kept its metrics");
    let _ = std::fs::remove_dir_all(dir.join("prometheus"));
}

fn check(dir: &Path) -> (Validity, alerts::Details) {
    let run = RunData::load(dir).expect("loads");
    let v = alerts::check(&run, &Params::default());
    (v.validity, v.details)
}

/// The distinct alert names that fired.
fn names(spans: &[Span]) -> Vec<String> {
    let mut n: Vec<String> = spans.iter().map(|s| s.alert.clone()).collect();
    n.dedup();
    n.sort();
    n.dedup();
    n
}

/// Checks a changed copy: only `alert` fires, with `labels` among its labels, starting at
/// or after the change and within `within_s` of it.
fn fires_only(dir: &Path, alert: &str, labels: &str, within_s: f64) {
    let (validity, d) = check(dir);
    assert_eq!(validity, Validity::Valid, "alerts are informational: {d:?}");
    assert_eq!(names(&d.ours), vec![alert.to_owned()], "{:?}", d.ours);
    let first = d
        .ours
        .iter()
        .find(|s| s.labels.contains(labels))
        .unwrap_or_else(|| panic!("{alert} with {labels}: {:?}", d.ours));
    let delay = first.from_s - FROM_S;
    assert!(
        (0.0..=within_s).contains(&delay),
        "{alert} fired {delay} s after the change: {first:?}"
    );
}

fn after(row: &Row) -> bool {
    row.t_s >= FROM_S
}

/// Proves the recorded fault-free run fires no alert in the checker's evaluation, its own
/// Prometheus fired none either, and the two agree (the check is valid).
#[test]
fn the_recorded_fault_free_run_fires_nothing() {
    let dir = copy();
    let (validity, d) = check(dir.path());
    assert!(d.prometheus_ran, "the fixture was recorded with Prometheus");
    assert!(d.ours.is_empty(), "{:?}", d.ours);
    assert!(d.prometheus.is_empty(), "{:?}", d.prometheus);
    assert_eq!(validity, Validity::Valid);
    assert_eq!(d.rules.len(), 9);
}

/// Proves a charge key applied a second time (idempotency broken on n2's payment) fires the
/// critical DuplicateEffects{outcome="applied"} and nothing else.
#[test]
fn a_key_applied_twice_fires_the_critical_duplicate_alert() {
    let dir = copy();
    rewrite(dir.path(), |mut r| {
        if after(&r)
            && r.node == "n2"
            && r.metric == "duplicate_effects_total"
            && r.labels.contains("\"charge\"")
            && r.labels.contains("\"applied\"")
        {
            r.value += 1.0;
        }
        Some(r)
    });
    fires_only(dir.path(), "DuplicateEffects", "outcome=applied", 3.0);
    let (_, d) = check(dir.path());
    assert!(
        d.ours.iter().all(|s| s.severity == "critical"),
        "{:?}",
        d.ours
    );
}

/// Proves replies lost for 6 s (each retried: 10 charge keys a second answered from their stored
/// result on n1) fire the warning DuplicateEffects{outcome="deduplicated"} once more than 20
/// are inside its 15 s window (3 s of them, plus its `for:` and a scrape's offset).
#[test]
fn lost_replies_fire_the_deduplicated_warning() {
    let dir = copy();
    rewrite(dir.path(), |mut r| {
        if after(&r)
            && r.node == "n1"
            && r.metric == "duplicate_effects_total"
            && r.labels.contains("\"charge\"")
            && r.labels.contains("\"deduplicated\"")
        {
            r.value += 10.0 * (r.t_s - FROM_S).min(6.0).floor();
        }
        Some(r)
    });
    fires_only(dir.path(), "DuplicateEffects", "outcome=deduplicated", 6.0);
}

/// Proves a deposed order leader's writes refused by n3's store replica fire FencingRejections.
#[test]
fn a_deposed_leader_writing_fires_fencing_rejections() {
    let dir = copy();
    rewrite(dir.path(), |mut r| {
        if after(&r)
            && r.node == "n3"
            && r.metric == "fencing_rejected_writes_total"
            && r.labels.contains("\"order\"")
        {
            r.value += 4.0;
        }
        Some(r)
    });
    fires_only(dir.path(), "FencingRejections", "domain=order", 3.0);
}

/// Proves one election of a new payment leader on n3 fires LeaderChurn{domain="payment"}.
#[test]
fn a_new_leader_fires_leader_churn() {
    let dir = copy();
    rewrite(dir.path(), |mut r| {
        if after(&r)
            && r.node == "n3"
            && r.role == "payment"
            && r.metric == "leader_elections_total"
        {
            r.value += 1.0;
        }
        Some(r)
    });
    fires_only(dir.path(), "LeaderChurn", "domain=payment", 3.0);
}

/// Proves a stuck saga consumer (lag growing by 5 orders a second on every order node for
/// 12 s, then drained) fires ConsumerLagHigh.
#[test]
fn a_stuck_consumer_fires_consumer_lag_high() {
    let dir = copy();
    rewrite(dir.path(), |mut r| {
        if after(&r) && r.metric == "consumer_lag_records" && r.t_s < FROM_S + 12.0 {
            r.value += 5.0 * (r.t_s - FROM_S).floor();
        }
        Some(r)
    });
    fires_only(dir.path(), "ConsumerLagHigh", "", 12.0);
}

/// `metric`'s histogram on node n1 gains 30 observations of 0.8 s a second from the change on:
/// every bucket from `le="1"` up, the count and the sum.
fn slow(dir: &Path, metric: &'static str) {
    rewrite(dir, move |mut r| {
        if !after(&r) || r.node != "n1" || !r.metric.starts_with(metric) {
            return Some(r);
        }
        let n = 30.0 * (r.t_s - FROM_S).floor();
        let slow_bucket = [
            "le=\"1\"",
            "le=\"2.5\"",
            "le=\"5\"",
            "le=\"10\"",
            "le=\"+Inf\"",
        ]
        .iter()
        .any(|le| r.labels.contains(le));
        match r.metric.strip_prefix(metric) {
            Some("_bucket") if slow_bucket => r.value += n,
            Some("_count") => r.value += n,
            Some("_sum") => r.value += 0.8 * n,
            _ => {}
        }
        Some(r)
    });
}

/// Proves slow quorum writes on n1 fire QuorumWriteP99High and only it.
#[test]
fn slow_quorum_writes_fire_their_p99_alert() {
    let dir = copy();
    slow(dir.path(), "quorum_write_duration_seconds");
    fires_only(dir.path(), "QuorumWriteP99High", "", 6.0);
}

/// Proves slow quorum reads on n1 fire QuorumReadP99High and only it.
#[test]
fn slow_quorum_reads_fire_their_p99_alert() {
    let dir = copy();
    slow(dir.path(), "quorum_read_duration_seconds");
    fires_only(dir.path(), "QuorumReadP99High", "", 6.0);
}

/// Proves retries to payment refused by n1's order retry budget fire
/// RetryBudgetExhausted{downstream="payment"}.
#[test]
fn an_exhausted_retry_budget_fires_its_alert() {
    let dir = copy();
    rewrite(dir.path(), |mut r| {
        if after(&r)
            && r.node == "n1"
            && r.metric == "retry_budget_exhausted_total"
            && r.labels.contains("\"payment\"")
        {
            r.value += 2.0;
        }
        Some(r)
    });
    fires_only(
        dir.path(),
        "RetryBudgetExhausted",
        "downstream=payment",
        3.0,
    );
}

/// Proves a process that answers no scrape for 6 s (n3's shipping paused: its rows are
/// missing from those scrape rounds) fires TargetDown for it and nothing else.
#[test]
fn a_paused_process_fires_target_down() {
    let dir = copy();
    rewrite(dir.path(), |r| {
        let paused = r.node == "n3" && r.role == "shipping" && after(&r) && r.t_s < FROM_S + 6.0;
        (!paused).then_some(r)
    });
    fires_only(dir.path(), "TargetDown", "node=n3", 6.0);
    let (_, d) = check(dir.path());
    assert!(d.ours.iter().all(|s| s.labels.contains("role=shipping")));
}

/// A copy in which n3's payment leader was elected again at the change (LeaderChurn fires in
/// the checker's evaluation), with the run's Prometheus record put back reporting `spans`
/// (seconds since the run started) for that alert, as a Prometheus scraping at other
/// instants would.
fn churn_with_prometheus(spans: &[(f64, f64)]) -> tempfile::TempDir {
    let dir = copy();
    let record = std::fs::read(dir.path().join("prometheus/alerts.json")).expect("record");
    rewrite(dir.path(), |mut r| {
        if after(&r)
            && r.node == "n3"
            && r.role == "payment"
            && r.metric == "leader_elections_total"
        {
            r.value += 1.0;
        }
        Some(r)
    });
    let mut prom: formats::alerts::PrometheusRun =
        serde_json::from_slice(&record).expect("alerts.json");
    let start_ms = RunData::load(dir.path())
        .expect("loads")
        .history
        .header
        .started_unix_ms as i64;
    let labels = std::collections::BTreeMap::from([
        ("alertname".to_owned(), "LeaderChurn".to_owned()),
        ("domain".to_owned(), "payment".to_owned()),
        ("severity".to_owned(), "warning".to_owned()),
    ]);
    prom.alerts = spans
        .iter()
        .map(|&(from_s, to_s)| formats::alerts::PromFiring {
            labels: labels.clone(),
            from_unix_ms: start_ms + (from_s * 1000.0) as i64,
            to_unix_ms: start_ms + (to_s * 1000.0) as i64,
        })
        .collect();
    std::fs::create_dir_all(dir.path().join("prometheus")).expect("mkdir");
    std::fs::write(
        dir.path().join("prometheus/alerts.json"),
        serde_json::to_vec_pretty(&prom).expect("json"),
    )
    .expect("write");
    dir
}

/// Proves the comparison with the run's Prometheus on the recorded run: the same LeaderChurn
/// span a second later agrees (valid), and so does one Prometheus split by a one-evaluation
/// flap;
/// Prometheus not firing it, firing it 4 s late, or firing a 6 s span the checker did not
/// make the check unknown, with the longest disagreement shown.
#[test]
fn prometheus_disagreeing_beyond_the_tolerance_is_unknown() {
    let (v, d) = check(churn_with_prometheus(&[]).path());
    let ours = d
        .ours
        .iter()
        .find(|s| s.alert == "LeaderChurn")
        .unwrap_or_else(|| panic!("{:?}", d.ours))
        .clone();
    assert_eq!(v, Validity::Unknown, "Prometheus fired nothing: {d:?}");
    let (from, to) = (ours.from_s, ours.to_s);
    let (v, d) = check(churn_with_prometheus(&[(from + 1.0, to + 1.0)]).path());
    assert_eq!(v, Validity::Valid, "{:?}", d.comparisons);
    assert!(
        to - from >= 2.0,
        "a span of three evaluations at least: {ours:?}"
    );
    let split = [(from, from), (to, to)];
    let (v, d) = check(churn_with_prometheus(&split).path());
    assert_eq!(v, Validity::Valid, "{:?}", d.comparisons);
    let (v, d) = check(churn_with_prometheus(&[(from + 4.0, to + 4.0)]).path());
    assert_eq!(v, Validity::Unknown, "{:?}", d.comparisons);
    let c = &d.comparisons[0];
    assert!(
        c.longest_disagreement_s > d.tolerance_s && !c.agree,
        "{c:?}"
    );
    let extra = [(from, to), (from + 5.0, from + 11.0)];
    let (v, d) = check(churn_with_prometheus(&extra).path());
    assert_eq!(v, Validity::Unknown, "{:?}", d.comparisons);
}
