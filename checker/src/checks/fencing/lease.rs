//! Leases as the logs tell them: every `became leader` and `stepped down` of the leader roles,
//! two holders of one token (a split lease: invalid), and the lease noise of a run — refused
//! writes and elections outside every fault window after the start-up grace. A replica that
//! keeps refusing a leader's writes for longer than a lease with no fault to explain it makes
//! the run unknown: fencing was working against the cluster, not protecting it.

use std::collections::{BTreeMap, BTreeSet};

use formats::Role;
use serde::{Deserialize, Serialize};

use super::scan::Refused;
use crate::analysis::FaultWindow;
use crate::logs::{self, LogEvent};
use crate::rundir::RunData;

/// Log messages of the leader roles this module reads.
pub mod messages {
    /// A candidate won a lease.
    pub const BECAME: &str = "became leader";
    /// A leader stopped leading.
    pub const STEPPED_DOWN: &str = "stepped down";
}

/// The roles that elect leaders.
const LEADER_ROLES: [Role; 3] = [Role::Order, Role::Payment, Role::Inventory];

/// How long leases take, as the pipeline is configured (contract §1 `lease_ttl_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LeaseParams {
    /// The lease period.
    pub lease_ttl_ms: u64,
    /// One campaign (asking every replica for a lease).
    pub campaign_ms: u64,
}

impl Default for LeaseParams {
    fn default() -> Self {
        LeaseParams {
            lease_ttl_ms: 2500,
            campaign_ms: 1000,
        }
    }
}

impl LeaseParams {
    /// The start-up grace and the tail after a heal in which lease changes are expected: one
    /// lease period plus one campaign.
    pub fn grace_s(&self) -> f64 {
        (self.lease_ttl_ms + self.campaign_ms) as f64 / 1000.0
    }
}

/// One `became leader` or `stepped down` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseEvent {
    /// The node whose log it is.
    pub node: String,
    /// The domain.
    pub domain: String,
    /// The token of the lease.
    pub token: u64,
    /// The holder named in the line (the node, as the elector names itself).
    pub holder: String,
    /// Seconds since the run started, if the line has a timestamp.
    pub t_s: Option<f64>,
    /// For a step-down, its cause.
    pub cause: Option<String>,
    /// `file:line`.
    pub at: String,
}

/// A token two holders led under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitLease {
    /// The domain.
    pub domain: String,
    /// The token.
    pub token: u64,
    /// Every holder that became leader under it.
    pub holders: Vec<String>,
    /// Their log lines.
    pub at: Vec<String>,
}

/// A lease change nothing explains: outside every fault window, after the start-up grace,
/// before the history ended (teardown elections are not noise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// `election` or `rejection`.
    pub kind: String,
    /// The domain.
    pub domain: String,
    /// The replica that refused, or the node that was elected.
    pub node: String,
    /// `token 3`, or `rejected 1, current 2`.
    pub tokens: String,
    /// Seconds since the run started.
    pub t_s: f64,
    /// For an election: the cause of the step-down before it in the domain, if one was logged.
    pub after: Option<String>,
    /// `file:line`.
    pub at: String,
}

/// A replica that refused a leader's writes for longer than a lease with no fault around.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StuckFloor {
    /// The replica.
    pub node: String,
    /// The domain.
    pub domain: String,
    /// First and last unexplained refusal, seconds since the run started.
    pub from_s: f64,
    /// See `from_s`.
    pub until_s: f64,
    /// Refusals in between.
    pub refusals: usize,
}

/// What the leader roles' logs say about leases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Leases {
    /// Every election and step-down, in log order per node.
    pub events: Vec<LeaseEvent>,
    /// Leader-role logs that could not be read.
    pub read_errors: Vec<String>,
}

fn lease_event(node: &str, e: &LogEvent, started_unix_ms: u64) -> Option<LeaseEvent> {
    let t_s = e
        .timestamp
        .as_deref()
        .and_then(logs::unix_ms)
        .map(|ms| (ms as f64 - started_unix_ms as f64) / 1000.0);
    Some(LeaseEvent {
        node: node.to_owned(),
        domain: e.text("domain")?,
        token: e.number("token")?,
        holder: e.text("holder").unwrap_or_else(|| node.to_owned()),
        t_s,
        cause: (e.message == messages::STEPPED_DOWN).then(|| e.text("cause").unwrap_or_default()),
        at: e.at(),
    })
}

