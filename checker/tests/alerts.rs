//! The checker's rule evaluator against the pipeline's own rules and their promtool tests
//! (`sut/prometheus/alerts.yml`, `alerts_test.yml`): it passes every test promtool runs, at
//! every evaluation step its firing alerts are what promtool computes (a test file written from
//! the evaluator's answers at every step passes `promtool test rules`), and every rule has a
//! series that fires it and one that does not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use checker::promql::duration::parse_duration_ms;
use checker::promql::promtool::{self, AlertTest, ExpectedAlert, TestFile};
use checker::promql::rules::{self, AlertRule, Evaluator};

fn prometheus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sut/prometheus")
}

fn rules() -> Vec<AlertRule> {
    let text = std::fs::read_to_string(prometheus_dir().join("alerts.yml")).expect("alerts.yml");
    rules::load(&text).expect("rules load")
}

fn tests() -> TestFile {
    let text =
        std::fs::read_to_string(prometheus_dir().join("alerts_test.yml")).expect("alerts_test");
    promtool::load(&text).expect("tests load")
}

type Firing = BTreeSet<(Vec<(String, String)>, Vec<(String, String)>)>;

/// The firing alerts named `name`, as promtool compares them: labels without `alertname`,
/// annotations.
fn firing_named(alerts: &[rules::ActiveAlert], name: &str) -> Firing {
    alerts
        .iter()
        .filter(|a| a.firing && a.labels["alertname"] == name)
        .map(|a| {
            let labels = a
                .labels
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let ann = a.annotations.clone().into_iter().collect();
            (labels, ann)
        })
        .collect()
}

fn expected(exp: &[ExpectedAlert]) -> Firing {
    exp.iter()
        .map(|e| {
            (
                e.exp_labels.clone().into_iter().collect(),
                e.exp_annotations.clone().into_iter().collect(),
            )
        })
        .collect()
}

/// Every step's active alerts of one test group, from 0 to `until_ms`.
fn run_group(
    rules: &[AlertRule],
    group: &promtool::TestGroup,
    step_ms: i64,
    until_ms: i64,
) -> BTreeMap<i64, Vec<rules::ActiveAlert>> {
    let store = group.store().expect("series");
    let mut ev = Evaluator::new(rules.to_vec());
    let mut out = BTreeMap::new();
    let mut t = 0;
    while t <= until_ms {
        out.insert(t, ev.step(&store, t).expect("evaluates"));
        t += step_ms;
    }
    out
}

/// Proves the evaluator passes every alert test of alerts_test.yml: at each eval_time the
/// alerts of that name firing are exactly the expected ones, labels and annotations.
#[test]
fn the_evaluator_passes_every_promtool_test() {
    let (rules, file) = (rules(), tests());
    let step = parse_duration_ms(&file.evaluation_interval).expect("interval");
    let mut checked = 0;
    for g in &file.tests {
        let until = g
            .alert_rule_test
            .iter()
            .map(|t| parse_duration_ms(&t.eval_time).expect("eval_time"))
            .max()
            .unwrap_or(0);
        let steps = run_group(&rules, g, step, until);
        for t in &g.alert_rule_test {
            let at = parse_duration_ms(&t.eval_time).expect("eval_time");
            let got = firing_named(&steps[&at], &t.alertname);
            assert_eq!(
                got,
                expected(&t.exp_alerts),
                "{}: {} at {}",
                g.name,
                t.alertname,
                t.eval_time
            );
            checked += 1;
        }
    }
    assert!(checked >= 18, "only {checked} alert tests");
}

/// Proves every rule (alert name with its severity) is fired by some test series and is
/// expected absent at some eval time of a test of its name.
#[test]
fn every_rule_has_a_firing_and_a_quiet_test() {
    let (rules, file) = (rules(), tests());
    let all: Vec<&AlertTest> = file.tests.iter().flat_map(|g| &g.alert_rule_test).collect();
    for r in &rules {
        let mine = |e: &ExpectedAlert| {
            r.labels
                .iter()
                .all(|(k, v)| e.exp_labels.get(k).is_some_and(|x| x == v))
        };
        let fires = all
            .iter()
            .any(|t| t.alertname == r.name && t.exp_alerts.iter().any(mine));
        let quiet = all
            .iter()
            .any(|t| t.alertname == r.name && !t.exp_alerts.iter().any(mine));
        assert!(fires, "no test fires {} {:?}", r.name, r.labels);
        assert!(quiet, "no test expects {} {:?} quiet", r.name, r.labels);
    }
}

/// Writes a test file for promtool whose expectations are the evaluator's firing alerts at
/// every step of every test group, for every alert name.
fn evaluator_as_promtool_tests(dir: &Path) -> PathBuf {
    let (rules, file) = (rules(), tests());
    let step = parse_duration_ms(&file.evaluation_interval).expect("interval");
    let names: BTreeSet<String> = rules.iter().map(|r| r.name.clone()).collect();
    let mut out = file.clone();
    out.rule_files = vec![prometheus_dir()
        .join("alerts.yml")
        .canonicalize()
        .expect("rules path")
        .display()
        .to_string()];
    for g in &mut out.tests {
        let until = g
            .alert_rule_test
            .iter()
            .map(|t| parse_duration_ms(&t.eval_time).expect("eval_time"))
            .max()
            .unwrap_or(0)
            + 10 * step;
        let steps = run_group(&rules, g, step, until);
        g.alert_rule_test = steps
            .iter()
            .flat_map(|(t, alerts)| {
                names.iter().map(move |name| AlertTest {
                    eval_time: format!("{t}ms"),
                    alertname: name.clone(),
                    exp_alerts: firing_named(alerts, name)
                        .into_iter()
                        .map(|(l, a)| ExpectedAlert {
                            exp_labels: l.into_iter().collect(),
                            exp_annotations: a.into_iter().collect(),
                        })
                        .collect(),
                })
            })
            .collect();
    }
    let path = dir.join("evaluator_test.yml");
    std::fs::write(&path, serde_yaml::to_string(&out).expect("yaml")).expect("write");
    path
}

/// Proves promtool agrees with the evaluator at every evaluation step of every test series
/// (not only at the test file's eval times). Needs promtool (Debian's `prometheus` package);
/// without it the test says so and passes, except under CI=true where a skip is a failure.
#[test]
fn promtool_agrees_with_the_evaluator_at_every_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = evaluator_as_promtool_tests(dir.path());
    let run = std::process::Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(&path)
        .output();
    let out = match run {
        Ok(o) => o,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is needed under CI=true: {e}"
            );
            eprintln!("skipped: promtool not found ({e}); apt-get install prometheus");
            return;
        }
    };
    assert!(
        out.status.success(),
        "promtool disagrees with the evaluator:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
