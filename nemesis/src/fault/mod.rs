//! Fault plans (what to do, before targets are known) and active faults (resolved targets,
//! what the heal ledger stores and what a heal undoes).

mod apply;
mod resolve;

use std::collections::BTreeMap;

pub use formats::fault::{FaultPlan, Kind, Links, NetEffect, Planned, Route, Shape, Target};
use formats::Role;
use serde::{Deserialize, Serialize};

use crate::grudge::Grudge;
use crate::links::Link;
use crate::toxiproxy::{HttpAction, HttpToxic, Stream, Toxic, ToxicKind};

pub(crate) use resolve::resolve;

/// The toxic that realises a network effect, named `name`: on every byte of the links, or with
/// a `route`, the fault proxy's `http` toxic on the matching exchanges only.
pub fn toxic_of(effect: NetEffect, route: Option<&Route>, name: &str) -> Toxic {
    if let Some(r) = route {
        let (action, delay_ms) = match effect {
            NetEffect::Latency { latency_ms, .. } => (HttpAction::Delay, latency_ms),
            NetEffect::Reset => (HttpAction::Reset, 0),
            // Bandwidth has no route (the fault spec refuses one); a lost response is the rest.
            NetEffect::LostResponse | NetEffect::Bandwidth { .. } => (HttpAction::DropResponse, 0),
        };
        let http = HttpToxic {
            method: r.method.clone(),
            path: r.path.clone(),
            action,
            delay_ms,
            ..HttpToxic::default()
        };
        return Toxic::new(ToxicKind::Http(http), Stream::Downstream).named(name);
    }
    let kind = match effect {
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
        role: Role,
        /// The process that was stopped.
        pid: u32,
    },
    /// A killed process, restarted on heal.
    Kill {
        /// Node.
        node: String,
        /// Role.
        role: Role,
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
        kind: Kind,
        /// The API's base URL.
        api: String,
        /// The proxies carrying the toxic.
        proxies: Vec<String>,
        /// The toxic (its name is unique to this fault).
        toxic: Toxic,
    },
}

impl ActiveFault {
    /// The fault kind, as in the history.
    pub fn kind(&self) -> Kind {
        match self {
            ActiveFault::Pause { .. } => Kind::Pause,
            ActiveFault::Kill { .. } => Kind::Kill,
            ActiveFault::Partition { .. } => Kind::Partition,
            ActiveFault::Toxics { kind, .. } => *kind,
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
            ActiveFault::Toxics { proxies, toxic, .. } => {
                let links = proxies
                    .iter()
                    .map(|p| Link::parse(p).map_or(p.clone(), |l| l.describe()))
                    .collect::<Vec<_>>()
                    .join(" ");
                match &toxic.kind {
                    ToxicKind::Http(h) => {
                        let method = h
                            .method
                            .as_deref()
                            .map_or(String::new(), |m| format!("{m} "));
                        format!("{links} {method}{} ({})", h.path, h.action.as_str())
                    }
                    _ => links,
                }
            }
        }
    }
}
