//! Fault-free runs: with nothing injected, fencing stays quiet. Every check is valid, no domain
//! elects again after its first leader unless a failed renewal (or an outbid leader) was
//! logged before, and a replica refuses a write only in a domain that had such an explained
//! election: a machine starved by a CPU hog lets a lease lapse, and the deposed leader's writes
//! still in flight are then refused, which is fencing doing its job, not noise.

use checker::checks::fencing::Details;
use checker::checks::Fencing;

use crate::{harness, latest, pipeline_bin, text};

/// Step-down causes that explain a later election.
const EXPLAINED_BY: [&str; 3] = ["renewal_refused", "lease_expired", "outbid"];

fn check_quiet_run(seed: u64) {
    let out = tempfile::tempdir().expect("tempdir");
    let seed = seed.to_string();
    let o = harness(&[
        "run",
        "--nemesis",
        "none",
        "--time-limit",
        "20s",
        "--seed",
        &seed,
        "--out",
        out.path().to_str().expect("utf8"),
    ])
    .arg("--pipeline-bin")
    .arg(pipeline_bin())
    .output()
    .expect("runs");
    assert_eq!(o.status.code(), Some(0), "seed {seed}: {}", text(&o));
    let run = latest(out.path());
    let results: checker::Results =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).expect("results"))
            .expect("parses");
    assert!(
        results
            .checks
            .iter()
            .all(|c| c.validity == formats::Validity::Valid),
        "seed {seed}: every check valid: {:#?}",
        results.checks
    );
    let (_, d): (_, Details) = results.check::<Fencing>().expect("fencing details");
    assert!(d.counts.compared, "seed {seed}: the counters were compared");
    let end_s = results.duration_s.expect("a duration");
    let mut seen: std::collections::BTreeSet<&str> = Default::default();
    let mut re_elected: std::collections::BTreeSet<&str> = Default::default();
    for e in &d.elections {
        if e.t_s.is_some_and(|t| t > end_s) {
            continue; // teardown
        }
        if seen.insert(e.domain.as_str()) {
            continue;
        }
        let stepped = d.lease_noise.iter().any(|n| {
            n.at == e.at
                && n.after
                    .as_deref()
                    .is_some_and(|a| EXPLAINED_BY.contains(&a))
        });
        let early = e.t_s.is_some_and(|t| t <= d.lease_params.grace_s());
        assert!(
            stepped || early,
            "seed {seed}: a second {} election with no failed renewal before it: {e:?}",
            e.domain
        );
        re_elected.insert(e.domain.as_str());
    }
    for (domain, _) in d.rejected_by_domain.iter().filter(|(_, n)| **n > 0) {
        assert!(
            re_elected.contains(domain.as_str()),
            "seed {seed}: refusals in {domain} without an explained election"
        );
    }
}

/// Proves three fault-free 20 s runs keep fencing quiet: every check valid, no election after
/// a domain's first unless a failed renewal was logged, and refused writes only in a domain
/// with such an election.
#[test]
fn fault_free_runs_keep_fencing_quiet() {
    for seed in [101, 202, 303] {
        check_quiet_run(seed);
    }
}
