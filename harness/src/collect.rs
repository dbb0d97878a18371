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

/// Reads one paginated admin endpoint of `role` through the first node that answers it (every
/// node reads the same quorum store). An endpoint no node could answer is listed in
/// `read_errors` (the checks then say unknown rather than guess).
async fn read_any<T: DeserializeOwned>(
    cluster: &dyn Cluster,
    http: &reqwest::Client,
    role: Role,
    path: &str,
    errors: &mut Vec<String>,
) -> Vec<T> {
    let mut tried = Vec::new();
    for node in cluster.nodes() {
        let read = match cluster.url(&node, role) {
            Ok(base) => read_all::<T>(http, &base, path).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(items) => return items,
            Err(e) => tried.push(format!("{node}: {e:#}")),
        }
    }
    errors.push(format!("{role} {path}: {}", tried.join("; ")));
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
    let mut errors = Vec::new();
    let mut services = Vec::new();
    let e = &mut errors;
    let before = e.len();
    let orders = read_any::<OrderRecord>(cluster, &http, Role::Order, "/admin/orders", e).await;
    read(&mut services, Role::Order, before, e);
    let before = e.len();
    let payments =
        read_any::<PaymentRecord>(cluster, &http, Role::Payment, "/admin/ledger", e).await;
    read(&mut services, Role::Payment, before, e);
    let before = e.len();
    let reservations =
        read_any::<ReservationRecord>(cluster, &http, Role::Inventory, "/admin/reservations", e)
            .await;
    let releases =
        read_any::<ReleaseRecord>(cluster, &http, Role::Inventory, "/admin/releases", e).await;
    let stock = read_any::<StockRecord>(cluster, &http, Role::Inventory, "/admin/stock", e).await;
    read(&mut services, Role::Inventory, before, e);
    let before = e.len();
    let shipments =
        read_any::<ShipmentRecord>(cluster, &http, Role::Shipping, "/admin/shipments", e).await;
    read(&mut services, Role::Shipping, before, e);
    FinalState {
        services,
        orders,
        payments,
        shipments,
        reservations,
        releases,
        stock,
        read_errors: errors,
    }
}

/// Lists `role` as read when no read error was added since `before`.
fn read(services: &mut Vec<Role>, role: Role, before: usize, errors: &[String]) {
    if errors.len() == before {
        services.push(role);
    }
}

/// Waits until every order is terminal, or `timeout`. Returns how many were still
/// open at the end (0 when quiet).
pub async fn quiesce(cluster: &dyn Cluster, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let state = final_state(cluster).await;
        let open = state
            .orders
            .iter()
            .filter(|o| !o.status.is_terminal())
            .count()
            + state.read_errors.len();
        if open == 0 || Instant::now() >= deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
