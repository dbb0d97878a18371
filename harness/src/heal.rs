//! `harness heal RUN_DIR`: heals every fault the run's ledger lists as standing, without the
//! harness process that started them. Pauses are healed by pid, proxy faults through the proxy
//! API stored in each ledger entry, iptables partitions by running the heal script in each node
//! as `cluster.json` describes it (network namespaces: `ip netns exec`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use async_trait::async_trait;
use nemesis::ledger::HealLedger;
use nemesis::{Control, ExecOutput, Gone, Signal, Unsupported};
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use serde::Deserialize;

/// File name of the cluster description in a run directory (docs/contracts.md §7).
pub const CLUSTER_FILE: &str = "cluster.json";

/// `cluster.json`: how to reach the cluster's nodes from outside the run.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClusterFile {
    /// `local`, `netns` or `ssh`.
    pub kind: String,
    /// The link proxies' API, if the run had one.
    #[serde(default)]
    pub proxy_api: Option<String>,
    /// The nodes.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
}

/// One node of `cluster.json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeEntry {
    /// Node name.
    pub name: String,
    /// Address other nodes reach it at.
    #[serde(default)]
    pub ip: Option<String>,
    /// Network namespace its processes run in.
    #[serde(default)]
    pub netns: Option<String>,
}

/// Reaches what is left of a run: processes by pid, nodes' namespaces by name.
struct Remains {
    nodes: BTreeMap<String, NodeEntry>,
    proxy_api: Option<String>,
}

#[async_trait]
impl Control for Remains {
    fn nodes(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    async fn pid(&self, node: &str, role: &str) -> anyhow::Result<u32> {
        anyhow::bail!("{node}/{role}: no live cluster to look up pids in")
    }

    async fn signal(&self, node: &str, pid: u32, signal: Signal) -> anyhow::Result<()> {
        let sig = match signal {
            Signal::Stop => NixSignal::SIGSTOP,
            Signal::Cont => NixSignal::SIGCONT,
            Signal::Kill => NixSignal::SIGKILL,
        };
        let raw = i32::try_from(pid).map_err(|_| anyhow::anyhow!("pid {pid} out of range"))?;
        match kill(Pid::from_raw(raw), sig) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(anyhow::anyhow!(
                "{node}: kill -{} {pid}: {e}",
                signal.name()
            )),
        }
    }

    async fn exec(&self, node: &str, cmd: &str) -> anyhow::Result<ExecOutput> {
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
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn restart(&self, node: &str, role: &str) -> anyhow::Result<()> {
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
    let path = run_dir.join(CLUSTER_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("'{}' is not a cluster description", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClusterFile {
            kind: "local".into(),
            ..ClusterFile::default()
        }),
        Err(e) => Err(e).with_context(|| format!("reading '{}'", path.display())),
    }
}

/// Heals what the ledger in `run_dir` lists; returns how many faults were healed.
pub async fn heal(run_dir: &Path) -> anyhow::Result<usize> {
    if !run_dir.is_dir() {
        anyhow::bail!("run directory '{}' does not exist", run_dir.display());
    }
    let cluster = read_cluster(run_dir)?;
    let remains = Remains {
        nodes: cluster
            .nodes
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect(),
        proxy_api: cluster.proxy_api,
    };
    let ledger = HealLedger::in_run_dir(run_dir);
    nemesis::heal_ledger(&ledger, &remains).await
}
