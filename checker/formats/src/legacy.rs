//! `spec.json` version 1 (written before the spec became a typed `RunConfig`; no
//! `schema_version` field): read into a version-2 [`Spec`] so that old run directories can be
//! analyzed again. Missing fields take `harness run`'s defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::fault::{Kinds, Planned, Target};
use crate::role::Role;
use crate::spec::{
    ClusterKind, InventoryMode, RunConfig, Spec, SpecError, Switches, WorkloadKind, SPEC_VERSION,
};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct V1 {
    scenario: Option<String>,
    seed: Option<u64>,
    cluster: Option<ClusterKind>,
    nodes: Option<u16>,
    node_names: Option<Vec<String>>,
    cluster_spec: serde_json::Value,
    time_limit_s: Option<f64>,
    rate: Option<f64>,
    concurrency: Option<u16>,
    nemesis: Option<String>,
    faults: Option<Vec<String>>,
    nemesis_interval_s: Option<f64>,
    nemesis_pairs: bool,
    toxiproxy: Option<String>,
    pause_role: Option<Role>,
    pause_target: Option<String>,
    fault_at_s: Option<f64>,
    fault_for_s: Option<f64>,
    client_timeout_s: Option<f64>,
    quiesce_timeout_s: Option<f64>,
    no_idempotency: bool,
    no_fencing: bool,
    no_retry_budget: bool,
    no_compensation: bool,
    no_lease_check: bool,
    expectation: serde_json::Value,
    paired_with: Option<String>,
    inventory_mode: Option<InventoryMode>,
    shipping_failure_rate: Option<f64>,
    workload: Option<WorkloadKind>,
    stock_skus: Option<Vec<String>>,
    initial_stock: Option<i64>,
    roles: Option<Vec<Role>>,
    insecure_ignore_host_keys: bool,
    pipeline_bin: Option<PathBuf>,
    harness_version: Option<String>,
    rerun: Option<String>,
}

fn secs(s: Option<f64>) -> Option<Duration> {
    s.filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_millis((s * 1000.0).round() as u64))
}

fn shape(message: impl std::fmt::Display) -> SpecError {
    SpecError::Shape {
        version: 1,
        message: message.to_string(),
    }
}

