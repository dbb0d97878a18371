//! `spec.json`: the run as a value. [`RunConfig`] is what a run is built from (`harness run`'s
//! options, a named scenario, the nightly job, a bench); [`Spec`] is what `spec.json` holds:
//! the config with its seed and node count resolved, plus what the run derived from it. The
//! harness derives the rerun command from the config and nothing else.
//!
//! Files written before [`SPEC_VERSION`] 2 (no `schema_version` field) still read: see
//! [`Spec::from_json`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{ms, ms_opt};
use crate::expectation::Expectation;
use crate::fault::{Kind, Kinds, Planned, Target};
use crate::role::Role;

/// Version of `spec.json` this crate writes. Version 1 had no version field.
pub const SPEC_VERSION: u32 = 2;

/// Where the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    /// Child processes on 127.0.0.1 (no root needed).
    Local,
    /// Network namespaces with their own sshd (root).
    Netns,
    /// Hosts listed in a nodes file, e.g. Vagrant VMs.
    Ssh,
}

impl ClusterKind {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterKind::Local => "local",
            ClusterKind::Netns => "netns",
            ClusterKind::Ssh => "ssh",
        }
    }
}

/// `FromStr` for a unit enum from its `as_str` names; the error lists them.
macro_rules! from_names {
    ($t:ty, $what:literal, [$($v:expr),+]) => {
        impl std::str::FromStr for $t {
            type Err = String;

            fn from_str(s: &str) -> Result<$t, String> {
                let all = [$($v),+];
                all.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = all.iter().map(|v| v.as_str()).collect();
                    format!("{} '{s}' (expected {})", $what, names.join(", "))
                })
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

from_names!(
    ClusterKind,
    "cluster",
    [ClusterKind::Local, ClusterKind::Netns, ClusterKind::Ssh]
);
from_names!(
    WorkloadKind,
    "workload",
    [
        WorkloadKind::Orders,
        WorkloadKind::Stock,
        WorkloadKind::Mixed
    ]
);
from_names!(
    InventoryMode,
    "inventory mode",
    [InventoryMode::Linearizable, InventoryMode::Eventual]
);

/// What the clients of a run do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Place orders through the order service and poll them to a terminal state.
    Orders,
    /// Reserve, release and read stock through the inventory service's client API.
    Stock,
    /// Both.
    Mixed,
}

impl WorkloadKind {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InventoryMode {
    /// Single leader, fencing tokens, majority quorum.
    Linearizable,
    /// Any node accepts locally and replicates later.
    Eventual,
}

impl InventoryMode {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            InventoryMode::Linearizable => "linearizable",
            InventoryMode::Eventual => "eventual",
        }
    }
}

/// The protections a run may switch off, each to prove that a check fails without it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Switches {
    /// Idempotency in payment, inventory and shipping.
    pub no_idempotency: bool,
    /// Fencing in the store replicas.
    pub no_fencing: bool,
    /// The retry budget of calls between services.
    pub no_retry_budget: bool,
    /// Saga compensations.
    pub no_compensation: bool,
    /// The order leader's lease check before every write.
    pub no_lease_check: bool,
}

impl Switches {
    /// The names of the switches that are on (`no-fencing`, ...).
    pub fn names(&self) -> Vec<&'static str> {
        let Switches {
            no_idempotency,
            no_fencing,
            no_retry_budget,
            no_compensation,
            no_lease_check,
        } = *self;
        [
            (no_idempotency, "no-idempotency"),
            (no_fencing, "no-fencing"),
            (no_retry_budget, "no-retry-budget"),
            (no_compensation, "no-compensation"),
            (no_lease_check, "no-lease-check"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// Whether a Prometheus runs beside the cluster (scraping every role, evaluating the alerting
/// rules), as `--prometheus` spells it: `auto` (the `prometheus` on PATH, if there is one),
/// `off`, or the binary's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum PrometheusChoice {
    /// The `prometheus` on PATH; without one the run says so and goes on.
    #[default]
    Auto,
    /// No Prometheus.
    Off,
    /// This binary.
    Binary(PathBuf),
}

impl std::fmt::Display for PrometheusChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrometheusChoice::Auto => f.pad("auto"),
            PrometheusChoice::Off => f.pad("off"),
            PrometheusChoice::Binary(p) => f.pad(&p.display().to_string()),
        }
    }
}

