//! `pipeline`: runs one role of the order/payment pipeline.

use clap::Parser;
use pipeline::cli::{Cli, Role};

/// Threads tokio's blocking pool may hold (its default is 512). The store serves every read
/// and scan there, and with glibc each thread that allocates may get a malloc arena of its
/// own: a 30-minute soak's replicas held 38 threads and about 16 arenas of ~5 MB and grew
/// 56-79%. Reads beyond the bound queue for a thread.
const MAX_BLOCKING_THREADS: usize = 8;

fn main() {
    pipeline::memory::bound_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pipeline: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(run());
}

async fn run() {
    let cli = Cli::parse();
    let role = cli.role.name();
    let result = match cli.role {
        Role::Store(args) => pipeline::store::run(args).await,
        Role::Order(args) => pipeline::roles::order::run(args).await,
        Role::Payment(args) => pipeline::roles::payment::run(args).await,
        Role::Inventory(args) => pipeline::roles::inventory::run(args).await,
        Role::Shipping(args) => pipeline::roles::shipping::run(args).await,
    };
    if let Err(e) = result {
        tracing::error!(error = format!("{e:#}"), "exiting");
        eprintln!("pipeline {role}: {e:#}");
        std::process::exit(1);
    }
}
