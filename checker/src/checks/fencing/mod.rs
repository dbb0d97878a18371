//! The fencing check, from the store replicas' logs (contract §4).
//!
//! Every rejected stale token is listed with its domain, key and the replica's current token.
//! The run is invalid if a replica accepted a write under a token lower than one it had already
//! accepted in that domain: a `write accepted` line whose token is below an earlier accepted one
//! on the same replica, or any `stale write accepted (fencing disabled)` line. Without store logs
//! in a run that had a store, the check cannot tell (unknown).

use std::collections::BTreeMap;

use formats::Role;
use serde::{Deserialize, Serialize};

mod counts;
pub mod lease;
mod scan;

pub use counts::{CountMismatch, Counts};
pub use lease::{LeaseEvent, LeaseParams, Noise, SplitLease, StuckFloor};

use super::Params;
use crate::check::{Check, Verdict};
use crate::logs;
use crate::report::table::{num, opt, Table};
use crate::rundir::RunData;
use crate::verdict::{CheckId, Validity};
use scan::Scan;

/// How many rejections and violations are listed in full; counts cover all of them.
pub const MAX_LISTED: usize = 1000;

/// Log messages this check reads.
pub mod messages {
    /// A replica refused a stale token.
    pub const REJECTED: &str = "fencing rejected write";
    /// A replica applied a write.
    pub const ACCEPTED: &str = "write accepted";
    /// A replica applied a stale write because fencing was switched off.
    pub const STALE_ACCEPTED: &str = "stale write accepted (fencing disabled)";
}

/// A rejected stale write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// The replica's node.
    pub node: String,
    /// Fencing domain, e.g. `order`.
    pub domain: String,
    /// The key written.
    pub key: String,
    /// The token the write carried.
    pub rejected_token: u64,
    /// The highest token the replica had accepted.
    pub current_token: u64,
    /// `file:line`.
    pub at: String,
    /// The log line's timestamp.
    pub timestamp: Option<String>,
}

/// A write accepted under a token lower than one already accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaleAccept {
    /// The replica's node.
    pub node: String,
    /// Fencing domain.
    pub domain: String,
    /// The key written.
    pub key: String,
    /// The token the write carried.
    pub token: u64,
    /// The higher token accepted before it.
    pub prior_token: u64,
    /// `file:line` of the stale accept.
    pub at: String,
    /// `file:line` where the higher token was accepted (or reported current).
    pub prior_at: String,
    /// Which log line showed it.
    pub message: String,
}

/// What the check read and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// False when the run deployed no store (nothing else is filled then).
    pub applicable: bool,
    /// The store logs read, relative to the run directory.
    pub store_logs: Vec<String>,
    /// Store logs that should be there and are not.
    pub missing_logs: Vec<String>,
    /// Store logs that could not be read.
    pub read_errors: Vec<String>,
    /// Lines read.
    pub log_lines: usize,
    /// Lines that are not JSON.
    pub unparseable_lines: usize,
    /// Where some of them are.
    pub unparseable_at: Vec<String>,
    /// Relevant lines lacking a field.
    pub incomplete_lines: Vec<String>,
    /// Writes accepted, per domain.
    pub accepted_writes_by_domain: BTreeMap<String, u64>,
    /// Highest accepted token, per domain.
    pub max_token_by_domain: BTreeMap<String, u64>,
    /// Stale tokens rejected, per domain (all of them).
    pub rejected_by_domain: BTreeMap<String, u64>,
    /// Rejections, at most [`MAX_LISTED`].
    pub rejections: Vec<Rejection>,
    /// Rejections beyond those listed.
    pub rejections_not_listed: usize,
    /// Writes accepted under a stale token, at most [`MAX_LISTED`].
    pub violations: Vec<StaleAccept>,
    /// Violations beyond those listed.
    pub violations_not_listed: usize,
    /// The lease timing the noise was judged with.
    #[serde(default)]
    pub lease_params: LeaseParams,
    /// Every election, at most [`MAX_LISTED`].
    #[serde(default)]
    pub elections: Vec<LeaseEvent>,
    /// Leader-role logs that could not be read.
    #[serde(default)]
    pub lease_read_errors: Vec<String>,
    /// Tokens two holders led under (invalid).
    #[serde(default)]
    pub split_leases: Vec<SplitLease>,
    /// Elections and refusals outside faults after the start-up grace, at most [`MAX_LISTED`].
    #[serde(default)]
    pub lease_noise: Vec<Noise>,
    /// Noise beyond that listed.
    #[serde(default)]
    pub lease_noise_not_listed: usize,
    /// Replicas that refused a leader's writes for longer than a lease with no fault (unknown).
    #[serde(default)]
    pub stuck_floors: Vec<StuckFloor>,
    /// The replicas' counters against their logs.
    #[serde(default)]
    pub counts: Counts,
}

