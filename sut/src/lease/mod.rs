//! Leader election over store leases. The fencing token of a leader is the lease token.
//!
//! A candidate reads the replicas' lease state, picks a token one above the highest any of
//! them has granted or accepted (and above the highest this process has seen), and asks every
//! replica to grant it. A replica grants only a token above everything it has seen, and only
//! if its current lease expired or is the candidate's own, so two candidates can never both
//! collect a majority for one token. A grant is a promise: the replica refuses writes under
//! lower tokens from then on. Replicas keep the highest token durably, so tokens never repeat
//! or go backwards, also across restarts. Tokens stop at [`MAX_TOKEN`]; nothing wraps.
//!
//! A losing candidate may have been granted a higher token than the winner's at a replica the
//! winner did not need for its majority; that replica then refuses the winner's writes. So the
//! leader never runs below a replica's floor: every token a replica reports (in lease, write,
//! read and scan answers) goes into the domain's [`TokenFloor`], shared with the quorum client.
//! A campaign that sees a higher floor before it decides gives its grants back and campaigns
//! again above it ([`Campaign::Outbid`]); a leader that sees one later stops leading at once
//! ([`Elector::leadership`]), steps down (`outbid`) and campaigns above it right away.
//!
//! The leader renews every TTL/4 and counts itself leader only until
//! `round start + TTL - margin` of its last successful round; replicas count from receipt, so
//! the leader's view always ends first. It steps down when renewal fails. Without the lease
//! check (`--no-lease-check`, a deliberately broken leader for the stale-leader scenario) it
//! trusts its flag and gives up only after a whole TTL of failed renewals.

mod round;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::round::{campaign, lease_states, next_token, release, renew, Campaign};
use crate::quorum::floor::TokenFloor;
use crate::quorum::replicas::Replicas;
use crate::rng::SharedRng;
use crate::store::wire::MAX_TOKEN;

/// Campaigns in a row that may follow an [`Campaign::Outbid`] at once, before the candidate
/// backs off as after a lost race.
pub const MAX_IMMEDIATE_CAMPAIGNS: u32 = 3;
/// How long [`Elector::release`] gives the lease release, and then the campaign in flight.
const RELEASE_WAIT: Duration = Duration::from_millis(500);

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

/// Why a leader stepped down: the `cause` field of `stepped down` (docs/contracts.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDown {
    /// A replica reported a token above the leader's.
    Outbid,
    /// A majority refused to renew the lease.
    RenewalRefused,
    /// The lease ran out before a majority renewed it.
    LeaseExpired,
    /// A write was refused as fenced by a higher token.
    WriteFenced,
    /// The process is shutting down.
    Shutdown,
}

impl StepDown {
    /// The log value.
    pub fn as_str(self) -> &'static str {
        match self {
            StepDown::Outbid => "outbid",
            StepDown::RenewalRefused => "renewal_refused",
            StepDown::LeaseExpired => "lease_expired",
            StepDown::WriteFenced => "write_fenced",
            StepDown::Shutdown => "shutdown",
        }
    }
}

/// What an elector campaigns for and how.
pub struct Candidate {
    /// The store domain.
    pub domain: String,
    /// This node (the lease holder's name).
    pub node: String,
    /// The store replicas.
    pub replicas: Replicas,
    /// The domain's floor, shared with the domain's quorum client ([`crate::quorum::Quorum::floor`]).
    pub floor: TokenFloor,
    /// Lease length.
    pub ttl: Duration,
    /// Election jitter.
    pub rng: SharedRng,
    /// Whether [`Elector::leadership`] also checks the lease's end on the monotonic clock and
    /// the floor. False makes it trust the leadership flag alone, and makes the renewal loop
    /// take a failed renewal (refused, undecided, or answered with a higher token) for a
    /// passing failure: the leader keeps its flag, renews again every TTL/4, and steps down
    /// only once its renewals have failed for a whole TTL ([`Elector::unchecked_renewal`]).
    /// That is a leader that never asks whether its lease still holds: resumed after a pause
    /// past its lease, it acts on its stale leadership for a TTL, and only fencing tokens stop
    /// its writes (the `--no-lease-check` switch, docs/pipeline.md).
    pub lease_check: bool,
}

struct State {
    view: LeaderView,
    until: Option<Instant>,
    /// The last token this elector led under (0 before its first term).
    last_led: u64,
    /// Without the lease check: when the renewals of the current term began to fail (none
    /// while they succeed).
    failing_since: Option<Instant>,
}

struct Inner {
    c: Candidate,
    /// True once [`Elector::release`] was called: no more campaigns.
    stopped: watch::Sender<bool>,
    /// The background task.
    task: Mutex<Option<JoinHandle<()>>>,
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
    /// Starts campaigning.
    pub fn start(c: Candidate) -> Elector {
        assert!(c.ttl > Duration::ZERO, "a lease needs a length");
        // Present at zero from the start, so that the first election is an increase.
        metrics::counter!("leader_elections_total", "domain" => c.domain.clone()).increment(0);
        let (changes, _) = watch::channel(LeaderView::default());
        let (stopped, _) = watch::channel(false);
        let e = Elector {
            inner: Arc::new(Inner {
                c,
                stopped,
                task: Mutex::new(None),
                state: Mutex::new(State {
                    view: LeaderView::default(),
                    until: None,
                    last_led: 0,
                    failing_since: None,
                }),
                changes,
            }),
        };
        let task = tokio::spawn(e.clone().run());
        if let Ok(mut t) = e.inner.task.lock() {
            *t = Some(task);
        }
        e
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.inner.c.domain
    }