/// Reads every election and step-down of the leader roles.
pub fn read(run: &RunData) -> Leases {
    let started = run.history.header.started_unix_ms;
    let mut out = Leases::default();
    for role in LEADER_ROLES {
        for (node, rel, abs) in logs::role_logs(&run.dir, role.as_str()) {
            let wanted = [messages::BECAME, messages::STEPPED_DOWN];
            let scanned = logs::scan(&abs, &rel, &wanted, |e| {
                out.events.extend(lease_event(&node, &e, started));
            });
            if let Err(e) = scanned {
                out.read_errors.push(e.to_string());
            }
        }
    }
    out
}

/// Tokens that two holders became leader under, per domain.
pub fn split_leases(events: &[LeaseEvent]) -> Vec<SplitLease> {
    let mut by_token: BTreeMap<(String, u64), (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for e in events.iter().filter(|e| e.cause.is_none()) {
        let slot = by_token.entry((e.domain.clone(), e.token)).or_default();
        slot.0.insert(e.holder.clone());
        slot.1.push(e.at.clone());
    }
    by_token
        .into_iter()
        .filter(|(_, (holders, _))| holders.len() > 1)
        .map(|((domain, token), (holders, at))| SplitLease {
            domain,
            token,
            holders: holders.into_iter().collect(),
            at,
        })
        .collect()
}

/// The window of time in which lease changes are explained: every fault from its start to a
/// grace after its heal (to the end if it never healed).
fn explained(t_s: f64, windows: &[FaultWindow], grace_s: f64) -> bool {
    windows.iter().any(|w| {
        let start = w.start_ns as f64 / 1e9;
        let end = w.end_ns.map_or(f64::INFINITY, |e| e as f64 / 1e9 + grace_s);
        (start..=end).contains(&t_s)
    })
}

/// The lease noise of a run and the replicas whose floors stayed stuck against a leader.
pub(super) fn noise(
    events: &[LeaseEvent],
    refused: &[Refused],
    windows: &[FaultWindow],
    p: &LeaseParams,
    started_unix_ms: u64,
    end_s: f64,
) -> (Vec<Noise>, Vec<StuckFloor>) {
    let grace = p.grace_s();
    let unexplained = |t: f64| t > grace && t <= end_s && !explained(t, windows, grace);
    let mut out = Vec::new();
    let mut last_step_down: BTreeMap<&str, &LeaseEvent> = BTreeMap::new();
    let mut ordered: Vec<&LeaseEvent> = events.iter().filter(|e| e.t_s.is_some()).collect();
    ordered.sort_by(|a, b| {
        a.t_s
            .partial_cmp(&b.t_s)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for e in ordered {
        let t = e.t_s.unwrap_or_default();
        if e.cause.is_some() {
            last_step_down.insert(&e.domain, e);
            continue;
        }
        if unexplained(t) {
            out.push(Noise {
                kind: "election".into(),
                domain: e.domain.clone(),
                node: e.node.clone(),
                tokens: format!("token {}", e.token),
                t_s: t,
                after: last_step_down
                    .get(e.domain.as_str())
                    .and_then(|s| s.cause.clone()),
                at: e.at.clone(),
            });
        }
    }
    let mut spans: BTreeMap<(String, String), (f64, f64, usize)> = BTreeMap::new();
    for r in refused {
        let Some(ms) = r.unix_ms else { continue };
        let t = (ms as f64 - started_unix_ms as f64) / 1000.0;
        if !unexplained(t) {
            continue;
        }
        out.push(Noise {
            kind: "rejection".into(),
            domain: r.domain.clone(),
            node: r.node.clone(),
            tokens: format!("rejected {}, current {}", r.rejected, r.current),
            t_s: t,
            after: None,
            at: r.at.clone(),
        });
        let span = spans
            .entry((r.node.clone(), r.domain.clone()))
            .or_insert((t, t, 0));
        span.0 = span.0.min(t);
        span.1 = span.1.max(t);
        span.2 += 1;
    }
    let ttl_s = p.lease_ttl_ms as f64 / 1000.0;
    let stuck = spans
        .into_iter()
        .filter(|(_, (from, until, _))| until - from > ttl_s)
        .map(|((node, domain), (from_s, until_s, refusals))| StuckFloor {
            node,
            domain,
            from_s,
            until_s,
            refusals,
        })
        .collect();
    out.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    (out, stuck)
}
