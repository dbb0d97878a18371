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

/// What the final-state reads failed on.
#[derive(Default)]
struct Failed {
    /// One line per endpoint no node answered.
    errors: Vec<String>,
    /// The roles with such an endpoint.
    roles: Vec<Role>,
}

/// Reads one paginated admin endpoint of `role` through the first node that answers it (every
/// node reads the same quorum store). An endpoint no node could answer is listed in `failed`
/// with its role (the checks then say unknown rather than guess).
async fn read_any<T: DeserializeOwned>(
    cluster: &dyn Cluster,
    http: &reqwest::Client,
    role: Role,
    path: &str,
    failed: &mut Failed,
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
    failed
        .errors
        .push(format!("{role} {path}: {}", tried.join("; ")));
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