    /// This process's token if it leads now: its lease has not run out and no replica has
    /// reported a higher token. Without the lease check, the leadership flag alone: until the
    /// renewal loop gives up after a whole TTL of failed renewals, or a fenced write steps the
    /// leader down ([`Elector::step_down_below`]).
    pub fn leadership(&self) -> Option<u64> {
        let st = self.inner.state.lock().ok()?;
        let c = &self.inner.c;
        let checked = !c.lease_check
            || (st.until.is_some_and(|u| u > Instant::now()) && c.floor.token() <= st.view.token);
        (st.view.is_leader && checked).then_some(st.view.token)
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
        metrics::gauge!("leader_token", "domain" => self.inner.c.domain.clone())
            .set(st.view.token as f64);
        self.inner.changes.send_replace(st.view.clone());
    }

    /// Stops leading now if this process leads under a token below `token` (a write was
    /// fenced by `token`, or a replica reported it).
    pub fn step_down_below(&self, token: u64, cause: StepDown, reason: &str) {
        self.step_down_if(|t| t < token, cause, reason);
    }

    /// Steps down if this process leads under a token for which `which` holds.
    fn step_down_if(&self, which: impl Fn(u64) -> bool, cause: StepDown, reason: &str) {
        let Ok(mut st) = self.inner.state.lock() else {
            return;
        };
        if !st.view.is_leader || !which(st.view.token) {
            return;
        }
        let token = st.view.token;
        st.view = LeaderView {
            leader: None,
            token,
            is_leader: false,
        };
        st.until = None;
        let c = &self.inner.c;
        tracing::warn!(domain = %c.domain, holder = %c.node, token, cause = cause.as_str(), reason, "stepped down");
        self.publish(&st);
    }

