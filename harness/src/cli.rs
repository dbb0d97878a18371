//! The `harness` command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A Jepsen-style fault-injection harness for the order/payment saga pipeline.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy the pipeline, drive load, inject faults, check the history, write a report.
    Run(RunArgs),
    /// Re-check a stored run directory without re-running it.
    Analyze(AnalyzeArgs),
    /// Heal every fault a run's heal ledger lists as still standing.
    Heal(HealArgs),
    /// Browse the reports (the runs index and every run's report) on 127.0.0.1.
    Serve(ServeArgs),
}

/// Where the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    /// Child processes on 127.0.0.1 (no root needed).
    Local,
}

/// Which faults the nemesis may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisKind {
    /// No faults.
    None,
    /// SIGSTOP then SIGCONT of a role's process.
    Pause,
}

/// `harness run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Where the cluster runs.
    #[arg(long, value_enum, default_value_t = ClusterKind::Local)]
    pub cluster: ClusterKind,
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub nodes: u16,
    /// How long the workload runs: 10s, 2m, 500ms.
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    pub time_limit: Duration,
    /// Orders per second across all clients.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,
    /// Seed of every random choice the run makes; printed and stored in spec.json.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Scenario name: the run goes to <out>/<scenario>/<timestamp>/.
    #[arg(long, default_value = "smoke")]
    pub scenario: String,
    /// Faults to inject.
    #[arg(long, value_enum, default_value_t = NemesisKind::Pause)]
    pub nemesis: NemesisKind,
    /// The role whose process the pause fault stops.
    #[arg(long, default_value = "payment")]
    pub pause_role: String,
    /// Where runs are written.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// The pipeline binary (default: `pipeline` next to this harness binary).
    #[arg(long)]
    pub pipeline_bin: Option<PathBuf>,
    /// How long to wait after the workload for every saga to finish.
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    pub quiesce_timeout: Duration,
    /// Client request timeout; a request past it is recorded as info.
    #[arg(long, default_value = "2s", value_parser = crate::duration::parse)]
    pub client_timeout: Duration,
    /// Start the fault at this offset into the workload instead of the seeded choice.
    #[arg(long, value_parser = crate::duration::parse)]
    pub fault_at: Option<Duration>,
    /// Keep the fault this long instead of the seeded choice.
    #[arg(long, value_parser = crate::duration::parse)]
    pub fault_for: Option<Duration>,
    /// Switch off payment idempotency (to prove the checker catches double charges).
    #[arg(long)]
    pub no_idempotency: bool,
}

impl RunArgs {
    /// Checks what clap cannot: returns the message for a bad-arguments exit.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 10_000.0) {
            return Err(format!(
                "--rate {}: must be between 0 and 10000 ops/s",
                self.rate
            ));
        }
        if self.time_limit < Duration::from_secs(1) {
            return Err("--time-limit must be at least 1s".into());
        }
        let ok_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                && !s.starts_with('.')
        };
        if !ok_name(&self.scenario) {
            return Err(format!(
                "--scenario '{}': use letters, digits, '-', '_' or '.', not starting with '.'",
                self.scenario
            ));
        }
        if !["payment", "order"].contains(&self.pause_role.as_str()) {
            return Err(format!(
                "--pause-role '{}': must be payment or order",
                self.pause_role
            ));
        }
        Ok(())
    }
}

/// `harness analyze`.
#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// The run directory (e.g. reports/latest).
    pub run_dir: PathBuf,
    /// Another run of the same scenario (e.g. without the retry budget) drawn on the same
    /// retry-load graph. It is only read.
    #[arg(long)]
    pub compare: Option<PathBuf>,
}

/// `harness serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The reports directory.
    #[arg(long, default_value = "reports")]
    pub dir: PathBuf,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

/// `harness heal`.
#[derive(Debug, Clone, Args)]
pub struct HealArgs {
    /// The run directory whose ledger to heal (default: reports/latest).
    #[arg(default_value = "reports/latest")]
    pub run_dir: PathBuf,
}
