//! The long runs CI makes (issue 18 and the effects issue): a kill-only run of 150 s (SIGKILLs
//! of random store replicas and service roles, each restarted, at a sustained load) and one
//! 3-minute chaos run with two faults at once, kills included. Each is one test, so the two run
//! beside each other and beside the other CLI tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use checker::checks::Effects;
use formats::effects::{effect_key, EffectViolation, Step, StepKind};
use formats::fault::{FaultPlan, Kind, Kinds};
use formats::final_state::{OrderStatus, ReservationStatus};
use formats::history::values::FaultOp;
use formats::history::{OpType, F};
use formats::ledger::LedgerEntry;
use formats::spec::RunConfig;
use formats::{Role, Validity};
use nemesis::fault::ActiveFault;

use crate::{faultproxy_bin, harness, latest, pipeline_bin, processes_mentioning, text};

/// Seeds tried for a schedule that has what a test needs (the first that has it is used, so
/// the choice is the same on every machine).
const SEEDS: std::ops::RangeInclusive<u64> = 1..=200;

/// The first seed whose plan for these options satisfies `wanted`.
fn seed_where(
    nemesis: &str,
    time_limit: Duration,
    pairs: bool,
    wanted: impl Fn(&[FaultPlan]) -> bool,
) -> (u64, Vec<FaultPlan>) {
    SEEDS
        .map(|seed| (seed, planned(nemesis, time_limit, pairs, seed)))
        .find(|(_, plan)| wanted(plan))
        .unwrap_or_else(|| panic!("no seed in {SEEDS:?} plans what the test needs"))
}

/// The faults `harness run` would plan for these options and seed (the run's own function).
fn planned(nemesis: &str, time_limit: Duration, pairs: bool, seed: u64) -> Vec<FaultPlan> {
    let config = RunConfig {
        nemesis: nemesis.parse::<Kinds>().expect("kinds"),
        nemesis_pairs: pairs,
        time_limit,
        ..RunConfig::default()
    };
    harness::faults::plan(&config, seed, 3)
        .into_iter()
        .map(|p| p.plan)
        .collect()
}

/// Runs `harness run` with `args` (plus the binaries, `--out`, and no Prometheus beside the
/// cluster: these runs prove durability; comparing a real Prometheus's alert spans with the
/// checker's is the alerts tests' business, and under load they can disagree, which makes the
/// verdict unknown); asserts exit 0 and `valid`.
fn run_valid(out: &Path, args: &[&str]) -> std::path::PathBuf {
    let o = harness(args)
        .args(["--out", out.to_str().expect("utf8"), "--prometheus", "off"])
        .arg("--pipeline-bin")
        .arg(pipeline_bin())
        .arg("--faultproxy-bin")
        .arg(faultproxy_bin())
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "valid");
    latest(out)
}

/// Every kill the nemesis made, from the heal ledger: (id, node, role), each healed (the heal
/// of a kill is the restart), with the history's start and heal of each one recorded without
/// an error.
fn kills_restarted(run: &Path) -> Vec<(String, String, Role)> {
    let text = std::fs::read_to_string(run.join(formats::ledger::FILE)).expect("ledger");
    let mut started: BTreeMap<String, ActiveFault> = BTreeMap::new();
    let mut healed = std::collections::BTreeSet::new();
    for line in text.lines() {
        match serde_json::from_str::<LedgerEntry<ActiveFault>>(line).expect("a ledger line") {
            LedgerEntry::Start { id, fault } => {
                started.insert(id, fault);
            }
            LedgerEntry::Healed { id } => {
                healed.insert(id);
            }
        }
    }
    let data = checker::RunData::load(run).expect("run dir parses");
    let answered = |f: F| -> BTreeMap<String, Option<String>> {
        data.history
            .ops
            .iter()
            .filter(|o| o.process.is_nemesis() && o.f == f && o.op_type == OpType::Info)
            .map(|o| {
                let op: FaultOp = o.payload().expect("a fault op");
                (op.id, o.error.clone())
            })
            .collect()
    };
    let (starts, heals) = (answered(F::FaultStart), answered(F::FaultHeal));
    let mut kills = Vec::new();
    for (id, fault) in started {
        assert!(healed.contains(&id), "{id} ({fault:?}) never healed");
        assert_eq!(starts.get(&id), Some(&None), "{id} started without error");
        assert_eq!(heals.get(&id), Some(&None), "{id} healed without error");
        if let ActiveFault::Kill { node, role, .. } = fault {
            kills.push((id, node, role));
        }
    }
    kills
}

/// Each killed process came back: its role's log on that node says `starting` once more than
/// the kills it took (the first start plus one restart per kill).
fn assert_restarted_in_logs(run: &Path, kills: &[(String, String, Role)]) {
    let mut per_process: BTreeMap<(&str, Role), usize> = BTreeMap::new();
    for (_, node, role) in kills {
        *per_process.entry((node.as_str(), *role)).or_default() += 1;
    }
    for ((node, role), n) in per_process {
        let log = run.join("nodes").join(node).join(format!("{role}.log"));
        let starts = std::fs::read_to_string(&log)
            .expect("role log")
            .lines()
            .filter(|l| l.contains("\"message\":\"starting\""))
            .count();
        assert_eq!(starts, n + 1, "{}: {n} kills", log.display());
    }
}

