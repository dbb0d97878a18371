//! One lease round against every replica: a campaign (read the lease states, ask for a token
//! above every token seen), a renewal or a release. Every `max_token` a replica answers with,
//! also in answers that arrive after the round was decided, goes into the domain's
//! [`TokenFloor`].

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::quorum::floor::TokenFloor;
use crate::quorum::replicas::{Replicas, Reply};
use crate::store::wire::{LeaseBody, LeaseReply, LeaseState, MAX_TOKEN};

/// The result of one campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Campaign {
    /// A majority granted `token` and no replica that answered holds a higher one; leader
    /// until `until` unless renewed.
    Won {
        /// The fencing token.
        token: u64,
        /// End of leadership by this process's clock.
        until: Instant,
    },
    /// Another holder's lease is live at a majority.
    Held {
        /// Who holds it.
        holder: String,
        /// Under which token.
        token: u64,
    },
    /// Asked for `token` but fewer than a majority granted it (a race, or a replica down).
    Lost {
        /// The token asked for.
        token: u64,
    },
    /// A majority granted `token`, but a replica reported a higher floor (a losing candidate
    /// was granted a higher token there first): leading under `token` would run below that
    /// replica's floor. The grants were given back; campaign again above `floor`.
    Outbid {
        /// The token won.
        token: u64,
        /// The higher token a replica holds.
        floor: u64,
    },
    /// Fewer than a majority of replicas answered.
    Unavailable,
    /// The next token would be above [`MAX_TOKEN`]: nobody can be elected in this domain.
    Exhausted {
        /// The highest token seen.
        highest: u64,
    },
}

/// The margin by which a leader's own view of its lease ends before the replicas' view.
pub(crate) fn margin(ttl: Duration) -> Duration {
    ttl / 10
}

/// How long a campaign that a majority granted waits for the other replicas' answers before
/// deciding, so that it sees their floors (answers later than that still reach the floor).
fn acquire_grace(ttl: Duration) -> Duration {
    ttl / 10
}

/// The token after `highest`, if within [`MAX_TOKEN`].
pub fn next_token(highest: u64) -> Option<u64> {
    highest.checked_add(1).filter(|t| *t <= MAX_TOKEN)
}

async fn collect<T>(mut rx: mpsc::Receiver<(usize, Reply<T>)>) -> Vec<(usize, Reply<T>)> {
    let mut out = Vec::new();
    while let Some(x) = rx.recv().await {
        out.push(x);
    }
    out
}

/// Every replica's view of `domain`'s lease (those that answered); their floors go into
/// `floor`.
pub async fn lease_states(
    replicas: &Replicas,
    domain: &str,
    floor: &TokenFloor,
) -> Vec<LeaseState> {
    collect(replicas.get_all::<LeaseState>(&format!("/lease/{domain}"), Vec::new()))
        .await
        .into_iter()
        .filter_map(|(i, r)| match r {
            Reply::Ok(s) => {
                floor.observe(s.max_token, replicas.node(i));
                Some(s)
            }
            _ => None,
        })
        .collect()
}

/// Sends `action` (`acquire`, `renew`, `release`) to every replica; returns the indices that
/// granted it and how many refused it. Once a majority granted, waits at most `grace` for the
/// other answers (the rest are still read, in the background, for their floors), so one
/// stopped replica does not delay a renewal.
async fn lease_round(
    replicas: &Replicas,
    domain: &str,
    action: &str,
    body: LeaseBody,
    floor: &TokenFloor,
    grace: Duration,
) -> (Vec<usize>, usize) {
    let mut rx = replicas.post_all::<_, LeaseReply>(&format!("/lease/{domain}/{action}"), body);
    let mut granted = Vec::new();
    let mut refused = 0;
    let mut decided_at: Option<tokio::time::Instant> = None;
    loop {
        let next = match decided_at {
            Some(t) => match tokio::time::timeout_at(t + grace, rx.recv()).await {
                Ok(x) => x,
                Err(_) => break,
            },
            None => rx.recv().await,
        };
        let Some((i, reply)) = next else {
            return (granted, refused);
        };
        match reply {
            Reply::Ok(r) => {
                floor.observe(r.state.max_token, replicas.node(i));
                if r.granted {
                    granted.push(i);
                } else {
                    refused += 1;
                }
            }
            Reply::Refused { .. } => refused += 1,
            Reply::Failed(_) => {}
        }
        if granted.len() >= replicas.majority() && decided_at.is_none() {
            decided_at = Some(tokio::time::Instant::now());
            if grace.is_zero() {
                break;
            }
        }
    }
    let (replicas, floor) = (replicas.clone(), floor.clone());
    tokio::spawn(async move {
        while let Some((i, reply)) = rx.recv().await {
            if let Reply::Ok(r) = reply {
                floor.observe(r.state.max_token, replicas.node(i));
            }
        }
    });
    (granted, refused)
}

