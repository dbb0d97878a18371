//! After the workload: wait for sagas to finish (quiesce), then read the final state through the
//! services' public, paginated admin APIs.

use std::time::{Duration, Instant};

use checker::final_state::{status, FinalState, OrderRecord, PaymentRecord};
use serde::de::DeserializeOwned;

use crate::cluster::Cluster;

/// Upper bound on pages read from one endpoint (a guard against a cursor that never ends).
const MAX_PAGES: usize = 10_000;

async fn read_all<T: DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    path: &str,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut req = http
            .get(format!("{base}{path}"))
            .query(&[("limit", "1000")]);
        if let Some(a) = &after {
            req = req.query(&[("after", a.as_str())]);
        }
        let resp = req.send().await?.error_for_status()?;
        let page: serde_json::Value = resp.json().await?;
        let items = page.get("items").cloned().unwrap_or_default();
        let items: Vec<T> = serde_json::from_value(items)?;
        out.extend(items);
        match page.get("next").and_then(|v| v.as_str()) {
            Some(n) => after = Some(n.to_owned()),
            None => return Ok(out),
        }
    }
    anyhow::bail!("{base}{path}: more than {MAX_PAGES} pages")
}

/// Reads orders and the payment ledger from every node. A node that cannot be read is listed in
/// `read_errors` (the checks then say unknown rather than guess).
pub async fn final_state(cluster: &dyn Cluster) -> FinalState {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut state = FinalState {
        services: vec!["order".into(), "payment".into()],
        ..FinalState::default()
    };
    for node in cluster.nodes() {
        match cluster.url(&node, "order") {
            Ok(base) => match read_all::<OrderRecord>(&http, &base, "/admin/orders").await {
                Ok(orders) => state.orders.extend(orders),
                Err(e) => state.read_errors.push(format!("{node}/order: {e:#}")),
            },
            Err(e) => state.read_errors.push(format!("{node}/order: {e:#}")),
        }
        match cluster.url(&node, "payment") {
            Ok(base) => match read_all::<PaymentRecord>(&http, &base, "/admin/ledger").await {
                Ok(recs) => state.payments.extend(recs),
                Err(e) => state.read_errors.push(format!("{node}/payment: {e:#}")),
            },
            Err(e) => state.read_errors.push(format!("{node}/payment: {e:#}")),
        }
    }
    state
}

/// Waits until every order on every node is terminal, or `timeout`. Returns how many were still
/// open at the end (0 when quiet).
pub async fn quiesce(cluster: &dyn Cluster, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let state = final_state(cluster).await;
        let open = state
            .orders
            .iter()
            .filter(|o| !status::is_terminal(&o.status))
            .count()
            + state.read_errors.len();
        if open == 0 || Instant::now() >= deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
