//! The fencing check over store logs (contract §4).

use checker::{RunData, Validity};
use formats::Role;
use serde_json::json;

use crate::support::{legal_run, Run};

fn fencing(run: &Run) -> checker::Verdict<checker::checks::fencing::Details> {
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = RunData::load(dir.path()).expect("loads");
    checker::checks::fencing::check(&data)
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
