//! The `harness` command line.

use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeSet;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nemesis::schedule::Kind;

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
    /// Manage the netns cluster (root): namespaces with their own sshd, reached over SSH.
    Cluster(ClusterArgs),
    /// Turn `vagrant ssh-config` output into a nodes file for `--cluster ssh`.
    NodesFromSshConfig(NodesFromSshConfigArgs),
    /// Check a JSONL file of operations for linearizability (exit 0 valid, 1 invalid, 2 unknown).
    Lincheck(LincheckArgs),
    /// Browse the reports (the runs index and every run's report) on 127.0.0.1.
    Serve(ServeArgs),
    /// Named scenarios: each proves one protection, and fails without it.
    Scenario(ScenarioArgs),
    /// The nightly job: runs with two faults at once, optionally the scenario matrix, a summary.
    Nightly(NightlyArgs),
    /// Measure costs side by side (use a release build).
    #[command(subcommand)]
    Bench(BenchCommand),
}

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
    #[arg(long, default_value = "20s", value_parser = crate::duration::parse)]
    pub time_limit: Duration,
    /// When the partition starts.
    #[arg(long, default_value = "7s", value_parser = crate::duration::parse)]
    pub fault_at: Duration,
    /// How long it stands.
    #[arg(long, default_value = "7s", value_parser = crate::duration::parse)]
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

/// Where the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    /// Child processes on 127.0.0.1 (no root needed).
    Local,
    /// Network namespaces with their own sshd (root; see `harness cluster up`).
    Netns,
    /// Hosts listed in a nodes file (`--nodes-file`), e.g. Vagrant VMs.
    Ssh,
}

impl ClusterKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ClusterKind::Local => "local",
            ClusterKind::Netns => "netns",
            ClusterKind::Ssh => "ssh",
        }
    }
}

/// Which faults the nemesis may inject (`--nemesis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NemesisKinds(pub BTreeSet<Kind>);