/// The check.
pub struct Fencing;

impl Check for Fencing {
    const ID: CheckId = CheckId::Fencing;
    type Details = Details;

    fn run(run: &RunData, p: &Params) -> Verdict<Details> {
        check(run, &p.lease)
    }

    fn tables(d: &Details) -> Vec<Table> {
        vec![
            Table::of(
                "Writes accepted under a stale token",
                &[
                    "node",
                    "domain",
                    "key",
                    "token",
                    "higher token before",
                    "log line",
                    "higher token at",
                    "message",
                ],
                &d.violations,
                d.violations_not_listed,
                |v| {
                    vec![
                        v.node.clone(),
                        v.domain.clone(),
                        v.key.clone(),
                        v.token.to_string(),
                        v.prior_token.to_string(),
                        v.at.clone(),
                        v.prior_at.clone(),
                        v.message.clone(),
                    ]
                },
            ),
            Table::pairs(
                "Stale tokens rejected per domain",
                "domain",
                "rejections",
                d.rejected_by_domain.iter(),
            ),
            Table::pairs(
                "Highest accepted token per domain",
                "domain",
                "token",
                d.max_token_by_domain.iter(),
            ),
            Table::of(
                "Rejected stale tokens",
                &[
                    "node",
                    "domain",
                    "key",
                    "rejected token",
                    "current token",
                    "log line",
                    "time",
                ],
                &d.rejections,
                d.rejections_not_listed,
                |r| {
                    vec![
                        r.node.clone(),
                        r.domain.clone(),
                        r.key.clone(),
                        r.rejected_token.to_string(),
                        r.current_token.to_string(),
                        r.at.clone(),
                        opt(r.timestamp.as_deref()),
                    ]
                },
            ),
            Table::of(
                "Tokens led by two holders (a split lease)",
                &["domain", "token", "holders", "log lines"],
                &d.split_leases,
                0,
                |s| {
                    vec![
                        s.domain.clone(),
                        s.token.to_string(),
                        s.holders.join(", "),
                        s.at.join(", "),
                    ]
                },
            ),
            Table::of(
                "Replicas refusing a leader for longer than a lease with no fault",
                &["node", "domain", "from (s)", "until (s)", "refusals"],
                &d.stuck_floors,
                0,
                |s| {
                    vec![
                        s.node.clone(),
                        s.domain.clone(),
                        num(s.from_s),
                        num(s.until_s),
                        s.refusals.to_string(),
                    ]
                },
            ),
            Table::of(
                "Counters that disagree with the logs",
                &[
                    "node",
                    "domain",
                    "refusals logged",
                    "fencing_rejected_writes_total",
                ],
                &d.counts.mismatches,
                0,
                |m| {
                    vec![
                        m.node.clone(),
                        m.domain.clone(),
                        m.logged.to_string(),
                        m.counted.to_string(),
                    ]
                },
            ),
            Table::of(
                "Lease noise: elections and refusals outside every fault after the start-up grace",
                &[
                    "time (s)", "kind", "domain", "node", "tokens", "after", "log line",
                ],
                &d.lease_noise,
                d.lease_noise_not_listed,
                |n| {
                    vec![
                        num(n.t_s),
                        n.kind.clone(),
                        n.domain.clone(),
                        n.node.clone(),
                        n.tokens.clone(),
                        opt(n.after.as_deref()),
                        n.at.clone(),
                    ]
                },
            ),
            Table::of(
                "Elections",
                &["time (s)", "domain", "holder", "token", "log line"],
                &d.elections,
                0,
                |e| {
                    vec![
                        opt(e.t_s.map(num)),
                        e.domain.clone(),
                        e.holder.clone(),
                        e.token.to_string(),
                        e.at.clone(),
                    ]
                },
            ),
            Table::list("Store logs missing", &d.missing_logs, 0),
            Table::list("Store logs unreadable", &d.read_errors, 0),
            Table::list("Relevant log lines lacking fields", &d.incomplete_lines, 0),
        ]
    }
}

