//! The arguments of every command but `harness run`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use formats::spec::ClusterKind;

use crate::scenario::ClusterChoice;

/// `harness bench`.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// One stock run per inventory mode (linearizable, eventual) with the same seed, load and
    /// partition; prints latency and throughput before and during the partition, with ratios.
    Consistency(BenchConsistencyArgs),
}

/// `harness bench consistency`.
#[derive(Debug, Clone, Args)]
pub struct BenchConsistencyArgs {
    /// How long each run's workload lasts.
    #[arg(long, default_value = "20s", value_parser = formats::duration::parse)]
    pub time_limit: Duration,
    /// When the partition starts.
    #[arg(long, default_value = "7s", value_parser = formats::duration::parse)]
    pub fault_at: Duration,
    /// How long it stands.
    #[arg(long, default_value = "7s", value_parser = formats::duration::parse)]
    pub fault_for: Duration,
    /// Stock operations per second across all clients (high: the clients are then limited
    /// by the service's answers, so ok/s measures what it can do).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,
    /// Contended SKUs.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub stock_skus: u16,
    /// Units of each at the start. Plenty by default, so that reserves do not run out and both
    /// modes serve the same mix of operations (with little stock, eventual mode's lost updates
    /// drain it and every reserve then fails fast, which is no measure of cost).
    #[arg(long, default_value_t = 100_000, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    pub initial_stock: i64,
    /// Seed of both runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the runs are written.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// The pipeline binary (default: `pipeline` next to this harness binary).
    #[arg(long)]
    pub pipeline_bin: Option<PathBuf>,
    /// The faultproxy binary (default: `faultproxy` next to this harness binary).
    #[arg(long)]
    pub faultproxy_bin: Option<PathBuf>,
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

/// `harness cluster`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// up, down or status.
    #[command(subcommand)]
    pub action: ClusterAction,
}

