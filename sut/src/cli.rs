//! Command line: `pipeline <role> --node <name> --config <file> --secret-file <file>
//! --data-dir <dir> [--watch-parent <pid>] [protection flags]` (docs/contracts.md §1).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::InventoryMode;

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
    /// A replica of the versioned, fenced key-value store.
    Store(StoreArgs),
    /// Accepts orders and drives their sagas (elected leader).
    Order(OrderArgs),
    /// Charges and refunds under idempotency keys (elected leader).
    Payment(PaymentArgs),
    /// Reserves and releases stock (leader in linearizable mode).
    Inventory(InventoryArgs),
    /// Creates and cancels shipments.
    Shipping(ShippingArgs),
}

impl Role {
    /// The role's name as in the config's `listen` and `peers`.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Store(_) => "store",
            Role::Order(_) => "order",
            Role::Payment(_) => "payment",
            Role::Inventory(_) => "inventory",
            Role::Shipping(_) => "shipping",
        }
    }
}

/// Flags every role takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// This node's name, e.g. `n1`; must match the config's `node`.
    #[arg(long)]
    pub node: String,
    /// The node's configuration file (JSON, docs/contracts.md §1).
    #[arg(long)]
    pub config: PathBuf,
    /// The cluster secret (one to four lines; the first is sent, any is accepted), readable by
    /// this user only. Kept apart from the config, which may be copied into reports.
    #[arg(long)]
    pub secret_file: PathBuf,
    /// Directory for this role's durable state.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Exit when the process with this pid is gone (local clusters: the harness).
    #[arg(long)]
    pub watch_parent: Option<i32>,
}

/// `pipeline store`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: Common,
    /// Admit writes whose token is below the domain's highest (logged), to prove the fencing
    /// check can fail.
    #[arg(long)]
    pub no_fencing: bool,
}

/// `pipeline order`.
#[derive(Debug, Clone, Args)]
pub struct OrderArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: Common,
    /// Skip compensations when a saga fails (to prove the effects check can fail).
    #[arg(long)]
    pub no_compensation: bool,
    /// Retry without a budget (to prove the retry-load check can fail).
    #[arg(long)]
    pub no_retry_budget: bool,
    /// Trust the leadership flag instead of checking the lease's end on the monotonic clock
    /// before every write, and take a failed renewal for a passing failure (step down only
    /// after a whole TTL of them): a leader that never asks whether its lease still holds, so
    /// that only fencing stops it once deposed.
    #[arg(long)]
    pub no_lease_check: bool,
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

/// `pipeline inventory`.
#[derive(Debug, Clone, Args)]
pub struct InventoryArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: Common,
    /// Switch idempotency off: every request makes a new effect.
    #[arg(long)]
    pub no_idempotency: bool,
    /// Consistency model; overrides the config's `inventory_mode`.
    #[arg(long, value_enum)]
    pub inventory_mode: Option<InventoryMode>,
}

/// `pipeline shipping`.
#[derive(Debug, Clone, Args)]
pub struct ShippingArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: Common,
    /// Switch idempotency off: every request makes a new effect.
    #[arg(long)]
    pub no_idempotency: bool,
    /// Share of shipment creations refused; overrides the config's `shipping_failure_rate`.
    #[arg(long)]
    pub failure_rate: Option<f64>,
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
