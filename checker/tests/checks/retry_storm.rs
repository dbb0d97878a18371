//! The retry-load check's storm measures (contract §3, §4): amplification at payment from the
//! `effect request arrived` lines against the budget's bound, and payment's goodput recovery.

use checker::checks::retry_load::storm::{ARRIVED, CALL_OUTCOMES};
use checker::{RunData, Validity};
use formats::history::F;
use serde_json::json;

use crate::support::{legal_run, Run};

fn retry_load(run: &Run) -> checker::Verdict<checker::checks::retry_load::Details> {
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = RunData::load(dir.path()).expect("loads");
    let p = checker::checks::Params::default();
    checker::checks::retry_load::check(&data, &p.budget, &p.recovery)
}

/// The legal run (3 callers, 10 requests a second each, within the budget) with its pause
/// replaced by a storm on payment from 5 s to 9 s, and `per_key` arrivals at payment of each
/// of 20 keys inside it (plus arrivals before and after that do not count). Goodput at
/// payment: 10 charges a second from n1, none during the storm, back from `back_s` (never if
/// `None`).
fn storm_run(per_key: usize, back_s: Option<usize>) -> Run {
    let mut run = legal_run();
    run.ops
        .retain(|o| !matches!(o.f, F::FaultStart | F::FaultHeal));
    run.fault("f1", "storm", "payment", 5.0, 9.0);
    for k in 0..20 {
        for i in 0..per_key {
            let t = 5.1 + 0.19 * i as f64 + 0.01 * k as f64;
            let node = ["n1", "n2", "n3"][(k + i) % 3];
            run.log_at(
                node,
                "payment",
                t,
                ARRIVED,
                json!({"kind": "charge", "key": format!("o{k}:charge")}),
            );
        }
    }
    for (t, key) in [(2.0, "early:charge"), (9.6, "late:charge")] {
        run.log_at(
            "n1",
            "payment",
            t,
            ARRIVED,
            json!({"kind": "charge", "key": key}),
        );
    }
    let mut ok = 0.0;
    for s in 0..20 {
        let flowing = s < 5 || back_s.is_some_and(|b| s >= b);
        if flowing {
            ok += 10.0;
        }
        let l = "{downstream=\"payment\",outcome=\"ok\",route=\"/charge\"}";
        run.metric(s as f64 + 0.02, "n1", "order", CALL_OUTCOMES, l, ok);
    }
    run
}

/// Proves amplification is the arrivals inside the storm over their distinct keys (3 per key
/// here: 60 / 20), that the bound is (keys + 0.1 × the callers' 240 requests in the 12 s
/// ending at the heal + 1/s × 11 s × 3 callers) / keys = 3.85, that a run within it is
/// valid, and that goodput back at 11 s is a recovery 2 s after the heal, not metastable.
#[test]
fn amplification_within_the_bound_is_valid() {
    let r = retry_load(&storm_run(3, Some(11)));
    assert_eq!(r.validity, Validity::Valid, "{}", r.summary);
    let a = &r.details.amplification[0];
    assert_eq!((a.arrivals, a.keys, a.callers), (60, 20, 3), "{a:?}");
    assert_eq!(a.amplification, Some(3.0));
    assert_eq!(a.requests, 240.0);
    assert!((a.allowed_retries - 57.0).abs() < 1e-9, "{a:?}");
    assert!((a.bound.expect("bound") - 3.85).abs() < 1e-9, "{a:?}");
    assert!(
        r.summary.contains("amplification at payment 3.00x"),
        "{}",
        r.summary
    );
    let g = r.details.goodput.as_ref().expect("goodput");
    assert_eq!(g.baseline_per_s, Some(10.0));
    assert_eq!(g.recovery[0].recovery_s, Some(2.0), "{g:?}");
    assert!(!g.metastable);
}

/// Proves arrivals beyond the budget's bound (5 per key against 3.85) make the check invalid
/// on their own (no caller window is over the budget in these metrics), and that goodput that
/// never comes back while the workload runs on for 10 s is reported metastable.
#[test]
fn amplification_over_the_bound_is_invalid_and_a_stuck_goodput_is_metastable() {
    let r = retry_load(&storm_run(5, None));
    assert_eq!(
        r.details.over_budget_total, 0,
        "{:?}",
        r.details.over_budget
    );
    assert_eq!(r.validity, Validity::Invalid, "{}", r.summary);
    assert!(
        r.summary.contains("over the budget's bound"),
        "{}",
        r.summary
    );
    let a = &r.details.amplification[0];
    assert_eq!((a.arrivals, a.keys), (100, 20));
    assert!(a.over_bound());
    let g = r.details.goodput.as_ref().expect("goodput");
    assert_eq!(g.recovery[0].recovery_s, None);
    assert!(g.metastable, "{g:?}");
    assert!(r.summary.contains("(metastable)"), "{}", r.summary);
}

/// Proves a run without a storm has no amplification rows and says nothing about it.
#[test]
fn no_storm_no_amplification() {
    let r = retry_load(&legal_run());
    assert!(r.details.amplification.is_empty());
    assert!(!r.summary.contains("amplification"), "{}", r.summary);
}
