//! Finding the current leader of a role through the public API: `GET /admin/leader` on every
//! node, with the cluster secret (docs/contracts.md §2).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::control::Control;

/// How long one node gets to answer.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
struct LeaderView {
    node: String,
    is_leader: bool,
    leader: Option<String>,
    #[serde(default)]
    token: u64,
}

/// The node leading `role` now: the node that says it leads (the highest token if several
/// do, as a deposed leader may not know yet), else the leader most nodes name.
pub async fn find(ctl: &dyn Control, role: &str) -> anyhow::Result<String> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(a) = ctl.authorization() {
        headers.insert(reqwest::header::AUTHORIZATION, a);
    }
    let http = reqwest::Client::builder()
        .timeout(LEADER_TIMEOUT)
        .default_headers(headers)
        .build()?;
    let mut claims: Vec<(u64, String)> = Vec::new();
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    for node in ctl.nodes() {
        let url = format!("{}/admin/leader", ctl.role_url(&node, role)?);
        let view = async {
            let resp = http.get(&url).send().await?.error_for_status()?;
            resp.json::<LeaderView>().await
        };
        match view.await {
            Ok(v) => {
                if v.is_leader {
                    claims.push((v.token, v.node.clone()));
                }
                if let Some(l) = v.leader {
                    *named.entry(l).or_default() += 1;
                }
            }
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    if let Some((_, node)) = claims.into_iter().max() {
        return Ok(node);
    }
    if let Some((node, _)) = named.into_iter().max_by_key(|(_, n)| *n) {
        return Ok(node);
    }
    anyhow::bail!("no node names a leader of {role} ({})", errors.join("; "))
}
