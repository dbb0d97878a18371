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

use crate::auth::{ClusterSecret, PeerClient};
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
    /// The cluster secret this role's routes require (`--secret-file`).
    pub secret: ClusterSecret,
    /// How this role calls other roles: with the secret, pooled connections closed before the
    /// peers' keep-alive timeout would.
    pub peers: PeerClient,
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
    let secret = ClusterSecret::load(&common.secret_file)?;
    let peers = PeerClient::new(secret.clone(), cfg.settings.idle_timeout() / 2);
    let metrics = telemetry::install_metrics()?;
    crate::memory::spawn_metrics_upkeep(metrics.clone());
    crate::cli::spawn_parent_watch(common.watch_parent);
    std::fs::create_dir_all(&common.data_dir)
        .with_context(|| format!("creating data dir '{}'", common.data_dir.display()))?;
    let rng = SharedRng::new(cfg.settings.seed, &cfg.node, role);
    Ok(Boot {
        cfg,
        metrics,
        listen,
        rng,
        secret,
        peers,
    })
}

/// Serves `app` on this role's address with the limits of `settings` (docs/contracts.md §1)
/// and the cluster secret, until SIGTERM or SIGINT.
pub async fn serve(boot: &Boot, app: Router) -> anyhow::Result<()> {
    let limits = crate::server::Limits::from_settings(&boot.cfg.settings);
    crate::server::serve(boot.listen, app, limits, boot.secret.clone()).await
}
