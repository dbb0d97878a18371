//! `signals/`: `metrics.csv` split per metric (`signals/<metric>.csv`, the raw samples), and the
//! derived per-second series the graphs show (`signals/seam-signals.csv`, `signals/signal-thresholds.csv`,
//! `signals/retry-load.csv`), for people who want their own plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::analysis::seams::{RetryLoad, Signal};
use crate::metrics::Metrics;

/// A metric name made safe as a file name.
pub fn file_name(metric: &str) -> String {
    let safe: String = metric
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.csv")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Writes the raw per-metric files and the derived series into `dir` (created if needed).
/// Returns the file names written, sorted.
pub fn write(
    dir: &Path,
    metrics: &Metrics,
    signals: &[Signal],
    loads: &[RetryLoad],
) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut per_metric: BTreeMap<&str, String> = BTreeMap::new();
    for s in &metrics.series {
        let text = per_metric
            .entry(s.metric.as_str())
            .or_insert_with(|| "t_s,node,role,labels,value\n".to_owned());
        let labels = csv_field(&labels_text(&s.labels));
        for (t, v) in &s.points {
            let _ = writeln!(
                text,
                "{t},{},{},{labels},{v}",
                csv_field(&s.node),
                csv_field(&s.role)
            );
        }
    }
    let mut names = Vec::new();
    for (metric, text) in per_metric {
        let name = file_name(metric);
        std::fs::write(dir.join(&name), text)?;
        names.push(name);
    }

    let mut seam = String::from("second");
    for s in signals {
        let _ = write!(seam, ",{}_{}", s.key, s.unit.replace([' ', '/'], "_"));
    }
    seam.push('\n');
    let seconds = signals.first().map_or(0, |s| s.values.len());
    for sec in 0..seconds {
        let _ = write!(seam, "{sec}");
        for s in signals {
            let _ = write!(seam, ",{}", opt(s.values[sec]));
        }
        seam.push('\n');
    }
    std::fs::write(dir.join("seam-signals.csv"), seam)?;
    names.push("seam-signals.csv".into());

    let mut thresholds = String::from("signal,unit,baseline,threshold,rule\n");
    for s in signals {
        let _ = writeln!(
            thresholds,
            "{},{},{},{},{}",
            s.key,
            csv_field(s.unit),
            opt(s.baseline),
            opt(s.threshold),
            csv_field(&s.rule)
        );
    }
    std::fs::write(dir.join("signal-thresholds.csv"), thresholds)?;
    names.push("signal-thresholds.csv".into());

    let mut retry = String::from("second,downstream,first_attempts,retries,refused\n");
    for l in loads {
        for sec in 0..l.first_attempts.len() {
            let _ = writeln!(
                retry,
                "{sec},{},{},{},{}",
                csv_field(&l.downstream),
                l.first_attempts[sec],
                l.retries[sec],
                l.refused[sec]
            );
        }
    }
    std::fs::write(dir.join("retry-load.csv"), retry)?;
    names.push("retry-load.csv".into());
    names.sort();
    Ok(names)
}
