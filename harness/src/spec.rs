//! `spec.json`: everything needed to rerun a run, seed included, for every cluster kind, and
//! the `harness run ...` command line that does it.

use std::path::Path;

use serde_json::json;

use crate::cli::{ClusterKind, RunArgs};
use crate::cluster::open::Prepared;
use crate::remote::quote;

fn secs(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// The command line that reruns this run with the same seed on the same kind of cluster.
pub fn rerun_command(args: &RunArgs, seed: u64, prepared: &Prepared) -> String {
    let mut words: Vec<String> = vec!["harness".into(), "run".into()];
    let mut flag = |name: &str, value: String| {
        words.push(format!("--{name}"));
        words.push(value);
    };
    flag("cluster", args.cluster.name().into());
    match args.cluster {
        ClusterKind::Local | ClusterKind::Netns => {
            flag("nodes", prepared.node_names.len().to_string());
        }
        ClusterKind::Ssh => {}
    }
    if let Some(f) = &args.nodes_file {
        flag("nodes-file", f.display().to_string());
    }
    if args.cluster == ClusterKind::Netns {
        flag(
            "netns-state-dir",
            args.netns_state_dir.display().to_string(),
        );
    }
    flag("time-limit", secs(args.time_limit));
    flag("rate", args.rate.to_string());
    flag("concurrency", args.concurrency.to_string());
    flag("seed", seed.to_string());
    flag("scenario", args.scenario.clone());
    if args.faults.is_empty() {
        flag("nemesis", args.nemesis.spelling());
    }
    for f in &args.faults {
        flag("fault", f.text.clone());
    }
    if let Some(d) = args.nemesis_interval {
        flag("nemesis-interval", secs(d));
    }
    if let Some(url) = &args.toxiproxy {
        flag("toxiproxy", url.clone());
    }
    if let Some(p) = &args.faultproxy_bin {
        flag("faultproxy-bin", p.display().to_string());
    }
    flag("pause-role", args.pause_role.clone());
    flag("pause-target", args.pause_target.clone());
    flag("quiesce-timeout", secs(args.quiesce_timeout));
    flag("client-timeout", secs(args.client_timeout));
    if let Some(d) = args.fault_at {
        flag("fault-at", secs(d));
    }
    if let Some(d) = args.fault_for {
        flag("fault-for", secs(d));
    }
    if let Some(mode) = args.inventory_mode {
        flag("inventory-mode", mode.name().into());
    }
    if let Some(rate) = args.shipping_failure_rate {
        flag("shipping-failure-rate", rate.to_string());
    }
    flag("workload", args.workload.name().into());
    if args.workload.stock() {
        flag("stock-skus", args.stock_skus.to_string());
        flag("initial-stock", args.initial_stock.to_string());
    }
    if let Some(p) = &args.pipeline_bin {
        flag("pipeline-bin", p.display().to_string());
    }
    if args.nemesis_pairs {
        words.push("--nemesis-pairs".into());
    }
    for (on, word) in [
        (args.no_idempotency, "--no-idempotency"),
        (args.no_fencing, "--no-fencing"),
        (args.no_retry_budget, "--no-retry-budget"),
        (args.no_compensation, "--no-compensation"),
        (args.no_lease_check, "--no-lease-check"),
    ] {
        if on {
            words.push(word.into());
        }
    }
    if args.insecure_ignore_host_keys {
        words.push("--insecure-ignore-host-keys".into());
    }
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The contents of `spec.json`.
pub fn spec(
    args: &RunArgs,
    seed: u64,
    prepared: &Prepared,
    pipeline_bin: &Path,
) -> serde_json::Value {
    json!({
        "scenario": args.scenario,
        "seed": seed,
        "cluster": args.cluster,
        "nodes": prepared.node_names.len(),
        "node_names": prepared.node_names,
        "cluster_spec": prepared.spec,
        "timing": prepared.timing,
        "time_limit_s": args.time_limit.as_secs_f64(),
        "rate": args.rate,
        "concurrency": args.concurrency,
        "nemesis": if args.faults.is_empty() { args.nemesis.spelling() } else { "explicit".into() },
        "faults": (!args.faults.is_empty())
            .then(|| args.faults.iter().map(|f| f.text.clone()).collect::<Vec<_>>()),
        "nemesis_interval_s": args.nemesis_interval.map(|d| d.as_secs_f64()),
        "nemesis_pairs": args.nemesis_pairs,
        "toxiproxy": args.toxiproxy,
        "pause_role": args.pause_role,
        "pause_target": args.pause_target,
        "fault_at_s": args.fault_at.map(|d| d.as_secs_f64()),
        "fault_for_s": args.fault_for.map(|d| d.as_secs_f64()),
        "client_timeout_s": args.client_timeout.as_secs_f64(),
        "quiesce_timeout_s": args.quiesce_timeout.as_secs_f64(),
        "no_idempotency": args.no_idempotency,
        "no_fencing": args.no_fencing,
        "no_retry_budget": args.no_retry_budget,
        "no_compensation": args.no_compensation,
        "no_lease_check": args.no_lease_check,
        "expectation": args.expectation,
        "paired_with": args.paired_with,
        "inventory_mode": args.inventory_mode.map(|m| m.name()),
        "shipping_failure_rate": args.shipping_failure_rate,
        "workload": args.workload.name(),
        "stock_skus": args.stock_skus().map(|s| s.names()),
        "initial_stock": args.stock_skus().map(|s| s.initial),
        "leader_role": args.leader_role(),
        "roles": crate::cluster::pipeline::ROLES,
        "insecure_ignore_host_keys": args.insecure_ignore_host_keys,
        "pipeline_bin": pipeline_bin,
        "harness_version": env!("CARGO_PKG_VERSION"),
        "rerun": rerun_command(args, seed, prepared),
        "rerun_scenario": args.expectation.as_ref().map(|e| scenario_command(args, e, seed)),
    })
}

/// The `harness scenario run` command that reruns a scenario's run, expectation included.
fn scenario_command(args: &RunArgs, e: &checker::expectation::Expectation, seed: u64) -> String {
    let mut words = vec![
        "harness".to_owned(),
        "scenario".into(),
        "run".into(),
        e.scenario.clone(),
        "--seed".into(),
        seed.to_string(),
        "--time-limit".into(),
        secs(args.time_limit),
        "--out".into(),
        args.out.display().to_string(),
    ];
    if !e.protection_on {
        words.push("--protection-off".into());
    }
    if let Some(p) = &args.pipeline_bin {
        words.push("--pipeline-bin".into());
        words.push(p.display().to_string());
    }
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}
