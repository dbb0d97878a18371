//! The per-node configuration file (docs/contracts.md §1): where this node's roles listen, how
//! this node reaches every role on every node, and optional tuning in `settings`.
//!
//! Every setting has a default; unknown fields are an error, so a typo cannot silently fall back
//! to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Kinds of state with their own quorum sizes; also the store domains.
pub const STATES: &[&str] = &["order", "payment", "inventory", "shipping"];

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config '{path}': {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("config '{path}': {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A value is out of range or inconsistent.
    #[error("config: {0}")]
    Invalid(String),
}

/// Consistency of one kind of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumSpec {
    /// Replicas written to.
    pub n: usize,
    /// Replies a read waits for.
    pub r: usize,
    /// Acks a write waits for.
    pub w: usize,
    /// Allows `r + w <= n` (reads may miss acknowledged writes).
    #[serde(default)]
    pub eventual: bool,
}

impl QuorumSpec {
    /// Checks `1 <= r, w <= n <= replicas` and `r + w > n` unless eventual.
    pub fn validate(&self, state: &str, replicas: usize) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("quorum of '{state}': {m}")));
        if self.n == 0 || self.n > replicas {
            return bad(format!(
                "n = {} must be between 1 and the {replicas} store replicas",
                self.n
            ));
        }
        if self.r == 0 || self.r > self.n || self.w == 0 || self.w > self.n {
            return bad(format!(
                "r = {} and w = {} must be between 1 and n = {}",
                self.r, self.w, self.n
            ));
        }
        if !self.eventual && self.r + self.w <= self.n {
            return bad(format!(
                "r + w = {} must exceed n = {} unless the state is configured eventual",
                self.r + self.w,
                self.n
            ));
        }
        Ok(())
    }
}

/// How inventory keeps stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InventoryMode {
    /// Single leader behind a fencing token, majority quorums: stock never below zero.
    Linearizable,
    /// Any node applies with W = R = 1 and replicates in the background: can oversell.
    Eventual,
}

/// Optional tuning; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Seed of every random choice a process makes (backoff jitter, election jitter).
    pub seed: u64,
    /// Lease time-to-live of elected leaders.
    pub lease_ttl_ms: u64,
    /// Timeout of one request to one store replica.
    pub store_timeout_ms: u64,
    /// Timeout of one attempt of a call between services.
    pub call_timeout_ms: u64,
    /// Quorum sizes per kind of state (`order`, `payment`, `inventory`, `shipping`).
    pub quorum: BTreeMap<String, QuorumSpec>,
    /// Inventory consistency model.
    pub inventory_mode: InventoryMode,
    /// Share of shipment creations the carrier refuses, decided per idempotency key.
    pub shipping_failure_rate: f64,
    /// Units per SKU at the start; SKUs not listed do not exist.
    pub initial_stock: BTreeMap<String, i64>,
    /// Sagas the order leader drives at once.
    pub saga_concurrency: usize,
    /// Requests a role serves at once; beyond it answers 503 with `x-do-not-retry`.
    pub max_in_flight_requests: usize,
    /// Connections a role holds open at once (more than `max_in_flight_requests`, so that
    /// `/health` and `/metrics`, which skip the in-flight limit, find room); beyond it new
    /// connections are closed at once.
    pub max_connections: usize,
    /// A connection must deliver a complete request head this long after it opened or after its
    /// previous request's head timer started (408 JSON, then closed).
    pub header_read_timeout_ms: u64,
    /// A request's body must arrive in full this long after its head (408 JSON, then closed).
    pub body_read_timeout_ms: u64,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout_ms: u64,
    /// Largest request body of an authenticated request (413 `body_too_large` beyond it).
    pub max_body_bytes: usize,
    /// Share of requests a caller may retry (over a 10 s window).
    pub retry_budget_ratio: f64,
    /// Retries a caller may make per second regardless of the ratio.
    pub retry_budget_floor_per_s: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seed: 0,
            lease_ttl_ms: 2500,
            store_timeout_ms: 1000,
            call_timeout_ms: 2000,
            quorum: BTreeMap::new(),
            inventory_mode: InventoryMode::Linearizable,
            shipping_failure_rate: 0.0,
            initial_stock: (0..10).map(|i| (format!("sku-{i}"), 1000)).collect(),
            saga_concurrency: 32,
            max_in_flight_requests: 256,
            max_connections: 1024,
            header_read_timeout_ms: 5_000,
            body_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_body_bytes: 1024 * 1024,
            retry_budget_ratio: 0.1,
            retry_budget_floor_per_s: 2,
        }
    }
}