/// What `harness cluster` does.
#[derive(Debug, Clone, Subcommand)]
pub enum ClusterAction {
    /// Create the namespaces, the bridge and one sshd per node (already up: nothing to do).
    Up {
        /// Number of nodes.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=9))]
        nodes: u16,
        /// Keys, sshd configs and the nodes file go here.
        #[arg(long, default_value = crate::cluster::netns::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Remove every namespace, link and iptables rule the netns cluster made (idempotent).
    Down {
        /// The state directory to remove.
        #[arg(long, default_value = crate::cluster::netns::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Show what exists; exit 0 when the cluster is up, 1 when it is not.
    Status {
        /// The state directory.
        #[arg(long, default_value = crate::cluster::netns::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
}

/// `harness nodes-from-ssh-config`.
#[derive(Debug, Clone, Args)]
pub struct NodesFromSshConfigArgs {
    /// The output of `vagrant ssh-config` (`-` for stdin).
    pub ssh_config: PathBuf,
    /// The known-hosts file the nodes file should name.
    #[arg(long, default_value = "known_hosts")]
    pub known_hosts: String,
    /// Service address of a node, `NAME=ADDR` (repeat; default: the SSH host).
    #[arg(long = "addr", value_name = "NAME=ADDR")]
    pub addrs: Vec<String>,
}

/// `harness heal`.
#[derive(Debug, Clone, Args)]
pub struct HealArgs {
    /// The run directory whose ledger to heal (default: reports/latest).
    #[arg(default_value = "reports/latest")]
    pub run_dir: PathBuf,
}

/// Sequential models `harness lincheck` checks against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LinModel {
    /// read, write, cas (value `[from, to]`) per key.
    Register,
    /// get, put, append per key; a missing key reads "".
    Kv,
    /// reserve, release, read per SKU.
    Stock,
}

/// `harness lincheck`.
#[derive(Debug, Clone, Args)]
pub struct LincheckArgs {
    /// JSONL file: one event per line with process, type, f, optional key, value.
    pub file: PathBuf,
    /// The model.
    #[arg(long, value_enum)]
    pub model: LinModel,
    /// Initial state: every SKU's stock (required for stock), or the registers' integer value.
    #[arg(long, allow_negative_numbers = true)]
    pub initial: Option<i64>,
    /// Give up with unknown after this long: 30s, 2m, 500ms.
    #[arg(long, default_value = "30s", value_parser = formats::duration::parse)]
    pub time_limit: Duration,
    /// Give up with unknown when the search holds this many MiB.
    #[arg(long, default_value_t = 2048)]
    pub memory_limit_mib: usize,
    /// Also write the HTML view of the result to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

impl LincheckArgs {
    /// Checks what clap cannot: returns the message for a bad-arguments exit.
    pub fn validate(&self) -> Result<(), String> {
        match (self.model, self.initial) {
            (LinModel::Stock, None) => {
                Err("--model stock needs --initial N (the initial stock of every SKU)".into())
            }
            (LinModel::Kv, Some(n)) => Err(format!("--initial {n}: kv keys always start as \"\"")),
            _ => Ok(()),
        }
    }
}

/// `harness scenario`.
#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// list or run.
    #[command(subcommand)]
    pub action: ScenarioAction,
}

/// What `harness scenario` does.
#[derive(Debug, Clone, Subcommand)]
pub enum ScenarioAction {
    /// List the scenarios: what each proves, its `harness run` options and its expectation.
    List,
    /// Run one scenario; exit 0 when its expectation held, 1 when not, 2 when unknown.
    Run(ScenarioRunArgs),
}

/// `harness scenario run`.
#[derive(Debug, Clone, Args)]
pub struct ScenarioRunArgs {
    /// The scenario (see `harness scenario list`).
    pub name: String,
    /// Switch the scenario's protection off: its expectation is then that its check fails.
    #[arg(long, conflicts_with = "pair")]
    pub protection_off: bool,
    /// Run with the protection on, then off with the same seed; link the two runs and draw
    /// both on the first run's retry-load graph.
    #[arg(long)]
    pub pair: bool,
    /// Seed of every random choice (default: a random one, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long the workload runs (default: the scenario's own; faults must heal before it).
    #[arg(long, value_parser = formats::duration::parse)]
    pub time_limit: Option<Duration>,
    /// Where runs are written.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// The pipeline binary (default: `pipeline` next to this harness binary).
    #[arg(long)]
    pub pipeline_bin: Option<PathBuf>,
    /// The faultproxy binary (default: `faultproxy` next to this harness binary).
    #[arg(long)]
    pub faultproxy_bin: Option<PathBuf>,
    /// The cluster it runs on.
    #[command(flatten)]
    pub cluster: ClusterOptions,
}

/// `harness seam-table`.
#[derive(Debug, Clone, Args)]
pub struct SeamTableArgs {
    /// Run directories, or folders holding them (searched below).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Write the table between the markers of this file (e.g. docs/seam-signals.md) instead of
    /// printing it.
    #[arg(long)]
    pub write: Option<PathBuf>,
}

/// Where a scenario or the suite runs (default: a local cluster of three nodes).
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterOptions {
    /// local (child processes on 127.0.0.1, no root), netns (network namespaces with their own
    /// sshd; root) or ssh (hosts in --nodes-file, e.g. Vagrant VMs).
    #[arg(long)]
    pub cluster: Option<ClusterKind>,
    /// Number of nodes of a local or netns cluster.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub nodes: Option<u16>,
    /// The nodes of an ssh cluster.
    #[arg(long)]
    pub nodes_file: Option<PathBuf>,
}

impl ClusterOptions {
    /// The cluster asked for; `None` when no option was given (the scenario's own).
    pub fn choice(&self) -> Option<ClusterChoice> {
        if self.cluster.is_none() && self.nodes.is_none() && self.nodes_file.is_none() {
            return None;
        }
        let cluster = self.cluster.unwrap_or(if self.nodes_file.is_some() {
            ClusterKind::Ssh
        } else {
            ClusterKind::Local
        });
        Some(ClusterChoice {
            cluster,
            nodes: self.nodes,
            nodes_file: self.nodes_file.clone(),
        })
    }
}

/// `harness suite` and `harness nightly`: every named scenario with its protection on and off,
/// then sustained chaos runs, once per seed.
#[derive(Debug, Clone, Args)]
pub struct SuiteArgs {
    /// Repeat the matrix with this many seeds (the first is --seed, the next fresh ones).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub seeds: u16,
    /// The first seed (default: a random one, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run only this row: a scenario name or `chaos` (repeat for several).
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,
    /// Workload length of each chaos run (two faults at once, every kind).
    #[arg(long, default_value = "2m", value_parser = formats::duration::parse)]
    pub chaos_time: Duration,
    /// Chaos runs per seed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=20))]
    pub chaos_runs: u16,
    /// Where runs and the suite page are written.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// The cluster every run uses.
    #[command(flatten)]
    pub cluster: ClusterOptions,
    /// Start no further run after this much wall-clock time; runs not started are unknown.
    #[arg(long, default_value = "3h", value_parser = formats::duration::parse)]
    pub total_limit: Duration,
    /// The pipeline binary (default: `pipeline` next to this harness binary).
    #[arg(long)]
    pub pipeline_bin: Option<PathBuf>,
    /// The faultproxy binary (default: `faultproxy` next to this harness binary).
    #[arg(long)]
    pub faultproxy_bin: Option<PathBuf>,
}
