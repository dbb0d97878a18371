//! Applying and healing active faults. Every heal is idempotent, and a target that is gone (a
//! node, a process, a proxy server) counts as healed.

use anyhow::Context;

use super::{ActiveFault, Realisation};
use crate::control::{is_gone, Control, Signal};
use crate::iptables;
use crate::toxiproxy::{ClientError, ToxiproxyClient};

/// Treats "the target is gone" as done.
fn gone_ok(r: anyhow::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if is_gone(&e) => {
            tracing::info!(
                error = format!("{e:#}"),
                "heal target gone; nothing to restore"
            );
            Ok(())
        }
        other => other,
    }
}

/// Treats "no such proxy/toxic" and "no proxy server" as done (for heals).
fn absent_ok(r: Result<(), ClientError>) -> Result<(), ClientError> {
    match r {
        Err(e) if e.is_not_found() || e.is_unreachable() => Ok(()),
        other => other,
    }
}

async fn exec_ok(ctl: &dyn Control, node: &str, script: &str) -> anyhow::Result<()> {
    let out = ctl.exec(node, script).await?;
    if !out.success() {
        anyhow::bail!(
            "{node}: exit {}: {}",
            out.code.map_or("by signal".to_owned(), |c| c.to_string()),
            out.stderr_last_line()
        );
    }
    Ok(())
}

impl ActiveFault {
    /// Applies the fault.
    pub async fn apply(&self, ctl: &dyn Control) -> anyhow::Result<()> {
        match self {
            ActiveFault::Pause { node, pid, .. } => ctl.signal(node, *pid, Signal::Stop).await,
            ActiveFault::Kill { node, pid, .. } => ctl.signal(node, *pid, Signal::Kill).await,
            ActiveFault::Partition { grudge, how, .. } => match how {
                Realisation::Iptables { ips } => {
                    for (node, drops) in grudge.iter().filter(|(_, d)| !d.is_empty()) {
                        let addrs: Vec<String> = drops
                            .iter()
                            .map(|n| {
                                ips.get(n)
                                    .cloned()
                                    .with_context(|| format!("no address for {n}"))
                            })
                            .collect::<anyhow::Result<_>>()?;
                        let script = iptables::drop_from(&addrs).map_err(anyhow::Error::msg)?;
                        exec_ok(ctl, node, &script)
                            .await
                            .with_context(|| format!("partitioning {node}"))?;
                    }
                    Ok(())
                }
                Realisation::Proxy { api, proxies } => {
                    let c = ToxiproxyClient::new(api)?;
                    for p in proxies {
                        c.set_enabled(p, false).await?;
                    }
                    Ok(())
                }
            },
            ActiveFault::Toxics {
                api,
                proxies,
                toxic,
                ..
            } => {
                let c = ToxiproxyClient::new(api)?;
                for p in proxies {
                    match c.add_toxic(p, toxic).await {
                        Err(ClientError::Api { status: 409, .. }) => {}
                        other => {
                            other?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Undoes the fault. Healing twice is harmless; a target that is gone is healed.
    pub async fn heal(&self, ctl: &dyn Control) -> anyhow::Result<()> {
        match self {
            ActiveFault::Pause { node, pid, .. } => {
                gone_ok(ctl.signal(node, *pid, Signal::Cont).await)
            }
            ActiveFault::Kill { node, role, .. } => gone_ok(ctl.restart(node, *role).await),
            ActiveFault::Partition { grudge, how, .. } => match how {
                Realisation::Iptables { .. } => {
                    let mut first_err = None;
                    for node in grudge.iter().filter(|(_, d)| !d.is_empty()).map(|(n, _)| n) {
                        let r = gone_ok(exec_ok(ctl, node, &iptables::heal()).await);
                        if let Err(e) = r {
                            first_err.get_or_insert(e.context(format!("healing {node}")));
                        }
                    }
                    first_err.map_or(Ok(()), Err)
                }
                Realisation::Proxy { api, proxies } => {
                    let c = ToxiproxyClient::new(api)?;
                    for p in proxies {
                        absent_ok(c.set_enabled(p, true).await.map(|_| ()))?;
                    }
                    Ok(())
                }
            },
            ActiveFault::Toxics {
                api,
                proxies,
                toxic,
                ..
            } => {
                let c = ToxiproxyClient::new(api)?;
                for p in proxies {
                    absent_ok(c.delete_toxic(p, &toxic.name).await)?;
                }
                Ok(())
            }
        }
    }
}
