//! `harness bench consistency`: the cost of the inventory's linearizable mode against its
//! eventual mode, measured side by side. It makes one stock run of each mode with the same seed,
//! load and partition, then reads each run's `perf` check (latency of ok operations and ok
//! operations per second, before and during the partition) and its `linearizability` verdict,
//! and prints a Markdown table with the ratios linearizable / eventual.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use serde_json::Value;

use crate::cli::{BenchConsistencyArgs, Cli, Command, RunArgs};

/// The modes compared, the stronger first.
pub const MODES: [&str; 2] = ["linearizable", "eventual"];
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
    /// `linearizable` or `eventual`.
    pub mode: &'static str,
    /// Its run directory.
    pub dir: PathBuf,
    /// Numbers per phase, in [`PHASES`] order.
    pub phases: [Option<PhaseNumbers>; 2],
    /// The `linearizability` check's verdict and summary.
    pub linearizability: (String, String),
}

/// The `harness run` arguments of one mode's run.
pub fn run_args(args: &BenchConsistencyArgs, mode: &str) -> anyhow::Result<RunArgs> {
    if args.fault_at + args.fault_for >= args.time_limit {
        return Err(anyhow::Error::new(crate::BadInput(format!(
            "--fault-at {:?} + --fault-for {:?} must end before --time-limit {:?}, so that both \
             runs have a phase before, during and after the partition",
            args.fault_at, args.fault_for, args.time_limit
        ))));
    }
    let secs = |d: std::time::Duration| format!("{}s", d.as_secs_f64());
    let mut argv: Vec<String> = [
        "harness",
        "run",
        "--workload",
        "stock",
        "--nemesis",
        "partition",
        "--inventory-mode",
        mode,
    ]
    .map(str::to_owned)
    .to_vec();
    let mut flag = |name: &str, value: String| {
        argv.push(format!("--{name}"));
        argv.push(value);
    };
    flag("scenario", format!("consistency-{mode}"));
    flag("time-limit", secs(args.time_limit));
    flag("fault-at", secs(args.fault_at));
    flag("fault-for", secs(args.fault_for));
    flag("nemesis-interval", secs(args.time_limit / 2));
    flag("rate", args.rate.to_string());
    flag("concurrency", args.concurrency.to_string());
    flag("stock-skus", args.stock_skus.to_string());
    flag("initial-stock", args.initial_stock.to_string());
    flag("seed", args.seed.to_string());
    flag("out", args.out.display().to_string());
    if let Some(p) = &args.pipeline_bin {
        flag("pipeline-bin", p.display().to_string());
    }
    if let Some(p) = &args.faultproxy_bin {
        flag("faultproxy-bin", p.display().to_string());
    }
    let bad = |m: String| anyhow::Error::new(crate::BadInput(m));
    let cli = Cli::try_parse_from(&argv).map_err(|e| bad(e.to_string().trim().to_owned()))?;
    let Command::Run(run) = cli.command else {
        return Err(bad("not a run command".into()));
    };
    run.validate().map_err(bad)?;
    Ok(run)
}

/// Reads the numbers of a checked run directory.
pub fn read_run(mode: &'static str, dir: &Path) -> anyhow::Result<ModeRun> {
    let path = dir.join(checker::rundir::files::RESULTS);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let results: Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    let checks = results["checks"].as_array().cloned().unwrap_or_default();
    let check = |name: &str| checks.iter().find(|c| c["name"] == name).cloned();
    let perf = check("perf").unwrap_or_default();
    let rows = perf["details"]["phases"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let phases = PHASES.map(|phase| {
        let row = rows
            .iter()
            .find(|r| r["phase"] == phase && r["f"] == "all")?;
        Some(PhaseNumbers {
            p50_ms: row["latency_ms"]["p50"].as_f64()?,
            p99_ms: row["latency_ms"]["p99"].as_f64()?,
            ok_per_s: row["ok_per_s"].as_f64()?,
            availability: row["availability"].as_f64()?,
        })
    });
    let lin = check(checker::lincheck::inventory::CHECK_NAME).unwrap_or_default();
    Ok(ModeRun {
        mode,
        dir: dir.to_owned(),
        phases,
        linearizability: (
            lin["validity"].as_str().unwrap_or("missing").to_owned(),
            lin["summary"].as_str().unwrap_or_default().to_owned(),
        ),
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
        .map(|mode| run_args(args, mode))
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
                mode: "linearizable",
                dir: "/r/l".into(),
                phases: [Some(n(20.0, 50.0)), None],
                linearizability: ("valid".into(), "ok".into()),
            },
            ModeRun {
                mode: "eventual",
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
