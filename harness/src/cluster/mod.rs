//! Clusters: where the pipeline's role processes run and how the harness reaches them.

pub mod deploy;
pub mod local;
pub mod netns;
pub mod netns_sshd;
pub mod open;
pub mod pipeline;
pub mod proxied;
pub mod remote;
pub mod secret;

use async_trait::async_trait;
use formats::spec::ClusterKind;
use formats::Role;

/// `builder` with the cluster secret of `ctl` as a default header: for clients of the roles'
/// routes that are not public (admin reads, the inventory's client API).
pub fn with_secret<C: nemesis::Control + ?Sized>(
    builder: reqwest::ClientBuilder,
    ctl: &C,
) -> reqwest::ClientBuilder {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(a) = ctl.authorization() {
        headers.insert(reqwest::header::AUTHORIZATION, a);
    }
    builder.default_headers(headers)
}

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
