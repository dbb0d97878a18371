//! Fault-free runs: with nothing injected, leases stay put and fencing stays quiet. Every
//! check is valid, no replica refuses a single write, and no domain elects again after its
//! first leader unless a failed renewal (or an outbid leader) was logged before.

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
    let rejected: u64 = d.rejected_by_domain.values().sum();
    assert_eq!(rejected, 0, "seed {seed}: no refusal: {:#?}", d.rejections);
    assert!(d.counts.compared, "seed {seed}: the counters were compared");
    let end_s = results.duration_s.expect("a duration");
    let mut seen: std::collections::BTreeSet<&str> = Default::default();
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
    }
}

/// Proves three fault-free 20 s runs keep fencing quiet: every check valid, zero refused
/// writes (logs and counters agree), and no election after a domain's first unless a failed
/// renewal was logged.
#[test]
fn fault_free_runs_keep_fencing_quiet() {
    for seed in [101, 202, 303] {
        check_quiet_run(seed);
    }
}
