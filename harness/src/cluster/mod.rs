//! Clusters: where the pipeline's role processes run and how the harness reaches them.

pub mod deploy;
pub mod local;
pub mod netns;
pub mod netns_sshd;
pub mod open;
pub mod pipeline;
pub mod proxied;
pub mod remote;

use async_trait::async_trait;

/// A running cluster. The nemesis drives it through [`nemesis::Control`].
#[async_trait]
pub trait Cluster: nemesis::Control {
    /// `local`, `netns` or `ssh`.
    fn kind(&self) -> &'static str;
    /// Base URL a client on this machine uses to reach `role` on `node`.
    fn url(&self, node: &str, role: &str) -> anyhow::Result<String>;
    /// Stops every process the harness started (resuming paused ones first). Idempotent.
    async fn stop(&self) -> anyhow::Result<()>;
}