impl Settings {
    /// Lease time-to-live.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// Timeout of one store request.
    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms)
    }

    /// Timeout of one call attempt between services.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }

    /// How long a connection may take to send a request head.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// How long a request may take to send its body after its head.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// How long a keep-alive connection may sit without a request.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The quorum of `state` over `replicas` store replicas: configured, or majority quorums
    /// (W = R = 1, eventual, for inventory in eventual mode).
    pub fn quorum_for(&self, state: &str, replicas: usize) -> Result<QuorumSpec, ConfigError> {
        let spec = match self.quorum.get(state) {
            Some(q) => *q,
            None if state == "inventory" && self.inventory_mode == InventoryMode::Eventual => {
                QuorumSpec {
                    n: replicas,
                    r: 1,
                    w: 1,
                    eventual: true,
                }
            }
            None => QuorumSpec {
                n: replicas,
                r: replicas / 2 + 1,
                w: replicas / 2 + 1,
                eventual: false,
            },
        };
        spec.validate(state, replicas)?;
        Ok(spec)
    }

    fn validate(&self, replicas: usize) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(100..=60_000).contains(&self.lease_ttl_ms) {
            return bad(format!(
                "lease_ttl_ms = {} must be between 100 and 60000",
                self.lease_ttl_ms
            ));
        }
        for (name, v) in [
            ("store_timeout_ms", self.store_timeout_ms),
            ("call_timeout_ms", self.call_timeout_ms),
        ] {
            if !(10..=60_000).contains(&v) {
                return bad(format!("{name} = {v} must be between 10 and 60000"));
            }
        }
        if !(0.0..=1.0).contains(&self.shipping_failure_rate) {
            return bad(format!(
                "shipping_failure_rate = {} must be between 0 and 1",
                self.shipping_failure_rate
            ));
        }
        if let Some((sku, n)) = self
            .initial_stock
            .iter()
            .find(|(s, n)| **n < 0 || s.is_empty())
        {
            return bad(format!(
                "initial_stock of '{sku}' = {n}: must be at least 0"
            ));
        }
        if !(1..=1024).contains(&self.saga_concurrency) {
            return bad(format!(
                "saga_concurrency = {} must be between 1 and 1024",
                self.saga_concurrency
            ));
        }
        if !(1..=65_536).contains(&self.max_in_flight_requests) {
            return bad(format!(
                "max_in_flight_requests = {} must be between 1 and 65536",
                self.max_in_flight_requests
            ));
        }
        self.validate_connections()?;
        if !(0.0..=10.0).contains(&self.retry_budget_ratio) || self.retry_budget_floor_per_s > 1000
        {
            return bad(format!(
                "retry_budget_ratio = {} must be between 0 and 10 and retry_budget_floor_per_s = {} at most 1000",
                self.retry_budget_ratio, self.retry_budget_floor_per_s
            ));
        }
        if let Some(state) = self.quorum.keys().find(|s| !STATES.contains(&s.as_str())) {
            return bad(format!(
                "quorum names unknown state '{state}' (known: {STATES:?})"
            ));
        }
        for state in STATES {
            self.quorum_for(state, replicas)?;
        }
        Ok(())
    }
}

impl Settings {
    fn validate_connections(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.max_connections <= self.max_in_flight_requests || self.max_connections > 65_536 {
            return bad(format!(
                "max_connections = {} must exceed max_in_flight_requests = {} and be at most 65536",
                self.max_connections, self.max_in_flight_requests
            ));
        }
        for (name, v, max) in [
            (
                "header_read_timeout_ms",
                self.header_read_timeout_ms,
                600_000,
            ),
            ("body_read_timeout_ms", self.body_read_timeout_ms, 600_000),
            ("idle_timeout_ms", self.idle_timeout_ms, 3_600_000),
        ] {
            if !(100..=max).contains(&v) {
                return bad(format!("{name} = {v} must be between 100 and {max}"));
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return bad(format!(
                "max_body_bytes = {} must be between 1024 and 67108864",
                self.max_body_bytes
            ));
        }
        Ok(())
    }
}

/// One node's configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node.
    pub node: String,
    /// Every node of the cluster.
    pub nodes: Vec<String>,
    /// Where this node's roles bind: role → address.
    pub listen: BTreeMap<String, SocketAddr>,
    /// How this node reaches each role on each node: role → node → `host:port`.
    pub peers: BTreeMap<String, BTreeMap<String, String>>,
    /// Optional tuning.
    #[serde(default)]
    pub settings: Settings,
}

