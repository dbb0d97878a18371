//! The alerts check against the run's own Prometheus, over a real recorded run directory
//! (`tests/fixtures/leader-pause-prometheus`: the default `harness run --seed 3`, whose pause of
//! the order leader fired ConsumerLagHigh, LeaderChurn and TargetDown in Prometheus, trimmed of
//! node logs, plots and the TSDB snapshot). The checker evaluates the rules over Prometheus's
//! own samples (`prometheus/samples.jsonl`) at its evaluation instants, so the recorded run
//! agrees exactly; copies changed the way a real defect would change them disagree: an
//! evaluator that saw different samples than Prometheus (a failed scrape read as answered), and
//! Prometheus firing an alert later or one the checker never fires.

use std::path::{Path, PathBuf};

use checker::checks::alerts;
use checker::checks::Params;
use checker::{RunData, Validity};
use formats::alerts::{PromSeries, PrometheusRun};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leader-pause-prometheus")
}

/// A copy of the fixture in a fresh directory.
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("prometheus")).expect("mkdir");
    for name in [
        "alerts.yml",
        "history.jsonl",
        "metrics.csv",
        "spec.json",
        "final-state.json",
        "cluster.json",
        "prometheus/alerts.json",
        "prometheus/samples.jsonl",
    ] {
        std::fs::copy(fixture().join(name), dir.path().join(name)).expect(name);
    }
    dir
}

fn check(dir: &Path) -> (Validity, alerts::Details) {
    let run = RunData::load(dir).expect("loads");
    let v = alerts::check(&run, &Params::default());
    (v.validity, v.details)
}

fn prom_run(dir: &Path) -> PrometheusRun {
    let text = std::fs::read(dir.join("prometheus/alerts.json")).expect("alerts.json");
    serde_json::from_slice(&text).expect("parses")
}

fn write_prom_run(dir: &Path, run: &PrometheusRun) {
    std::fs::write(
        dir.join("prometheus/alerts.json"),
        serde_json::to_vec_pretty(run).expect("json"),
    )
    .expect("write");
}

fn samples(dir: &Path) -> Vec<PromSeries> {
    std::fs::read_to_string(dir.join("prometheus/samples.jsonl"))
        .expect("samples")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a series"))
        .collect()
}

fn write_samples(dir: &Path, series: &[PromSeries]) {
    let lines: Vec<String> = series
        .iter()
        .map(|s| serde_json::to_string(s).expect("json"))
        .collect();
    std::fs::write(dir.join("prometheus/samples.jsonl"), lines.join("\n")).expect("write");
}

fn alert_names(d: &alerts::Details) -> Vec<String> {
    let mut n: Vec<String> = d.comparisons.iter().map(|c| c.alert.clone()).collect();
    n.sort();
    n
}

/// Proves the recorded run agrees with its Prometheus exactly: every alert Prometheus fired
/// (ConsumerLagHigh, LeaderChurn, TargetDown of the paused leader) the checker fires at the
/// same evaluation instants over the same samples, with no stretch of disagreement at all,
/// within a tolerance of one evaluation interval.
#[test]
fn the_recorded_run_agrees_exactly_over_prometheus_samples() {
    let (v, d) = check(&fixture());
    assert_eq!(v, Validity::Valid, "{:?}", d.comparisons);
    assert!(
        d.compared_over.contains("samples.jsonl"),
        "{}",
        d.compared_over
    );
    assert_eq!(d.tolerance_s, 1.0);
    assert_eq!(
        alert_names(&d),
        ["ConsumerLagHigh", "LeaderChurn", "TargetDown"],
        "{:?}",
        d.comparisons
    );
    for c in &d.comparisons {
        assert!(c.agree && c.longest_disagreement_s == 0.0, "{c:?}");
        assert_eq!(c.ours, c.prometheus, "{c:?}");
    }
}

/// Proves an evaluator that read different samples than Prometheus disagrees: in a copy whose
/// failed scrapes of the paused order leader read as answered (`up` 1), the checker no longer
/// fires TargetDown while Prometheus did, and the check is unknown.
#[test]
fn samples_other_than_prometheus_saw_disagree() {
    let dir = copy();
    let mut series = samples(dir.path());
    let mut flipped = 0;
    for s in series
        .iter_mut()
        .filter(|s| s.labels.get("__name__").map(String::as_str) == Some("up"))
    {
        for p in s.points.iter_mut().filter(|p| p.1 == 0.0) {
            p.1 = 1.0;
            flipped += 1;
        }
    }
    assert!(flipped >= 2, "the recorded pause failed scrapes: {flipped}");
    write_samples(dir.path(), &series);
    let (v, d) = check(dir.path());
    assert_eq!(v, Validity::Unknown, "{:?}", d.comparisons);
    let down = d
        .comparisons
        .iter()
        .find(|c| c.alert == "TargetDown")
        .expect("TargetDown compared");
    assert!(
        !down.agree && down.ours.is_empty() && !down.prometheus.is_empty(),
        "{down:?}"
    );
}

/// Proves the tolerance is one evaluation interval: Prometheus's ConsumerLagHigh starting one
/// evaluation later agrees, two evaluations later disagrees; an alert only Prometheus fired
/// (LeaderChurn for payment, 3 s) disagrees; and with no Prometheus alert at all the check
/// is unknown.
#[test]
fn prometheus_firing_later_or_otherwise_disagrees() {
    let shifted = |by_ms: i64| {
        let dir = copy();
        let mut run = prom_run(dir.path());
        let lag = run
            .alerts
            .iter_mut()
            .find(|a| a.labels["alertname"] == "ConsumerLagHigh")
            .expect("ConsumerLagHigh in the recorded run");
        lag.from_unix_ms += by_ms;
        write_prom_run(dir.path(), &run);
        check(dir.path())
    };
    let (v, d) = shifted(1000);
    assert_eq!(v, Validity::Valid, "{:?}", d.comparisons);
    let (v, d) = shifted(2000);
    assert_eq!(v, Validity::Unknown, "{:?}", d.comparisons);

    let dir = copy();
    let mut run = prom_run(dir.path());
    let mut extra = run.alerts[0].clone();
    extra
        .labels
        .insert("alertname".into(), "LeaderChurn".into());
    extra.labels.insert("domain".into(), "payment".into());
    extra.to_unix_ms = extra.from_unix_ms + 3000;
    run.alerts.push(extra);
    write_prom_run(dir.path(), &run);
    let (v, d) = check(dir.path());
    assert_eq!(v, Validity::Unknown, "{:?}", d.comparisons);

    let dir = copy();
    let mut run = prom_run(dir.path());
    run.alerts.clear();
    write_prom_run(dir.path(), &run);
    let (v, d) = check(dir.path());
    assert_eq!(v, Validity::Unknown, "{:?}", d.comparisons);
}

/// Proves a truncated samples file is a clear unknown naming the file and line, not a
/// comparison over part of the samples.
#[test]
fn a_truncated_samples_file_is_unknown() {
    let dir = copy();
    let path = dir.path().join("prometheus/samples.jsonl");
    let text = std::fs::read_to_string(&path).expect("samples");
    std::fs::write(&path, &text[..text.len() / 2]).expect("truncate");
    let run = RunData::load(dir.path()).expect("loads");
    let v = alerts::check(&run, &Params::default());
    assert_eq!(v.validity, Validity::Unknown);
    assert!(v.summary.contains("samples.jsonl line"), "{}", v.summary);
}