impl NemesisKinds {
    /// The `--nemesis` spelling: `none` or a comma list.
    pub fn spelling(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn parse_nemesis(s: &str) -> Result<NemesisKinds, String> {
    nemesis::schedule::parse_kinds(s).map(NemesisKinds)
}

/// `harness run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Where the cluster runs.
    #[arg(long, value_enum, default_value_t = ClusterKind::Local)]
    pub cluster: ClusterKind,
    /// Number of nodes (default 3 local, 5 netns; an ssh cluster takes its nodes file's).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub nodes: Option<u16>,
    /// The nodes of an ssh cluster (TOML: name, host, port, user, key per node; known_hosts).
    #[arg(long)]
    pub nodes_file: Option<PathBuf>,
    /// Accept any SSH host key instead of checking known_hosts (insecure).
    #[arg(long)]
    pub insecure_ignore_host_keys: bool,
    /// State directory of the netns cluster.
    #[arg(long, default_value = crate::cluster::netns::DEFAULT_STATE_DIR)]
    pub netns_state_dir: PathBuf,
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
    /// Faults to inject: none, all, or a comma list of partition, pause, kill, latency,
    /// lost-response, reset, bandwidth, storm. A lone pause without --nemesis-interval is one
    /// seeded pause; anything else is a periodic seeded schedule.
    #[arg(long, default_value = "pause", value_parser = parse_nemesis)]
    pub nemesis: NemesisKinds,
    /// One fault with its target and timing instead of the seeded schedule (repeat for more),
    /// e.g. kind=pause,role=order,node=leader,at=4s,for=5s or
    /// kind=lost-response,role=payment,links=all,at=6s,for=8s (see docs/runbook.md).
    #[arg(long = "fault", value_name = "SPEC", value_parser = crate::fault_spec::parse,
          conflicts_with_all = ["nemesis", "nemesis_interval", "nemesis_pairs", "fault_at", "fault_for"])]
    pub faults: Vec<crate::fault_spec::FaultSpec>,
    /// One fault slot every this long (default 10s for periodic schedules).
    #[arg(long, value_parser = crate::duration::parse)]
    pub nemesis_interval: Option<Duration>,
    /// Run two faults of different kinds at once in each slot.
    #[arg(long)]
    pub nemesis_pairs: bool,
    /// Put the link proxies on this Toxiproxy-compatible API (e.g. http://127.0.0.1:8474)
    /// instead of starting faultproxy.
    #[arg(long)]
    pub toxiproxy: Option<String>,
    /// The faultproxy binary (default: `faultproxy` next to this harness binary).
    #[arg(long)]
    pub faultproxy_bin: Option<PathBuf>,
    /// The role whose process the single pause fault stops (`--nemesis pause` without an
    /// interval): order (the saga orchestrator), payment or inventory.
    #[arg(long, default_value = "order")]
    pub pause_role: String,
    /// Which process of that role the single pause stops: `leader` (the current leader, found
    /// through GET /admin/leader), `random`, or a node name.
    #[arg(long, default_value = "leader")]
    pub pause_target: String,
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
    /// Switch off idempotency in payment, inventory and shipping (to prove the checker catches
    /// double effects).
    #[arg(long)]
    pub no_idempotency: bool,
    /// Switch off fencing in the store replicas (to prove the fencing check can fail).
    #[arg(long)]
    pub no_fencing: bool,
    /// Switch off the retry budget of calls between services (to prove the retry-load check
    /// can fail).
    #[arg(long)]
    pub no_retry_budget: bool,
    /// Switch off saga compensations (to prove the effects check catches lost refunds).
    #[arg(long)]
    pub no_compensation: bool,
    /// The order leader trusts its leadership flag until its renewal loop notices a lost
    /// lease, instead of checking the lease before every write: a paused leader then writes
    /// after it was deposed, and only fencing stops it (see docs/pipeline.md).
    #[arg(long)]
    pub no_lease_check: bool,
    /// Consistency model of inventory: linearizable (leader, fencing, majority quorum) or
    /// eventual (any node, W = R = 1).
    #[arg(long, value_enum)]
    pub inventory_mode: Option<InventoryMode>,
    /// Share of shipment creations the shipping service refuses (forces compensations).
    #[arg(long)]
    pub shipping_failure_rate: Option<f64>,
    /// The named scenario's expectation, written to spec.json (set by `harness scenario`).
    #[arg(skip)]
    pub expectation: Option<checker::expectation::Expectation>,
    /// The run this one is paired with (`harness scenario run --pair`), written to spec.json.
    #[arg(skip)]
    pub paired_with: Option<String>,
    /// What the clients do: place orders, call the inventory directly (reserve, release,
    /// read-stock on a few contended SKUs), or both at once.
    #[arg(long, value_enum, default_value_t = WorkloadKind::Orders)]
    pub workload: WorkloadKind,
    /// Contended SKUs of the stock workload (`stock-0` ...), apart from the orders' SKUs.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub stock_skus: u16,
    /// Units of each contended SKU at the start (small, so that reserves run out).
    #[arg(long, default_value_t = 10, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    pub initial_stock: i64,
}

/// What the clients of a run do (`--workload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Place orders through the order service and poll them to a terminal state.
    Orders,
    /// Reserve, release and read stock through the inventory service's client API.
    Stock,
    /// Both, each at `--rate` with `--concurrency` clients.
    Mixed,
}

impl WorkloadKind {
    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Orders => "orders",
            WorkloadKind::Stock => "stock",
            WorkloadKind::Mixed => "mixed",
        }
    }

    /// Whether order clients run.
    pub fn orders(self) -> bool {
        self != WorkloadKind::Stock
    }

    /// Whether stock clients run.
    pub fn stock(self) -> bool {
        self != WorkloadKind::Orders
    }
}

/// Inventory's consistency model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InventoryMode {
    /// Single leader, fencing tokens, majority quorum: stock never goes below zero.
    Linearizable,
    /// Any node accepts locally and replicates later: can oversell.
    Eventual,
}

impl InventoryMode {
    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            InventoryMode::Linearizable => "linearizable",
            InventoryMode::Eventual => "eventual",
        }
    }
}

impl RunArgs {
    /// The node count for local and netns clusters.
    pub fn node_count(&self) -> usize {
        let default = match self.cluster {
            ClusterKind::Netns => crate::cluster::netns::DEFAULT_NODES,
            _ => 3,
        };
        self.nodes.map_or(default, usize::from)
    }

    /// The target of the single pause.
    pub fn pause_target(&self) -> nemesis::fault::Target {
        match self.pause_target.as_str() {
            "leader" => nemesis::fault::Target::Leader,
            "random" => nemesis::fault::Target::Random,
            node => nemesis::fault::Target::Node {
                node: node.to_owned(),
            },
        }
    }

