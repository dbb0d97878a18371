//! Choosing, preparing and starting the cluster a run asked for. Preparation happens before the
//! run directory exists: a bad nodes file, a refused host key or an unreachable node changes
//! nothing on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use futures::future::join_all;

use super::local::{LocalCluster, LocalOptions};
use super::netns;
use super::remote::{RemoteCluster, RemoteNode, RemoteOptions};
use super::secret::ClusterSecret;
use super::Cluster;
use crate::nodes_file::{NodesFile, Timing};
use crate::remote::ssh::SshRemote;
use crate::BadInput;
use formats::spec::{ClusterKind, RunConfig};

/// A cluster ready to be started: checked input and, for SSH clusters, open connections.
pub struct Prepared {
    /// Which kind.
    pub kind: ClusterKind,
    /// Node names, in order.
    pub node_names: Vec<String>,
    /// What `spec.json` records about the cluster.
    pub spec: serde_json::Value,
    /// The nodes file's `[timing]` (defaults for local clusters).
    pub timing: Timing,
    remotes: Vec<RemoteNode>,
    workdir: String,
    vms_dir: Option<PathBuf>,
    /// A netns cluster this run brought up and must take down.
    owned_netns: Option<PathBuf>,
    /// The run's cluster secret (`--cluster-secret-file`, or fresh from the OS RNG).
    pub secret: ClusterSecret,
}

impl Prepared {
    /// True when the run brought up its own netns cluster (taken down by [`Prepared::finish`]).
    pub fn owns_netns(&self) -> bool {
        self.owned_netns.is_some()
    }
}

/// Checks the cluster arguments, reads or makes the cluster secret, and connects to SSH nodes.
/// Input mistakes are [`BadInput`]. A netns cluster that is not up is brought up here (and
/// taken down by [`Prepared::finish`]).
pub async fn prepare(args: &RunConfig) -> anyhow::Result<Prepared> {
    let secret = match &args.cluster_secret_file {
        Some(path) => ClusterSecret::load(path).map_err(BadInput)?,
        None => ClusterSecret::generate(),
    };
    match args.cluster {
        ClusterKind::Local => {
            let n = args.node_count();
            Ok(Prepared {
                kind: ClusterKind::Local,
                node_names: (1..=n).map(|i| format!("n{i}")).collect(),
                spec: serde_json::json!({"kind": "local", "nodes": n}),
                timing: Timing::default(),
                remotes: Vec::new(),
                workdir: String::new(),
                vms_dir: None,
                owned_netns: None,
                secret,
            })
        }
        ClusterKind::Netns => prepare_netns(args, secret).await,
        ClusterKind::Ssh => {
            let path = args
                .nodes_file
                .as_deref()
                .ok_or_else(|| BadInput("--cluster ssh needs --nodes-file FILE".into()))?;
            let file = NodesFile::load(path, args.insecure_ignore_host_keys)
                .map_err(|e| BadInput(e.to_string()))?;
            let spec = serde_json::json!({
                "kind": "ssh",
                "nodes_file": path,
                "insecure_ignore_host_keys": args.insecure_ignore_host_keys,
                "file": &file,
            });
            connect(
                ClusterKind::Ssh,
                &file,
                args.insecure_ignore_host_keys,
                spec,
                None,
                secret,
            )
            .await
        }
    }
}

async fn prepare_netns(args: &RunConfig, secret: ClusterSecret) -> anyhow::Result<Prepared> {
    netns::preflight().map_err(BadInput)?;
    let state = &args.netns_state_dir;
    let n = args.node_count();
    let status = netns::status(state).await?;
    let owned = if status.is_up() {
        if args.nodes.is_some() && status.nodes_in_state != Some(n) {
            return Err(BadInput(format!(
                "--nodes {n}: the running netns cluster has {} nodes (harness cluster down, or drop --nodes)",
                status.nodes_in_state.unwrap_or(0)
            ))
            .into());
        }
        None
    } else {
        eprintln!("harness: no netns cluster is up; bringing up {n} nodes for this run");
        netns::up(n, state).await?;
        Some(state.clone())
    };
    let path = netns::nodes_file(state);
    let loaded =
        NodesFile::load(&path, false).with_context(|| "reading the netns cluster's nodes file");
    let file = match loaded {
        Ok(f) => f,
        Err(e) => {
            if let Some(s) = &owned {
                let _ = netns::down(s).await;
            }
            return Err(e);
        }
    };
    let spec = serde_json::json!({
        "kind": "netns",
        "state_dir": state,
        "nodes": file.nodes.len(),
        "brought_up_by_run": owned.is_some(),
        "file": &file,
    });
    let prepared = connect(
        ClusterKind::Netns,
        &file,
        false,
        spec,
        owned.clone(),
        secret,
    )
    .await;
    if prepared.is_err() {
        if let Some(s) = &owned {
            let _ = netns::down(s).await;
        }
    }
    prepared
}

