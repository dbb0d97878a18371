//! The one place that knows how to launch the pipeline: its roles, their command lines and the
//! per-node config file. See docs/contracts.md section 1.

use std::collections::BTreeMap;

use formats::spec::{RunConfig, DEFAULT_ORDER_STOCK};
use formats::Role;
use serde_json::{json, Value};

/// The pipeline roles the harness deploys, in start order (the store first: every other role
/// keeps its state there).
pub const ROLES: [Role; 5] = Role::ALL;

/// A role on a node: `(node, role)`.
pub type RoleKey = (String, Role);

/// SKUs the order workload chooses from (`sku-0` ...), as many as the pipeline's default.
pub const ORDER_SKUS: usize = 10;

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

/// The settings of every node of a run: the defaults, plus, with a stock workload or other
/// order stock than the default, an `initial_stock` map holding the order SKUs (`order_stock`
/// units each) and the contended SKUs (`stock-0` .. , apart from the order SKUs, so that the
/// only reserves on them are the stock clients' recorded ones).
pub fn settings(config: &RunConfig) -> Value {
    let mut settings = default_settings();
    let names = config.stock_sku_names();
    if names.is_some() || config.order_stock != DEFAULT_ORDER_STOCK {
        let mut initial = serde_json::Map::new();
        for i in 0..ORDER_SKUS {
            initial.insert(format!("sku-{i}"), json!(config.order_stock));
        }
        for name in names.into_iter().flatten() {
            initial.insert(name, json!(config.initial_stock));
        }
        settings["initial_stock"] = Value::Object(initial);
    }
    settings
}

/// `settings` with the pipeline settings a nodes file's `[timing]` sets (lease TTL, store and
/// call timeouts) put over them.
pub fn with_timing(settings: &Value, timing: &crate::nodes_file::Timing) -> Value {
    let mut out = settings.clone();
    if let Value::Object(map) = &mut out {
        for (name, ms) in timing.pipeline_settings() {
            map.insert(name.to_owned(), json!(ms));
        }
    }
    out
}

/// The config file of `node` (contract §1). `addrs` maps (node, role) to the address *this
/// node* uses to reach that role; this node's own entries are where its roles listen.
pub fn node_config(
    node: &str,
    nodes: &[String],
    addrs: &BTreeMap<RoleKey, String>,
    settings: &Value,
) -> Value {
    node_config_via(node, nodes, addrs, addrs, settings)
}