/// Reads a version-1 document; the note says what could not be carried over.
pub(crate) fn spec_v1(v: serde_json::Value) -> Result<(Spec, Option<String>), SpecError> {
    let old: V1 = serde_json::from_value(v).map_err(shape)?;
    let d = RunConfig::default();
    let faults = old
        .faults
        .unwrap_or_default()
        .iter()
        .map(|t| t.parse::<Planned>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(shape)?;
    let nemesis = match old.nemesis.as_deref() {
        None | Some("explicit") => d.nemesis.clone(),
        Some(text) => text.parse::<Kinds>().map_err(shape)?,
    };
    let pause_target = match old.pause_target.as_deref() {
        None | Some("leader") => Target::Leader,
        Some("random") => Target::Random,
        Some(node) => Target::Node {
            node: node.to_owned(),
        },
    };
    let note = (!old.expectation.is_null()).then(|| {
        "spec.json version 1: its expectation (JSON pointers) is not read by this version".into()
    });
    let nodes = old
        .nodes
        .or(old.node_names.as_ref().map(|n| n.len() as u16));
    let config = RunConfig {
        cluster: old.cluster.unwrap_or(d.cluster),
        nodes,
        // Version 1 named an ssh cluster's nodes file and a netns cluster's state directory
        // in `cluster_spec` only.
        nodes_file: old.cluster_spec["file"]["path"].as_str().map(PathBuf::from),
        insecure_ignore_host_keys: old.insecure_ignore_host_keys,
        netns_state_dir: old.cluster_spec["state_dir"]
            .as_str()
            .map_or(d.netns_state_dir, PathBuf::from),
        time_limit: secs(old.time_limit_s).unwrap_or(d.time_limit),
        rate: old.rate.unwrap_or(d.rate),
        concurrency: old.concurrency.unwrap_or(d.concurrency),
        seed: old.seed,
        scenario: old.scenario.unwrap_or(d.scenario),
        nemesis,
        faults,
        nemesis_interval: secs(old.nemesis_interval_s),
        nemesis_pairs: old.nemesis_pairs,
        toxiproxy: old.toxiproxy,
        faultproxy_bin: None,
        pause_role: old.pause_role.unwrap_or(d.pause_role),
        pause_target,
        out: d.out,
        pipeline_bin: None,
        prometheus: d.prometheus,
        cluster_secret_file: None,
        quiesce_timeout: secs(old.quiesce_timeout_s).unwrap_or(d.quiesce_timeout),
        client_timeout: secs(old.client_timeout_s).unwrap_or(d.client_timeout),
        fault_at: secs(old.fault_at_s),
        fault_for: secs(old.fault_for_s),
        switches: Switches {
            no_idempotency: old.no_idempotency,
            no_fencing: old.no_fencing,
            no_retry_budget: old.no_retry_budget,
            no_compensation: old.no_compensation,
            no_lease_check: old.no_lease_check,
        },
        inventory_mode: old.inventory_mode,
        shipping_failure_rate: old.shipping_failure_rate,
        workload: old.workload.unwrap_or(d.workload),
        stock_skus: old
            .stock_skus
            .as_ref()
            .map_or(d.stock_skus, |s| s.len() as u16),
        initial_stock: old.initial_stock.unwrap_or(d.initial_stock),
        order_stock: d.order_stock,
        expectation: None,
        paired_with: old.paired_with,
    };
    let spec = Spec {
        schema_version: SPEC_VERSION,
        node_names: old
            .node_names
            .unwrap_or_else(|| (1..=config.node_count()).map(|i| format!("n{i}")).collect()),
        roles: old.roles.unwrap_or_default(),
        leader_role: config.leader_role(),
        stock_sku_names: old.stock_skus,
        cluster_details: old.cluster_spec,
        timing: Default::default(),
        pipeline_bin_used: old.pipeline_bin,
        harness_version: old.harness_version.unwrap_or_default(),
        rerun: old.rerun.unwrap_or_default(),
        config,
    };
    Ok((spec, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves a version-1 spec as the harness wrote it reads into a version-2 spec with its
    /// fields carried over (an ssh run's nodes file, a netns run's state directory), and that
    /// its pointer expectation is dropped with a note.
    #[test]
    fn version_one_reads() {
        let v1 = serde_json::json!({
            "cluster": "local", "nemesis": "pause", "no_fencing": true, "nodes": 3,
            "rerun": "harness run --seed 7", "roles": ["store", "order"],
            "scenario": "pause-order-leader", "seed": 7, "time_limit_s": 20.0,
            "faults": ["kind=pause,role=order,node=leader,at=3s,for=4s"],
            "expectation": {"scenario": "x", "requirements": [{"check": "fencing",
                "evidence": {"pointer": "/rejected_by_domain/order"}}]}
        });
        let (spec, note) = Spec::from_json(v1).expect("reads");
        assert_eq!(spec.config.seed, Some(7));
        assert_eq!(spec.config.time_limit, Duration::from_secs(20));
        assert!(spec.config.switches.no_fencing);
        assert_eq!(spec.config.faults.len(), 1);
        assert_eq!(spec.node_names, ["n1", "n2", "n3"]);
        assert_eq!(spec.roles, [Role::Store, Role::Order]);
        assert!(note.expect("a note").contains("version 1"));
        let ssh = serde_json::json!({"cluster": "ssh",
            "cluster_spec": {"kind": "ssh", "file": {"path": "/etc/nodes.toml"}}});
        let (spec, _) = Spec::from_json(ssh).expect("reads");
        assert_eq!(
            spec.config.nodes_file,
            Some(PathBuf::from("/etc/nodes.toml"))
        );
        let netns = serde_json::json!({"cluster": "netns",
            "cluster_spec": {"kind": "netns", "state_dir": "/run/x"}});
        let (spec, _) = Spec::from_json(netns).expect("reads");
        assert_eq!(spec.config.netns_state_dir, PathBuf::from("/run/x"));
        let e = Spec::from_json(serde_json::json!({"faults": ["kind=frob"]})).expect_err("bad");
        assert!(e.to_string().contains("version 1"), "{e}");
    }
}
