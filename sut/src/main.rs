//! `pipeline`: runs one role of the order/payment pipeline.

use clap::Parser;
use pipeline::cli::{Cli, Role};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.role {
        Role::Order(args) => pipeline::roles::order::run(args).await,
        Role::Payment(args) => pipeline::roles::payment::run(args).await,
    };
    if let Err(e) = result {
        tracing::error!(error = format!("{e:#}"), "exiting");
        eprintln!("pipeline: {e:#}");
        std::process::exit(1);
    }
}
