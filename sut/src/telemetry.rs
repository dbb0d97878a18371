//! Logging (JSON lines on stderr) and the Prometheus recorder.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds for every `_seconds` histogram.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the global metrics recorder. Histograms ending in `_seconds` get real buckets, so
/// they render as Prometheus histograms rather than summaries.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS_S)?
        .install_recorder()?;
    // Present from the first scrape on, so every role has at least one series.
    let start_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics::gauge!("process_start_time_seconds").set(start_s);
    Ok(handle)
}

/// JSON log lines on stderr; `RUST_LOG` filters (default `info`).
pub fn init_logging(role: &str, node: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    tracing::info!(role, node, pid = std::process::id(), "starting");
}

/// How a repeat of an idempotency key ended (`duplicate_effects_total`'s `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Answered from its stored result: idempotency did its job (a retry happened).
    Deduplicated,
    /// Applied again: a second effect (only possible with `--no-idempotency`).
    Applied,
}

impl Repeat {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Repeat::Deduplicated => "deduplicated",
            Repeat::Applied => "applied",
        }
    }
}

/// Counts one repeat of a key of `kind` in `duplicate_effects_total{kind, outcome}`.
pub fn duplicate_effect(kind: &'static str, outcome: Repeat) {
    metrics::counter!("duplicate_effects_total", "kind" => kind, "outcome" => outcome.label())
        .increment(1);
}

/// Exports `duplicate_effects_total` at 0 for each of `kinds` and each of `outcomes`, so that
/// the first repeat is an increase and not a series appearing.
pub fn register_duplicates(kinds: &[&'static str], outcomes: &[Repeat]) {
    for kind in kinds {
        for o in outcomes {
            metrics::counter!("duplicate_effects_total", "kind" => *kind, "outcome" => o.label())
                .increment(0);
        }
    }
}