    /// The role whose leader the nemesis's leader-shaped faults aim at: the inventory's in a
    /// stock-only run with a leader (linearizable mode), the order service's otherwise.
    pub fn leader_role(&self) -> &'static str {
        if self.workload == WorkloadKind::Stock
            && self.inventory_mode != Some(InventoryMode::Eventual)
        {
            "inventory"
        } else {
            "order"
        }
    }

    /// The contended SKUs of the stock workload and their initial stock, if it runs.
    pub fn stock_skus(&self) -> Option<crate::cluster::pipeline::StockSkus> {
        self.workload
            .stock()
            .then(|| crate::cluster::pipeline::StockSkus {
                count: usize::from(self.stock_skus),
                initial: self.initial_stock,
            })
    }

    /// The protection switches and role overrides this run asks for.
    pub fn switches(&self) -> crate::cluster::pipeline::Switches {
        crate::cluster::pipeline::Switches {
            no_idempotency: self.no_idempotency,
            no_fencing: self.no_fencing,
            no_retry_budget: self.no_retry_budget,
            no_compensation: self.no_compensation,
            no_lease_check: self.no_lease_check,
            inventory_mode: self.inventory_mode.map(|m| m.name().to_owned()),
            shipping_failure_rate: self.shipping_failure_rate,
        }
    }

    /// Checks what clap cannot: returns the message for a bad-arguments exit.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(rate) = self.shipping_failure_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "--shipping-failure-rate {rate}: must be between 0 and 1"
                ));
            }
        }
        match (self.cluster, &self.nodes_file, self.nodes) {
            (ClusterKind::Ssh, None, _) => {
                return Err("--cluster ssh needs --nodes-file FILE".into())
            }
            (ClusterKind::Ssh, Some(_), Some(_)) => {
                return Err(
                    "--nodes does not apply to --cluster ssh: the nodes file lists them".into(),
                )
            }
            (ClusterKind::Local | ClusterKind::Netns, Some(f), _) => {
                return Err(format!(
                    "--nodes-file '{}' applies only to --cluster ssh",
                    f.display()
                ))
            }
            _ => {}
        }
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
        if self
            .nemesis_interval
            .is_some_and(|d| d < Duration::from_secs(1))
        {
            return Err("--nemesis-interval must be at least 1s".into());
        }
        if self.faults.len() > crate::fault_spec::MAX_FAULTS {
            return Err(format!(
                "at most {} --fault flags",
                crate::fault_spec::MAX_FAULTS
            ));
        }
        let last_heal = crate::fault_spec::last_heal(&self.faults);
        if last_heal > self.time_limit {
            return Err(format!(
                "--time-limit {:?}: a --fault heals only at {last_heal:?}",
                self.time_limit
            ));
        }
        if self.pause_target.is_empty() {
            return Err("--pause-target: give leader, random or a node name".into());
        }
        if !["payment", "order", "inventory"].contains(&self.pause_role.as_str()) {
            return Err(format!(
                "--pause-role '{}': must be payment, order or inventory",
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
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
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
    #[arg(long, value_parser = crate::duration::parse)]
    pub time_limit: Option<Duration>,
    /// Where runs are written.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// The pipeline binary (default: `pipeline` next to this harness binary).
    #[arg(long)]
    pub pipeline_bin: Option<PathBuf>,
}

/// `harness nightly`.
#[derive(Debug, Clone, Args)]
pub struct NightlyArgs {
    /// Combined-fault runs: each runs two faults of different kinds at once, from the seed.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub runs: u16,
    /// Seed the runs' seeds are drawn from (default: a random one, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Workload length of each combined-fault run (scenarios keep their own).
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse)]
    pub time_limit: Duration,
    /// Where runs and the summary are written.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Also run every named scenario with its protection on and off.
    #[arg(long)]
    pub scenarios: bool,
    /// Start no further run after this much wall-clock time; runs not started count unknown.
    #[arg(long, default_value = "3h", value_parser = crate::duration::parse)]
    pub total_limit: Duration,
    /// The pipeline binary (default: `pipeline` next to this harness binary).
    #[arg(long)]
    pub pipeline_bin: Option<PathBuf>,
}
