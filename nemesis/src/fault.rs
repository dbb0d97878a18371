//! Fault plans, active faults, and the nemesis that starts and heals them.

use std::collections::BTreeMap;

use anyhow::Context;
use checker::history::{f, OpType};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::control::{Control, Recorder, Signal};
use crate::ledger::HealLedger;

/// What to do, before targets are resolved against the live cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultPlan {
    /// SIGSTOP a role's process, SIGCONT on heal.
    Pause {
        /// The role whose process is paused.
        role: String,
        /// The node; `None` picks one from the seeded RNG.
        node: Option<String>,
    },
}

/// A fault with a concrete target: what the heal ledger stores and what heal undoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum ActiveFault {
    /// A paused process.
    Pause {
        /// Node.
        node: String,
        /// Role.
        role: String,
        /// The process that was stopped.
        pid: u32,
    },
}

impl ActiveFault {
    /// The fault kind, as in the history (`pause`).
    pub fn kind(&self) -> &'static str {
        match self {
            ActiveFault::Pause { .. } => "pause",
        }
    }

    /// A short target description for the history and the report: `n1/payment`.
    pub fn target(&self) -> String {
        match self {
            ActiveFault::Pause { node, role, .. } => format!("{node}/{role}"),
        }
    }

    /// Applies the fault.
    pub async fn apply(&self, ctl: &dyn Control) -> anyhow::Result<()> {
        match self {
            ActiveFault::Pause { node, pid, .. } => ctl.signal(node, *pid, Signal::Stop).await,
        }
    }

    /// Undoes the fault. Healing twice is harmless.
    pub async fn heal(&self, ctl: &dyn Control) -> anyhow::Result<()> {
        match self {
            ActiveFault::Pause { node, pid, .. } => ctl.signal(node, *pid, Signal::Cont).await,
        }
    }
}

/// Starts and heals faults, writing the ledger before each start and recording both in the
/// history.
#[derive(Debug)]
pub struct Nemesis {
    ledger: HealLedger,
    active: BTreeMap<String, ActiveFault>,
    next_id: u64,
}

impl Nemesis {
    /// A nemesis writing to `ledger`.
    pub fn new(ledger: HealLedger) -> Nemesis {
        Nemesis {
            ledger,
            active: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// Faults started and not yet healed.
    pub fn active(&self) -> impl Iterator<Item = (&String, &ActiveFault)> {
        self.active.iter()
    }

    async fn resolve(
        &self,
        ctl: &dyn Control,
        plan: &FaultPlan,
        rng: &mut (dyn rand::RngCore + Send),
    ) -> anyhow::Result<ActiveFault> {
        match plan {
            FaultPlan::Pause { role, node } => {
                let node = match node {
                    Some(n) => n.clone(),
                    None => ctl
                        .nodes()
                        .choose(rng)
                        .cloned()
                        .context("the cluster has no nodes")?,
                };
                let pid = ctl.pid(&node, role).await?;
                Ok(ActiveFault::Pause {
                    node,
                    role: role.clone(),
                    pid,
                })
            }
        }
    }

    /// Resolves `plan`, writes it to the ledger, applies it, and records it. Returns its id.
    pub async fn start<R: Rng + Send>(
        &mut self,
        ctl: &dyn Control,
        rec: &dyn Recorder,
        plan: &FaultPlan,
        rng: &mut R,
    ) -> anyhow::Result<String> {
        let fault = self.resolve(ctl, plan, rng).await?;
        let id = format!("f{}", self.next_id);
        self.next_id += 1;
        let value =
            json!({"id": id, "fault": fault.kind(), "target": fault.target(), "detail": fault});
        rec.nemesis(OpType::Invoke, f::FAULT_START, value.clone(), None);
        self.ledger.started(&id, &fault)?;
        self.active.insert(id.clone(), fault.clone());
        match fault.apply(ctl).await {
            Ok(()) => {
                rec.nemesis(OpType::Info, f::FAULT_START, value, None);
                tracing::info!(
                    id,
                    fault = fault.kind(),
                    target = fault.target(),
                    "fault started"
                );
                Ok(id)
            }
            Err(e) => {
                rec.nemesis(OpType::Info, f::FAULT_START, value, Some(format!("{e:#}")));
                // Heal in case part of it applied; the ledger keeps it if that fails too.
                self.heal(ctl, rec, &id).await?;
                Err(e)
            }
        }
    }

    /// Heals the fault `id` and marks it healed in the ledger.
    pub async fn heal(
        &mut self,
        ctl: &dyn Control,
        rec: &dyn Recorder,
        id: &str,
    ) -> anyhow::Result<()> {
        let fault = self
            .active
            .get(id)
            .cloned()
            .with_context(|| format!("no active fault {id}"))?;
        let value = json!({"id": id, "fault": fault.kind(), "target": fault.target()});
        rec.nemesis(OpType::Invoke, f::FAULT_HEAL, value.clone(), None);
        match fault.heal(ctl).await {
            Ok(()) => {
                self.ledger.healed(id)?;
                self.active.remove(id);
                rec.nemesis(OpType::Info, f::FAULT_HEAL, value, None);
                tracing::info!(id, fault = fault.kind(), "fault healed");
                Ok(())
            }
            Err(e) => {
                rec.nemesis(OpType::Info, f::FAULT_HEAL, value, Some(format!("{e:#}")));
                Err(e)
            }
        }
    }

    /// Heals every active fault; returns the first error after trying them all.
    pub async fn heal_all(&mut self, ctl: &dyn Control, rec: &dyn Recorder) -> anyhow::Result<()> {
        let ids: Vec<String> = self.active.keys().cloned().collect();
        let mut first_err = None;
        for id in ids {
            if let Err(e) = self.heal(ctl, rec, &id).await {
                tracing::error!(id, error = format!("{e:#}"), "heal failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Heals every fault a ledger lists as pending (after a crash). Returns how many were healed.
pub async fn heal_ledger(ledger: &HealLedger, ctl: &dyn Control) -> anyhow::Result<usize> {
    let pending = ledger.pending()?;
    let mut healed = 0;
    for (id, fault) in pending {
        fault
            .heal(ctl)
            .await
            .with_context(|| format!("healing {id} ({} {})", fault.kind(), fault.target()))?;
        ledger.healed(&id)?;
        healed += 1;
    }
    Ok(healed)
}
