//! Leader election over store leases. The fencing token of a leader is the lease token.
//!
//! A candidate reads the replicas' lease state, picks a token one above the highest any of
//! them has granted or accepted, and asks every replica to grant it. A replica grants only a
//! token above everything it has seen, and only if its current lease expired or is the
//! candidate's own, so two candidates can never both collect a majority for one token. A grant
//! is a promise: the replica refuses writes under lower tokens from then on. Replicas keep the
//! highest token durably, so tokens never repeat or go backwards, also across restarts.
//!
//! The leader renews before its lease runs out and counts itself leader only until
//! `round start + TTL - margin` of its last successful round; replicas count from receipt, so
//! the leader's view always ends first. It steps down when renewal fails.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::quorum::replicas::{Replicas, Reply};
use crate::rng::SharedRng;
use crate::store::wire::{LeaseBody, LeaseReply, LeaseState};

/// The result of one campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Campaign {
    /// A majority granted `token`; leader until `until` unless renewed.
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
    /// Fewer than a majority of replicas answered.
    Unavailable,
}

/// The margin by which a leader's own view of its lease ends before the replicas' view.
fn margin(ttl: Duration) -> Duration {
    ttl / 10
}

async fn collect<T>(mut rx: mpsc::Receiver<(usize, Reply<T>)>) -> Vec<(usize, Reply<T>)> {
    let mut out = Vec::new();
    while let Some(x) = rx.recv().await {
        out.push(x);
    }
    out
}

