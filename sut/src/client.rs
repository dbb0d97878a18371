//! Calls between services: every call carries an idempotency key and goes through one retry
//! policy (capped exponential backoff with full jitter, a bounded number of attempts) and a
//! retry budget per downstream. Attempts rotate over the downstream's nodes (this node's first),
//! so one stopped process does not stall a caller; any node forwards to its role's leader.
//!
//! The outcome is three-valued like a history entry: [`Outcome::Done`] (a definite answer, 2xx
//! or 4xx), or [`Outcome::Unknown`] when no definite answer came back (timeouts, resets, 5xx):
//! the effect may or may not have happened, and only a retry under the same key can tell.
//!
//! A logical request is one idempotency key: the first call under a key deposits into the
//! budget and counts in `requests_total`; every later attempt under it, whether the policy's
//! own retry, a call the saga repeats after an unknown outcome, or a re-drive ([`Downstream::resend`]),
//! is a retry (`retry_attempts_total`) that the budget must grant first. So the budget bounds
//! everything sent under the keys, whichever layer repeats them: per caller and 10 s window,
//! attempts ≤ (1 + ratio) × keys + floor × 10 s. The keys sent are remembered up to
//! [`MAX_REMEMBERED_KEYS`]; an older key forgotten counts as new once more.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::auth::PeerClient;
use crate::budget::RetryBudget;
use crate::http::{DO_NOT_RETRY, IDEMPOTENCY_KEY};
use crate::rng::SharedRng;

/// Backoff and attempt limits of the retry policy.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per logical call, first one included.
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter).
    pub base_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in [0, min(cap, base * 2^retry)].
    pub fn backoff(&self, retry: u32, rng: &SharedRng) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX));
        rng.duration_up_to(exp.min(self.max_backoff))
    }
}

/// A definite answer or none.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The downstream answered with a status that settles the question.
    Done {
        /// HTTP status.
        status: u16,
        /// Response body as JSON (`null` if it was not JSON).
        body: serde_json::Value,
    },
    /// No definite answer after every attempt: the effect may or may not have happened.
    Unknown {
        /// The last error seen.
        error: String,
    },
}

/// A 4xx that answers nothing about the effect: 409 (the first request under this key is still
/// in flight), 408 (this attempt's request did not arrive in time; an earlier attempt under
/// the key may have made the effect) and 401 (the callee does not take this process's secret,
/// e.g. half-way through a rotation). Like a 5xx, it leaves the outcome unknown.
pub fn settles_nothing(status: u16) -> bool {
    matches!(status, 401 | 408 | 409)
}

/// Keys a [`Downstream`] remembers having sent (the oldest is forgotten first).
pub const MAX_REMEMBERED_KEYS: usize = 16_384;

/// The keys sent, bounded: a set with its insertion order.
#[derive(Default)]
struct SentKeys {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl SentKeys {
    /// Notes `key` as sent; true if it was sent before.
    fn note(&mut self, key: &str) -> bool {
        if self.set.contains(key) {
            return true;
        }
        if self.order.len() >= MAX_REMEMBERED_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(key.to_owned());
        self.order.push_back(key.to_owned());
        assert!(self.order.len() <= MAX_REMEMBERED_KEYS && self.set.len() == self.order.len());
        false
    }
}

/// What a logical call ended with, as `call_outcomes_total{outcome}` counts it.
fn outcome_label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Done { status, .. } if *status < 300 => "ok",
        Outcome::Done { .. } => "refused",
        Outcome::Unknown { .. } => "unknown",
    }
}

/// One attempt's result: a definite answer, or the error and whether the callee asked not to
/// be retried.
enum Attempt {
    Definite(Outcome),
    Failed { error: String, no_retry: bool },
}

/// A downstream service with its retry policy and budget.
#[derive(Clone)]
pub struct Downstream {
    /// Name used in metrics labels, e.g. `payment`.
    pub name: &'static str,
    /// Base URLs of the service's nodes, this node's first.
    pub targets: Vec<String>,
    http: reqwest::Client,
    policy: RetryPolicy,
    budget: Option<Arc<RetryBudget>>,
    rng: SharedRng,
    sent: Arc<Mutex<SentKeys>>,
}

impl Downstream {
    /// A client for the service at `targets`, calling through `peers` (the cluster secret);
    /// `budget` None retries without a budget.
    pub fn new(
        name: &'static str,
        targets: Vec<String>,
        policy: RetryPolicy,
        budget: Option<RetryBudget>,
        rng: SharedRng,
        peers: &PeerClient,
    ) -> Downstream {
        // Present at zero from the start, as Prometheus counters with known labels should be.
        for metric in [
            "requests_total",
            "retry_attempts_total",
            "retry_budget_exhausted_total",
        ] {
            metrics::counter!(metric, "downstream" => name).increment(0);
        }
        let http = peers.client(policy.attempt_timeout);
        Downstream {
            name,
            targets,
            http,
            policy,
            budget: budget.map(Arc::new),
            rng,
            sent: Arc::new(Mutex::new(SentKeys::default())),
        }
    }

