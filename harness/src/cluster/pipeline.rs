//! The one place that knows how to launch the pipeline: its roles, their command lines and the
//! per-node config file. See docs/contracts.md section 1.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// The pipeline roles the harness deploys, in start order (the store first: every other role
/// keeps its state there).
pub const ROLES: &[&str] = &["store", "inventory", "payment", "shipping", "order"];

/// SKUs the order workload chooses from (`sku-0` ...), as many as the pipeline's default.
pub const ORDER_SKUS: usize = 10;
/// Units of each order SKU: the pipeline's default, restated when the harness sets
/// `initial_stock` (which replaces the whole map).
pub const ORDER_SKU_STOCK: i64 = 1000;

/// Settings the harness gives every node unless told otherwise: a shipping failure rate, so
/// that runs exercise compensations too, and the retry budget the retry-load check holds the
/// callers to (`checker::analysis::seams::BudgetParams`), so that pipeline and check agree.
pub fn default_settings() -> Value {
    let budget = checker::analysis::seams::BudgetParams::default();
    json!({
        "shipping_failure_rate": 0.1,
        "retry_budget_ratio": budget.ratio,
        "retry_budget_floor_per_s": budget.floor_retries_per_s.round() as u64,
    })
}

/// The stock workload's contended SKUs: `stock-0` .. `stock-<count - 1>`, each starting with
/// `initial` units. They are apart from the order SKUs, so that the only reserves on them are
/// the stock clients' recorded ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockSkus {
    /// How many.
    pub count: usize,
    /// Units of each at the start.
    pub initial: i64,
}

impl StockSkus {
    /// The SKU names.
    pub fn names(&self) -> Vec<String> {
        (0..self.count).map(|i| format!("stock-{i}")).collect()
    }
}

/// The settings of every node of a run: the defaults, plus with `stock` an `initial_stock`
/// map holding the order SKUs (at the pipeline's default) and the contended SKUs.
pub fn settings(stock: Option<&StockSkus>) -> Value {
    let mut settings = default_settings();
    if let Some(stock) = stock {
        let mut initial = serde_json::Map::new();
        for i in 0..ORDER_SKUS {
            initial.insert(format!("sku-{i}"), json!(ORDER_SKU_STOCK));
        }
        for name in stock.names() {
            initial.insert(name, json!(stock.initial));
        }
        settings["initial_stock"] = Value::Object(initial);
    }
    settings
}

/// The config file of `node` (contract §1). `addrs` maps (node, role) to the address *this
/// node* uses to reach that role; this node's own entries are where its roles listen.
pub fn node_config(
    node: &str,
    nodes: &[String],
    addrs: &BTreeMap<(String, String), String>,
    settings: &Value,
) -> Value {
    let mut listen = serde_json::Map::new();
    let mut peers: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for ((n, role), addr) in addrs {
        if n == node {
            listen.insert(role.clone(), json!(addr));
        }
        peers
            .entry(role.clone())
            .or_default()
            .insert(n.clone(), json!(addr));
    }
    json!({
        "node": node,
        "nodes": nodes,
        "listen": listen,
        "peers": peers,
        "settings": settings,
    })
}

/// Where a role's files are: the node's config, the cluster secret (a file of its own, never
/// in the config or the run directory), and the role's state.
#[derive(Debug, Clone, Copy)]
pub struct RoleFiles<'a> {
    /// The node's config file.
    pub config: &'a str,
    /// The secret file.
    pub secret: &'a str,
    /// The role's data directory.
    pub data_dir: &'a str,
}

