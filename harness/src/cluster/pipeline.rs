//! The one place that knows how to launch the pipeline: its roles and their command lines.
//! See docs/contracts.md section 1.

use std::collections::BTreeMap;

/// The pipeline roles the harness deploys, in start order.
pub const ROLES: &[&str] = &["payment", "order"];

/// Addresses of one node's roles.
#[derive(Debug, Clone, Default)]
pub struct RoleAddrs {
    /// role → `host:port`.
    pub by_role: BTreeMap<String, String>,
}

/// The command line (after the binary) of `role` on `node`.
///
/// `listen` is where the role binds; `peers` maps (node, role) to the address this node uses to
/// reach it; `data_dir` is its state; `extra` are protection switches and other flags.
pub fn role_args(
    node: &str,
    role: &str,
    listen: &str,
    peers: &BTreeMap<(String, String), String>,
    data_dir: &str,
    extra: &[String],
) -> Vec<String> {
    let mut args = vec![
        role.to_owned(),
        "--node".into(),
        node.to_owned(),
        "--listen".into(),
        listen.to_owned(),
        "--data-dir".into(),
        data_dir.to_owned(),
    ];
    if role == "order" {
        if let Some(pay) = peers.get(&(node.to_owned(), "payment".to_owned())) {
            args.push("--payment".into());
            args.push(format!("http://{pay}"));
        }
    }
    args.extend(extra.iter().cloned());
    args
}