/// What the store logs held.
struct StoreLogs {
    logs: Vec<(String, String, std::path::PathBuf)>,
    missing: Vec<String>,
    read_errors: Vec<String>,
    lines: usize,
    bad_lines: usize,
    bad_at: Vec<String>,
    scan: Scan,
}

fn read_store_logs(run: &RunData) -> StoreLogs {
    let logs = logs::role_logs(&run.dir, Role::Store.as_str());
    let mut missing: Vec<String> = logs::node_names(&run.dir)
        .into_iter()
        .filter(|n| !logs.iter().any(|(node, _, _)| node == n))
        .map(|n| format!("nodes/{n}/store.log"))
        .collect();
    // Nodes with no log folder at all: the spec says how many there were.
    let expected = run.spec.node_names.len();
    if logs.len() + missing.len() < expected {
        missing.push(format!(
            "{} more: spec.json has {expected} nodes, {} have store logs",
            expected - logs.len() - missing.len(),
            logs.len()
        ));
    }
    let mut out = StoreLogs {
        logs: Vec::new(),
        missing,
        read_errors: Vec::new(),
        lines: 0,
        bad_lines: 0,
        bad_at: Vec::new(),
        scan: Scan::default(),
    };
    for (node, rel, abs) in &logs {
        let mut best: BTreeMap<String, (u64, String)> = BTreeMap::new();
        let wanted = [
            messages::REJECTED,
            messages::ACCEPTED,
            messages::STALE_ACCEPTED,
        ];
        match logs::scan(abs, rel, &wanted, |e| out.scan.visit(node, &mut best, e)) {
            Ok(stats) => {
                out.lines += stats.lines;
                out.bad_lines += stats.bad_lines;
                out.bad_at.extend(stats.bad_at);
            }
            Err(e) => out.read_errors.push(e.to_string()),
        }
    }
    out.logs = logs;
    out
}

