//! `metrics.csv`: one scrape of every role per second, long format (docs/contracts.md §5).

use serde::{Deserialize, Serialize};

/// The header line's columns.
pub const HEADER: [&str; 6] = ["t_s", "node", "role", "metric", "labels", "value"];

/// One row: one sample of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// Seconds since the run started, on the history's clock.
    pub t_s: f64,
    /// Node name.
    pub node: String,
    /// Role.
    pub role: String,
    /// Metric name (histograms as their `_bucket`, `_sum` and `_count` series).
    pub metric: String,
    /// Prometheus label set, `{a="x"}`, or empty.
    pub labels: String,
    /// The sample.
    pub value: f64,
}
