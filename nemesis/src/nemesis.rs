//! The nemesis: starts and heals faults, writing the heal ledger before each start and
//! recording both in the history.

use std::collections::BTreeMap;

use anyhow::Context;
use formats::fault::Kind;
use formats::history::values::FaultOp;
use formats::history::{OpType, F};
use rand::RngCore;

use crate::control::{Control, Recorder};
use crate::fault::{resolve, ActiveFault, FaultPlan};
use crate::ledger::HealLedger;

/// Starts and heals faults.
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

    /// Resolves `plan`, writes it to the ledger, applies it, and records it. Returns its id.
    /// A plan that cannot be resolved is recorded as a failed start and changes nothing.
    pub async fn start<R: RngCore + Send>(
        &mut self,
        ctl: &dyn Control,
        rec: &dyn Recorder,
        plan: &FaultPlan,
        rng: &mut R,
    ) -> anyhow::Result<String> {
        let id = format!("f{}", self.next_id);
        self.next_id += 1;
        let resolved = if matches!(plan, FaultPlan::Partition { .. })
            && self.active.values().any(|a| a.kind() == Kind::Partition)
        {
            // One chain holds every partition rule; overlapping partitions would heal together.
            Err(anyhow::anyhow!("a partition is already active"))
        } else {
            resolve(ctl, plan, &id, rng).await
        };
        let fault = match resolved {
            Ok(f) => f,
            Err(e) => {
                let value = op_value(FaultOp {
                    id: id.clone(),
                    fault: plan.kind(),
                    target: None,
                    detail: Some(plan),
                });
                rec.nemesis(OpType::Invoke, F::FaultStart, value.clone(), None);
                rec.nemesis(OpType::Info, F::FaultStart, value, Some(format!("{e:#}")));
                return Err(e.context(format!("starting {} ({id})", plan.kind())));
            }
        };
        let value = op_value(FaultOp {
            id: id.clone(),
            fault: fault.kind(),
            target: Some(fault.target()),
            detail: Some(&fault),
        });
        rec.nemesis(OpType::Invoke, F::FaultStart, value.clone(), None);
        self.ledger.started(&id, &fault)?;
        self.active.insert(id.clone(), fault.clone());
        match fault.apply(ctl).await {
            Ok(()) => {
                rec.nemesis(OpType::Info, F::FaultStart, value, None);
                tracing::info!(
                    id,
                    fault = fault.kind().as_str(),
                    target = fault.target(),
                    "fault started"
                );
                Ok(id)
            }
            Err(e) => {
                rec.nemesis(OpType::Info, F::FaultStart, value, Some(format!("{e:#}")));
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
        let value = op_value(FaultOp::<()> {
            id: id.to_owned(),
            fault: fault.kind(),
            target: Some(fault.target()),
            detail: None,
        });
        rec.nemesis(OpType::Invoke, F::FaultHeal, value.clone(), None);
        match fault.heal(ctl).await {
            Ok(()) => {
                self.ledger.healed(id)?;
                self.active.remove(id);
                rec.nemesis(OpType::Info, F::FaultHeal, value, None);
                tracing::info!(id, fault = fault.kind().as_str(), "fault healed");
                Ok(())
            }
            Err(e) => {
                rec.nemesis(OpType::Info, F::FaultHeal, value, Some(format!("{e:#}")));
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

/// A nemesis op's value in the history's shape.
fn op_value<D: serde::Serialize>(op: FaultOp<D>) -> serde_json::Value {
    // A FaultOp of plain data always serializes; failing would be a defect in a detail type.
    serde_json::to_value(op).unwrap_or_else(|e| panic!("nemesis op value: {e}"))
}

/// Heals every fault a ledger lists as pending (after a crash), newest first. Tries them all;
/// returns how many were healed, or the first error.
pub async fn heal_ledger(ledger: &HealLedger, ctl: &dyn Control) -> anyhow::Result<usize> {
    let pending = ledger.pending()?;
    let mut healed = 0;
    let mut first_err = None;
    for (id, fault) in pending.into_iter().rev() {
        match fault.heal(ctl).await {
            Ok(()) => {
                ledger.healed(&id)?;
                healed += 1;
            }
            Err(e) => {
                let e = e.context(format!(
                    "healing {id} ({} {})",
                    fault.kind(),
                    fault.target()
                ));
                tracing::error!(error = format!("{e:#}"), "heal failed");
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(healed), Err)
}
