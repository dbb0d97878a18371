//! The few calls of Prometheus's HTTP API a run needs: readiness, raw samples over the run (the
//! `ALERTS` series, as firing spans, and the pipeline's series), the rules' health, a TSDB
//! snapshot.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use formats::alerts::{PromFiring, PromSeries};
use serde::Deserialize;

/// How much of the run one raw-sample query reads.
const RAW_WINDOW_MS: i64 = 60_000;
/// At most this many windows (a week of run).
const MAX_RAW_WINDOWS: usize = 7 * 24 * 60;

pub(super) struct Api {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    // An absent field is None (no `#[serde(default)]`: it would ask `T: Default`).
    data: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Matrix {
    result: Vec<SeriesValues>,
}

#[derive(Deserialize)]
struct SeriesValues {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct Rules {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<RuleHealth>,
    #[serde(default, rename = "lastEvaluation")]
    last_evaluation: Option<String>,
}

#[derive(Deserialize)]
struct RuleHealth {
    name: String,
    health: String,
    #[serde(default, rename = "lastError")]
    last_error: Option<String>,
}

#[derive(Deserialize)]
struct Snapshot {
    name: String,
}

impl Api {
    pub(super) fn new(base: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Api {
            base: base.to_owned(),
            http,
        })
    }

    pub(super) fn base(&self) -> &str {
        &self.base
    }

    pub(super) async fn ready(&self) -> bool {
        let r = self.http.get(format!("{}/-/ready", self.base)).send().await;
        r.is_ok_and(|r| r.status().is_success())
    }

    async fn data<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<T> {
        let env: Envelope<T> = req
            .send()
            .await
            .with_context(|| what.to_owned())?
            .json()
            .await
            .with_context(|| format!("{what}: answer"))?;
        if env.status != "success" {
            anyhow::bail!("{what}: {}", env.error.unwrap_or(env.status));
        }
        env.data.with_context(|| format!("{what}: no data"))
    }

