//! Command line: `pipeline <role> [flags]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The order/payment pipeline under test.
#[derive(Debug, Parser)]
#[command(name = "pipeline", version, about)]
pub struct Cli {
    /// Which role this process runs.
    #[command(subcommand)]
    pub role: Role,
}

/// One role per process.
#[derive(Debug, Subcommand)]
pub enum Role {
    /// Accepts orders and drives their sagas.
    Order(OrderArgs),
    /// Charges and refunds under idempotency keys.
    Payment(PaymentArgs),
}

/// Flags every role takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// This node's name, e.g. `n1`.
    #[arg(long)]
    pub node: String,
    /// Address to serve HTTP on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Directory for this role's durable state.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Exit when the process with this pid is gone (local clusters: the harness).
    #[arg(long)]
    pub watch_parent: Option<i32>,
}

/// `pipeline order`.
#[derive(Debug, Clone, Args)]
pub struct OrderArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: Common,
    /// Base URL of the payment service this node's sagas call.
    #[arg(long)]
    pub payment: String,
    /// Per-attempt timeout of calls to other services, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub call_timeout_ms: u64,
}

impl OrderArgs {
    /// The per-attempt timeout.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
}

/// `pipeline payment`.
#[derive(Debug, Clone, Args)]
pub struct PaymentArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: Common,
    /// Switch idempotency off: every request makes a new effect (to prove checks can fail).
    #[arg(long)]
    pub no_idempotency: bool,
}

/// Exits the process once `pid` is gone, so a crashed harness leaves no pipeline behind.
pub fn spawn_parent_watch(pid: Option<i32>) {
    let Some(pid) = pid else { return };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err();
            let reparented = nix::unistd::getppid().as_raw() != pid;
            if gone || reparented {
                tracing::warn!(parent = pid, "parent is gone; exiting");
                std::process::exit(0);
            }
        }
    });
}