/// As [`node_config`], with this node's roles listening at `listen`'s entries and every role
/// reached at `peers`' (which differ when calls go through link proxies).
pub fn node_config_via(
    node: &str,
    nodes: &[String],
    listen_at: &BTreeMap<RoleKey, String>,
    addrs: &BTreeMap<RoleKey, String>,
    settings: &Value,
) -> Value {
    let mut listen = serde_json::Map::new();
    for ((n, role), addr) in listen_at {
        if n == node {
            listen.insert(role.as_str().to_owned(), json!(addr));
        }
    }
    let mut peers: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for ((n, role), addr) in addrs {
        peers
            .entry(role.as_str().to_owned())
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
pub fn role_args(node: &str, role: Role, files: RoleFiles<'_>, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        role.as_str().to_owned(),
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

/// The extra flags of each role for a run's protection switches and role overrides.
pub fn role_flags(config: &RunConfig) -> BTreeMap<Role, Vec<String>> {
    let mut flags: BTreeMap<Role, Vec<String>> = BTreeMap::new();
    let mut add = |role: Role, words: &[String]| {
        flags.entry(role).or_default().extend(words.iter().cloned());
    };
    let sw = &config.switches;
    if sw.no_idempotency {
        for role in [Role::Payment, Role::Inventory, Role::Shipping] {
            add(role, &["--no-idempotency".to_owned()]);
        }
    }
    if sw.no_fencing {
        add(Role::Store, &["--no-fencing".to_owned()]);
    }
    if sw.no_retry_budget {
        add(Role::Order, &["--no-retry-budget".to_owned()]);
    }
    if sw.no_compensation {
        add(Role::Order, &["--no-compensation".to_owned()]);
    }
    if sw.no_lease_check {
        add(Role::Order, &["--no-lease-check".to_owned()]);
    }
    if let Some(mode) = config.inventory_mode {
        add(
            Role::Inventory,
            &["--inventory-mode".to_owned(), mode.as_str().to_owned()],
        );
    }
    if let Some(rate) = config.shipping_failure_rate {
        add(
            Role::Shipping,
            &["--failure-rate".to_owned(), rate.to_string()],
        );
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the settings keep today's defaults without a stock workload, and with one list
    /// the order SKUs at the pipeline's default next to the contended SKUs at their stock.
    #[test]
    fn settings_carry_the_initial_stock() {
        assert_eq!(settings(&RunConfig::default()), default_settings());
        let s = settings(&RunConfig {
            workload: formats::spec::WorkloadKind::Stock,
            stock_skus: 2,
            initial_stock: 7,
            ..RunConfig::default()
        });
        assert_eq!(s["shipping_failure_rate"], 0.1);
        let initial = s["initial_stock"].as_object().expect("a map");
        assert_eq!(initial.len(), ORDER_SKUS + 2);
        assert_eq!(initial["sku-9"], DEFAULT_ORDER_STOCK);
        assert_eq!(initial["stock-0"], 7);
        assert_eq!(initial["stock-1"], 7);
    }

    /// Proves `--order-stock` sets every order SKU's units, with or without a stock workload.
    #[test]
    fn settings_carry_the_order_stock() {
        let s = settings(&RunConfig {
            order_stock: 3,
            ..RunConfig::default()
        });
        let initial = s["initial_stock"].as_object().expect("a map");
        assert_eq!(initial.len(), ORDER_SKUS);
        assert!(initial.values().all(|v| v == 3), "{initial:?}");
        let s = settings(&RunConfig {
            workload: formats::spec::WorkloadKind::Mixed,
            order_stock: 0,
            ..RunConfig::default()
        });
        let initial = s["initial_stock"].as_object().expect("a map");
        assert_eq!(initial["sku-0"], 0);
        assert_eq!(initial["stock-0"], 10);
    }

    /// Proves a nodes file's timing reaches the settings by the pipeline's names and leaves the
    /// other settings alone, and that no timing changes nothing.
    #[test]
    fn timing_sets_the_pipeline_settings() {
        let base = settings(&RunConfig::default());
        assert_eq!(
            with_timing(&base, &crate::nodes_file::Timing::default()),
            base
        );
        let timing = crate::nodes_file::Timing {
            lease_ttl_ms: Some(10_000),
            call_timeout_ms: Some(8_000),
            health_timeout_ms: Some(120_000),
            ..Default::default()
        };
        let s = with_timing(&base, &timing);
        assert_eq!(s["lease_ttl_ms"], 10_000);
        assert_eq!(s["call_timeout_ms"], 8_000);
        assert!(
            s.get("store_timeout_ms").is_none(),
            "unset stays the default"
        );
        assert!(
            s.get("health_timeout_ms").is_none(),
            "the harness's, not the pipeline's"
        );
        assert_eq!(s["shipping_failure_rate"], base["shipping_failure_rate"]);
    }

    /// Proves a node's config lists its own roles under `listen` and every node's under
    /// `peers`, in the shape of contract §1.
    #[test]
    fn config_has_listen_and_peers() {
        let nodes = vec!["n1".to_owned(), "n2".to_owned()];
        let addrs: BTreeMap<RoleKey, String> = [
            (("n1", Role::Store), "127.0.0.1:1"),
            (("n2", Role::Store), "127.0.0.1:2"),
            (("n1", Role::Order), "127.0.0.1:3"),
            (("n2", Role::Order), "127.0.0.1:4"),
        ]
        .into_iter()
        .map(|((n, r), a)| ((n.to_owned(), r), a.to_owned()))
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
        let args = role_args("n2", Role::Order, files, &["--no-compensation".into()]);
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