    /// Stops campaigning and releases the lease if leading (on shutdown), so a successor need
    /// not wait out the TTL; then waits (bounded) for a campaign in flight to end, which gives
    /// back whatever it won.
    pub async fn release(&self) {
        self.inner.stopped.send_replace(true);
        if let Some((token, _)) = self.leading_token() {
            self.step_down_if(|t| t == token, StepDown::Shutdown, "shutdown");
            let c = &self.inner.c;
            let _ = tokio::time::timeout(
                RELEASE_WAIT,
                release(&c.replicas, &c.domain, &c.node, token),
            )
            .await;
        }
        let task = self.inner.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = tokio::time::timeout(RELEASE_WAIT, task).await;
        }
    }

    fn stopped(&self) -> bool {
        *self.inner.stopped.borrow()
    }

    /// Sleeps for `d`, or less if the elector is stopped meanwhile.
    async fn pause(&self, d: Duration) {
        let mut stopped = self.inner.stopped.subscribe();
        let _ = tokio::time::timeout(d, stopped.wait_for(|s| *s)).await;
    }

    fn leading_token(&self) -> Option<(u64, Option<Instant>)> {
        let st = self.inner.state.lock().ok()?;
        st.view.is_leader.then_some((st.view.token, st.until))
    }

    async fn run(self) {
        let mut outbid_in_a_row = 0;
        while !self.stopped() {
            match self.leading_token() {
                Some((token, until)) => self.lead_round(token, until).await,
                None => self.candidate_round(&mut outbid_in_a_row).await,
            }
        }
    }

    /// Steps down if a replica reported a token above `token`; true if it did.
    fn step_down_if_outbid(&self, token: u64) -> bool {
        let f = self.inner.c.floor.get();
        if f.token <= token {
            return false;
        }
        let reason = format!(
            "replica {} holds token {} above ours: campaigning above it",
            f.replica, f.token
        );
        self.step_down_if(|t| t == token, StepDown::Outbid, &reason);
        true
    }

    /// One renewal, TTL/4 after the last. With the lease check, a higher floor reported
    /// meanwhile (by any of the role's store calls) ends the wait and the term at once, and a
    /// failed renewal ends the term; without it, failures end the term only after a whole TTL
    /// of them ([`Elector::unchecked_renewal`], what `--no-lease-check` stands for).
    async fn lead_round(&self, token: u64, until: Option<Instant>) {
        let c = &self.inner.c;
        let mut floor = c.floor.subscribe();
        let mut stopped = self.inner.stopped.subscribe();
        let _ = tokio::time::timeout(c.ttl / 4, async {
            tokio::select! {
                _ = floor.wait_for(|f| c.lease_check && f.token > token) => {}
                _ = stopped.wait_for(|s| *s) => {}
            }
        })
        .await;
        if self.stopped() {
            return;
        }
        if c.lease_check && self.step_down_if_outbid(token) {
            return;
        }
        let result = renew(&c.replicas, &c.domain, &c.node, token, c.ttl, &c.floor).await;
        if !c.lease_check {
            self.unchecked_renewal(token, result);
            return;
        }
        if self.step_down_if_outbid(token) {
            return;
        }
        let Ok(mut st) = self.inner.state.lock() else {
            return;
        };
        if !(st.view.is_leader && st.view.token == token) {
            return;
        }
        match result {
            Ok(Some(new_until)) => st.until = Some(new_until),
            Ok(None) if until.is_some_and(|u| u > Instant::now()) => {}
            outcome => {
                drop(st);
                let (cause, reason) = if outcome.is_err() {
                    (
                        StepDown::RenewalRefused,
                        "a majority refused to renew the lease",
                    )
                } else {
                    (
                        StepDown::LeaseExpired,
                        "the lease ran out before a majority renewed it",
                    )
                };
                self.step_down_if(|t| t == token, cause, reason);
            }
        }
    }

    /// A renewal's result without the lease check: a success extends the lease; a failure
    /// (refused, undecided, or a replica reported a higher token) keeps the leadership flag
    /// until the renewals of this term have failed for a whole TTL, counted on the monotonic
    /// clock from the first failure, and then steps down.
    fn unchecked_renewal(&self, token: u64, result: Result<Option<Instant>, ()>) {
        let c = &self.inner.c;
        assert!(
            !c.lease_check,
            "only a leader without the lease check ignores a failure"
        );
        let outbid = c.floor.token() > token;
        let Ok(mut st) = self.inner.state.lock() else {
            return;
        };
        if !(st.view.is_leader && st.view.token == token) {
            return;
        }
        if let (Ok(Some(new_until)), false) = (result, outbid) {
            st.until = Some(new_until);
            st.failing_since = None;
            return;
        }
        let now = Instant::now();
        let since = *st.failing_since.get_or_insert(now);
        if now.saturating_duration_since(since) < c.ttl {
            tracing::debug!(domain = %c.domain, token, outbid, "renewal failed; still acting as leader (no lease check)");
            return;
        }
        drop(st);
        let (cause, reason) = match (outbid, result) {
            (true, _) => (
                StepDown::Outbid,
                "a replica holds a higher token, and renewals failed for a whole TTL",
            ),
            (false, Err(())) => (
                StepDown::RenewalRefused,
                "a majority refused to renew the lease for a whole TTL",
            ),
            (false, Ok(_)) => (
                StepDown::LeaseExpired,
                "no majority renewed the lease for a whole TTL",
            ),
        };
        self.step_down_if(|t| t == token, cause, reason);
    }

    fn become_leader(&self, token: u64, until: Instant) {
        let c = &self.inner.c;
        let Ok(mut st) = self.inner.state.lock() else {
            return;
        };
        assert!(
            token > st.last_led,
            "won token {token} after leading under {}: tokens only grow",
            st.last_led
        );
        st.last_led = token;
        st.view = LeaderView {
            leader: Some(c.node.clone()),
            token,
            is_leader: true,
        };
        st.until = Some(until);
        st.failing_since = None;
        metrics::counter!("leader_elections_total", "domain" => c.domain.clone()).increment(1);
        tracing::info!(domain = %c.domain, holder = %c.node, token, "became leader");
        self.publish(&st);
    }

    async fn candidate_round(&self, outbid_in_a_row: &mut u32) {
        let c = &self.inner.c;
        let poll = c.ttl / 4 + c.rng.duration_up_to(c.ttl / 8);
        let result = campaign(&c.replicas, &c.domain, &c.node, c.ttl, &c.floor).await;
        if !matches!(result, Campaign::Outbid { .. }) {
            *outbid_in_a_row = 0;
        }
        match result {
            Campaign::Won { token, .. } if self.stopped() => {
                release(&c.replicas, &c.domain, &c.node, token).await;
            }
            Campaign::Won { token, until } => self.become_leader(token, until),
            Campaign::Held { holder, token } => {
                if let Ok(mut st) = self.inner.state.lock() {
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
                self.pause(poll).await;
            }
            Campaign::Outbid { token, floor } => {
                *outbid_in_a_row += 1;
                tracing::info!(domain = %c.domain, holder = %c.node, token, floor, "campaign outbid: a replica holds a higher token");
                if *outbid_in_a_row > MAX_IMMEDIATE_CAMPAIGNS {
                    *outbid_in_a_row = 0;
                    self.pause(c.rng.duration_up_to(c.ttl / 2)).await;
                }
            }
            Campaign::Lost { .. } => {
                self.pause(c.rng.duration_up_to(c.ttl / 2)).await;
            }
            Campaign::Unavailable => self.pause(poll).await,
            Campaign::Exhausted { highest } => {
                tracing::error!(domain = %c.domain, highest, max = MAX_TOKEN, "fencing tokens exhausted: no leader can be elected");
                self.pause(poll).await;
            }
        }
    }
}
