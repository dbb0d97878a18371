//! `harness bench consistency`: the cost of the inventory's linearizable mode against its
//! eventual mode, measured side by side. It makes one stock run of each mode with the same seed,
//! load and partition, then reads each run's `perf` check (latency of ok operations and ok
//! operations per second, before and during the partition) and its `linearizability` verdict,
//! and prints a Markdown table with the ratios linearizable / eventual.

use std::path::{Path, PathBuf};

use anyhow::Context;
use checker::checks::{Linearizability, Perf};
use checker::Results;
use formats::fault::{Kind, Kinds};
use formats::spec::{InventoryMode, RunConfig, WorkloadKind};

use crate::cli::BenchConsistencyArgs;

/// The modes compared, the stronger first.
pub const MODES: [InventoryMode; 2] = [InventoryMode::Linearizable, InventoryMode::Eventual];
/// The phases compared: without a fault, and while the partition stands.
pub const PHASES: [&str; 2] = ["before-faults", "during-faults"];

/// What one run measured in one phase, over all its stock operations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PhaseNumbers {
    /// Median latency of ok operations, ms.
    pub p50_ms: f64,
    /// 99th percentile latency of ok operations, ms.
    pub p99_ms: f64,
    /// Ok operations per second.
    pub ok_per_s: f64,
    /// Share of operations that ended ok.
    pub availability: f64,
}

/// One mode's run.
#[derive(Debug, Clone)]
pub struct ModeRun {
    /// The mode.
    pub mode: InventoryMode,
    /// Its run directory.
    pub dir: PathBuf,
    /// Numbers per phase, in [`PHASES`] order.
    pub phases: [Option<PhaseNumbers>; 2],
    /// The `linearizability` check's verdict and summary.
    pub linearizability: (String, String),
}

/// The run of one mode.
pub fn run_args(args: &BenchConsistencyArgs, mode: InventoryMode) -> anyhow::Result<RunConfig> {
    if args.fault_at + args.fault_for >= args.time_limit {
        return Err(anyhow::Error::new(crate::BadInput(format!(
            "--fault-at {:?} + --fault-for {:?} must end before --time-limit {:?}, so that both \
             runs have a phase before, during and after the partition",
            args.fault_at, args.fault_for, args.time_limit
        ))));
    }
    let config = RunConfig {
        workload: WorkloadKind::Stock,
        nemesis: Kinds::only(Kind::Partition),
        inventory_mode: Some(mode),
        scenario: format!("consistency-{mode}"),
        time_limit: args.time_limit,
        fault_at: Some(args.fault_at),
        fault_for: Some(args.fault_for),
        nemesis_interval: Some(args.time_limit / 2),
        rate: args.rate,
        concurrency: args.concurrency,
        stock_skus: args.stock_skus,
        initial_stock: args.initial_stock,
        seed: Some(args.seed),
        out: args.out.clone(),
        pipeline_bin: args.pipeline_bin.clone(),
        faultproxy_bin: args.faultproxy_bin.clone(),
        ..RunConfig::default()
    };
    crate::config::validate(&config).map_err(|m| anyhow::Error::new(crate::BadInput(m)))?;
    Ok(config)
}

