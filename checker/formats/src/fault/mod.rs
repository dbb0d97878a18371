//! The fault vocabulary, shared by `--nemesis`, `--fault` specs, the seeded schedule, the
//! history and `spec.json`: [`Kind`] (one word per kind of fault), [`Kinds`] (the `--nemesis`
//! set), and [`Planned`] (one fault with its target and timing, spelled as a `--fault` spec by
//! its `Display` and read back by its `FromStr`; see [`spec`]).

pub mod spec;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::role::Role;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Partitions of every shape.
    Partition,
    /// SIGSTOP/SIGCONT.
    Pause,
    /// SIGKILL and restart.
    Kill,
    /// Latency toxics.
    Latency,
    /// Lost responses.
    LostResponse,
    /// TCP resets.
    Reset,
    /// Bandwidth limits.
    Bandwidth,
    /// Retry storms.
    Storm,
}

impl Kind {
    /// Every kind, in `--nemesis all` order.
    pub const ALL: [Kind; 8] = [
        Kind::Partition,
        Kind::Pause,
        Kind::Kill,
        Kind::Latency,
        Kind::LostResponse,
        Kind::Reset,
        Kind::Bandwidth,
        Kind::Storm,
    ];

    /// The name, as `--nemesis`, `--fault kind=` and the history spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Partition => "partition",
            Kind::Pause => "pause",
            Kind::Kill => "kill",
            Kind::Latency => "latency",
            Kind::LostResponse => "lost-response",
            Kind::Reset => "reset",
            Kind::Bandwidth => "bandwidth",
            Kind::Storm => "storm",
        }
    }

    /// Whether it acts on proxied links (a Toxiproxy API in front of the links).
    pub fn needs_proxy(self) -> bool {
        matches!(
            self,
            Kind::Latency | Kind::LostResponse | Kind::Reset | Kind::Bandwidth | Kind::Storm
        )
    }

    fn names() -> String {
        Kind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown fault '{s}' (expected one of {})", Kind::names()))
    }
}

/// The kinds a seeded schedule draws from (`--nemesis`): `none`, `all`, or a comma list.
/// Serialized as that spelling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Kinds(pub BTreeSet<Kind>);

impl Kinds {
    /// No faults.
    pub fn none() -> Kinds {
        Kinds(BTreeSet::new())
    }

    /// Exactly `kind`.
    pub fn only(kind: Kind) -> Kinds {
        Kinds(BTreeSet::from([kind]))
    }

    /// Every kind.
    pub fn all() -> Kinds {
        Kinds(Kind::ALL.into_iter().collect())
    }

    /// True for `none`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Kinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        if self.0.len() == Kind::ALL.len() {
            return f.write_str("all");
        }
        let names: Vec<&str> = self.0.iter().map(|k| k.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Kinds {
    type Err = String;

    fn from_str(s: &str) -> Result<Kinds, String> {
        match s.trim() {
            "none" | "" => Ok(Kinds::none()),
            "all" => Ok(Kinds::all()),
            list => list
                .split(',')
                .map(|part| part.trim().parse::<Kind>())
                .collect::<Result<BTreeSet<Kind>, String>>()
                .map(Kinds)
                .map_err(|e| format!("{e}, none or all")),
        }
    }
}

impl Serialize for Kinds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Kinds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Kinds, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

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
    /// The node currently leading another role.
    LeaderOf {
        /// The role whose leader's node is meant.
        role: Role,
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
        role: Role,
    },
    /// One link into `role`, chosen from the seeded RNG.
    RandomOne {
        /// Role called.
        role: Role,
    },
    /// Every link into `role` (the whole service).
    Service {
        /// Role called.
        role: Role,
    },
    /// The one link from the node where `from_role` leads to the node where `role` leads
    /// (both found through `GET /admin/leader` when the fault starts).
    Leaders {
        /// The calling role whose leader's node is the link's source.
        from_role: Role,
        /// Role called; its leader's node is the link's destination.
        role: Role,
    },
}

impl Links {
    /// The role called over these links.
    pub fn role(&self) -> Role {
        match self {
            Links::One { role, .. }
            | Links::RandomOne { role }
            | Links::Service { role }
            | Links::Leaders { role, .. } => *role,
        }
    }
}

/// What a network fault does to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "kebab-case")]
pub enum NetEffect {
    /// Replies delayed by `latency_ms` ± `jitter_ms`.
    Latency {
        /// Added delay.
        latency_ms: u64,
        /// Random variation, at most `latency_ms`.
        jitter_ms: u64,
    },
    /// Requests reach the service, replies never come back.
    LostResponse,
    /// Replies replaced by a TCP reset.
    Reset,
    /// Replies limited to `rate_kbps` KB/s.
    Bandwidth {
        /// KB per second.
        rate_kbps: u64,
    },
}

impl NetEffect {
    /// The fault kind it is.
    pub fn kind(self) -> Kind {
        match self {
            NetEffect::Latency { .. } => Kind::Latency,
            NetEffect::LostResponse => Kind::LostResponse,
            NetEffect::Reset => Kind::Reset,
            NetEffect::Bandwidth { .. } => Kind::Bandwidth,
        }
    }
}

