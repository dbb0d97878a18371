//! The retry-load check over `metrics.csv` (contract §3, §5).

use checker::{RunData, Validity};
use serde_json::json;

use crate::support::{legal_run, Run};

fn retry_load(run: &Run) -> checker::Verdict<checker::checks::retry_load::Details> {
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = RunData::load(dir.path()).expect("loads");
    let p = checker::checks::Params::default();
    checker::checks::retry_load::check(&data, &p.budget, &p.recovery)
}

/// n1's order role retries payment 20 times a second from 9 s to 13 s: 60 retries in the
/// 10-20 s window, where the budget allows 0.1 * 190 requests (this window's 100 and the 90 of
/// the window before) + 1 * 11 = 30.
fn storm(run: &mut Run) {
    run.metrics
        .retain(|m| !(m.1 == "n1" && m.3 == "retry_attempts_total" && m.4.contains("payment")));
    let mut retries = 0.0;
    for s in 0..20 {
        if (9..13).contains(&s) {
            retries += 20.0;
        }
        let l = "{downstream=\"payment\"}";
        run.metric(
            s as f64 + 0.02,
            "n1",
            "order",
            "retry_attempts_total",
            l,
            retries,
        );
    }
}

/// Proves the legal run is within the budget and reports attempts per logical request, the
/// retry share, refusals, the parameters used, and the recovery after the heal.
#[test]
fn within_budget_passes_with_the_numbers() {
    let r = retry_load(&legal_run());
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    let payment = r
        .details
        .per_downstream
        .iter()
        .find(|d| d.downstream == "payment")
        .expect("payment")
        .clone();
    // 3 callers x 19 seconds x 10 requests; retries 4 per caller (first sample is the base).
    assert_eq!(payment.requests, 570.0);
    assert_eq!(payment.retries, 12.0);
    let apr = payment.attempts_per_request.expect("number");
    assert!((apr - 582.0 / 570.0).abs() < 1e-9, "{apr}");
    assert_eq!(r.details.params.budget.ratio, 0.1);
    assert_eq!(r.details.params.budget.window_s, 10);
    assert!(r.details.budget_on);
    let rec = &r.details.recovery[0];
    assert_eq!(rec.id, "f1");
    assert!(rec.recovery_s.expect("recovered") < 2.0, "{rec:?}");
}

/// Proves retries past the budget are invalid, naming the caller and window, also when the
/// pipeline's budget was switched off (`no_retry_budget`: the switch proves the check can
/// fail), and that the summary then says the budget was off.
#[test]
fn over_budget_is_flagged_with_or_without_the_budget() {
    let mut run = legal_run();
    storm(&mut run);
    let r = retry_load(&run);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    let w = &r.details.over_budget[0];
    assert_eq!(w.node, "n1");
    assert_eq!(w.downstream, "payment");
    assert_eq!(w.start_s, 10);
    assert_eq!(w.retries, 60.0);
    assert_eq!(w.budget_requests, 190.0);
    assert_eq!(w.allowed_retries, 30.0);

    run.spec["no_retry_budget"] = json!(true);
    let r = retry_load(&run);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    assert_eq!(r.details.over_budget_total, 1);
    assert!(!r.details.budget_on);
    assert!(r.summary.contains("switched off"), "{}", r.summary);
}

/// Proves a run without `metrics.csv`, or without request counters in it, is unknown.
#[test]
fn missing_metrics_are_unknown() {
    let mut run = legal_run();
    run.with_metrics = false;
    assert_eq!(retry_load(&run).validity, Validity::Unknown);
    let mut run = legal_run();
    run.metrics.retain(|m| m.3 != "requests_total");
    assert_eq!(retry_load(&run).validity, Validity::Unknown);
}

/// Proves recovery is "never" (null) when throughput does not come back before the workload
/// ends.
#[test]
fn recovery_that_never_comes_is_null() {
    let mut run = legal_run();
    // Every order invoked after the heal fails.
    for op in run.ops.iter_mut() {
        if op.op_type == formats::history::OpType::Ok && op.time_ns > 12_500_000_000 {
            op.op_type = formats::history::OpType::Fail;
        }
    }
    let r = retry_load(&run);
    assert!(r.details.recovery[0].recovery_s.is_none(), "{r:#?}");
}

/// Proves a malformed `metrics.csv` (wrong header, a bad number, bad labels, a row cut
/// mid-line) is an error naming the file and the line, never a panic, and that `analyze`
/// reports it the same way.
#[test]
fn malformed_metrics_name_file_and_line() {
    let cases: [(&str, &str, &str); 4] = [
        ("time,node,role,metric,labels,value\n", "line 1", "header"),
        (
            "t_s,node,role,metric,labels,value\n1.0,n1,order,requests_total,,x\n",
            "line 2",
            "not a number",
        ),
        (
            "t_s,node,role,metric,labels,value\n1.0,n1,order,requests_total,{a=b},1\n",
            "line 2",
            "name=",
        ),
        (
            "t_s,node,role,metric,labels,value\n1.0,n1,order,requests_total,,1\n2.0,n1,ord",
            "line 3",
            "truncated",
        ),
    ];
    for (text, line, what) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut run = legal_run();
        run.with_metrics = false;
        run.write(dir.path());
        std::fs::write(dir.path().join("metrics.csv"), text).expect("w");
        let err = RunData::load(dir.path()).expect_err("must not load");
        let msg = err.to_string();
        assert!(
            msg.contains("metrics.csv") && msg.contains(line) && msg.contains(what),
            "{msg}"
        );
        let err = checker::analyze(dir.path(), &checker::Params::default())
            .expect_err("analyze refuses too");
        assert!(err.to_string().contains("metrics.csv"), "{err}");
    }
}