/// Reads the numbers of a checked run directory.
pub fn read_run(mode: InventoryMode, dir: &Path) -> anyhow::Result<ModeRun> {
    let path = dir.join(formats::files::RESULTS);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let results: Results =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    let rows = results
        .check::<Perf>()
        .map(|(_, d)| d.phases)
        .unwrap_or_default();
    let phases = PHASES.map(|phase| {
        let row = rows
            .iter()
            .find(|r| r.phase.key() == phase && r.f == "all")?;
        let latency = row.latency_ms?;
        Some(PhaseNumbers {
            p50_ms: latency.p50,
            p99_ms: latency.p99,
            ok_per_s: row.ok_per_s?,
            availability: row.availability?,
        })
    });
    let lin = results.get(checker::CheckId::Linearizability);
    debug_assert!(lin.is_none_or(|r| r.details_of::<Linearizability>().is_some()));
    Ok(ModeRun {
        mode,
        dir: dir.to_owned(),
        phases,
        linearizability: lin.map_or(("missing".into(), String::new()), |r| {
            (r.validity.to_string(), r.summary.clone())
        }),
    })
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

/// The Markdown report of the two runs (linearizable first).
pub fn table(runs: &[ModeRun; 2]) -> String {
    let mut out = String::from(
        "| phase | mode | p50 ms | p99 ms | ok/s | ok share |\n|---|---|---|---|---|---|\n",
    );
    for (i, phase) in PHASES.iter().enumerate() {
        for run in runs {
            match run.phases[i] {
                Some(n) => out.push_str(&format!(
                    "| {phase} | {} | {:.1} | {:.1} | {:.1} | {:.0}% |\n",
                    run.mode,
                    n.p50_ms,
                    n.p99_ms,
                    n.ok_per_s,
                    n.availability * 100.0
                )),
                None => out.push_str(&format!("| {phase} | {} | - | - | - | - |\n", run.mode)),
            }
        }
    }
    out.push_str("\n| phase | p50 ratio | p99 ratio | ok/s ratio |\n|---|---|---|---|\n");
    for (i, phase) in PHASES.iter().enumerate() {
        if let (Some(l), Some(e)) = (runs[0].phases[i], runs[1].phases[i]) {
            out.push_str(&format!(
                "| {phase} | {} | {} | {} |\n",
                ratio(l.p50_ms, e.p50_ms),
                ratio(l.p99_ms, e.p99_ms),
                ratio(l.ok_per_s, e.ok_per_s)
            ));
        }
    }
    out.push_str("\nRatios are linearizable / eventual.\n\n");
    for run in runs {
        out.push_str(&format!(
            "- {}: linearizability {} — {} ({})\n",
            run.mode,
            run.linearizability.0,
            run.linearizability.1,
            run.dir.display()
        ));
    }
    out
}

/// Runs both modes and prints the table; returns the exit code (0 when both runs reached a
/// verdict, whatever it was: an invalid eventual run is the expected finding).
pub async fn consistency(args: &BenchConsistencyArgs) -> anyhow::Result<i32> {
    // Both runs' arguments are checked before either starts.
    let planned = MODES
        .iter()
        .map(|mode| run_args(args, *mode))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut runs = Vec::with_capacity(MODES.len());
    for (mode, run) in MODES.into_iter().zip(planned) {
        let outcome = crate::run::execute(run).await?;
        let code = outcome.code;
        anyhow::ensure!(
            matches!(code, 0..=2),
            "the {mode} run ended without a verdict (exit {code})"
        );
        runs.push(read_run(mode, &outcome.dir)?);
    }
    let runs: [ModeRun; 2] = runs
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected two runs"))?;
    println!("{}", table(&runs));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the table shows each mode's numbers per phase and the ratios linearizable /
    /// eventual, and a dash where a phase has no numbers.
    #[test]
    fn table_has_numbers_and_ratios() {
        let n = |p50_ms, ok_per_s| PhaseNumbers {
            p50_ms,
            p99_ms: p50_ms * 4.0,
            ok_per_s,
            availability: 0.5,
        };
        let runs = [
            ModeRun {
                mode: InventoryMode::Linearizable,
                dir: "/r/l".into(),
                phases: [Some(n(20.0, 50.0)), None],
                linearizability: ("valid".into(), "ok".into()),
            },
            ModeRun {
                mode: InventoryMode::Eventual,
                dir: "/r/e".into(),
                phases: [Some(n(10.0, 100.0)), Some(n(10.0, 100.0))],
                linearizability: ("invalid".into(), "oversold".into()),
            },
        ];
        let t = table(&runs);
        assert!(
            t.contains("| before-faults | linearizable | 20.0 | 80.0 | 50.0 | 50% |"),
            "{t}"
        );
        assert!(t.contains("| before-faults | 2.00 | 2.00 | 0.50 |"), "{t}");
        assert!(t.contains("| during-faults | linearizable | - |"), "{t}");
        assert!(
            t.contains("eventual: linearizability invalid — oversold"),
            "{t}"
        );
    }
}
