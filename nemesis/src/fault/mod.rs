//! Fault plans (what to do, before targets are known) and active faults (resolved targets,
//! what the heal ledger stores and what a heal undoes).

mod apply;
mod resolve;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::grudge::{Grudge, Shape};
use crate::links::Link;
use crate::toxiproxy::{Stream, Toxic, ToxicKind};

pub(crate) use resolve::resolve;

/// Which node a process fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "pick", rename_all = "kebab-case")]
pub enum Target {
    /// A node chosen from the seeded RNG.
    Random,
    /// A named node.
    Node {
        /// Its name.
        node: String,
    },
    /// The node currently leading the fault's role (`GET /admin/leader`).
    Leader,
    /// The node currently leading another role: e.g. payment's process on the node where
    /// order leads, which moves payment's leadership away from the orchestrator if it was
    /// there.
    LeaderOf {
        /// The role whose leader's node is meant.
        role: String,
    },
}

/// Which proxied links a network fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "links", rename_all = "kebab-case")]
pub enum Links {
    /// One named link.
    One {
        /// Calling node.
        from: String,
        /// Serving node.
        to: String,
        /// Role called.
        role: String,
    },
    /// One link into `role`, chosen from the seeded RNG.
    RandomOne {
        /// Role called.
        role: String,
    },
    /// Every link into `role` (the whole service).
    Service {
        /// Role called.
        role: String,
    },
    /// The one link from the node where `from_role` leads to the node where `role` leads
    /// (both found through `GET /admin/leader` when the fault starts): what the orchestrator
    /// uses to reach the downstream's leader. Fails to start when both lead on one node
    /// (a node reaches its own roles directly).
    Leaders {
        /// The calling role whose leader's node is the link's source.
        from_role: String,
        /// Role called; its leader's node is the link's destination.
        role: String,
    },
}

/// What a network fault does to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "kebab-case")]
pub enum NetEffect {
    /// Replies delayed by `latency_ms` ± `jitter_ms`.
    Latency {
        /// Added delay.
        latency_ms: u64,
        /// Random variation.
        jitter_ms: u64,
    },
    /// Requests reach the service, replies never come back (a downstream timeout toxic).
    LostResponse,
    /// Replies replaced by a TCP reset (reset_peer downstream).
    Reset,
    /// Replies limited to `rate_kbps` KB/s.
    Bandwidth {
        /// KB per second.
        rate_kbps: u64,
    },
}

impl NetEffect {
    /// The fault name: `latency`, `lost-response`, `reset`, `bandwidth`.
    pub fn name(self) -> &'static str {
        match self {
            NetEffect::Latency { .. } => "latency",
            NetEffect::LostResponse => "lost-response",
            NetEffect::Reset => "reset",
            NetEffect::Bandwidth { .. } => "bandwidth",
        }
    }

    /// The Toxiproxy toxic that realises it.
    pub fn toxic(self, name: &str) -> Toxic {
        let kind = match self {
            NetEffect::Latency {
                latency_ms,
                jitter_ms,
            } => ToxicKind::Latency {
                latency: latency_ms,
                jitter: jitter_ms,
            },
            NetEffect::LostResponse => ToxicKind::Timeout { timeout: 0 },
            NetEffect::Reset => ToxicKind::ResetPeer { timeout: 0 },
            NetEffect::Bandwidth { rate_kbps } => ToxicKind::Bandwidth { rate: rate_kbps },
        };
        Toxic::new(kind, Stream::Downstream).named(name)
    }
}

/// What to do, before targets are resolved against the live cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultPlan {
    /// SIGSTOP a role's process, SIGCONT on heal.
    Pause {
        /// The role whose process is paused.
        role: String,
        /// Which node's.
        target: Target,
    },
    /// SIGKILL a role's process, start it again on heal.
    Kill {
        /// The role whose process is killed.
        role: String,
        /// Which node's.
        target: Target,
    },
    /// Nodes stop hearing each other (iptables in the nodes, or disabled proxy links).
    Partition {
        /// How the nodes are split.
        shape: Shape,
    },
    /// A toxic on proxied links.
    Network {
        /// What it does.
        effect: NetEffect,
        /// Where.
        links: Links,
    },
    /// A retry storm: every link into `role` slowed past the callers' timeouts while the
    /// workload's clients retry eagerly ([`FaultPlan::eager_clients`]).
    Storm {
        /// The slowed downstream.
        role: String,
        /// Delay added to its replies.
        latency_ms: u64,
    },
}

impl FaultPlan {
    /// The fault name, as in the history.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultPlan::Pause { .. } => "pause",
            FaultPlan::Kill { .. } => "kill",
            FaultPlan::Partition { .. } => "partition",
            FaultPlan::Network { effect, .. } => effect.name(),
            FaultPlan::Storm { .. } => "storm",
        }
    }

    /// Whether the workload's clients should retry eagerly while this fault stands (the client
    /// half of a retry storm).
    pub fn eager_clients(&self) -> bool {
        matches!(self, FaultPlan::Storm { .. })
    }
}

/// How a partition is realised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum Realisation {
    /// DROP rules in each node's [`crate::iptables::CHAIN`]; `ips` maps node → address.
    Iptables {
        /// Node addresses as the other nodes see them.
        ips: BTreeMap<String, String>,
    },
    /// Disabled links on a Toxiproxy-compatible API.
    Proxy {
        /// The API's base URL.
        api: String,
        /// The disabled proxies.
        proxies: Vec<String>,
    },
}

/// A fault with a concrete target: what the heal ledger stores and what heal undoes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// A killed process, restarted on heal.
    Kill {
        /// Node.
        node: String,
        /// Role.
        role: String,
        /// The process that was killed.
        pid: u32,
    },
    /// A partition.
    Partition {
        /// The shape's name (`isolate-one`, ...).
        shape: String,
        /// Who drops whom.
        grudge: Grudge,
        /// How.
        how: Realisation,
    },
    /// A toxic on proxies (network faults and the network half of a retry storm).
    Toxics {
        /// `latency`, `lost-response`, `reset`, `bandwidth` or `storm`.
        kind: String,
        /// The API's base URL.
        api: String,
        /// The proxies carrying the toxic.
        proxies: Vec<String>,
        /// The toxic (its name is unique to this fault).
        toxic: Toxic,
    },
}

/// The fault names a [`ActiveFault::Toxics`] can carry, as `'static` strings.
const TOXIC_KINDS: &[&str] = &["latency", "lost-response", "reset", "bandwidth", "storm"];

impl ActiveFault {
    /// The fault kind, as in the history (`pause`, `partition`, `latency`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            ActiveFault::Pause { .. } => "pause",
            ActiveFault::Kill { .. } => "kill",
            ActiveFault::Partition { .. } => "partition",
            ActiveFault::Toxics { kind, .. } => TOXIC_KINDS
                .iter()
                .find(|k| **k == kind.as_str())
                .copied()
                .unwrap_or("toxic"),
        }
    }

    /// A short target description for the history and the report: `n1/payment`,
    /// `n1-x-n2 n1-x-n3`, `n1->n2/payment`.
    pub fn target(&self) -> String {
        match self {
            ActiveFault::Pause { node, role, .. } | ActiveFault::Kill { node, role, .. } => {
                format!("{node}/{role}")
            }
            ActiveFault::Partition { grudge, .. } => crate::grudge::describe(grudge),
            ActiveFault::Toxics { proxies, .. } => proxies
                .iter()
                .map(|p| Link::parse(p).map_or(p.clone(), |l| l.describe()))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}
