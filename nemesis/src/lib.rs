//! # nemesis
//!
//! Faults with a start and a heal. A fault is data ([`ActiveFault`]): a concrete target resolved
//! at start time, so that it can be written to a heal ledger *before* it starts and healed later
//! by a process that never saw it start (`harness heal` after a crash).
//!
//! The nemesis talks to the cluster only through the [`Control`] trait (the harness implements
//! it for local processes, network namespaces and SSH nodes) and records every start and heal
//! through [`Recorder`] as history operations of the `nemesis` process. Network faults go
//! through a Toxiproxy-compatible API ([`toxiproxy::ToxiproxyClient`]), served locally by the
//! `faultproxy` binary (the `faultproxy` crate, `nemesis/faultproxy/`) or by a real Toxiproxy.
//!
//! ```no_run
//! # async fn demo(ctl: &dyn nemesis::Control, rec: &dyn nemesis::Recorder, ledger: &nemesis::ledger::HealLedger) -> anyhow::Result<()> {
//! use nemesis::fault::Target;
//! use nemesis::{FaultPlan, Nemesis};
//! use rand::SeedableRng;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
//! let mut nem = Nemesis::new(ledger.clone());
//! let plan = FaultPlan::Pause { role: formats::Role::Payment, target: Target::Node { node: "n1".into() } };
//! let id = nem.start(ctl, rec, &plan, &mut rng).await?;
//! nem.heal(ctl, rec, &id).await?;
//! # Ok(()) }
//! ```

pub mod control;
pub mod fault;
pub mod grudge;
pub mod iptables;
pub mod leader;
pub mod ledger;
pub mod links;
pub mod nemesis;
pub mod schedule;
pub mod toxiproxy;

pub use control::{signal_local, Control, ExecOutput, Gone, Recorder, Signal, Unsupported};
pub use fault::{ActiveFault, FaultPlan};
pub use nemesis::{heal_ledger, Nemesis};
