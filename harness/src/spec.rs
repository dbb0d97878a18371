//! `spec.json`: the run's [`RunConfig`] with its seed and node count resolved, plus what the
//! run derived from it (node names, roles, the rerun command). Written before the run starts.

use std::path::Path;

use formats::spec::{ClusterKind, RunConfig, Spec, SPEC_VERSION};
use formats::Role;

use crate::cluster::open::Prepared;

/// `config` as the run will use it: the seed chosen, and on local and netns clusters the node
/// count the cluster has, so that the stored config reruns exactly this run.
pub fn resolved(config: &RunConfig, seed: u64, prepared: &Prepared) -> RunConfig {
    let mut c = config.clone();
    c.seed = Some(seed);
    if matches!(c.cluster, ClusterKind::Local | ClusterKind::Netns) {
        c.nodes = u16::try_from(prepared.node_names.len()).ok();
    }
    c
}

/// The contents of `spec.json` for `config` (already [`resolved`]) on `prepared`.
pub fn spec(config: &RunConfig, prepared: &Prepared, pipeline_bin: &Path) -> Spec {
    let mut spec = spec_of(
        config,
        &prepared.node_names,
        prepared.spec.clone(),
        pipeline_bin,
    );
    spec.timing = prepared.timing;
    spec
}

/// The contents of `spec.json` for `config` on nodes `node_names` (what the cluster recorded
/// of itself in `cluster_details`).
pub fn spec_of(
    config: &RunConfig,
    node_names: &[String],
    cluster_details: serde_json::Value,
    pipeline_bin: &Path,
) -> Spec {
    assert!(config.seed.is_some(), "a spec records the seed it ran with");
    Spec {
        schema_version: SPEC_VERSION,
        node_names: node_names.to_vec(),
        roles: Role::ALL.to_vec(),
        leader_role: config.leader_role(),
        stock_sku_names: config.stock_sku_names(),
        cluster_details,
        timing: Default::default(),
        pipeline_bin_used: Some(pipeline_bin.to_owned()),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        rerun: crate::config::rerun_command(config),
        config: config.clone(),
    }
}
