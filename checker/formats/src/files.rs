//! File names inside a run directory (`reports/<scenario>/<timestamp>/`).

/// Everything needed to rerun.
pub const SPEC: &str = "spec.json";
/// The recorded operations.
pub const HISTORY: &str = "history.jsonl";
/// What the public APIs said after quiesce.
pub const FINAL_STATE: &str = "final-state.json";
/// Per-second metric samples.
pub const METRICS: &str = "metrics.csv";
/// The verdict and every check's details.
pub const RESULTS: &str = "results.json";
/// The human-readable report.
pub const INDEX: &str = "index.html";
/// Throughput over time.
pub const THROUGHPUT_PNG: &str = "throughput.png";
/// Every operation's latency over time.
pub const LATENCY_PNG: &str = "latency.png";
/// First attempts, retries and budget refusals per downstream.
pub const RETRY_LOAD_PNG: &str = "retry-load.png";
/// Payment's goodput with its recovery after each heal (runs with a retry storm only; the
/// retry-storm pair draws both runs on it).
pub const GOODPUT_PNG: &str = "goodput.png";
/// The seam-signals dashboard.
pub const SIGNALS_PNG: &str = "signals.png";
/// Operations per process over time.
pub const TIMELINE_PNG: &str = "timeline.png";
/// First page of the paged operation timeline; later pages are `timeline-<n>.html`.
pub const TIMELINE_HTML: &str = "timeline.html";
/// Per-signal CSV exports.
pub const SIGNALS_DIR: &str = "signals";
/// Written by the linearizability check when it ran.
pub const LINEARIZABILITY_HTML: &str = "linearizability.html";
/// The fault injector's heal ledger.
pub const HEAL_LEDGER: &str = crate::ledger::FILE;
/// How `harness heal` reaches the cluster.
pub const CLUSTER: &str = "cluster.json";
/// Node logs live below this folder: `nodes/<node>/<role>.log`.
pub const NODES_DIR: &str = "nodes";
/// The newest run under an out directory (a symlink).
pub const LATEST: &str = "latest";
/// The alerting rules the run was judged by (a copy of `sut/prometheus/alerts.yml`).
pub const ALERT_RULES: &str = "alerts.yml";
/// The run's Prometheus: its config, data and what it reported.
pub const PROMETHEUS_DIR: &str = "prometheus";
/// What the run's Prometheus reported ([`crate::alerts::PrometheusRun`]).
pub const PROMETHEUS_ALERTS: &str = "prometheus/alerts.json";
/// Every sample the run's Prometheus scraped from the pipeline, one series per line
/// ([`crate::alerts::PromSeries`]).
pub const PROMETHEUS_SAMPLES: &str = "prometheus/samples.jsonl";
/// The alert timeline over the fault bands.
pub const ALERTS_PNG: &str = "alerts.png";
