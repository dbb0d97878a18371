//! Scrapes every role's `/metrics` once a second into `metrics.csv` (contract §5): long format,
//! `t_s,node,role,metric,labels,value`, `t_s` on the history's clock.

pub mod prom;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::join_all;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::pipeline::ROLES;
use crate::cluster::Cluster;
use crate::history::HistoryWriter;

/// The scrape period.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// A scrape slower than this is skipped (a paused role does not answer).
const SCRAPE_TIMEOUT: Duration = Duration::from_millis(800);
/// Upper bound on the body of one `/metrics` answer.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The CSV header.
pub const HEADER: [&str; 6] = ["t_s", "node", "role", "metric", "labels", "value"];

/// What a scraper did, reported when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeTotals {
    /// Scrape rounds.
    pub rounds: u64,
    /// Rows written.
    pub rows: u64,
    /// Scrapes of one role that failed (unreachable, paused, malformed).
    pub failures: u64,
}

/// A running scraper; [`Scraper::stop`] ends it after the round in progress.
pub struct Scraper {
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<ScrapeTotals>>,
}

impl Scraper {
    /// Starts scraping `cluster` into `path` (created with its header), timing rows with the
    /// history's clock.
    pub fn start(
        cluster: Arc<dyn Cluster>,
        clock: Arc<HistoryWriter>,
        path: &Path,
    ) -> anyhow::Result<Scraper> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = csv::Writer::from_writer(BufWriter::new(file));
        out.write_record(HEADER)?;
        out.flush()?;
        let http = reqwest::Client::builder().timeout(SCRAPE_TIMEOUT).build()?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut totals = ScrapeTotals::default();
            let mut tick = tokio::time::interval(SCRAPE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                round(cluster.as_ref(), &http, &clock, &mut out, &mut totals).await?;
                out.flush()?;
            }
            // A last scrape when stopped (after quiesce, before the cluster stops), so that the
            // counters' last samples hold everything the logs hold.
            round(cluster.as_ref(), &http, &clock, &mut out, &mut totals).await?;
            out.flush()?;
            Ok(totals)
        });
        Ok(Scraper { stop, task })
    }

    /// Stops after the current round and one last round, and returns the totals.
    pub async fn stop(self) -> anyhow::Result<ScrapeTotals> {
        let _ = self.stop.send(true);
        self.task.await.context("metrics scraper task")?
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<prom::Sample>> {
    let resp = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .error_for_status()?;
    if resp.content_length().unwrap_or(0) > MAX_BODY_BYTES as u64 {
        anyhow::bail!("{url}/metrics: body larger than {MAX_BODY_BYTES} bytes");
    }
    let text = resp.text().await?;
    if text.len() > MAX_BODY_BYTES {
        anyhow::bail!("{url}/metrics: body larger than {MAX_BODY_BYTES} bytes");
    }
    Ok(prom::parse(&text)?)
}

async fn round(
    cluster: &dyn Cluster,
    http: &reqwest::Client,
    clock: &HistoryWriter,
    out: &mut csv::Writer<BufWriter<File>>,
    totals: &mut ScrapeTotals,
) -> anyhow::Result<()> {
    let t_s = format!("{:.3}", clock.now_ns() as f64 / 1e9);
    let targets: Vec<(String, formats::Role)> = cluster
        .nodes()
        .into_iter()
        .flat_map(|n| ROLES.iter().map(move |r| (n.clone(), *r)))
        .collect();
    let scrapes = targets.iter().map(|(node, role)| async move {
        let url = cluster.url(node, *role)?;
        scrape(http, &url).await
    });
    let results = join_all(scrapes).await;
    totals.rounds += 1;
    for ((node, role), result) in targets.iter().zip(results) {
        match result {
            Ok(samples) => {
                for s in samples {
                    out.write_record([
                        t_s.as_str(),
                        node,
                        role.as_str(),
                        &s.metric,
                        &s.labels_text(),
                        &format_value(s.value),
                    ])?;
                    totals.rows += 1;
                }
            }
            Err(e) => {
                totals.failures += 1;
                tracing::debug!(
                    node,
                    role = role.as_str(),
                    error = format!("{e:#}"),
                    "metrics scrape failed"
                );
            }
        }
    }
    Ok(())
}

/// Values as Prometheus spells them: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}
