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

use super::Params;
use crate::check::{Check, Verdict};
use crate::logs::{self, LogEvent};
use crate::report::table::{opt, Table};
use crate::rundir::RunData;
use crate::verdict::{CheckId, Validity};

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

#[derive(Default)]
struct Scan {
    rejections: Vec<Rejection>,
    rejected_by_domain: BTreeMap<String, u64>,
    violations: Vec<StaleAccept>,
    violations_total: usize,
    accepted_by_domain: BTreeMap<String, u64>,
    max_token_by_domain: BTreeMap<String, u64>,
    /// Relevant lines lacking a field this check needs.
    incomplete: Vec<String>,
}

impl Scan {
    fn visit(&mut self, node: &str, best: &mut BTreeMap<String, (u64, String)>, e: LogEvent) {
        let Some(domain) = e.text("domain") else {
            self.incomplete.push(format!("{} (no domain)", e.at()));
            return;
        };
        let key = e.text("key").unwrap_or_default();
        match e.message.as_str() {
            messages::REJECTED => {
                let (Some(rejected), Some(current)) =
                    (e.number("rejected_token"), e.number("current_token"))
                else {
                    self.incomplete.push(format!("{} (no tokens)", e.at()));
                    return;
                };
                *self.rejected_by_domain.entry(domain.clone()).or_default() += 1;
                if self.rejections.len() < MAX_LISTED {
                    self.rejections.push(Rejection {
                        node: node.to_owned(),
                        domain,
                        key,
                        rejected_token: rejected,
                        current_token: current,
                        at: e.at(),
                        timestamp: e.timestamp,
                    });
                }
            }
            messages::ACCEPTED | messages::STALE_ACCEPTED => {
                let Some(token) = e.number("token") else {
                    self.incomplete.push(format!("{} (no token)", e.at()));
                    return;
                };
                *self.accepted_by_domain.entry(domain.clone()).or_default() += 1;
                let max = self.max_token_by_domain.entry(domain.clone()).or_default();
                *max = (*max).max(token);
                let prior = best.get(&domain).cloned();
                let raises = prior.as_ref().is_none_or(|(t, _)| token > *t);
                let stale_flag = e.message == messages::STALE_ACCEPTED;
                let below_prior = prior.as_ref().is_some_and(|(t, _)| token < *t);
                if stale_flag || below_prior {
                    let (prior_token, prior_at) = match prior {
                        Some((t, at)) if below_prior => (t, at),
                        _ => (
                            e.number("current_token").unwrap_or(token),
                            format!("{} (current_token field)", e.at()),
                        ),
                    };
                    self.violations_total += 1;
                    if self.violations.len() < MAX_LISTED {
                        self.violations.push(StaleAccept {
                            node: node.to_owned(),
                            domain: domain.clone(),
                            key,
                            token,
                            prior_token,
                            at: e.at(),
                            prior_at,
                            message: e.message.clone(),
                        });
                    }
                }
                if raises {
                    best.insert(domain, (token, e.at()));
                }
            }
            _ => {}
        }
    }
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
}

/// The check.
pub struct Fencing;

impl Check for Fencing {
    const ID: CheckId = CheckId::Fencing;
    type Details = Details;

    fn run(run: &RunData, _: &Params) -> Verdict<Details> {
        check(run)
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
            Table::list("Store logs missing", &d.missing_logs, 0),
            Table::list("Store logs unreadable", &d.read_errors, 0),
            Table::list("Relevant log lines lacking fields", &d.incomplete_lines, 0),
        ]
    }
}

/// Runs the check over `nodes/*/store.log`.
pub fn check(run: &RunData) -> Verdict<Details> {
    let logs = logs::role_logs(&run.dir, Role::Store.as_str());
    if !run.had_role(Role::Store) {
        return Verdict::new(
            Validity::Valid,
            "not applicable: this run deployed no store",
            Details::default(),
        );
    }
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
    let mut scan = Scan::default();
    let mut read_errors: Vec<String> = Vec::new();
    let (mut lines, mut bad_lines, mut bad_at) = (0usize, 0usize, Vec::new());
    for (node, rel, abs) in &logs {
        let mut best: BTreeMap<String, (u64, String)> = BTreeMap::new();
        let wanted = [
            messages::REJECTED,
            messages::ACCEPTED,
            messages::STALE_ACCEPTED,
        ];
        match logs::scan(abs, rel, &wanted, |e| scan.visit(node, &mut best, e)) {
            Ok(stats) => {
                lines += stats.lines;
                bad_lines += stats.bad_lines;
                bad_at.extend(stats.bad_at);
            }
            Err(e) => read_errors.push(e.to_string()),
        }
    }
    let rejected_total: u64 = scan.rejected_by_domain.values().sum();
    let (validity, summary) = if scan.violations_total > 0 {
        let v = &scan.violations[0];
        (
            Validity::Invalid,
            format!(
                "{} writes accepted under a stale token (first: {} domain {} key {} token {} after {} at {})",
                scan.violations_total, v.node, v.domain, v.key, v.token, v.prior_token, v.at
            ),
        )
    } else if logs.is_empty() {
        (
            Validity::Unknown,
            "the run had a store but no nodes/<node>/store.log was collected".into(),
        )
    } else if !missing.is_empty() || !read_errors.is_empty() || !scan.incomplete.is_empty() {
        (
            Validity::Unknown,
            format!(
                "no stale write accepted in the logs read, but {} store logs are missing, {} unreadable, {} lines lack fields",
                missing.len(),
                read_errors.len(),
                scan.incomplete.len()
            ),
        )
    } else {
        let accepted: u64 = scan.accepted_by_domain.values().sum();
        (
            Validity::Valid,
            format!(
                "{accepted} writes accepted in token order on {} replicas; {rejected_total} stale tokens rejected",
                logs.len()
            ),
        )
    };
    Verdict::new(
        validity,
        summary,
        Details {
            applicable: true,
            store_logs: logs.iter().map(|(_, rel, _)| rel.clone()).collect(),
            missing_logs: missing,
            read_errors,
            log_lines: lines,
            unparseable_lines: bad_lines,
            unparseable_at: bad_at,
            incomplete_lines: scan.incomplete.into_iter().take(MAX_LISTED).collect(),
            accepted_writes_by_domain: scan.accepted_by_domain,
            max_token_by_domain: scan.max_token_by_domain,
            rejected_by_domain: scan.rejected_by_domain,
            rejections: scan.rejections,
            rejections_not_listed: (rejected_total as usize).saturating_sub(MAX_LISTED),
            violations: scan.violations,
            violations_not_listed: scan.violations_total.saturating_sub(MAX_LISTED),
        },
    )
}