/// The command line (after the binary) of `role` on `node` with its `files`; `extra` holds
/// protection switches and other flags.
pub fn role_args(node: &str, role: &str, files: RoleFiles<'_>, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        role.to_owned(),
        "--node".into(),
        node.to_owned(),
        "--config".into(),
        files.config.to_owned(),
        "--secret-file".into(),
        files.secret.to_owned(),
        "--data-dir".into(),
        files.data_dir.to_owned(),
    ];
    args.extend(extra.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the settings keep today's defaults without a stock workload, and with one list
    /// the order SKUs at the pipeline's default next to the contended SKUs at their stock.
    #[test]
    fn settings_carry_the_initial_stock() {
        assert_eq!(settings(None), default_settings());
        let s = settings(Some(&StockSkus {
            count: 2,
            initial: 7,
        }));
        assert_eq!(s["shipping_failure_rate"], 0.1);
        let initial = s["initial_stock"].as_object().expect("a map");
        assert_eq!(initial.len(), ORDER_SKUS + 2);
        assert_eq!(initial["sku-9"], ORDER_SKU_STOCK);
        assert_eq!(initial["stock-0"], 7);
        assert_eq!(initial["stock-1"], 7);
    }

    /// Proves a node's config lists its own roles under `listen` and every node's under
    /// `peers`, in the shape of contract §1.
    #[test]
    fn config_has_listen_and_peers() {
        let nodes = vec!["n1".to_owned(), "n2".to_owned()];
        let addrs: BTreeMap<(String, String), String> = [
            (("n1", "store"), "127.0.0.1:1"),
            (("n2", "store"), "127.0.0.1:2"),
            (("n1", "order"), "127.0.0.1:3"),
            (("n2", "order"), "127.0.0.1:4"),
        ]
        .into_iter()
        .map(|((n, r), a)| ((n.to_owned(), r.to_owned()), a.to_owned()))
        .collect();
        let cfg = node_config("n2", &nodes, &addrs, &json!({}));
        assert_eq!(
            cfg["listen"],
            json!({"store": "127.0.0.1:2", "order": "127.0.0.1:4"})
        );
        assert_eq!(
            cfg["peers"]["store"],
            json!({"n1": "127.0.0.1:1", "n2": "127.0.0.1:2"})
        );
        assert_eq!(cfg["node"], "n2");
        let files = RoleFiles {
            config: "/c.json",
            secret: "/s",
            data_dir: "/d",
        };
        let args = role_args("n2", "order", files, &["--no-compensation".into()]);
        assert_eq!(
            args,
            [
                "order",
                "--node",
                "n2",
                "--config",
                "/c.json",
                "--secret-file",
                "/s",
                "--data-dir",
                "/d",
                "--no-compensation"
            ]
        );
    }
}

/// The protection switches and per-role overrides of one run.
#[derive(Debug, Clone, Default)]
pub struct Switches {
    /// `--no-idempotency` on payment, inventory and shipping.
    pub no_idempotency: bool,
    /// `--no-fencing` on the store.
    pub no_fencing: bool,
    /// `--no-retry-budget` on order (the only caller of other services).
    pub no_retry_budget: bool,
    /// `--no-compensation` on order.
    pub no_compensation: bool,
    /// `--no-lease-check` on order.
    pub no_lease_check: bool,
    /// `--inventory-mode` on inventory.
    pub inventory_mode: Option<String>,
    /// `--failure-rate` on shipping.
    pub shipping_failure_rate: Option<f64>,
}

/// The extra flags of each role for `switches`.
pub fn role_flags(switches: &Switches) -> BTreeMap<String, Vec<String>> {
    let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |role: &str, words: &[String]| {
        flags
            .entry(role.to_owned())
            .or_default()
            .extend(words.iter().cloned());
    };
    if switches.no_idempotency {
        for role in ["payment", "inventory", "shipping"] {
            add(role, &["--no-idempotency".to_owned()]);
        }
    }
    if switches.no_fencing {
        add("store", &["--no-fencing".to_owned()]);
    }
    if switches.no_retry_budget {
        add("order", &["--no-retry-budget".to_owned()]);
    }
    if switches.no_compensation {
        add("order", &["--no-compensation".to_owned()]);
    }
    if switches.no_lease_check {
        add("order", &["--no-lease-check".to_owned()]);
    }
    if let Some(mode) = &switches.inventory_mode {
        add("inventory", &["--inventory-mode".to_owned(), mode.clone()]);
    }
    if let Some(rate) = switches.shipping_failure_rate {
        add("shipping", &["--failure-rate".to_owned(), rate.to_string()]);
    }
    flags
}