async fn connect(
    kind: ClusterKind,
    file: &NodesFile,
    insecure: bool,
    spec: serde_json::Value,
    owned_netns: Option<PathBuf>,
    secret: ClusterSecret,
) -> anyhow::Result<Prepared> {
    let targets = file.targets(insecure);
    let sessions = join_all(targets.iter().map(SshRemote::connect)).await;
    let mut remotes = Vec::new();
    for (entry, session) in file.nodes.iter().zip(sessions) {
        remotes.push(RemoteNode {
            name: entry.name.clone(),
            addr: entry.addr.clone(),
            remote: Arc::new(session?),
        });
    }
    Ok(Prepared {
        kind,
        node_names: file.nodes.iter().map(|n| n.name.clone()).collect(),
        spec,
        timing: file.timing,
        remotes,
        workdir: file.workdir.clone(),
        vms_dir: file.vms_dir.clone(),
        owned_netns,
        secret,
    })
}

/// What starting needs beyond the prepared cluster.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The `pipeline` binary.
    pub pipeline_bin: PathBuf,
    /// The local run directory.
    pub run_dir: PathBuf,
    /// Names the run's directory on remote nodes.
    pub run_name: String,
    /// Extra flags per role.
    pub role_flags: BTreeMap<formats::Role, Vec<String>>,
    /// The `settings` of every node's config (contract §1).
    pub settings: serde_json::Value,
    /// Local clusters behind link proxies: the ports the roles bind (chosen before the proxies
    /// were made).
    pub local_ports: Option<BTreeMap<super::pipeline::RoleKey, u16>>,
    /// Local clusters behind link proxies: each node's peer addresses.
    pub local_peers: Option<super::proxied::PeersByNode>,
}

/// The fault proxy binary next to this harness (or else next to `pipeline`), if it was built.
fn faultproxy_next_to(pipeline: &Path) -> Option<PathBuf> {
    let next_to_harness = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("faultproxy"));
    next_to_harness
        .into_iter()
        .chain(Some(pipeline.with_file_name("faultproxy")))
        .find(|p| p.is_file())
}

/// Starts the pipeline on the prepared cluster and waits until every role is healthy.
pub async fn start(prepared: &Prepared, opts: &StartOptions) -> anyhow::Result<Arc<dyn Cluster>> {
    match prepared.kind {
        ClusterKind::Local => Ok(Arc::new(
            LocalCluster::start(&LocalOptions {
                nodes: prepared.node_names.len(),
                pipeline_bin: opts.pipeline_bin.clone(),
                run_dir: opts.run_dir.clone(),
                role_flags: opts.role_flags.clone(),
                settings: opts.settings.clone(),
                ports: opts.local_ports.clone(),
                peers: opts.local_peers.clone(),
                secret: prepared.secret.clone(),
            })
            .await?,
        )),
        kind @ (ClusterKind::Netns | ClusterKind::Ssh) => Ok(Arc::new(
            RemoteCluster::deploy(
                prepared.remotes.clone(),
                &RemoteOptions {
                    kind,
                    workdir: prepared.workdir.clone(),
                    run_name: opts.run_name.clone(),
                    run_dir: opts.run_dir.clone(),
                    pipeline_bin: opts.pipeline_bin.clone(),
                    faultproxy_bin: faultproxy_next_to(&opts.pipeline_bin),
                    role_flags: opts.role_flags.clone(),
                    settings: super::pipeline::with_timing(&opts.settings, &prepared.timing),
                    health_timeout: crate::nodes_file::health_timeout(&prepared.timing),
                    vms_dir: prepared.vms_dir.clone(),
                    secret: prepared.secret.clone(),
                },
            )
            .await?,
        )),
    }
}

/// Takes down a netns cluster the run brought up itself. Idempotent.
pub async fn finish(prepared: &mut Prepared) -> anyhow::Result<()> {
    prepared.remotes.clear();
    if let Some(state) = prepared.owned_netns.take() {
        netns::down(&state).await?;
    }
    Ok(())
}