/// Runs the check over `nodes/*/store.log` and the leader roles' logs.
pub fn check(run: &RunData, p: &LeaseParams) -> Verdict<Details> {
    if !run.had_role(Role::Store) {
        return Verdict::new(
            Validity::Valid,
            "not applicable: this run deployed no store",
            Details::default(),
        );
    }
    let store = read_store_logs(run);
    let leases = lease::read(run);
    let windows = crate::analysis::fault_windows(&run.history);
    let end_s = crate::analysis::end_ns(&run.history) as f64 / 1e9;
    let started = run.history.header.started_unix_ms;
    let (noise, stuck) = lease::noise(
        &leases.events,
        &store.scan.refused,
        &windows,
        p,
        started,
        end_s,
    );
    let split = lease::split_leases(&leases.events);
    let counts = counts::compare(run.metrics.as_ref(), &store.scan.refused);
    let (validity, summary) = verdict_of(&store, &split, &stuck, &counts, &noise);
    let scan = store.scan;
    let rejected_total: u64 = scan.rejected_by_domain.values().sum();
    let noise_total = noise.len();
    Verdict::new(
        validity,
        summary,
        Details {
            applicable: true,
            store_logs: store.logs.iter().map(|(_, rel, _)| rel.clone()).collect(),
            missing_logs: store.missing,
            read_errors: store.read_errors,
            log_lines: store.lines,
            unparseable_lines: store.bad_lines,
            unparseable_at: store.bad_at,
            incomplete_lines: scan.incomplete.into_iter().take(MAX_LISTED).collect(),
            accepted_writes_by_domain: scan.accepted_by_domain,
            max_token_by_domain: scan.max_token_by_domain,
            rejected_by_domain: scan.rejected_by_domain,
            rejections: scan.rejections,
            rejections_not_listed: (rejected_total as usize).saturating_sub(MAX_LISTED),
            violations: scan.violations,
            violations_not_listed: scan.violations_total.saturating_sub(MAX_LISTED),
            lease_params: *p,
            elections: leases
                .events
                .into_iter()
                .filter(|e| e.cause.is_none())
                .take(MAX_LISTED)
                .collect(),
            lease_read_errors: leases.read_errors,
            split_leases: split,
            lease_noise: noise.into_iter().take(MAX_LISTED).collect(),
            lease_noise_not_listed: noise_total.saturating_sub(MAX_LISTED),
            stuck_floors: stuck,
            counts,
        },
    )
}

fn verdict_of(
    store: &StoreLogs,
    split: &[SplitLease],
    stuck: &[StuckFloor],
    counts: &Counts,
    noise: &[Noise],
) -> (Validity, String) {
    let scan = &store.scan;
    if scan.violations_total > 0 {
        let v = &scan.violations[0];
        return (
            Validity::Invalid,
            format!(
                "{} writes accepted under a stale token (first: {} domain {} key {} token {} after {} at {})",
                scan.violations_total, v.node, v.domain, v.key, v.token, v.prior_token, v.at
            ),
        );
    }
    if let Some(s) = split.first() {
        return (
            Validity::Invalid,
            format!(
                "{} tokens led by two holders (first: domain {} token {} led by {})",
                split.len(),
                s.domain,
                s.token,
                s.holders.join(" and ")
            ),
        );
    }
    if store.logs.is_empty() {
        return (
            Validity::Unknown,
            "the run had a store but no nodes/<node>/store.log was collected".into(),
        );
    }
    if !store.missing.is_empty() || !store.read_errors.is_empty() || !scan.incomplete.is_empty() {
        return (
            Validity::Unknown,
            format!(
                "no stale write accepted in the logs read, but {} store logs are missing, {} unreadable, {} lines lack fields",
                store.missing.len(),
                store.read_errors.len(),
                scan.incomplete.len()
            ),
        );
    }
    if let Some(s) = stuck.first() {
        return (
            Validity::Unknown,
            format!(
                "replica {} refused {} domain writes from {:.1} s to {:.1} s ({} refusals) with no fault to explain it: fencing worked against the cluster",
                s.node, s.domain, s.from_s, s.until_s, s.refusals
            ),
        );
    }
    if let Some(m) = counts.mismatches.first() {
        return (
            Validity::Unknown,
            format!(
                "{} replicas' fencing_rejected_writes_total disagree with their logs (first: {} domain {}: {} logged, {} counted)",
                counts.mismatches.len(),
                m.node,
                m.domain,
                m.logged,
                m.counted
            ),
        );
    }
    let accepted: u64 = scan.accepted_by_domain.values().sum();
    let rejected: u64 = scan.rejected_by_domain.values().sum();
    let noise_note = if noise.is_empty() {
        String::new()
    } else {
        format!(
            "; {} lease changes outside faults (lease noise)",
            noise.len()
        )
    };
    (
        Validity::Valid,
        format!(
            "{accepted} writes accepted in token order on {} replicas; {rejected} stale tokens rejected{noise_note}",
            store.logs.len()
        ),
    )
}
