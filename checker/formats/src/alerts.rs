//! What the harness keeps of the run's own Prometheus (`prometheus/alerts.json`): whether it
//! ran (or why not), how often it scraped and evaluated, and every span an alert was firing,
//! read from its HTTP API (`ALERTS{alertstate="firing"}` over the run) before it stopped. Its
//! TSDB snapshot (the scraped series, loadable with `prometheus --storage.tsdb.path=<dir>`) is
//! `prometheus/snapshot/` when it could be taken. Every raw sample it scraped from the
//! pipeline's targets (`{job="pipeline"}`, with `up` and `scrape_duration_seconds`) is
//! `prometheus/samples.jsonl`, one [`PromSeries`] per line, so the checker can evaluate the
//! rules over exactly what Prometheus evaluated them over.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of `prometheus/alerts.json` this crate writes.
pub const PROMETHEUS_RUN_VERSION: u32 = 1;

/// `prometheus/alerts.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrometheusRun {
    /// [`PROMETHEUS_RUN_VERSION`].
    pub version: u32,
    /// Whether a Prometheus ran for the run.
    pub ran: bool,
    /// Why not, when it did not (`--prometheus off`, no binary, it failed to start).
    #[serde(default)]
    pub skipped: Option<String>,
    /// The binary and its `--version` line.
    #[serde(default)]
    pub binary: Option<String>,
    /// Its scrape interval.
    pub scrape_interval_ms: u64,
    /// Its rule evaluation interval.
    pub evaluation_interval_ms: u64,
    /// Its scrape timeout: a failed scrape's `up == 0` is stamped at the scrape's start but
    /// seen by the rules only once the timeout ran out (0 in records written before it was
    /// kept).
    #[serde(default)]
    pub scrape_timeout_ms: u64,
    /// When it started answering, Unix milliseconds.
    #[serde(default)]
    pub started_unix_ms: Option<i64>,
    /// The last instant its alerts were read for.
    #[serde(default)]
    pub ended_unix_ms: Option<i64>,
    /// Every firing span, in the order they began.
    #[serde(default)]
    pub alerts: Vec<PromFiring>,
    /// The TSDB snapshot's folder, relative to the run directory.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// What went wrong reading it (a run with errors has no trustworthy alert list).
    #[serde(default)]
    pub errors: Vec<String>,
    /// Its rule evaluations' phase: every evaluation instant is this many milliseconds past a
    /// multiple of `evaluation_interval_ms` (Unix). From the raw `ALERTS` samples when an alert
    /// was pending or firing, else from the rule group's last evaluation.
    #[serde(default)]
    pub evaluation_phase_ms: Option<i64>,
    /// The file of its raw samples (`prometheus/samples.jsonl`), relative to the run directory,
    /// when they were exported.
    #[serde(default)]
    pub samples: Option<String>,
}

/// One series Prometheus scraped, with every raw sample it stored (staleness markers are not
/// exported by Prometheus's API; the checker restores them from `up`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromSeries {
    /// Its labels, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// `(Unix milliseconds, value)` in time order.
    pub points: Vec<(i64, f64)>,
}

/// One span during which Prometheus reported an alert firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromFiring {
    /// The alert's labels, `alertname` included (`alertstate` left out).
    pub labels: BTreeMap<String, String>,
    /// First evaluation step it was firing, Unix milliseconds.
    pub from_unix_ms: i64,
    /// Last such step.
    pub to_unix_ms: i64,
}

impl PrometheusRun {
    /// A run without Prometheus, saying why.
    pub fn skipped(why: impl Into<String>) -> PrometheusRun {
        PrometheusRun {
            version: PROMETHEUS_RUN_VERSION,
            ran: false,
            skipped: Some(why.into()),
            binary: None,
            scrape_interval_ms: 0,
            evaluation_interval_ms: 0,
            scrape_timeout_ms: 0,
            started_unix_ms: None,
            ended_unix_ms: None,
            alerts: Vec::new(),
            snapshot: None,
            errors: Vec::new(),
            evaluation_phase_ms: None,
            samples: None,
        }
    }
}