/// One attempt of `holder` to become leader of `domain` for `ttl`, asking for a token above
/// every token the replicas report and above `floor`.
pub async fn campaign(
    replicas: &Replicas,
    domain: &str,
    holder: &str,
    ttl: Duration,
    floor: &TokenFloor,
) -> Campaign {
    let states = lease_states(replicas, domain, floor).await;
    let majority = replicas.majority();
    if states.len() < majority {
        return Campaign::Unavailable;
    }
    let free = states
        .iter()
        .filter(|s| s.remaining_ms == 0 || s.holder.as_deref() == Some(holder))
        .count();
    if free < majority {
        let live = states
            .iter()
            .filter(|s| s.remaining_ms > 0 && s.holder.is_some())
            .max_by_key(|s| s.holder_token);
        if let Some(s) = live {
            return Campaign::Held {
                holder: s.holder.clone().unwrap_or_default(),
                token: s.holder_token,
            };
        }
    }
    let highest = states
        .iter()
        .map(|s| s.max_token)
        .max()
        .unwrap_or(0)
        .max(floor.token());
    let Some(token) = next_token(highest) else {
        return Campaign::Exhausted { highest };
    };
    let started = Instant::now();
    let body = LeaseBody {
        holder: holder.to_owned(),
        token,
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
    };
    let grace = acquire_grace(ttl);
    let (granted, _) = lease_round(replicas, domain, "acquire", body.clone(), floor, grace).await;
    let seen = floor.token();
    if granted.len() >= majority && seen <= token {
        return Campaign::Won {
            token,
            until: started + ttl - margin(ttl),
        };
    }
    // Give back the grants so the next candidate does not wait out their TTL.
    for i in &granted {
        let _ = replicas
            .post::<_, LeaseReply>(*i, &format!("/lease/{domain}/release"), &body)
            .await;
    }
    if granted.len() >= majority {
        Campaign::Outbid { token, floor: seen }
    } else {
        Campaign::Lost { token }
    }
}

/// Renews `holder`'s lease under `token`: `Ok(Some(until))` if a majority renewed,
/// `Ok(None)` if not yet decided, `Err(())` if a majority refused (someone else promised a
/// higher token or took over). The replicas' floors go into `floor`.
pub async fn renew(
    replicas: &Replicas,
    domain: &str,
    holder: &str,
    token: u64,
    ttl: Duration,
    floor: &TokenFloor,
) -> Result<Option<Instant>, ()> {
    let started = Instant::now();
    let body = LeaseBody {
        holder: holder.to_owned(),
        token,
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
    };
    let (granted, refused) =
        lease_round(replicas, domain, "renew", body, floor, Duration::ZERO).await;
    if granted.len() >= replicas.majority() {
        Ok(Some(started + ttl - margin(ttl)))
    } else if refused >= replicas.majority() {
        Err(())
    } else {
        Ok(None)
    }
}

/// Gives up `holder`'s lease under `token` at every replica.
pub async fn release(replicas: &Replicas, domain: &str, holder: &str, token: u64) {
    let body = LeaseBody {
        holder: holder.to_owned(),
        token,
        ttl_ms: 0,
    };
    let floor = TokenFloor::new();
    lease_round(replicas, domain, "release", body, &floor, Duration::ZERO).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves token arithmetic cannot wrap: the token after the maximum (or after u64::MAX)
    /// does not exist.
    #[test]
    fn next_token_is_bounded() {
        assert_eq!(next_token(0), Some(1));
        assert_eq!(next_token(MAX_TOKEN - 1), Some(MAX_TOKEN));
        assert_eq!(next_token(MAX_TOKEN), None);
        assert_eq!(next_token(u64::MAX), None);
    }
}