    /// Every raw sample of the series `selector` matches from `from_ms` to `to_ms` (Unix), read
    /// with range selectors a window at a time (Prometheus returns stored samples, not the
    /// staleness markers), merged per label set in time order.
    pub(super) async fn raw(
        &self,
        selector: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> anyhow::Result<Vec<PromSeries>> {
        assert!(from_ms <= to_ms, "{from_ms} > {to_ms}");
        let mut all: BTreeMap<BTreeMap<String, String>, BTreeMap<i64, f64>> = BTreeMap::new();
        let mut end = from_ms;
        for _ in 0..MAX_RAW_WINDOWS {
            end = end.saturating_add(RAW_WINDOW_MS).min(to_ms);
            let req = self
                .http
                .get(format!("{}/api/v1/query", self.base))
                .query(&[
                    ("query", format!("{selector}[{RAW_WINDOW_MS}ms]")),
                    ("time", format!("{:.3}", end as f64 / 1000.0)),
                ]);
            let m: Matrix = self
                .data(req, &format!("raw samples of {selector}"))
                .await?;
            for s in m.result {
                let slot = all.entry(s.metric).or_default();
                for (t, v) in &s.values {
                    let t_ms = (t * 1000.0).round() as i64;
                    // JSON has no NaN or infinity; the pipeline exports neither.
                    match v.parse::<f64>() {
                        Ok(v) if v.is_finite() && t_ms >= from_ms => {
                            slot.insert(t_ms, v);
                        }
                        _ => {}
                    }
                }
            }
            if end >= to_ms {
                return Ok(all
                    .into_iter()
                    .map(|(labels, points)| PromSeries {
                        labels,
                        points: points.into_iter().collect(),
                    })
                    .collect());
            }
        }
        anyhow::bail!("raw samples of {selector}: the run is longer than {MAX_RAW_WINDOWS} windows")
    }

    /// Every span an alert fired between `from_ms` and `to_ms` (Unix), from the raw `ALERTS`
    /// samples (written at each evaluation instant while an alert is pending or firing), and the
    /// evaluations' phase they show (`None` when no alert was ever pending).
    pub(super) async fn firing(
        &self,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> anyhow::Result<(Vec<PromFiring>, Option<i64>)> {
        assert!(step_ms > 0, "an evaluation step");
        let series = self.raw("ALERTS", from_ms, to_ms).await?;
        let phase = series
            .iter()
            .flat_map(|s| s.points.first())
            .map(|p| p.0.rem_euclid(step_ms))
            .next();
        let mut out = Vec::new();
        for s in series {
            if s.labels.get("alertstate").map(String::as_str) != Some("firing") {
                continue;
            }
            let mut labels = s.labels;
            labels.remove("__name__");
            labels.remove("alertstate");
            let mut span: Option<(i64, i64)> = None;
            for (t, _) in s.points {
                span = match span {
                    Some((a, b)) if t - b <= step_ms + step_ms / 2 => Some((a, t)),
                    Some((a, b)) => {
                        out.push(firing(&labels, a, b));
                        Some((t, t))
                    }
                    None => Some((t, t)),
                };
            }
            if let Some((a, b)) = span {
                out.push(firing(&labels, a, b));
            }
        }
        out.sort_by(|a, b| {
            a.from_unix_ms
                .cmp(&b.from_unix_ms)
                .then(a.labels.cmp(&b.labels))
        });
        Ok((out, phase))
    }

    /// The rules' health in one read: every rule whose last evaluation failed, with the
    /// error, and the phase of the group's evaluations (the milliseconds of its last
    /// evaluation's RFC 3339 time past the whole second; the evaluation interval is one second).
    pub(super) async fn rules_health(
        &self,
        step_ms: i64,
    ) -> anyhow::Result<(Vec<String>, Option<i64>)> {
        anyhow::ensure!(step_ms == 1000, "a phase from a {step_ms} ms interval");
        let req = self.http.get(format!("{}/api/v1/rules", self.base));
        let r: Rules = self.data(req, "rules").await?;
        let phase = r
            .groups
            .iter()
            .find_map(|g| g.last_evaluation.as_deref().and_then(millis_of));
        let failed = r
            .groups
            .into_iter()
            .flat_map(|g| g.rules)
            .filter(|r| r.health == "err")
            .map(|r| format!("rule {}: {}", r.name, r.last_error.unwrap_or_default()))
            .collect();
        Ok((failed, phase))
    }

    /// Takes a TSDB snapshot; returns its folder name under `data/snapshots/`.
    pub(super) async fn snapshot(&self) -> anyhow::Result<String> {
        let req = self
            .http
            .post(format!("{}/api/v1/admin/tsdb/snapshot", self.base));
        let s: Snapshot = self.data(req, "snapshot").await?;
        anyhow::ensure!(
            !s.name.is_empty() && !s.name.contains('/') && !s.name.contains(".."),
            "snapshot name {:?}",
            s.name
        );
        Ok(s.name)
    }
}

fn firing(labels: &BTreeMap<String, String>, from: i64, to: i64) -> PromFiring {
    PromFiring {
        labels: labels.clone(),
        from_unix_ms: from,
        to_unix_ms: to,
    }
}

/// The milliseconds past the whole second of an RFC 3339 time (`...:05.219345Z` is 219), the
/// same in every time zone (offsets are whole minutes).
fn millis_of(rfc3339: &str) -> Option<i64> {
    let (_, rest) = rfc3339.split_once('.')?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let padded = format!("{digits:0<3}");
    padded[..3].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::millis_of;

    /// Proves the phase is the milliseconds of the fraction, truncated, and that a time
    /// without a fraction gives none.
    #[test]
    fn millis_of_the_fraction() {
        assert_eq!(millis_of("2026-12-01T18:43:20.219345678Z"), Some(219));
        assert_eq!(millis_of("2026-12-01T18:43:20.2+01:00"), Some(200));
        assert_eq!(millis_of("2026-12-01T18:43:20.007Z"), Some(7));
        assert_eq!(millis_of("2026-12-01T18:43:20Z"), None);
    }
}
