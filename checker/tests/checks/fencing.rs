//! The fencing check over store logs (contract §4).

use checker::{RunData, Validity};
use formats::Role;
use serde_json::json;

use crate::support::{legal_run, Run};

fn fencing(run: &Run) -> checker::Verdict<checker::checks::fencing::Details> {
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = RunData::load(dir.path()).expect("loads");
    checker::checks::fencing::check(&data, &Default::default())
}

/// Proves the legal run passes and lists every rejected stale token with domain, key, rejected
/// and current token and the log line it came from.
#[test]
fn rejections_are_listed_and_the_run_passes() {
    let r = fencing(&legal_run());
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    let rejections = &r.details.rejections;
    assert_eq!(rejections.len(), 3, "one per replica");
    let first = &rejections[0];
    assert_eq!(first.domain, "order");
    assert_eq!(first.key, "saga/o3");
    assert_eq!(first.rejected_token, 1);
    assert_eq!(first.current_token, 2);
    assert_eq!(first.at, "nodes/n1/store.log:6");
    assert_eq!(r.details.rejected_by_domain["order"], 3);
}

/// Proves a replica accepting a write under a token lower than one it already accepted in that
/// domain is invalid, naming both lines; the same lower token on another replica that never saw
/// the higher one is fine.
#[test]
fn lower_token_after_higher_is_flagged() {
    let mut run = legal_run();
    run.log(
        "n2",
        "store",
        "write accepted",
        json!({"domain": "order", "key": "saga/o4", "token": 1, "version": 10}),
    );
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    let v = &r.details.violations[0];
    assert_eq!(v.node, "n2");
    assert_eq!(v.token, 1);
    assert_eq!(v.prior_token, 2);
    assert_eq!(v.at, "nodes/n2/store.log:8");
    assert_eq!(v.prior_at, "nodes/n2/store.log:4");
    assert!(r.summary.contains("nodes/n2/store.log:8"), "{}", r.summary);

    let mut other_domain = legal_run();
    other_domain.log(
        "n2",
        "store",
        "write accepted",
        json!({"domain": "inventory", "key": "stock/sku-1", "token": 1, "version": 1}),
    );
    assert_eq!(fencing(&other_domain).validity, Validity::Valid);
}

/// Proves a `stale write accepted (fencing disabled)` line (what `--no-fencing` logs) is
/// invalid with the replica's current token as the evidence.
#[test]
fn stale_write_with_fencing_disabled_is_flagged() {
    let mut run = legal_run();
    run.spec["no_fencing"] = json!(true);
    run.log(
        "n3",
        "store",
        "stale write accepted (fencing disabled)",
        json!({"domain": "order", "key": "saga/o3", "token": 1, "current_token": 2}),
    );
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    let v = &r.details.violations[0];
    assert_eq!(v.prior_token, 2);
    assert_eq!(v.message, "stale write accepted (fencing disabled)");
}

/// Proves missing store logs in a run that had a store give unknown (all missing, or one node's
/// missing while its other logs exist), and a run without a store is not applicable (valid).
#[test]
fn missing_store_logs_are_unknown() {
    let mut run = legal_run();
    run.logs.clear();
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");

    let mut run = legal_run();
    run.logs.remove("nodes/n3/store.log");
    run.log(
        "n3",
        "order",
        "listening",
        json!({"addr": "127.0.0.1:7302"}),
    );
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert_eq!(r.details.missing_logs[0], "nodes/n3/store.log");

    let mut run = legal_run();
    run.logs.retain(|path, _| !path.starts_with("nodes/n3/"));
    let r = fencing(&run);
    assert_eq!(
        r.validity,
        Validity::Unknown,
        "a node without any log folder: {r:#?}"
    );
    assert!(r.details.missing_logs[0].contains("3 nodes"));

    let mut run = legal_run();
    run.logs.clear();
    run.metrics.clear();
    run.spec["roles"] = json!(["order", "payment"]);
    run.state.services = vec![Role::Order, Role::Payment];
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert!(!r.details.applicable);
}

/// Proves a non-JSON line (a panic message, a line cut by SIGKILL) is counted, not fatal, and a
/// relevant line without its token makes the check unknown rather than silently valid.
#[test]
fn unreadable_lines_are_counted() {
    let mut run = legal_run();
    run.logs
        .get_mut("nodes/n1/store.log")
        .expect("log")
        .push("thread 'main' panicked at write accepted".into());
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert_eq!(r.details.unparseable_lines, 1);

    run.log(
        "n1",
        "store",
        "write accepted",
        json!({"domain": "order", "key": "k"}),
    );
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
}

