//! The `harness` command line: the top-level commands and `harness run`'s arguments; the
//! other commands' arguments are in [`commands`].

mod commands;

pub use commands::*;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use formats::duration;
use formats::fault::{Kinds, Planned, Target};
pub use formats::spec::{
    ClusterKind, InventoryMode, PrometheusChoice, RunConfig, Switches, WorkloadKind,
};
use formats::Role;

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
    /// The proof suite: every scenario with its protection on and off, the consistency swap and
    /// sustained chaos runs; a matrix page, junit.xml and summary.json (exit 0 all held).
    Suite(SuiteArgs),
    /// The suite as the nightly job (the same job; schedule it with fresh seeds).
    Nightly(SuiteArgs),
    /// From stored runs, the table of which seam signal moved first and which alert fired first
    /// per scenario and fault kind (docs/seam-signals.md).
    SeamTable(SeamTableArgs),
    /// Measure costs side by side (use a release build).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `harness run`: every field of [`RunConfig`] as a flag ([`RunArgs::into_config`]), and back
/// ([`crate::config::rerun_words`]).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Where the cluster runs: local (child processes on 127.0.0.1, no root), netns (network
    /// namespaces with their own sshd; root) or ssh (hosts in --nodes-file, e.g. Vagrant VMs).
    #[arg(long, default_value = "local")]
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
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
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
    #[arg(long, default_value = "pause")]
    pub nemesis: Kinds,
    /// One fault with its target and timing instead of the seeded schedule (repeat for more),
    /// e.g. kind=pause,role=order,node=leader,at=4s,for=5s or
    /// kind=lost-response,role=payment,links=all,at=6s,for=8s (see docs/runbook.md).
    #[arg(long = "fault", value_name = "SPEC",
          conflicts_with_all = ["nemesis", "nemesis_interval", "nemesis_pairs", "fault_at", "fault_for"])]
    pub faults: Vec<Planned>,
    /// One fault slot every this long (default 10s for periodic schedules).
    #[arg(long, value_parser = duration::parse)]
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
    pub pause_role: Role,
    /// Which process of that role the single pause stops: `leader` (the current leader, found
    /// through GET /admin/leader), `random`, or a node name.
    #[arg(long, default_value = "leader")]
    pub pause_target: Target,
    /// Where runs are written.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// The pipeline binary (default: `pipeline` next to this harness binary).
    #[arg(long)]
    pub pipeline_bin: Option<PathBuf>,
    /// A Prometheus beside the cluster, scraping every role and evaluating the alerting rules:
    /// auto (the `prometheus` on PATH; without one the run says so and goes on), off, or the
    /// binary's path.
    #[arg(long, default_value = "auto")]
    pub prometheus: PrometheusChoice,
    /// The cluster secret the roles require (one to four lines, the first is sent; mode 0600)
    /// instead of a fresh one from the OS RNG. Never copied into the run directory.
    #[arg(long, value_name = "FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// How long to wait after the workload for every saga to finish.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    pub quiesce_timeout: Duration,
    /// Client request timeout; a request past it is recorded as info.
    #[arg(long, default_value = "2s", value_parser = duration::parse)]
    pub client_timeout: Duration,
    /// Start the fault at this offset into the workload instead of the seeded choice.
    #[arg(long, value_parser = duration::parse)]
    pub fault_at: Option<Duration>,
    /// Keep the fault this long instead of the seeded choice.
    #[arg(long, value_parser = duration::parse)]
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
    /// The order leader trusts its leadership flag instead of checking the lease before every
    /// write, and steps down only after a whole TTL of failed renewals: a paused leader then
    /// writes after it was deposed, and only fencing stops it (see docs/pipeline.md).
    #[arg(long)]
    pub no_lease_check: bool,
    /// Consistency model of inventory: linearizable (leader, fencing, majority quorum) or
    /// eventual (any node, W = R = 1).
    #[arg(long)]
    pub inventory_mode: Option<InventoryMode>,
    /// Share of shipment creations the shipping service refuses (forces compensations).
    #[arg(long)]
    pub shipping_failure_rate: Option<f64>,
    /// What the clients do: orders (place orders), stock (call the inventory directly: reserve,
    /// release, read-stock on a few contended SKUs), or mixed (both at once).
    #[arg(long, default_value = "orders")]
    pub workload: WorkloadKind,
    /// Contended SKUs of the stock workload (`stock-0` ...), apart from the orders' SKUs.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub stock_skus: u16,
    /// Units of each contended SKU at the start (small, so that reserves run out).
    #[arg(long, default_value_t = 10, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    pub initial_stock: i64,
    /// Units of each order SKU (`sku-0` .. `sku-9`) at the start. Small, and the orders run
    /// out of stock and end `rejected` (nothing charged) from then on.
    #[arg(long, default_value_t = formats::spec::DEFAULT_ORDER_STOCK, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    pub order_stock: i64,
}