impl std::str::FromStr for PrometheusChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<PrometheusChoice, String> {
        match s {
            "" => Err("--prometheus: give auto, off or the binary's path".into()),
            "auto" => Ok(PrometheusChoice::Auto),
            "off" => Ok(PrometheusChoice::Off),
            path => Ok(PrometheusChoice::Binary(PathBuf::from(path))),
        }
    }
}

/// One run, as a value: build it, store it in `spec.json`, derive its command line from it,
/// change it and run it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Where the cluster runs.
    pub cluster: ClusterKind,
    /// Number of nodes of a local or netns cluster (`None`: the default; resolved in
    /// `spec.json`).
    pub nodes: Option<u16>,
    /// The nodes of an ssh cluster.
    pub nodes_file: Option<PathBuf>,
    /// Accept any SSH host key instead of checking known_hosts.
    pub insecure_ignore_host_keys: bool,
    /// State directory of the netns cluster.
    pub netns_state_dir: PathBuf,
    /// How long the workload runs.
    #[serde(rename = "time_limit_ms", with = "ms")]
    pub time_limit: Duration,
    /// Operations per second across all clients.
    pub rate: f64,
    /// Concurrent client processes.
    pub concurrency: u16,
    /// Seed of every random choice (`None`: drawn at start; resolved in `spec.json`).
    pub seed: Option<u64>,
    /// The run's folder under `out`.
    pub scenario: String,
    /// The kinds a seeded schedule draws from (ignored when `faults` is not empty).
    pub nemesis: Kinds,
    /// Exactly placed faults instead of the seeded schedule.
    pub faults: Vec<Planned>,
    /// One fault slot every this long.
    #[serde(rename = "nemesis_interval_ms", with = "ms_opt")]
    pub nemesis_interval: Option<Duration>,
    /// Two faults of different kinds at once in each slot.
    pub nemesis_pairs: bool,
    /// A Toxiproxy-compatible API to put the link proxies on instead of starting faultproxy.
    pub toxiproxy: Option<String>,
    /// The faultproxy binary.
    pub faultproxy_bin: Option<PathBuf>,
    /// The role the single pause stops.
    pub pause_role: Role,
    /// Which of its processes (`leader`, `random` or a node), as `--pause-target` spells it.
    #[serde(with = "crate::spelled")]
    pub pause_target: Target,
    /// Where runs are written.
    pub out: PathBuf,
    /// The pipeline binary.
    pub pipeline_bin: Option<PathBuf>,
    /// The Prometheus beside the cluster (`auto`, `off` or a binary).
    #[serde(default, with = "crate::spelled")]
    pub prometheus: PrometheusChoice,
    /// The file holding the cluster secret (`None`: a fresh secret per run). Only the path is
    /// recorded, never the secret; the secret file is never copied into the run directory.
    #[serde(default)]
    pub cluster_secret_file: Option<PathBuf>,
    /// How long to wait after the workload for every saga to finish.
    #[serde(rename = "quiesce_timeout_ms", with = "ms")]
    pub quiesce_timeout: Duration,
    /// Client request timeout.
    #[serde(rename = "client_timeout_ms", with = "ms")]
    pub client_timeout: Duration,
    /// Start the fault at this offset instead of the seeded choice.
    #[serde(rename = "fault_at_ms", with = "ms_opt")]
    pub fault_at: Option<Duration>,
    /// Keep faults this long instead of the seeded choice.
    #[serde(rename = "fault_for_ms", with = "ms_opt")]
    pub fault_for: Option<Duration>,
    /// Protections switched off.
    #[serde(flatten)]
    pub switches: Switches,
    /// Inventory's consistency model (`None`: the pipeline's default, linearizable).
    pub inventory_mode: Option<InventoryMode>,
    /// Share of shipments refused.
    pub shipping_failure_rate: Option<f64>,
    /// What the clients do.
    pub workload: WorkloadKind,
    /// Contended SKUs of the stock workload.
    pub stock_skus: u16,
    /// Units of each contended SKU at the start.
    pub initial_stock: i64,
    /// Units of each order SKU (`sku-0` ..) at the start; absent in older specs, which ran
    /// with the pipeline's default.
    #[serde(default = "default_order_stock")]
    pub order_stock: i64,
    /// A named scenario's expectation.
    pub expectation: Option<Expectation>,
    /// The run this one is the protection-off half of (`<scenario>/<timestamp>`).
    pub paired_with: Option<String>,
}