/// Every replica's view of `domain`'s lease (those that answered).
pub async fn lease_states(replicas: &Replicas, domain: &str) -> Vec<LeaseState> {
    collect(replicas.get_all::<LeaseState>(&format!("/lease/{domain}"), Vec::new()))
        .await
        .into_iter()
        .filter_map(|(_, r)| match r {
            Reply::Ok(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Sends `action` (`acquire`, `renew`, `release`) to every replica; returns the indices that
/// granted it and how many refused it. Returns as soon as a majority granted (the other
/// requests still run to completion), so one stopped replica does not delay a renewal.
async fn lease_round(
    replicas: &Replicas,
    domain: &str,
    action: &str,
    body: LeaseBody,
) -> (Vec<usize>, usize) {
    let mut rx = replicas.post_all::<_, LeaseReply>(&format!("/lease/{domain}/{action}"), body);
    let mut granted = Vec::new();
    let mut refused = 0;
    while let Some((i, reply)) = rx.recv().await {
        match reply {
            Reply::Ok(r) if r.granted => granted.push(i),
            Reply::Ok(_) | Reply::Refused { .. } => refused += 1,
            Reply::Failed(_) => {}
        }
        if granted.len() >= replicas.majority() {
            break;
        }
    }
    (granted, refused)
}

/// One attempt of `holder` to become leader of `domain` for `ttl`.
pub async fn campaign(replicas: &Replicas, domain: &str, holder: &str, ttl: Duration) -> Campaign {
    let states = lease_states(replicas, domain).await;
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
    let token = states.iter().map(|s| s.max_token).max().unwrap_or(0) + 1;
    let started = Instant::now();
    let body = LeaseBody {
        holder: holder.to_owned(),
        token,
        ttl_ms: ttl.as_millis() as u64,
    };
    let (granted, _) = lease_round(replicas, domain, "acquire", body.clone()).await;
    if granted.len() >= majority {
        return Campaign::Won {
            token,
            until: started + ttl - margin(ttl),
        };
    }
    // Give back partial grants so the next candidate does not wait out their TTL.
    for i in granted {
        let _ = replicas
            .post::<_, LeaseReply>(i, &format!("/lease/{domain}/release"), &body)
            .await;
    }
    Campaign::Lost { token }
}

/// Renews `holder`'s lease under `token`: `Ok(Some(until))` if a majority renewed,
/// `Ok(None)` if not yet decided, `Err(())` if a majority refused (someone else promised a
/// higher token or took over).
pub async fn renew(
    replicas: &Replicas,
    domain: &str,
    holder: &str,
    token: u64,
    ttl: Duration,
) -> Result<Option<Instant>, ()> {
    let started = Instant::now();
    let body = LeaseBody {
        holder: holder.to_owned(),
        token,
        ttl_ms: ttl.as_millis() as u64,
    };
    let (granted, refused) = lease_round(replicas, domain, "renew", body).await;
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
    lease_round(replicas, domain, "release", body).await;
}

/// What a process knows about its domain's leader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderView {
    /// The leader's node, if known.
    pub leader: Option<String>,
    /// The leader's token (0 if unknown).
    pub token: u64,
    /// This process leads.
    pub is_leader: bool,
}

struct State {
    view: LeaderView,
    until: Option<Instant>,
}

struct Inner {
    domain: String,
    node: String,
    replicas: Replicas,
    ttl: Duration,
    rng: SharedRng,
    /// Whether [`Elector::leadership`] also checks the lease's end on the monotonic clock.
    lease_check: bool,
    state: Mutex<State>,
    changes: watch::Sender<LeaderView>,
}

/// Runs elections for one domain in the background and answers "am I leader, under which
/// token?".
#[derive(Clone)]
pub struct Elector {
    inner: Arc<Inner>,
}

impl Elector {
    /// Starts campaigning for `domain` as `node`.
    pub fn start(
        domain: &str,
        node: &str,
        replicas: Replicas,
        ttl: Duration,
        rng: SharedRng,
    ) -> Elector {
        Elector::start_with(domain, node, replicas, ttl, rng, true)
    }

    /// As [`Elector::start`]; `lease_check` false makes [`Elector::leadership`] trust the
    /// leadership flag until the renewal loop notices that the lease is lost (a renewal
    /// refused, or one undecided past the lease's end), instead of also checking the lease's end
    /// on the monotonic clock. That is what a process paused between checking its lease and
    /// using it does: after the pause it acts on a stale answer, and only fencing tokens stop
    /// its writes (the `--no-lease-check` switch, docs/pipeline.md).
    pub fn start_with(
        domain: &str,
        node: &str,
        replicas: Replicas,
        ttl: Duration,
        rng: SharedRng,
        lease_check: bool,
    ) -> Elector {
        let (changes, _) = watch::channel(LeaderView::default());
        let e = Elector {
            inner: Arc::new(Inner {
                domain: domain.to_owned(),
                node: node.to_owned(),
                replicas,
                ttl,
                rng,
                lease_check,
                state: Mutex::new(State {
                    view: LeaderView::default(),
                    until: None,
                }),
                changes,
            }),
        };
        tokio::spawn(e.clone().run());
        e
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.inner.domain
    }

    /// This process's token if it leads now (its lease has not run out; without the lease
    /// check, until the renewal loop has noticed that it lost the lease).
    pub fn leadership(&self) -> Option<u64> {
        let st = self.inner.state.lock().ok()?;
        let live = !self.inner.lease_check || st.until.is_some_and(|u| u > Instant::now());
        (st.view.is_leader && live).then_some(st.view.token)
    }

    /// What this process knows about the leader.
    pub fn view(&self) -> LeaderView {
        self.inner
            .state
            .lock()
            .map(|s| s.view.clone())
            .unwrap_or_default()
    }

    /// Changes of the view.
    pub fn subscribe(&self) -> watch::Receiver<LeaderView> {
        self.inner.changes.subscribe()
    }

    /// Waits up to `timeout` for a known leader.
    pub async fn wait_for_leader(&self, timeout: Duration) -> LeaderView {
        let mut rx = self.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|v| v.leader.is_some())).await;
        self.view()
    }

    fn publish(&self, st: &State) {
        metrics::gauge!("leader_token", "domain" => self.inner.domain.clone())
            .set(st.view.token as f64);
        self.inner.changes.send_replace(st.view.clone());
    }

    /// Stops leading now (e.g. a write was fenced by a higher token).
    pub fn step_down(&self, reason: &str) {
        let Ok(mut st) = self.inner.state.lock() else {
            return;
        };
        if !st.view.is_leader {
            return;
        }
        let token = st.view.token;
        st.view = LeaderView {
            leader: None,
            token,
            is_leader: false,
        };
        st.until = None;
        tracing::warn!(domain = %self.inner.domain, token, reason, "stepped down");
        self.publish(&st);
    }

    /// Releases the lease if leading (on shutdown), so a successor need not wait out the TTL.
    pub async fn release(&self) {
        if let Some(token) = self.leadership() {
            self.step_down("shutdown");
            let r = &self.inner;
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                release(&r.replicas, &r.domain, &r.node, token),
            )
            .await;
        }
    }

    fn leading_token(&self) -> Option<(u64, Option<Instant>)> {
        let st = self.inner.state.lock().ok()?;
        st.view.is_leader.then_some((st.view.token, st.until))
    }

    async fn run(self) {
        loop {
            match self.leading_token() {
                Some((token, until)) => self.lead_round(token, until).await,
                None => self.candidate_round().await,
            }
        }
    }

    async fn lead_round(&self, token: u64, until: Option<Instant>) {
        let r = &self.inner;
        tokio::time::sleep(r.ttl / 4).await;
        let result = renew(&r.replicas, &r.domain, &r.node, token, r.ttl).await;
        let Ok(mut st) = r.state.lock() else { return };
        if !(st.view.is_leader && st.view.token == token) {
            return;
        }
        match result {
            Ok(Some(new_until)) => st.until = Some(new_until),
            Ok(None) if until.is_some_and(|u| u > Instant::now()) => {}
            outcome => {
                drop(st);
                let reason = if outcome.is_err() {
                    "a majority refused to renew the lease"
                } else {
                    "the lease ran out before a majority renewed it"
                };
                self.step_down(reason);
            }
        }
    }

    async fn candidate_round(&self) {
        let r = &self.inner;
        let poll = r.ttl / 4 + r.rng.duration_up_to(r.ttl / 8);
        match campaign(&r.replicas, &r.domain, &r.node, r.ttl).await {
            Campaign::Won { token, until } => {
                let Ok(mut st) = r.state.lock() else { return };
                st.view = LeaderView {
                    leader: Some(r.node.clone()),
                    token,
                    is_leader: true,
                };
                st.until = Some(until);
                metrics::counter!("leader_elections_total", "domain" => r.domain.clone())
                    .increment(1);
                tracing::info!(domain = %r.domain, token, "became leader");
                self.publish(&st);
            }
            Campaign::Held { holder, token } => {
                if let Ok(mut st) = r.state.lock() {
                    let view = LeaderView {
                        leader: Some(holder),
                        token,
                        is_leader: false,
                    };
                    if st.view != view {
                        st.view = view;
                        self.publish(&st);
                    }
                }
                tokio::time::sleep(poll).await;
            }
            Campaign::Lost { .. } => {
                tokio::time::sleep(r.rng.duration_up_to(r.ttl / 2)).await;
            }
            Campaign::Unavailable => tokio::time::sleep(poll).await,
        }
    }
}