impl RunArgs {
    /// The run these flags describe, in canonical form. Every field is named, so a field added
    /// to [`RunConfig`] does not build until it has a flag.
    pub fn into_config(self) -> RunConfig {
        let RunArgs {
            cluster,
            nodes,
            nodes_file,
            insecure_ignore_host_keys,
            netns_state_dir,
            time_limit,
            rate,
            concurrency,
            seed,
            scenario,
            nemesis,
            faults,
            nemesis_interval,
            nemesis_pairs,
            toxiproxy,
            faultproxy_bin,
            pause_role,
            pause_target,
            out,
            pipeline_bin,
            prometheus,
            cluster_secret_file,
            quiesce_timeout,
            client_timeout,
            fault_at,
            fault_for,
            no_idempotency,
            no_fencing,
            no_retry_budget,
            no_compensation,
            no_lease_check,
            inventory_mode,
            shipping_failure_rate,
            workload,
            stock_skus,
            initial_stock,
            order_stock,
        } = self;
        RunConfig {
            cluster,
            nodes,
            nodes_file,
            insecure_ignore_host_keys,
            netns_state_dir,
            time_limit,
            rate,
            concurrency,
            seed,
            scenario,
            nemesis,
            faults,
            nemesis_interval,
            nemesis_pairs,
            toxiproxy,
            faultproxy_bin,
            pause_role,
            pause_target,
            out,
            pipeline_bin,
            prometheus,
            cluster_secret_file,
            quiesce_timeout,
            client_timeout,
            fault_at,
            fault_for,
            switches: Switches {
                no_idempotency,
                no_fencing,
                no_retry_budget,
                no_compensation,
                no_lease_check,
            },
            inventory_mode,
            shipping_failure_rate,
            workload,
            stock_skus,
            initial_stock,
            order_stock,
            expectation: None,
            paired_with: None,
        }
        .canonical()
    }
}

/// `harness run`'s options alone (without `harness run`), for parsing a rerun command.
#[derive(Debug, Parser)]
#[command(name = "harness run", no_binary_name = true)]
struct RunWords {
    #[command(flatten)]
    run: RunArgs,
}

/// Parses `harness run` options (the words after `harness run`) into a config; the error is
/// clap's first line.
pub fn parse_run_words<S: AsRef<str>>(words: &[S]) -> Result<RunConfig, String> {
    RunWords::try_parse_from(words.iter().map(AsRef::as_ref))
        .map(|w| w.run.into_config())
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_owned())
}

/// `harness scenario run`'s options alone, for parsing a scenario's rerun command.
#[derive(Debug, Parser)]
#[command(name = "harness scenario run", no_binary_name = true)]
struct ScenarioRunWords {
    #[command(flatten)]
    run: ScenarioRunArgs,
}

/// Parses `harness scenario run` options (the words after `harness scenario run`); the error
/// is clap's first line.
pub fn parse_scenario_run_words<S: AsRef<str>>(words: &[S]) -> Result<ScenarioRunArgs, String> {
    ScenarioRunWords::try_parse_from(words.iter().map(AsRef::as_ref))
        .map(|w| w.run)
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_owned())
}
