//! Reading the store replicas' logs: accepted writes in token order, refused stale writes,
//! stale writes accepted with fencing off.

use std::collections::BTreeMap;

use super::{messages, Rejection, StaleAccept, MAX_LISTED};
use crate::logs::LogEvent;

/// Every refused write, with its time: what the lease-noise and count checks read.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Refused {
    pub node: String,
    pub domain: String,
    /// Unix milliseconds of the log line, if it has a readable timestamp.
    pub unix_ms: Option<u64>,
    pub rejected: u64,
    pub current: u64,
    pub at: String,
}

/// What a scan of the store logs collects.
#[derive(Default)]
pub(super) struct Scan {
    /// Every refused write.
    pub refused: Vec<Refused>,
    pub rejections: Vec<Rejection>,
    pub rejected_by_domain: BTreeMap<String, u64>,
    pub violations: Vec<StaleAccept>,
    pub violations_total: usize,
    pub accepted_by_domain: BTreeMap<String, u64>,
    pub max_token_by_domain: BTreeMap<String, u64>,
    /// Relevant lines lacking a field this check needs.
    pub incomplete: Vec<String>,
}

impl Scan {
    pub fn visit(&mut self, node: &str, best: &mut BTreeMap<String, (u64, String)>, e: LogEvent) {
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
                self.refused.push(Refused {
                    node: node.to_owned(),
                    domain: domain.clone(),
                    unix_ms: e.timestamp.as_deref().and_then(crate::logs::unix_ms),
                    rejected,
                    current,
                    at: e.at(),
                });
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
