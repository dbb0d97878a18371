//! The few calls of Prometheus's HTTP API a run needs: readiness, the `ALERTS` series over the
//! run (firing spans), the rules' health, a TSDB snapshot.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use formats::alerts::PromFiring;
use serde::Deserialize;

/// Longest span one `query_range` covers (Prometheus refuses more than 11,000 points).
const MAX_QUERY_POINTS: i64 = 10_000;

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

    /// Every span an alert fired between `from_ms` and `to_ms` (Unix), read at `step_ms`.
    pub(super) async fn firing(
        &self,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> anyhow::Result<Vec<PromFiring>> {
        let mut points: BTreeMap<BTreeMap<String, String>, Vec<i64>> = BTreeMap::new();
        let mut start = from_ms;
        while start <= to_ms {
            let end = (start + step_ms * MAX_QUERY_POINTS).min(to_ms);
            let req = self
                .http
                .get(format!("{}/api/v1/query_range", self.base))
                .query(&[
                    ("query", "ALERTS{alertstate=\"firing\"}".to_owned()),
                    ("start", format!("{:.3}", start as f64 / 1000.0)),
                    ("end", format!("{:.3}", end as f64 / 1000.0)),
                    ("step", format!("{:.3}", step_ms as f64 / 1000.0)),
                ]);
            let m: Matrix = self.data(req, "query_range ALERTS").await?;
            for s in m.result {
                let mut labels = s.metric;
                labels.remove("__name__");
                labels.remove("alertstate");
                let slot = points.entry(labels).or_default();
                slot.extend(s.values.iter().map(|(t, _)| (t * 1000.0).round() as i64));
            }
            start = end + step_ms;
        }
        let mut out = Vec::new();
        for (labels, mut ts) in points {
            ts.sort_unstable();
            ts.dedup();
            let mut span: Option<(i64, i64)> = None;
            for t in ts {
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
        Ok(out)
    }

    /// Rules whose last evaluation failed, with the error.
    pub(super) async fn rule_errors(&self) -> anyhow::Result<Vec<String>> {
        let req = self.http.get(format!("{}/api/v1/rules", self.base));
        let r: Rules = self.data(req, "rules").await?;
        Ok(r.groups
            .into_iter()
            .flat_map(|g| g.rules)
            .filter(|r| r.health == "err")
            .map(|r| format!("rule {}: {}", r.name, r.last_error.unwrap_or_default()))
            .collect())
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
