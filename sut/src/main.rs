//! `pipeline`: runs one role of the order/payment pipeline.

use clap::Parser;
use pipeline::cli::{Cli, Role};

#[tokio::main]
async fn main() {
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
