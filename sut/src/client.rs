//! Calls between services: every call carries an idempotency key and goes through one retry
//! policy (capped exponential backoff with full jitter, a bounded number of attempts).
//!
//! The outcome is three-valued like a history entry: [`Outcome::Done`] (a definite answer, 2xx
//! or 4xx), or [`Outcome::Unknown`] when no definite answer came back (timeouts, resets, 5xx):
//! the effect may or may not have happened, and only a retry under the same key can tell.

use std::time::Duration;

use rand::Rng;
use serde::Serialize;

use crate::http::{DO_NOT_RETRY, IDEMPOTENCY_KEY};

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
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX));
        let cap = exp.min(self.max_backoff);
        let ms = cap.as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
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

/// A downstream service with its retry policy.
#[derive(Clone)]
pub struct Downstream {
    /// Name used in metrics labels, e.g. `payment`.
    pub name: &'static str,
    /// Base URL, e.g. `http://127.0.0.1:7002`.
    pub base_url: String,
    http: reqwest::Client,
    policy: RetryPolicy,
}

impl Downstream {
    /// A client for `base_url`.
    pub fn new(name: &'static str, base_url: String, policy: RetryPolicy) -> Downstream {
        let http = reqwest::Client::builder()
            .timeout(policy.attempt_timeout)
            .connect_timeout(policy.attempt_timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Downstream {
            name,
            base_url,
            http,
            policy,
        }
    }

    /// POSTs `body` to `path` under `key`, retrying per the policy.
    pub async fn post<B: Serialize>(&self, path: &str, key: &str, body: &B) -> Outcome {
        let url = format!("{}{}", self.base_url, path);
        let mut last_error = String::new();
        for attempt in 0..self.policy.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.policy.backoff(attempt - 1)).await;
                metrics::counter!("retry_attempts_total", "downstream" => self.name).increment(1);
            } else {
                metrics::counter!("requests_total", "downstream" => self.name).increment(1);
            }
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
                    // 409 means the first request under this key is still in flight: its
                    // outcome is not known yet, so it settles nothing.
                    if status < 500 && status != 409 {
                        return Outcome::Done { status, body };
                    }
                    last_error = format!("{url}: HTTP {status}: {body}");
                    if no_retry {
                        break;
                    }
                }
                Err(e) => last_error = format!("{url}: {e}"),
            }
        }
        Outcome::Unknown { error: last_error }
    }
}
