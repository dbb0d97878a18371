//! Setting up a run: its directory (spec, history), the deployed cluster behind its link
//! proxies, `cluster.json` for `harness heal`, and stopping it all again.

use std::sync::Arc;

use formats::cluster::{ClusterFile, NodeEntry};
use formats::files;
use nemesis::Control;

use crate::cluster::proxied::{self, ProxyLayer, WithProxy};
use crate::cluster::{local, open, Cluster};
use crate::history::HistoryWriter;
use crate::metrics::Scraper;
use crate::progress::Progress;
use formats::spec::{ClusterKind, RunConfig};

use super::unix_ms;

/// The run directory with its spec and the history file open.
pub(super) struct RunDir {
    pub(super) dir: std::path::PathBuf,
    pub(super) stamp: String,
    pub(super) history: Arc<HistoryWriter>,
    /// The alerting rules, copied into the run directory.
    pub(super) rules: std::path::PathBuf,
}

pub(super) fn open_run_dir(
    args: &RunConfig,
    prepared: &open::Prepared,
    bin: &std::path::Path,
    progress: &Progress,
) -> anyhow::Result<RunDir> {
    let dir = crate::rundir::create(&args.out, &args.scenario)?;
    let stamp = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("run")
        .to_owned();
    let run_id = format!("{}/{stamp}", args.scenario);
    let seed = args.seed.unwrap_or_default();
    progress.line(&format!("run {run_id} seed {seed}"));
    progress.line(&format!("writing {}", dir.display()));
    let spec = crate::spec::spec(args, prepared, bin);
    std::fs::write(dir.join(files::SPEC), serde_json::to_vec_pretty(&spec)?)?;
    let rules = crate::prometheus::write_rules(&dir)?;
    let history = Arc::new(HistoryWriter::create(
        &dir.join(files::HISTORY),
        &run_id,
        unix_ms(),
    )?);
    Ok(RunDir {
        dir,
        stamp,
        history,
        rules,
    })
}

/// What a started run holds: the cluster, the nemesis's view of it, what watches it (the
/// metrics scraper and the run's Prometheus) and the link proxies (local clusters with network
/// faults).
pub(super) struct Deployed {
    pub(super) cluster: Arc<dyn Cluster>,
    pub(super) ctl: Arc<dyn Control>,
    pub(super) observers: Observers,
    pub(super) layer: Option<ProxyLayer>,
}

/// What watches the cluster: `metrics.csv`'s scraper and, when there is one, Prometheus.
pub(super) struct Observers {
    scraper: Scraper,
    prometheus: Option<crate::prometheus::Running>,
}

impl Observers {
    /// Reads Prometheus's alerts and stops it, then stops the scraper.
    async fn stop(self) {
        if let Some(p) = self.prometheus {
            match p.finish().await {
                Ok(run) => tracing::info!(
                    alerts = run.alerts.len(),
                    errors = run.errors.len(),
                    "prometheus"
                ),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "prometheus"),
            }
        }
        match self.scraper.stop().await {
            Ok(t) => tracing::info!(
                rounds = t.rounds,
                rows = t.rows,
                failures = t.failures,
                "metrics"
            ),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "metrics scraper"),
        }
    }
}

/// Starts of a local cluster tried when a role finds its port taken (another program bound it
/// between the harness choosing it and the role binding it).
const LOCAL_START_ATTEMPTS: usize = 3;

/// Whether `e` is a role that could not bind its port.
fn port_taken(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("Address already in use")
}

