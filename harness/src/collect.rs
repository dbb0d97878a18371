//! After the workload: wait for sagas to finish (quiesce), then read the final state through the
//! services' paginated admin APIs (with the cluster secret).

use std::time::{Duration, Instant};

use formats::final_state::{
    FinalState, OrderRecord, PaymentRecord, ReleaseRecord, ReservationRecord, ShipmentRecord,
    StockRecord,
};
use formats::Role;
use serde::de::DeserializeOwned;

use crate::cluster::Cluster;

/// Upper bound on pages read from one endpoint (a guard against a cursor that never ends).
const MAX_PAGES: usize = 10_000;

/// Records one admin page asks for: a page is one store scan behind the service, which must
/// answer within the store timeout (1 s by default) also at the end of a long run.
const PAGE_LIMIT: &str = "200";
/// Rounds over the nodes for one page before the read fails.
const PAGE_ROUNDS: usize = 3;

async fn page<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    after: Option<&str>,
) -> anyhow::Result<(Vec<T>, Option<String>)> {
    let mut req = http.get(url).query(&[("limit", PAGE_LIMIT)]);
    if let Some(a) = after {
        req = req.query(&[("after", a)]);
    }
    let page: serde_json::Value = req.send().await?.error_for_status()?.json().await?;
    let items: Vec<T> = serde_json::from_value(page.get("items").cloned().unwrap_or_default())?;
    let next = page.get("next").and_then(|v| v.as_str()).map(str::to_owned);
    Ok((items, next))
}

/// What the final-state reads failed on.
#[derive(Default)]
struct Failed {
    /// One line per endpoint no node answered.
    errors: Vec<String>,
    /// The roles with such an endpoint.
    roles: Vec<Role>,
}

/// Reads one paginated admin endpoint of `role` page by page, each page from the first node
/// that answers it (every node reads the same quorum store), at most [`PAGE_ROUNDS`] rounds
/// over the nodes per page. An endpoint whose page no node could answer is listed in
/// `failed`, with its role, (the checks then say unknown rather than guess).
async fn read_any<T: DeserializeOwned>(
    cluster: &dyn Cluster,
    http: &reqwest::Client,
    role: Role,
    path: &str,
    failed: &mut Failed,
) -> Vec<T> {
    let urls: Vec<(String, anyhow::Result<String>)> = cluster
        .nodes()
        .into_iter()
        .map(|n| {
            let url = cluster.url(&n, role).map(|b| format!("{b}{path}"));
            (n, url)
        })
        .collect();
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    'pages: for _ in 0..MAX_PAGES {
        let mut tried = Vec::new();
        for round in 0..PAGE_ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            for (node, url) in &urls {
                let got = match url {
                    Ok(u) => page::<T>(http, u, after.as_deref()).await,
                    Err(e) => Err(anyhow::anyhow!("{e:#}")),
                };
                match got {
                    Ok((items, next)) => {
                        out.extend(items);
                        match next {
                            Some(n) => {
                                after = Some(n);
                                continue 'pages;
                            }
                            None => return out,
                        }
                    }
                    Err(e) => tried.push(format!("{node}: {e:#}")),
                }
            }
        }
        failed
            .errors
            .push(format!("{role} {path}: {}", tried.join("; ")));
        failed.roles.push(role);
        return Vec::new();
    }
    failed
        .errors
        .push(format!("{role} {path}: more than {MAX_PAGES} pages"));
    failed.roles.push(role);
    Vec::new()
}

/// Reads orders, the payment ledger, shipments, reservations, releases and stock. `services`
/// lists the roles every read of which succeeded: the checks skip the records of a role whose
/// read failed (its failure is in `read_errors`, and they say unknown) rather than take the
/// missing records for lost ones.
pub async fn final_state(cluster: &dyn Cluster) -> FinalState {
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    let http = crate::cluster::with_secret(builder, cluster)
        .build()
        .unwrap_or_default();
    let mut failed = Failed::default();
    let f = &mut failed;
    let orders = read_any::<OrderRecord>(cluster, &http, Role::Order, "/admin/orders", f).await;
    let payments =
        read_any::<PaymentRecord>(cluster, &http, Role::Payment, "/admin/ledger", f).await;
    let shipments =
        read_any::<ShipmentRecord>(cluster, &http, Role::Shipping, "/admin/shipments", f).await;
    let reservations =
        read_any::<ReservationRecord>(cluster, &http, Role::Inventory, "/admin/reservations", f)
            .await;
    let releases =
        read_any::<ReleaseRecord>(cluster, &http, Role::Inventory, "/admin/releases", f).await;
    let stock = read_any::<StockRecord>(cluster, &http, Role::Inventory, "/admin/stock", f).await;
    let services = [Role::Order, Role::Payment, Role::Inventory, Role::Shipping]
        .into_iter()
        .filter(|r| !failed.roles.contains(r))
        .collect();
    FinalState {
        services,
        orders,
        payments,
        shipments,
        reservations,
        releases,
        stock,
        read_errors: failed.errors,
    }
}

/// Waits until every order is terminal, or `timeout`. Returns how many were still open at the
/// end, or could not be read (0 when quiet). Each poll reads the orders alone (the whole final
/// state is read once, after).
pub async fn quiesce(cluster: &dyn Cluster, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    let http = crate::cluster::with_secret(builder, cluster)
        .build()
        .unwrap_or_default();
    loop {
        let mut failed = Failed::default();
        let orders =
            read_any::<OrderRecord>(cluster, &http, Role::Order, "/admin/orders", &mut failed)
                .await;
        let open = orders.iter().filter(|o| !o.status.is_terminal()).count() + failed.errors.len();
        if open == 0 || Instant::now() >= deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
