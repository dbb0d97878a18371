//! One module per role. Each exposes `run(args)`, which serves until SIGTERM or SIGINT.

pub mod common;
pub mod effect;
pub mod inventory;
pub mod leader;
pub mod order;
pub mod payment;
pub mod shipping;

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::cli::Common;
use crate::config::NodeConfig;
use crate::rng::SharedRng;
use crate::telemetry;

/// What every role needs at start.
pub struct Boot {
    /// The node's configuration.
    pub cfg: NodeConfig,
    /// The Prometheus recorder's handle.
    pub metrics: PrometheusHandle,
    /// Where this role binds.
    pub listen: SocketAddr,
    /// The process's seeded RNG.
    pub rng: SharedRng,
}

/// Logging, config, metrics, parent watch and data directory for `role`.
pub fn boot(role: &'static str, common: &Common) -> anyhow::Result<Boot> {
    telemetry::init_logging(role, &common.node);
    let cfg = NodeConfig::load(&common.config)?;
    if cfg.node != common.node {
        anyhow::bail!(
            "--node '{}' does not match node '{}' in config '{}'",
            common.node,
            cfg.node,
            common.config.display()
        );
    }
    let listen = cfg.listen_addr(role)?;
    let metrics = telemetry::install_metrics()?;
    crate::cli::spawn_parent_watch(common.watch_parent);
    std::fs::create_dir_all(&common.data_dir)
        .with_context(|| format!("creating data dir '{}'", common.data_dir.display()))?;
    let rng = SharedRng::new(cfg.settings.seed, &cfg.node, role);
    Ok(Boot {
        cfg,
        metrics,
        listen,
        rng,
    })
}

/// Serves `app` on `addr` (shedding load beyond `max_in_flight`) until SIGTERM or SIGINT.
pub async fn serve(addr: SocketAddr, app: Router, max_in_flight: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "listening");
    let app = crate::http::limit_in_flight(app, max_in_flight);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
