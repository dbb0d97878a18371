//! `harness heal RUN_DIR`: heals every fault the run's ledger lists as standing, without the
//! harness process that started them. Proxy faults are healed through the proxy API stored in
//! each ledger entry. Process signals and iptables heal scripts go over SSH when the run's
//! `spec.json` names a nodes file (ssh and netns clusters), else to local pids and through
//! `ip netns exec` as `cluster.json` describes the nodes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::join_all;

use anyhow::Context;
use async_trait::async_trait;
use formats::cluster::{ClusterFile, NodeEntry};
use formats::files;
use formats::spec::ClusterKind;
use formats::Role;
use nemesis::ledger::HealLedger;
use nemesis::{Control, ExecOutput, Gone, Signal, Unsupported};

use crate::cluster::remote::remote_signal;
use crate::nodes_file::NodesFile;
use crate::remote::ssh::SshRemote;
use crate::remote::Remote;

/// How long one heal command may take on a remote node.
const REMOTE_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// Reaches what is left of a run: processes by pid, nodes' namespaces by name.
struct Remains {
    nodes: BTreeMap<String, NodeEntry>,
    proxy_api: Option<String>,
    /// SSH sessions to the nodes of an ssh or netns run, by node name.
    remotes: BTreeMap<String, SshRemote>,
}

#[async_trait]
impl Control for Remains {
    fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self.nodes.keys().cloned().collect();
        nodes.extend(
            self.remotes
                .keys()
                .filter(|n| !self.nodes.contains_key(*n))
                .cloned(),
        );
        nodes
    }

    async fn pid(&self, node: &str, role: Role) -> anyhow::Result<u32> {
        anyhow::bail!("{node}/{role}: no live cluster to look up pids in")
    }

    async fn signal(&self, node: &str, pid: u32, signal: Signal) -> anyhow::Result<()> {
        if let Some(remote) = self.remotes.get(node) {
            return remote_signal(remote, pid, signal).await;
        }
        nemesis::signal_local(pid, signal).with_context(|| node.to_owned())
    }

    async fn exec(&self, node: &str, cmd: &str) -> anyhow::Result<ExecOutput> {
        if let Some(remote) = self.remotes.get(node) {
            return Ok(remote.exec(cmd, REMOTE_EXEC_TIMEOUT).await?);
        }
        let entry = self
            .nodes
            .get(node)
            .ok_or_else(|| Gone(format!("node {node}")))?;
        let Some(ns) = &entry.netns else {
            return Err(Unsupported(
                "exec on nodes without a network namespace (ssh heal is not implemented yet)",
            )
            .into());
        };
        if !Path::new("/run/netns").join(ns).exists() {
            return Err(Gone(format!("namespace {ns} of {node}")).into());
        }
        let out = tokio::process::Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", cmd])
            .output()
            .await
            .with_context(|| format!("ip netns exec {ns}"))?;
        Ok(ExecOutput {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    async fn restart(&self, node: &str, role: Role) -> anyhow::Result<()> {
        // The cluster's processes ended with the harness that ran them (they watch it).
        Err(Gone(format!("the cluster that ran {node}/{role}")).into())
    }

    fn node_ip(&self, node: &str) -> Option<String> {
        self.nodes.get(node).and_then(|n| n.ip.clone())
    }

    fn proxy_api(&self) -> Option<String> {
        self.proxy_api.clone()
    }
}

/// Reads `cluster.json` of `run_dir`; a run without one (older runs) is a local cluster.
pub fn read_cluster(run_dir: &Path) -> anyhow::Result<ClusterFile> {
    let path = run_dir.join(files::CLUSTER);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("'{}' is not a cluster description", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClusterFile::local()),
        Err(e) => Err(e).with_context(|| format!("reading '{}'", path.display())),
    }
}

/// The nodes file of an SSH or netns run, from its spec, with the run's host-key choice.
fn remote_nodes(run_dir: &Path) -> anyhow::Result<Option<(PathBuf, bool)>> {
    let path = run_dir.join(files::SPEC);
    if !path.exists() {
        return Ok(None);
    }
    let (spec, _) = checker::rundir::read_spec(&path)?;
    let c = &spec.config;
    let file = match c.cluster {
        ClusterKind::Local => return Ok(None),
        ClusterKind::Netns => crate::cluster::netns::nodes_file(&c.netns_state_dir),
        ClusterKind::Ssh => c
            .nodes_file
            .clone()
            .with_context(|| format!("{}: an ssh run without a nodes file", path.display()))?,
    };
    Ok(Some((file, c.insecure_ignore_host_keys)))
}

/// Heals what the ledger in `run_dir` lists; returns how many faults were healed.
pub async fn heal(run_dir: &Path) -> anyhow::Result<usize> {
    if !run_dir.is_dir() {
        anyhow::bail!("run directory '{}' does not exist", run_dir.display());
    }
    // A SIGKILLed local run also left its roles' secret directory behind.
    crate::cluster::secret::sweep_stale();
    let ledger = HealLedger::in_run_dir(run_dir);
    if ledger.pending()?.is_empty() {
        return Ok(0);
    }
    let cluster = read_cluster(run_dir)?;
    let mut remotes = BTreeMap::new();
    if let Some((file, insecure)) = remote_nodes(run_dir)? {
        let nodes = NodesFile::load(&file, insecure)?;
        let sessions = join_all(nodes.targets(insecure).iter().map(SshRemote::connect)).await;
        for session in sessions {
            let remote = session?;
            remotes.insert(remote.node().to_owned(), remote);
        }
    }
    let remains = Remains {
        nodes: cluster
            .nodes
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect(),
        proxy_api: cluster.proxy_api,
        remotes,
    };
    nemesis::heal_ledger(&ledger, &remains).await
}