/// The effects check's typed details, asserted valid with no violation of any kind.
fn effects_clean(run: &Path) -> checker::checks::effects::Details {
    let results: checker::Results =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).expect("results"))
            .expect("parses");
    let (validity, d) = results.check::<Effects>().expect("effects details");
    assert_eq!(validity, Validity::Valid, "{:#?}", d.violations);
    assert!(d.violation_counts.is_empty(), "{:?}", d.violation_counts);
    assert!(d.read_errors.is_empty(), "{:?}", d.read_errors);
    for kind in [
        EffectViolation::StuckSaga,
        EffectViolation::AcknowledgedOrderMissing,
        EffectViolation::DoubleCharge,
        EffectViolation::DoubleRefund,
        EffectViolation::DoubleShipment,
        EffectViolation::DoubleReservation,
        EffectViolation::DoubleOrder,
    ] {
        assert!(!d.violation_counts.contains_key(&kind), "{kind}");
    }
    d
}

/// Proves the pipeline survives SIGKILLs: a 150 s run whose only faults are kills of random
/// processes (store replicas and service roles, the order leader among them), each restarted,
/// at 20 orders/s, is valid; at least 8 kills happened, one of a store replica at least, and
/// every one was healed (restarted) without error, as the heal ledger, the history and the
/// roles' logs all say; every acknowledged order is in the final state (none missing, no
/// tolerance) and terminal; no saga is open after quiesce; no effect happened twice.
#[test]
fn kill_only_run_loses_nothing() {
    let store_kills = |plan: &[FaultPlan]| {
        plan.iter()
            .filter(|p| {
                matches!(
                    p,
                    FaultPlan::Kill {
                        role: Role::Store,
                        ..
                    }
                )
            })
            .count()
    };
    let (seed, plan) = seed_where("kill", Duration::from_secs(150), false, |p| {
        p.len() >= 8 && store_kills(p) >= 1
    });
    assert!(plan.iter().all(|p| p.kind() == Kind::Kill), "{plan:?}");
    let out = tempfile::tempdir().expect("tempdir");
    let seed = seed.to_string();
    let run = run_valid(
        out.path(),
        &[
            "run",
            "--nemesis",
            "kill",
            "--time-limit",
            "150s",
            "--seed",
            &seed,
            "--quiesce-timeout",
            "120s",
            "--scenario",
            "kill-only",
        ],
    );
    crate::assert_complete_run(&run, &["n1", "n2", "n3"]);
    let kills = kills_restarted(&run);
    assert_eq!(
        kills.len(),
        plan.len(),
        "every planned kill happened: {kills:?}"
    );
    assert!(
        kills.iter().any(|(_, _, r)| *r == Role::Store),
        "a store replica was killed: {kills:?}"
    );
    assert_restarted_in_logs(&run, &kills);
    let d = effects_clean(&run);
    assert!(d.orders >= 1_000, "a sustained load: {} orders", d.orders);
    let out_s = out.path().to_str().expect("utf8");
    assert!(processes_mentioning(out_s).is_empty(), "processes left");
    eprintln!(
        "kill-only run (seed {seed}): {} kills ({} of store replicas), all restarted; {} orders {:?}",
        kills.len(),
        kills.iter().filter(|k| k.2 == Role::Store).count(),
        d.orders,
        d.by_status
    );
}

/// Proves the CI chaos run holds: 3 minutes of every fault kind two at once (kills among them,
/// as the suite's chaos cell shapes it), drained for up to 120 s, is valid, its kills were
/// restarted, and every completed order has each item's reservation committed under its
/// `<order>:reserve:<i>` key with the item's SKU and quantity.
#[test]
fn chaos_run_with_kills_commits_every_completed_order() {
    let (seed, _) = seed_where("all", Duration::from_secs(180), true, |p| {
        p.iter().any(|p| p.kind() == Kind::Kill)
    });
    let out = tempfile::tempdir().expect("tempdir");
    let seed = seed.to_string();
    let run = run_valid(
        out.path(),
        &[
            "run",
            "--nemesis",
            "all",
            "--nemesis-pairs",
            "--nemesis-interval",
            "10s",
            "--time-limit",
            "3m",
            "--seed",
            &seed,
            "--quiesce-timeout",
            "120s",
            "--scenario",
            "chaos",
        ],
    );
    let kills = kills_restarted(&run);
    assert!(!kills.is_empty(), "kills were included");
    assert_restarted_in_logs(&run, &kills);
    effects_clean(&run);
    let data = checker::RunData::load(&run).expect("run dir parses");
    let state = &data.final_state;
    let by_key: BTreeMap<&str, _> = state
        .reservations
        .iter()
        .map(|r| (r.key.as_str(), r))
        .collect();
    let completed: Vec<_> = state
        .orders
        .iter()
        .filter(|o| o.status == OrderStatus::Completed)
        .collect();
    assert!(completed.len() >= 100, "{} completed", completed.len());
    for o in &completed {
        for (i, item) in o.items.iter().enumerate() {
            let key = effect_key(&o.order_id, Step::item(StepKind::Reserve, i));
            let r = by_key
                .get(key.as_str())
                .unwrap_or_else(|| panic!("{key}: no reservation"));
            assert_eq!(r.status, ReservationStatus::Committed, "{key}");
            assert_eq!(
                (r.sku.as_str(), r.qty),
                (item.sku.as_str(), item.qty),
                "{key}"
            );
        }
    }
    eprintln!(
        "chaos run (seed {seed}): {} completed orders committed; {} kills restarted",
        completed.len(),
        kills.len()
    );
}
