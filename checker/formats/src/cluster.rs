//! `cluster.json`: how to reach a run's cluster from outside the harness process that ran it
//! (what `harness heal` needs after a crash). Written before the cluster starts.

use serde::{Deserialize, Serialize};

use crate::spec::ClusterKind;

/// `cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// Which kind of cluster.
    pub kind: ClusterKind,
    /// The link proxies' Toxiproxy-compatible API, if the run had one.
    #[serde(default)]
    pub proxy_api: Option<String>,
    /// The nodes.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
}

impl ClusterFile {
    /// What a run without a `cluster.json` (older runs) was: a local cluster.
    pub fn local() -> ClusterFile {
        ClusterFile {
            kind: ClusterKind::Local,
            proxy_api: None,
            nodes: Vec::new(),
        }
    }
}

/// One node of `cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Node name.
    pub name: String,
    /// The address other nodes reach it at (where partitions are iptables rules).
    #[serde(default)]
    pub ip: Option<String>,
    /// The network namespace its processes run in.
    #[serde(default)]
    pub netns: Option<String>,
}