impl Default for RunConfig {
    /// `harness run` with no options.
    fn default() -> RunConfig {
        RunConfig {
            cluster: ClusterKind::Local,
            nodes: None,
            nodes_file: None,
            insecure_ignore_host_keys: false,
            netns_state_dir: PathBuf::from(DEFAULT_NETNS_STATE_DIR),
            time_limit: Duration::from_secs(30),
            rate: 20.0,
            concurrency: 6,
            seed: None,
            scenario: "smoke".into(),
            nemesis: Kinds::only(Kind::Pause),
            faults: Vec::new(),
            nemesis_interval: None,
            nemesis_pairs: false,
            toxiproxy: None,
            faultproxy_bin: None,
            pause_role: Role::Order,
            pause_target: Target::Leader,
            out: PathBuf::from("reports"),
            pipeline_bin: None,
            prometheus: PrometheusChoice::Auto,
            cluster_secret_file: None,
            quiesce_timeout: Duration::from_secs(30),
            client_timeout: Duration::from_secs(2),
            fault_at: None,
            fault_for: None,
            switches: Switches::default(),
            inventory_mode: None,
            shipping_failure_rate: None,
            workload: WorkloadKind::Orders,
            stock_skus: 2,
            initial_stock: 10,
            order_stock: DEFAULT_ORDER_STOCK,
            expectation: None,
            paired_with: None,
        }
    }
}

/// Units of each order SKU at the start unless `--order-stock` says otherwise: the pipeline's
/// own default (`sut/src/config.rs`).
pub const DEFAULT_ORDER_STOCK: i64 = 1000;

fn default_order_stock() -> i64 {
    DEFAULT_ORDER_STOCK
}

/// Default state directory of the netns cluster.
pub const DEFAULT_NETNS_STATE_DIR: &str = "/run/harness-netns";
/// Nodes of a local cluster by default.
pub const DEFAULT_LOCAL_NODES: u16 = 3;
/// Nodes of a netns cluster by default.
pub const DEFAULT_NETNS_NODES: u16 = 5;

impl RunConfig {
    /// The config in its one canonical form: explicit faults replace the seeded schedule, so
    /// the schedule's options are cleared when `faults` is not empty (the command line refuses
    /// both at once).
    pub fn canonical(mut self) -> RunConfig {
        if !self.faults.is_empty() {
            self.nemesis = Kinds::none();
            self.nemesis_interval = None;
            self.nemesis_pairs = false;
            self.fault_at = None;
            self.fault_for = None;
        }
        self
    }

    /// The role whose leader the nemesis's leader-shaped faults aim at: the inventory's in a
    /// stock-only run with a leader (linearizable mode), the order service's otherwise.
    pub fn leader_role(&self) -> Role {
        if self.workload == WorkloadKind::Stock
            && self.inventory_mode != Some(InventoryMode::Eventual)
        {
            Role::Inventory
        } else {
            Role::Order
        }
    }

    /// The contended SKUs of the stock workload (`stock-0` ...), if it runs.
    pub fn stock_sku_names(&self) -> Option<Vec<String>> {
        self.workload
            .stock()
            .then(|| (0..self.stock_skus).map(|i| format!("stock-{i}")).collect())
    }

    /// The node count of a local or netns cluster.
    pub fn node_count(&self) -> usize {
        let default = match self.cluster {
            ClusterKind::Netns => DEFAULT_NETNS_NODES,
            _ => DEFAULT_LOCAL_NODES,
        };
        usize::from(self.nodes.unwrap_or(default))
    }

    /// The kinds of fault the run may inject: those of its explicit faults, or of its schedule.
    pub fn fault_kinds(&self) -> Vec<Kind> {
        if self.faults.is_empty() {
            self.nemesis.0.iter().copied().collect()
        } else {
            self.faults.iter().map(|f| f.plan.kind()).collect()
        }
    }
}

/// Timing settings of a cluster of slow nodes (a nodes file's `[timing]`): a run on emulated
/// VMs is judged by its own clock, not by loopback's. Milliseconds; `None` keeps the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// The pipeline's leader lease (`lease_ttl_ms`, default 2500).
    pub lease_ttl_ms: Option<u64>,
    /// One store request (`store_timeout_ms`, default 1000).
    pub store_timeout_ms: Option<u64>,
    /// One call attempt between services (`call_timeout_ms`, default 2000).
    pub call_timeout_ms: Option<u64>,
    /// How long the harness waits for every role's `/health` after starting it.
    pub health_timeout_ms: Option<u64>,
}