    /// Sets `call_outcomes_total` of `routes` to 0 for every outcome, so that the series are
    /// present from the start.
    pub fn register_routes(&self, routes: &[&'static str]) {
        for route in routes {
            for outcome in ["ok", "refused", "unknown"] {
                metrics::counter!("call_outcomes_total", "downstream" => self.name,
                    "route" => *route, "outcome" => outcome)
                .increment(0);
            }
        }
    }

    /// Notes `key` as sent; true if this process sent it before (a retry, then).
    fn sent_before(&self, key: &str) -> bool {
        match self.sent.lock() {
            Ok(mut s) => s.note(key),
            Err(p) => p.into_inner().note(key),
        }
    }

    fn count_outcome(&self, path: &str, o: &Outcome) {
        metrics::counter!("call_outcomes_total", "downstream" => self.name,
            "route" => path.to_owned(), "outcome" => outcome_label(o))
        .increment(1);
    }

    /// May another attempt follow? Counts the retry or the exhausted budget.
    fn may_retry(&self) -> bool {
        if let Some(b) = &self.budget {
            if !b.try_withdraw() {
                metrics::counter!("retry_budget_exhausted_total", "downstream" => self.name)
                    .increment(1);
                return false;
            }
        }
        metrics::counter!("retry_attempts_total", "downstream" => self.name).increment(1);
        true
    }

    /// POSTs `body` to `path` under `key`, retrying per the policy and the budget. The first
    /// call under a key is a logical request; under a key sent before, the first attempt is a
    /// retry too (see the module docs).
    pub async fn post<B: Serialize>(&self, path: &str, key: &str, body: &B) -> Outcome {
        if self.targets.is_empty() {
            return Outcome::Unknown {
                error: "no targets".into(),
            };
        }
        let again = self.sent_before(key);
        if !again {
            metrics::counter!("requests_total", "downstream" => self.name).increment(1);
            if let Some(b) = &self.budget {
                b.deposit();
            }
        }
        let mut last_error = String::from("no attempt");
        for attempt in 0..self.policy.max_attempts {
            if attempt > 0 || again {
                if !self.may_retry() {
                    if attempt == 0 {
                        last_error = format!("{}: retry budget exhausted", self.name);
                    }
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(self.policy.backoff(attempt - 1, &self.rng)).await;
                }
            }
            match self.attempt(attempt as usize, path, key, body).await {
                Attempt::Definite(out) => {
                    self.count_outcome(path, &out);
                    return out;
                }
                Attempt::Failed { error, no_retry } => {
                    last_error = error;
                    if no_retry {
                        break;
                    }
                }
            }
        }
        let out = Outcome::Unknown { error: last_error };
        self.count_outcome(path, &out);
        out
    }

    /// Sends `body` under `key` once more, as a retry the budget must grant (a re-drive of a
    /// step whose call is pending): one attempt, to this node's target. `None`: nothing was
    /// sent, the budget refused (or there is no target).
    pub async fn resend<B: Serialize>(&self, path: &str, key: &str, body: &B) -> Option<Outcome> {
        self.sent_before(key);
        if self.targets.is_empty() || !self.may_retry() {
            return None;
        }
        let out = match self.attempt(0, path, key, body).await {
            Attempt::Definite(out) => out,
            Attempt::Failed { error, .. } => Outcome::Unknown { error },
        };
        self.count_outcome(path, &out);
        Some(out)
    }

    /// One attempt to the `n`th target (round robin, this node's first).
    async fn attempt<B: Serialize>(&self, n: usize, path: &str, key: &str, body: &B) -> Attempt {
        let base = &self.targets[n % self.targets.len()];
        let url = format!("{base}{path}");
        let sent = self
            .http
            .post(&url)
            .header(IDEMPOTENCY_KEY, key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let no_retry = resp.headers().contains_key(DO_NOT_RETRY);
                let body = resp.json().await.unwrap_or(serde_json::Value::Null);
                if status < 500 && !settles_nothing(status) {
                    return Attempt::Definite(Outcome::Done { status, body });
                }
                Attempt::Failed {
                    error: format!("{url}: HTTP {status}: {body}"),
                    no_retry,
                }
            }
            Err(e) => Attempt::Failed {
                error: format!("{url}: {e}"),
                no_retry: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::post;
    use axum::Router;

    use super::*;

    /// A loopback server answering every POST with `status` (plus `x-do-not-retry: 1` if
    /// `no_retry`); returns its base URL and its hit counter.
    async fn server(status: u16, no_retry: bool) -> (String, Arc<AtomicU32>) {
        let hits = Arc::new(AtomicU32::new(0));
        let h = hits.clone();
        let app = Router::new().route(
            "/x",
            post(move || {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let mut resp = StatusCode::from_u16(status)
                        .unwrap_or(StatusCode::OK)
                        .into_response();
                    if no_retry {
                        resp.headers_mut()
                            .insert(DO_NOT_RETRY, axum::http::HeaderValue::from_static("1"));
                    }
                    resp
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), hits)
    }

    fn client(base: String, budget: Option<RetryBudget>) -> Downstream {
        let policy = RetryPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..RetryPolicy::default()
        };
        let secret = crate::auth::ClusterSecret::from_text(&"s".repeat(32)).expect("secret");
        let peers = PeerClient::new(secret, Duration::from_secs(30));
        Downstream::new(
            "x",
            vec![base],
            policy,
            budget,
            SharedRng::from_seed(1),
            &peers,
        )
    }

    /// Proves a 5xx is retried up to the attempt limit and ends unknown, a 503 with
    /// `x-do-not-retry` is not retried, a 4xx is a definite answer, and an empty retry budget
    /// stops retries.
    #[tokio::test]
    async fn retries_honour_policy_marker_and_budget() {
        let (base, hits) = server(500, false).await;
        let out = client(base.clone(), None).post("/x", "k", &1).await;
        assert!(matches!(out, Outcome::Unknown { .. }));
        assert_eq!(hits.load(Ordering::SeqCst), 3, "three attempts");

        let (base_nr, hits_nr) = server(503, true).await;
        let out = client(base_nr, None).post("/x", "k", &1).await;
        assert!(matches!(out, Outcome::Unknown { .. }));
        assert_eq!(hits_nr.load(Ordering::SeqCst), 1, "do-not-retry honoured");

        let (base_4, hits_4) = server(422, false).await;
        let out = client(base_4, None).post("/x", "k", &1).await;
        assert!(matches!(out, Outcome::Done { status: 422, .. }));
        assert_eq!(hits_4.load(Ordering::SeqCst), 1);

        hits.store(0, Ordering::SeqCst);
        let out = client(base, Some(RetryBudget::new(0.0, 0)))
            .post("/x", "k", &1)
            .await;
        assert!(matches!(out, Outcome::Unknown { .. }));
        assert_eq!(hits.load(Ordering::SeqCst), 1, "no budget for a retry");
    }

    /// Proves a 408, a 401 and a 409 settle nothing: each is retried to the attempt limit and
    /// the call ends unknown, so that a saga never reads "this attempt was not served" as "the
    /// effect was refused" (an earlier attempt under the key may have made it).
    #[tokio::test]
    async fn timeouts_and_refused_secrets_settle_nothing() {
        for status in [408, 401, 409] {
            let (base, hits) = server(status, false).await;
            let out = client(base, None).post("/x", "k", &1).await;
            assert!(matches!(out, Outcome::Unknown { .. }), "{status}: {out:?}");
            assert_eq!(hits.load(Ordering::SeqCst), 3, "{status} retried");
        }
    }

    /// Proves a key sent before is a retry on every attempt: with an empty budget, the first
    /// call under a key sends once (no retry granted), the same key again sends nothing, and a
    /// re-drive (`resend`) sends nothing either; a fresh key is a logical request again. With
    /// no budget, `resend` makes exactly one attempt.
    #[tokio::test]
    async fn a_key_sent_before_spends_the_budget() {
        let (base, hits) = server(500, false).await;
        let c = client(base.clone(), Some(RetryBudget::new(0.0, 0)));
        assert!(matches!(
            c.post("/x", "k1", &1).await,
            Outcome::Unknown { .. }
        ));
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the first attempt needs no budget"
        );
        let out = c.post("/x", "k1", &1).await;
        assert!(
            matches!(&out, Outcome::Unknown { error } if error.contains("budget")),
            "{out:?}"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the same key again is a retry"
        );
        assert!(c.resend("/x", "k1", &1).await.is_none(), "refused");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "a re-drive is a retry");
        c.post("/x", "k2", &1).await;
        assert_eq!(hits.load(Ordering::SeqCst), 2, "a new key is a new request");

        hits.store(0, Ordering::SeqCst);
        let free = client(base, None);
        assert!(matches!(
            free.resend("/x", "k1", &1).await,
            Some(Outcome::Unknown { .. })
        ));
        assert_eq!(hits.load(Ordering::SeqCst), 1, "one attempt per re-drive");
    }

    /// Proves the remembered keys are bounded: the oldest is forgotten first.
    #[test]
    fn sent_keys_are_bounded() {
        let mut s = SentKeys::default();
        for i in 0..MAX_REMEMBERED_KEYS + 1 {
            assert!(!s.note(&format!("k{i}")));
        }
        assert_eq!(s.order.len(), MAX_REMEMBERED_KEYS);
        assert!(
            s.note(&format!("k{MAX_REMEMBERED_KEYS}")),
            "newest remembered"
        );
        assert!(!s.note("k0"), "oldest forgotten");
    }
}