/// The HTTP exchanges a network fault acts on: requests of `method` (any method when `None`)
/// whose path starts with `path`. Without a route a network fault acts on every byte of its
/// links; with one, on the matching exchanges only (the fault proxy's `http` toxic).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// `POST`, `GET`, ...; `None` matches any.
    pub method: Option<String>,
    /// Path prefix, starting with `/`.
    pub path: String,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.method {
            Some(m) => write!(f, "{m} {}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// How the nodes are split by a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "kebab-case")]
pub enum Shape {
    /// One node (named, or chosen from the seeded RNG) alone; the rest together.
    IsolateOne {
        /// The node; `None` picks one.
        node: Option<String>,
    },
    /// The current leader of `role` alone.
    IsolateLeader {
        /// Whose leader.
        role: Role,
    },
    /// A minority holding the current leader of `role` (a random one if none is found), cut
    /// from the majority: the deposed-leader case.
    MajorityMinority {
        /// Whose leader goes to the minority.
        role: Role,
    },
    /// Shuffled nodes cut into two halves.
    RandomHalves,
    /// Two halves that cannot reach each other and one node in the middle that reaches both.
    Bridge,
}

impl Shape {
    /// The name: `isolate-one`, `bridge`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Shape::IsolateOne { .. } => "isolate-one",
            Shape::IsolateLeader { .. } => "isolate-leader",
            Shape::MajorityMinority { .. } => "majority-minority",
            Shape::RandomHalves => "random-halves",
            Shape::Bridge => "bridge",
        }
    }
}

/// What to do, before targets are resolved against the live cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultPlan {
    /// SIGSTOP a role's process, SIGCONT on heal.
    Pause {
        /// The role whose process is paused.
        role: Role,
        /// Which node's.
        target: Target,
    },
    /// SIGKILL a role's process, start it again on heal.
    Kill {
        /// The role whose process is killed.
        role: Role,
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
        /// Which HTTP exchanges on those links (all bytes when `None`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<Route>,
    },
    /// A retry storm: every link into `role` slowed past the callers' timeouts while the
    /// workload's clients retry eagerly.
    Storm {
        /// The slowed downstream.
        role: Role,
        /// Delay added to its replies.
        latency_ms: u64,
    },
}

impl FaultPlan {
    /// The kind of fault.
    pub fn kind(&self) -> Kind {
        match self {
            FaultPlan::Pause { .. } => Kind::Pause,
            FaultPlan::Kill { .. } => Kind::Kill,
            FaultPlan::Partition { .. } => Kind::Partition,
            FaultPlan::Network { effect, .. } => effect.kind(),
            FaultPlan::Storm { .. } => Kind::Storm,
        }
    }

    /// Whether the workload's clients should retry eagerly while this fault stands (the client
    /// half of a retry storm).
    pub fn eager_clients(&self) -> bool {
        matches!(self, FaultPlan::Storm { .. })
    }

    /// Whether it needs link proxies (network faults, storms, and partitions where links go
    /// through a proxy).
    pub fn needs_proxy(&self) -> bool {
        self.kind().needs_proxy() || self.kind() == Kind::Partition
    }

    /// The node names it names explicitly (a node target, the node an isolate-one partition
    /// cuts off, the ends of a named link), to be checked against the cluster's.
    pub fn named_nodes(&self) -> Vec<&str> {
        match self {
            FaultPlan::Pause {
                target: Target::Node { node },
                ..
            }
            | FaultPlan::Kill {
                target: Target::Node { node },
                ..
            } => vec![node],
            FaultPlan::Partition {
                shape: Shape::IsolateOne { node: Some(node) },
            } => vec![node],
            FaultPlan::Network {
                links: Links::One { from, to, .. },
                ..
            } => vec![from, to],
            _ => Vec::new(),
        }
    }
}

/// One planned fault: when it starts (from the start of the workload), how long it stands, and
/// what it is. Spelled as a `--fault` spec (`kind=pause,role=order,node=leader,at=3s,for=4s`)
/// by `Display`, read back by `FromStr`, and stored in `spec.json` as that spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Offset from the start of the workload.
    pub at: Duration,
    /// How long it stays before its heal.
    pub duration: Duration,
    /// What to do.
    pub plan: FaultPlan,
}

impl Planned {
    /// When it is healed, from the start of the workload.
    pub fn heal_at(&self) -> Duration {
        self.at.saturating_add(self.duration)
    }
}

impl Serialize for Planned {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Planned {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Planned, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The time after the start of the workload when the last of `faults` is healed.
pub fn last_heal(faults: &[Planned]) -> Duration {
    faults
        .iter()
        .map(Planned::heal_at)
        .max()
        .unwrap_or_default()
}

/// Checks that every node the faults name is one of `nodes`; the error names the fault.
pub fn check_nodes(faults: &[Planned], nodes: &[String]) -> Result<(), String> {
    for f in faults {
        if let Some(n) = f
            .plan
            .named_nodes()
            .into_iter()
            .find(|n| !nodes.iter().any(|m| m == n))
        {
            return Err(format!(
                "--fault '{f}': node '{n}' is not in the cluster (nodes: {})",
                nodes.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves `--nemesis` spellings: none, all, lists, a clear error for unknown names, and
    /// that every set is spelled back as it reads.
    #[test]
    fn kinds_parse_and_spell_back() {
        assert!("none".parse::<Kinds>().expect("none").is_empty());
        assert_eq!("all".parse::<Kinds>().expect("all"), Kinds::all());
        let k: Kinds = "partition,pause".parse().expect("list");
        assert_eq!(k, Kinds(BTreeSet::from([Kind::Partition, Kind::Pause])));
        assert_eq!(k.to_string(), "partition,pause");
        let e = "pause,frobnicate".parse::<Kinds>().expect_err("unknown");
        assert!(e.contains("'frobnicate'"), "{e}");
        for kinds in [Kinds::none(), Kinds::all(), Kinds::only(Kind::Storm), k] {
            assert_eq!(kinds.to_string().parse::<Kinds>(), Ok(kinds.clone()));
            let json = serde_json::to_string(&kinds).expect("serializes");
            assert_eq!(serde_json::from_str::<Kinds>(&json).expect("reads"), kinds);
        }
    }
}
