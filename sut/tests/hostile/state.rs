//! What the roles hold, as their admin and store reads show it: compared before and after
//! input that must change nothing.

use serde_json::{json, Value};

use crate::cluster::Cluster;

use pipeline::store::wire::is_fenced;
pub use pipeline::store::wire::DOMAINS;

/// Everything the admin and store reads of node n1 show, leases of the fenced domains without
/// their remaining time (it runs down by itself); the unfenced domains have no lease (400
/// `unfenced_domain`).
pub fn snapshot(c: &Cluster) -> Value {
    let mut kv = serde_json::Map::new();
    let store = c.url("n1", "store");
    for d in DOMAINS {
        let (s, scan) = c.get(&format!("{store}/kv/{d}/scan?limit=1000"));
        assert_eq!(s, 200, "{scan}");
        let (s, mut lease) = c.get(&format!("{store}/lease/{d}"));
        if is_fenced(d) {
            assert_eq!(s, 200, "{lease}");
            lease.as_object_mut().map(|l| l.remove("remaining_ms"));
        } else {
            assert_eq!((s, &lease["error"]), (400, &json!("unfenced_domain")));
        }
        kv.insert(d.to_string(), json!({"scan": scan, "lease": lease}));
    }
    json!({
        "kv": kv,
        "orders": c.admin_all("n1", "order", "/admin/orders"),
        "ledger": c.admin_all("n1", "payment", "/admin/ledger"),
        "shipments": c.admin_all("n1", "shipping", "/admin/shipments"),
        "reservations": c.admin_all("n1", "inventory", "/admin/reservations"),
        "stock": c.admin_all("n1", "inventory", "/admin/stock"),
    })
}
