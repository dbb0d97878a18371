//! Finding the current leader of a role through the public API: `GET /admin/leader` on every
//! node, with the cluster secret (docs/contracts.md §2).

use std::collections::BTreeMap;
use std::time::Duration;

use formats::Role;
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
pub async fn find(ctl: &dyn Control, role: Role) -> anyhow::Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Signal;

    const SECRET: &str = "Bearer leader-test-secret-0123456789abcdef";

    /// Two nodes whose `/admin/leader` (one loopback server) answers only with the secret.
    struct Ctl {
        url: String,
        auth: Option<&'static str>,
    }

    #[async_trait::async_trait]
    impl Control for Ctl {
        fn nodes(&self) -> Vec<String> {
            vec!["n1".into(), "n2".into()]
        }
        async fn pid(&self, _: &str, _: Role) -> anyhow::Result<u32> {
            anyhow::bail!("no processes")
        }
        async fn signal(&self, _: &str, _: u32, _: Signal) -> anyhow::Result<()> {
            anyhow::bail!("no processes")
        }
        fn role_url(&self, _: &str, _: Role) -> anyhow::Result<String> {
            Ok(self.url.clone())
        }
        fn authorization(&self) -> Option<reqwest::header::HeaderValue> {
            self.auth.map(reqwest::header::HeaderValue::from_static)
        }
    }

    /// Proves the leader lookup sends the cluster's `Authorization`: a server that answers
    /// 401 without it names the leader to a cluster that has the secret, and to one without
    /// it the lookup fails.
    #[tokio::test]
    async fn leader_lookup_sends_the_secret() {
        let app = axum::Router::new().route(
            "/admin/leader",
            axum::routing::get(|headers: axum::http::HeaderMap| async move {
                let ok = headers.get("authorization").is_some_and(|v| v == SECRET);
                let body = serde_json::json!({"node": "n2", "is_leader": true, "leader": "n2", "token": 4});
                if ok {
                    (axum::http::StatusCode::OK, axum::Json(body))
                } else {
                    (axum::http::StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({})))
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(l, app).await });
        let with = Ctl {
            url: url.clone(),
            auth: Some(SECRET),
        };
        assert_eq!(find(&with, Role::Order).await.expect("a leader"), "n2");
        let without = Ctl { url, auth: None };
        let e = find(&without, Role::Order).await.expect_err("refused");
        assert!(e.to_string().contains("401"), "{e:#}");
    }
}
