//! The `harness` command line: the top-level commands and `harness run`'s arguments; the
//! other commands' arguments are in [`commands`].

mod commands;

pub use commands::*;

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
    /// The cluster secret the roles require (one to four lines, the first is sent; mode 0600)
    /// instead of a fresh one from the OS RNG. Never copied into the run directory.
    #[arg(long, value_name = "FILE")]
    pub cluster_secret_file: Option<PathBuf>,
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