impl Timing {
    /// The pipeline settings (contract §1) this timing sets, by name.
    pub fn pipeline_settings(&self) -> Vec<(&'static str, u64)> {
        [
            ("lease_ttl_ms", self.lease_ttl_ms),
            ("store_timeout_ms", self.store_timeout_ms),
            ("call_timeout_ms", self.call_timeout_ms),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }
}

/// `spec.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// [`SPEC_VERSION`].
    pub schema_version: u32,
    /// The run's config, seed and (local, netns) node count resolved.
    #[serde(flatten)]
    pub config: RunConfig,
    /// Node names, in order.
    pub node_names: Vec<String>,
    /// The roles deployed on every node, in start order.
    pub roles: Vec<Role>,
    /// The role leader-shaped faults aim at.
    pub leader_role: Role,
    /// The contended SKUs of the stock workload, if it ran.
    pub stock_sku_names: Option<Vec<String>>,
    /// What the harness recorded about the cluster (kind-specific, for people).
    #[serde(default)]
    pub cluster_details: serde_json::Value,
    /// The cluster's timing settings (a nodes file's `[timing]`; defaults elsewhere).
    #[serde(default)]
    pub timing: Timing,
    /// The pipeline binary the run used.
    pub pipeline_bin_used: Option<PathBuf>,
    /// The harness's version.
    pub harness_version: String,
    /// The exact command that reruns the run.
    pub rerun: String,
}

/// Why a `spec.json` could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The document is not a spec of a version this crate reads.
    #[error("schema version {found}: this version reads spec.json versions 1 and {SPEC_VERSION}")]
    Version {
        /// The version in the file.
        found: u64,
    },
    /// It does not have the shape of its version.
    #[error("spec.json version {version}: {message}")]
    Shape {
        /// Its version.
        version: u32,
        /// serde's message.
        message: String,
    },
}

impl Spec {
    /// Reads a `spec.json` of any version this crate knows: version 2 as it is, version 1 (no
    /// `schema_version`) converted (its expectation, written with JSON pointers, is dropped and
    /// said so in `legacy_note`).
    pub fn from_json(v: serde_json::Value) -> Result<(Spec, Option<String>), SpecError> {
        match v.get("schema_version").map(|s| s.as_u64()) {
            None => crate::legacy::spec_v1(v),
            Some(Some(n)) if n == u64::from(SPEC_VERSION) => serde_json::from_value(v)
                .map(|s| (s, None))
                .map_err(|e| SpecError::Shape {
                    version: SPEC_VERSION,
                    message: e.to_string(),
                }),
            Some(found) => Err(SpecError::Version {
                found: found.unwrap_or(0),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves a spec reads back equal from its JSON, with durations in whole milliseconds and
    /// the protection switches at the top level, and a version this crate does not know is
    /// one clear error naming it.
    #[test]
    fn spec_round_trips_and_versions_are_checked() {
        let mut config = RunConfig {
            seed: Some(7),
            nodes: Some(3),
            ..RunConfig::default()
        };
        config.switches.no_fencing = true;
        config.faults = vec!["kind=pause,role=order,node=leader,at=3s,for=4s"
            .parse()
            .expect("fault")];
        let spec = Spec {
            schema_version: SPEC_VERSION,
            leader_role: config.leader_role(),
            stock_sku_names: config.stock_sku_names(),
            config,
            node_names: vec!["n1".into(), "n2".into(), "n3".into()],
            roles: Role::ALL.to_vec(),
            cluster_details: serde_json::json!({"kind": "local"}),
            timing: Timing::default(),
            pipeline_bin_used: None,
            harness_version: "0.1.0".into(),
            rerun: "harness run".into(),
        };
        let json = serde_json::to_value(&spec).expect("serializes");
        assert_eq!(json["time_limit_ms"], 30_000);
        assert_eq!(json["no_fencing"], true);
        assert_eq!(
            json["faults"][0],
            "kind=pause,role=order,node=leader,at=3s,for=4s"
        );
        assert_eq!(json["nemesis"], "pause");
        let (back, note) = Spec::from_json(json.clone()).expect("reads");
        assert_eq!(back, spec);
        assert_eq!(note, None);
        let mut future = json;
        future["schema_version"] = 9.into();
        let e = Spec::from_json(future).expect_err("version 9");
        assert!(e.to_string().contains("schema version 9"), "{e}");
    }
}
