//! The seam-signals check and the performance summary.

use checker::analysis::Phase;
use checker::{RunData, Validity};
use formats::history::{OpType, F};

use crate::support::{legal_run, Run};

fn load(run: &Run) -> (tempfile::TempDir, RunData) {
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = RunData::load(dir.path()).expect("loads");
    (dir, data)
}

fn signals(run: &Run) -> checker::Verdict<checker::checks::signals::Details> {
    let (_dir, data) = load(run);
    let p = checker::checks::Params::default();
    checker::checks::signals::check(&data, &p.signals, &p.budget)
}

/// Proves that for the paused order leader the check names the signal that moved first (quorum
/// write p99, 1 s after the fault started) and when every other signal moved: leader churn at
/// 9 s, consumer lag at 10 s, the replayed charge at 13 s.
#[test]
fn first_signal_per_fault() {
    let r = signals(&legal_run());
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    let fault = &r.details.faults[0];
    assert_eq!(fault.id, "f1");
    assert_eq!(
        fault.first.as_ref().map(|m| m.signal.as_str()),
        Some("quorum_write_p99")
    );
    let after = |name: &str| {
        fault
            .moved
            .iter()
            .find(|m| m.signal == name)
            .unwrap_or_else(|| panic!("{name} moved: {fault:?}"))
            .after_s
    };
    assert!((after("quorum_write_p99") - 1.0).abs() < 1e-6);
    assert!((after("leader_churn") - 2.0).abs() < 1e-6);
    assert!((after("consumer_lag") - 3.0).abs() < 1e-6);
    assert!((after("duplicate_effects") - 6.0).abs() < 1e-6);
    assert!(
        r.summary.contains("f1 quorum_write_p99 after 1.0 s"),
        "{}",
        r.summary
    );
    assert_eq!(r.details.signals.len(), 6);
}

/// Proves a quiet fault (no signal past its threshold) is reported as "none", still valid;
/// a run with faults but without metrics.csv, or with no samples during a fault, is unknown;
/// a run without faults is valid with nothing to attribute.
#[test]
fn missing_data_is_unknown() {
    let mut quiet = legal_run();
    quiet.metrics.retain(|m| {
        m.0 < 8.0 || m.0 >= 20.0 || m.3 == "requests_total" || m.3 == "retry_attempts_total"
    });
    let r = signals(&quiet);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert!(r.details.faults[0].first.is_none());

    let mut no_metrics = legal_run();
    no_metrics.with_metrics = false;
    assert_eq!(signals(&no_metrics).validity, Validity::Unknown);

    let mut blind = legal_run();
    blind.metrics.retain(|m| !(7.5..22.0).contains(&m.0));
    let r = signals(&blind);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert!(r.summary.contains("f1"), "{}", r.summary);

    let mut calm = legal_run();
    calm.ops.retain(|o| !o.process.is_nemesis());
    assert_eq!(signals(&calm).validity, Validity::Valid);
}

/// Proves the perf summary splits operations by phase, with availability during the fault
/// below availability before it, and latency quantiles in milliseconds.
#[test]
fn perf_per_phase() {
    let mut run = legal_run();
    // One request during the pause timed out.
    let op = run
        .ops
        .iter_mut()
        .find(|o| o.op_type == OpType::Ok && o.time_ns > 12_000_000_000)
        .expect("an op completing after the pause");
    op.op_type = OpType::Info;
    let (_dir, data) = load(&run);
    let r = checker::checks::perf::check(&data.history);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    let phases = &r.details.phases;
    let all = |phase: Phase| {
        phases
            .iter()
            .find(|p| p.phase == phase && p.f == "all")
            .unwrap_or_else(|| panic!("{phase:?}"))
    };
    assert_eq!(all(Phase::BeforeFaults).availability, Some(1.0));
    let during = all(Phase::DuringFaults).availability.expect("number");
    assert!(during < 1.0, "{during}");
    let p99 = |phase| all(phase).latency_ms.expect("latency").p99;
    let (p99_before, p99_during) = (p99(Phase::BeforeFaults), p99(Phase::DuringFaults));
    assert!(
        p99_before < 50.0 && p99_during > 1000.0,
        "{p99_before} {p99_during}"
    );
    assert!(r.details.availability_during_faults.is_some());
    assert!(all(Phase::AfterFaults).ok_per_s.expect("rate") > 1.0);
}

/// Proves a history without completed client operations leaves perf unknown.
#[test]
fn perf_without_operations_is_unknown() {
    let mut run = legal_run();
    run.ops.retain(|o| o.process.is_nemesis());
    let (_dir, data) = load(&run);
    assert_eq!(
        checker::checks::perf::check(&data.history).validity,
        Validity::Unknown
    );
}

/// Proves a fault whose start failed (its completion carries an error: nothing was injected)
/// is named as not started rather than attributed: alone it makes the check unknown (the run
/// tested nothing under faults), beside a fault that did start it is listed in a valid summary.
#[test]
fn faults_that_did_not_start_are_named() {
    let fail_start = |run: &mut Run| {
        let start = run
            .ops
            .iter_mut()
            .find(|o| o.process.is_nemesis() && o.f == F::FaultStart && o.op_type == OpType::Info)
            .expect("a start completion");
        start.error = Some("no role nope on node n1".into());
    };
    let mut alone = legal_run();
    fail_start(&mut alone);
    let r = signals(&alone);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert!(
        r.summary.contains("none of the 1 planned faults started")
            && r.summary.contains("no role nope"),
        "{}",
        r.summary
    );

    let mut beside = legal_run();
    fail_start(&mut beside);
    beside.fault("f2", "pause", "n2/payment", 10.0, 12.0);
    let r = signals(&beside);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert!(r.summary.contains("1 did not start (f1"), "{}", r.summary);
    assert!(r.summary.starts_with("1 of 1 faults"), "{}", r.summary);
    assert_eq!(r.details.not_started.len(), 1);
}
