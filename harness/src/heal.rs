//! `harness heal RUN_DIR`: heals every fault the run's ledger lists as standing, without the
//! harness process that started them.

use std::path::Path;

use async_trait::async_trait;
use nemesis::ledger::HealLedger;
use nemesis::{Control, Signal};
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;

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

/// Heals what the ledger in `run_dir` lists; returns how many faults were healed.
pub async fn heal(run_dir: &Path) -> anyhow::Result<usize> {
    if !run_dir.is_dir() {
        anyhow::bail!("run directory '{}' does not exist", run_dir.display());
    }
    let ledger = HealLedger::in_run_dir(run_dir);
    nemesis::heal_ledger(&ledger, &LocalPids).await
}
