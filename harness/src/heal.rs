//! `harness heal RUN_DIR`: heals every fault the run's ledger lists as standing, without the
//! harness process that started them. A run on an SSH or netns cluster is healed over SSH, using
//! the nodes file its `spec.json` names.

use std::path::{Path, PathBuf};

use anyhow::Context;
use futures::future::join_all;

use async_trait::async_trait;
use nemesis::ledger::HealLedger;
use nemesis::{Control, Signal};
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;

use crate::cluster::remote::remote_signal;
use crate::nodes_file::NodesFile;
use crate::remote::ssh::SshRemote;
use crate::remote::Remote;

/// Reaches local processes by pid only: enough to heal pauses after a crash.
struct LocalPids;

#[async_trait]
impl Control for LocalPids {
    fn nodes(&self) -> Vec<String> {
        Vec::new()
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
}

/// Reaches the nodes of an SSH or netns run over SSH: enough to heal pauses after a crash.
struct SshPids {
    remotes: Vec<SshRemote>,
}

#[async_trait]
impl Control for SshPids {
    fn nodes(&self) -> Vec<String> {
        self.remotes.iter().map(|r| r.node().to_owned()).collect()
    }

    async fn pid(&self, node: &str, role: &str) -> anyhow::Result<u32> {
        anyhow::bail!("{node}/{role}: no live cluster to look up pids in")
    }

    async fn signal(&self, node: &str, pid: u32, signal: Signal) -> anyhow::Result<()> {
        let remote = self
            .remotes
            .iter()
            .find(|r| r.node() == node)
            .with_context(|| format!("node '{node}' is not in the run's nodes file"))?;
        remote_signal(remote, pid, signal).await
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
    let ledger = HealLedger::in_run_dir(run_dir);
    if ledger.pending()?.is_empty() {
        return Ok(0);
    }
    match remote_nodes(run_dir)? {
        None => nemesis::fault::heal_ledger(&ledger, &LocalPids).await,
        Some((file, insecure)) => {
            let nodes = NodesFile::load(&file, insecure)?;
            let sessions = join_all(nodes.targets(insecure).iter().map(SshRemote::connect)).await;
            let remotes = sessions.into_iter().collect::<Result<Vec<_>, _>>()?;
            nemesis::fault::heal_ledger(&ledger, &SshPids { remotes }).await
        }
    }
}
