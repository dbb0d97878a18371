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
use nemesis::ledger::HealLedger;
use nemesis::{Control, ExecOutput, Gone, Signal, Unsupported};
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use serde::Deserialize;

use crate::cluster::remote::remote_signal;
use crate::nodes_file::NodesFile;
use crate::remote::ssh::SshRemote;
use crate::remote::Remote;

/// How long one heal command may take on a remote node.
const REMOTE_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

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

    async fn pid(&self, node: &str, role: &str) -> anyhow::Result<u32> {
        anyhow::bail!("{node}/{role}: no live cluster to look up pids in")
    }

    async fn signal(&self, node: &str, pid: u32, signal: Signal) -> anyhow::Result<()> {
        if let Some(remote) = self.remotes.get(node) {
            return remote_signal(remote, pid, signal).await;
        }
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
        if let Some(remote) = self.remotes.get(node) {
            let out = remote.exec(cmd, REMOTE_EXEC_TIMEOUT).await?;
            return Ok(ExecOutput {
                status: out.code.unwrap_or(-1),
                stdout: out.stdout_text(),
                stderr: out.stderr_text(),
            });
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

/// The nodes file of an SSH or netns run, from its spec, with the run's host-key choice.
fn remote_nodes(run_dir: &Path) -> anyhow::Result<Option<(PathBuf, bool)>> {
    let path = run_dir.join(checker::rundir::files::SPEC);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let spec: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    if !matches!(spec["cluster"].as_str(), Some("ssh" | "netns")) {
        return Ok(None);
    }
    let file = spec["cluster_spec"]["file"]["path"]
        .as_str()
        .with_context(|| format!("{}: no cluster_spec.file.path", path.display()))?;
    let insecure = spec["insecure_ignore_host_keys"].as_bool().unwrap_or(false);
    Ok(Some((PathBuf::from(file), insecure)))
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