/// [`deploy_once`], retried with fresh ports on a local cluster whose role found its port
/// taken. Before a retry the failed attempt's node directories (logs, configs, store data) are
/// removed, so the run's logs and state hold only the cluster that ran.
pub(super) async fn deploy(
    args: &RunConfig,
    seed: u64,
    prepared: &open::Prepared,
    bin: std::path::PathBuf,
    run: &RunDir,
    progress: &Progress,
) -> anyhow::Result<Deployed> {
    let mut attempt = 1;
    loop {
        match deploy_once(args, seed, prepared, bin.clone(), run, progress).await {
            Err(e)
                if prepared.kind == ClusterKind::Local
                    && attempt < LOCAL_START_ATTEMPTS
                    && port_taken(&e) =>
            {
                progress.line(&format!(
                    "a role's port was taken by another program; starting again on fresh ports \
                     (attempt {} of {LOCAL_START_ATTEMPTS}): {e:#}",
                    attempt + 1
                ));
                let nodes = run.dir.join("nodes");
                if nodes.exists() {
                    std::fs::remove_dir_all(&nodes)?;
                }
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Starts the link proxies if the run needs them, deploys and starts the pipeline, writes
/// `cluster.json`, then starts the metrics scraper.
async fn deploy_once(
    args: &RunConfig,
    seed: u64,
    prepared: &open::Prepared,
    bin: std::path::PathBuf,
    run: &RunDir,
    progress: &Progress,
) -> anyhow::Result<Deployed> {
    let role_flags = crate::cluster::pipeline::role_flags(args);
    let mut start = open::StartOptions {
        pipeline_bin: bin,
        run_dir: run.dir.clone(),
        run_name: format!("{}-{}", args.scenario, run.stamp),
        role_flags,
        settings: crate::cluster::pipeline::settings(args),
        local_ports: None,
        local_peers: None,
    };
    let mut layer = None;
    if prepared.kind == ClusterKind::Local && crate::faults::needs_proxies(args) {
        progress.phase("deploy", "starting the link proxies");
        layer = Some(start_proxies(args, seed, &run.dir, prepared, &mut start).await?);
    }
    let api = layer.as_ref().map(|l| l.api().to_owned());
    progress.phase(
        "deploy",
        &format!(
            "starting a {} cluster of {} nodes",
            args.cluster,
            prepared.node_names.len()
        ),
    );
    let cluster: Arc<dyn Cluster> = match open::start(prepared, &start).await {
        Ok(c) => c,
        Err(e) => {
            if let Some(l) = layer.as_mut() {
                let _ = l.stop().await;
            }
            return Err(e);
        }
    };
    let ctl: Arc<dyn Control> = Arc::new(WithProxy::new(cluster.clone(), api.clone()));
    let written = write_cluster_json(&run.dir, prepared, ctl.as_ref(), api.as_deref());
    let metrics = run.dir.join(files::METRICS);
    let scraper =
        written.and_then(|()| Scraper::start(cluster.clone(), run.history.clone(), &metrics));
    let observers = match scraper {
        Ok(scraper) => {
            let say = |l: &str| progress.line(l);
            crate::prometheus::start(
                &args.prometheus,
                &run.dir,
                &run.rules,
                cluster.as_ref(),
                &say,
            )
            .await
            .map(|prometheus| Observers {
                scraper,
                prometheus,
            })
        }
        Err(e) => Err(e),
    };
    match observers {
        Ok(observers) => Ok(Deployed {
            cluster,
            ctl,
            observers,
            layer,
        }),
        Err(e) => {
            cluster.stop().await?;
            if let Some(l) = layer.as_mut() {
                l.stop().await?;
            }
            Err(e)
        }
    }
}

/// Starts the link proxies (faultproxy, or the `--toxiproxy` server) in front of ports chosen
/// now, and points each local node's peers at them.
pub(super) async fn start_proxies(
    args: &RunConfig,
    seed: u64,
    dir: &std::path::Path,
    prepared: &open::Prepared,
    start: &mut open::StartOptions,
) -> anyhow::Result<ProxyLayer> {
    let mut layer = match &args.toxiproxy {
        Some(url) => ProxyLayer::external(url).await?,
        None => {
            let bin = proxied::faultproxy_bin(args.faultproxy_bin.as_ref())?;
            ProxyLayer::start(&bin, &dir.join("nodes").join("faultproxy.log"), seed).await?
        }
    };
    let ports = local::choose_ports(prepared.node_names.len())?;
    let addrs = ports
        .iter()
        .map(|(k, p)| (k.clone(), format!("127.0.0.1:{p}")))
        .collect();
    match layer.link(&addrs).await {
        Ok(peers) => {
            start.local_ports = Some(ports);
            start.local_peers = Some(peers);
            Ok(layer)
        }
        Err(e) => {
            let _ = layer.stop().await;
            Err(e)
        }
    }
}

/// `cluster.json`: what `harness heal` needs to reach the cluster without this process
/// (docs/contracts.md §7).
pub(super) fn write_cluster_json(
    dir: &std::path::Path,
    prepared: &open::Prepared,
    ctl: &dyn Control,
    proxy_api: Option<&str>,
) -> anyhow::Result<()> {
    let nodes = prepared
        .node_names
        .iter()
        .map(|n| NodeEntry {
            name: n.clone(),
            ip: ctl.node_ip(n),
            netns: (prepared.kind == ClusterKind::Netns).then(|| crate::cluster::netns::ns_name(n)),
        })
        .collect();
    let doc = ClusterFile {
        kind: prepared.kind,
        proxy_api: proxy_api.map(str::to_owned),
        nodes,
    };
    std::fs::write(dir.join(files::CLUSTER), serde_json::to_vec_pretty(&doc)?)?;
    Ok(())
}

/// Stops Prometheus and the metrics scraper, then the cluster, then the link proxies.
pub(super) async fn stop_all(
    observers: Observers,
    cluster: &dyn Cluster,
    layer: &mut Option<ProxyLayer>,
) -> anyhow::Result<()> {
    observers.stop().await;
    let stopped = cluster.stop().await;
    if let Some(l) = layer.as_mut() {
        l.stop().await?;
    }
    stopped
}

#[cfg(test)]
mod tests {
    /// Proves a role that could not bind its port (the local cluster's start error, with the
    /// role's last log lines) is told apart from other start failures.
    #[test]
    fn a_taken_port_is_recognised() {
        let taken = anyhow::anyhow!(
            "n3/order exited with exit status: 1 during start; last log lines: [\"pipeline \
             order: binding 127.0.0.1:21905: Address already in use (os error 98)\"]"
        )
        .context("starting the cluster");
        assert!(super::port_taken(&taken));
        let other = anyhow::anyhow!("n3/order did not answer /health within 30s");
        assert!(!super::port_taken(&other));
    }
}
