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
use formats::spec::ClusterKind;
use formats::Role;

/// A running cluster. The nemesis drives it through [`nemesis::Control`].
#[async_trait]
pub trait Cluster: nemesis::Control {
    /// Which kind.
    fn kind(&self) -> ClusterKind;
    /// Base URL a client on this machine uses to reach `role` on `node`.
    fn url(&self, node: &str, role: Role) -> anyhow::Result<String>;
    /// Stops every process the harness started (resuming paused ones first). Idempotent.
    async fn stop(&self) -> anyhow::Result<()>;
}