/// An election of `holder` in `domain` under `token` at `t_s`, as the elector logs it.
fn elected(run: &mut Run, node: &str, t_s: f64, domain: &str, token: u64) {
    run.log_at(
        node,
        "order",
        t_s,
        "became leader",
        json!({"domain": domain, "holder": node, "token": token}),
    );
}

/// Proves two holders that became leader of one domain under one token (a split lease) make
/// the run invalid, naming the domain, token and both holders; one holder per token passes.
#[test]
fn two_leaders_under_one_token_are_invalid() {
    let mut run = legal_run();
    elected(&mut run, "n1", 0.5, "order", 1);
    elected(&mut run, "n2", 9.0, "order", 2);
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert_eq!(r.details.elections.len(), 2);
    elected(&mut run, "n3", 9.2, "order", 2);
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    let split = &r.details.split_leases[0];
    assert_eq!((split.domain.as_str(), split.token), ("order", 2));
    assert_eq!(split.holders, ["n2", "n3"]);
    assert!(r.summary.contains("two holders"), "{}", r.summary);
}

/// Proves an election and a refusal outside every fault window after the start-up grace are
/// named as lease noise (the run stays valid), while those during the grace, during a fault
/// or right after its heal are not.
#[test]
fn lease_changes_outside_faults_are_noise() {
    let mut run = legal_run();
    run.logs.retain(|path, _| !path.ends_with("store.log"));
    for node in ["n1", "n2", "n3"] {
        run.log_at(
            node,
            "store",
            0.1,
            "write accepted",
            json!({"domain": "order", "key": "k", "token": 1, "version": "1.1"}),
        );
    }
    elected(&mut run, "n1", 0.5, "order", 1);
    elected(&mut run, "n2", 9.0, "order", 2);
    let quiet = fencing(&run);
    assert!(quiet.details.lease_noise.is_empty(), "{quiet:#?}");
    elected(&mut run, "n3", 17.0, "order", 3);
    run.log_at(
        "n1",
        "store",
        18.0,
        "fencing rejected write",
        json!({"domain": "order", "key": "k", "keys": 1, "rejected_token": 2, "current_token": 3}),
    );
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    let noise = &r.details.lease_noise;
    assert_eq!(noise.len(), 2, "{noise:#?}");
    assert_eq!(
        (noise[0].kind.as_str(), noise[0].node.as_str()),
        ("election", "n3")
    );
    assert_eq!(noise[0].tokens, "token 3");
    assert_eq!(noise[1].kind, "rejection");
    assert_eq!(noise[1].tokens, "rejected 2, current 3");
    assert!(r.summary.contains("lease noise"), "{}", r.summary);
}

/// Proves a replica refusing a leader's writes for longer than a lease with no fault around
/// (a poisoned floor) makes the run unknown, not valid.
#[test]
fn a_floor_stuck_against_the_leader_is_unknown() {
    let mut run = legal_run();
    for t in [15.6, 16.5, 17.5, 18.5] {
        run.log_at(
            "n3",
            "store",
            t,
            "fencing rejected write",
            json!({"domain": "inventory", "key": "stock/sku-1", "keys": 1,
                   "rejected_token": 1, "current_token": 2}),
        );
    }
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    let s = &r.details.stuck_floors[0];
    assert_eq!(
        (s.node.as_str(), s.domain.as_str(), s.refusals),
        ("n3", "inventory", 4)
    );
    assert!(
        r.summary.contains("worked against the cluster"),
        "{}",
        r.summary
    );
}

/// Proves the replicas' `fencing_rejected_writes_total` must equal the refusals their logs
/// show (a restart's reset counted), and a disagreement is unknown with both numbers.
#[test]
fn counters_must_match_the_logs() {
    let counter = |run: &mut Run, node: &str, values: &[f64]| {
        for (i, v) in values.iter().enumerate() {
            run.metric(
                i as f64 + 0.5,
                node,
                "store",
                "fencing_rejected_writes_total",
                "{domain=\"order\"}",
                *v,
            );
        }
    };
    let mut run = legal_run();
    counter(&mut run, "n1", &[0.0, 1.0, 1.0]);
    counter(&mut run, "n2", &[0.0, 0.0, 1.0]);
    // n3 restarted: 1 before the reset, 0 then 0 after.
    counter(&mut run, "n3", &[1.0, 0.0, 0.0]);
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert!(r.details.counts.compared);
    let mut run = legal_run();
    counter(&mut run, "n1", &[0.0, 1.0, 2.0]);
    counter(&mut run, "n2", &[0.0, 1.0, 1.0]);
    counter(&mut run, "n3", &[0.0, 1.0, 1.0]);
    let r = fencing(&run);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    let m = &r.details.counts.mismatches[0];
    assert_eq!((m.node.as_str(), m.logged, m.counted), ("n1", 1, 2));
    assert!(r.summary.contains("1 logged, 2 counted"), "{}", r.summary);
}