impl NodeConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let cfg: NodeConfig =
            serde_json::from_slice(&bytes).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source,
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the node is listed, the store has replicas and the settings are in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.nodes.contains(&self.node) {
            return Err(ConfigError::Invalid(format!(
                "node '{}' is not in nodes {:?}",
                self.node, self.nodes
            )));
        }
        let replicas = self.peers.get("store").map_or(0, BTreeMap::len);
        if replicas == 0 {
            return Err(ConfigError::Invalid("peers.store lists no replicas".into()));
        }
        self.settings.validate(replicas)
    }

    /// Where `role` binds on this node.
    pub fn listen_addr(&self, role: &str) -> Result<SocketAddr, ConfigError> {
        self.listen
            .get(role)
            .copied()
            .ok_or_else(|| ConfigError::Invalid(format!("listen has no address for role '{role}'")))
    }

    /// Base URLs of `role` on every node, this node first, then in node order.
    pub fn role_urls(&self, role: &str) -> Vec<(String, String)> {
        let Some(peers) = self.peers.get(role) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = peers
            .iter()
            .map(|(n, a)| (n.clone(), format!("http://{a}")))
            .collect();
        out.sort_by_key(|(n, _)| n != &self.node);
        out
    }

    /// Base URL of `role` on `node`, if configured.
    pub fn role_url(&self, role: &str, node: &str) -> Option<String> {
        self.peers
            .get(role)
            .and_then(|p| p.get(node))
            .map(|a| format!("http://{a}"))
    }

    /// Store replicas in node order (every coordinator uses the same order).
    pub fn store_replicas(&self) -> Vec<(String, String)> {
        self.peers
            .get("store")
            .map(|p| {
                p.iter()
                    .map(|(n, a)| (n.clone(), format!("http://{a}")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Position of this node in `nodes` (used to keep version sequences distinct).
    pub fn node_index(&self) -> usize {
        self.nodes.iter().position(|n| n == &self.node).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(settings: serde_json::Value) -> Result<NodeConfig, ConfigError> {
        let v = serde_json::json!({
            "node": "n1", "nodes": ["n1", "n2", "n3"],
            "listen": {"store": "127.0.0.1:1"},
            "peers": {"store": {"n1": "127.0.0.1:1", "n2": "127.0.0.1:2", "n3": "127.0.0.1:3"}},
            "settings": settings,
        });
        let c: NodeConfig = serde_json::from_value(v).map_err(|source| ConfigError::Parse {
            path: "x".into(),
            source,
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Proves defaults give majority quorums, eventual inventory gets W = R = 1, and that
    /// R + W <= N, unknown fields and out-of-range values are refused.
    #[test]
    fn quorums_are_validated() {
        let c = cfg(serde_json::json!({})).expect("defaults are valid");
        let q = c.settings.quorum_for("order", 3).expect("order");
        assert_eq!((q.n, q.r, q.w, q.eventual), (3, 2, 2, false));
        let c = cfg(serde_json::json!({"inventory_mode": "eventual"})).expect("eventual");
        let q = c.settings.quorum_for("inventory", 3).expect("inventory");
        assert_eq!((q.r, q.w, q.eventual), (1, 1, true));
        let err = cfg(serde_json::json!({"quorum": {"order": {"n": 3, "r": 1, "w": 2}}}))
            .expect_err("r + w = n");
        assert!(err.to_string().contains("must exceed"), "{err}");
        cfg(serde_json::json!({"quorum": {"order": {"n": 3, "r": 1, "w": 1, "eventual": true}}}))
            .expect("eventual may be weak");
        assert!(cfg(serde_json::json!({"quorum": {"order": {"n": 4, "r": 3, "w": 3}}})).is_err());
        assert!(cfg(serde_json::json!({"quorum": {"orders": {"n": 3, "r": 2, "w": 2}}})).is_err());
        assert!(cfg(serde_json::json!({"lease_ttl": 5})).is_err());
        assert!(cfg(serde_json::json!({"shipping_failure_rate": 1.5})).is_err());
        assert!(cfg(serde_json::json!({"initial_stock": {"a": -1}})).is_err());
        let e = cfg(serde_json::json!({"max_connections": 256})).expect_err("not above in-flight");
        assert!(e.to_string().contains("max_in_flight_requests"), "{e}");
        assert!(cfg(serde_json::json!({"header_read_timeout_ms": 5})).is_err());
        assert!(cfg(serde_json::json!({"idle_timeout_ms": 0})).is_err());
        assert!(cfg(serde_json::json!({"max_body_bytes": 10})).is_err());
        cfg(serde_json::json!({"max_connections": 257, "body_read_timeout_ms": 100}))
            .expect("smallest cap above the in-flight limit");
    }
}
