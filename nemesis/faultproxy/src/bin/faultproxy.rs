//! `faultproxy`: a Toxiproxy-compatible fault proxy (REST API on 127.0.0.1:8474 by default).
//! Prints `faultproxy: listening on ADDR` on stdout once the API is up.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use faultproxy::Server;

/// How often the parent watch checks that the parent is alive.
const PARENT_POLL: Duration = Duration::from_millis(500);

/// A Toxiproxy-compatible TCP fault proxy with HTTP-aware toxics.
#[derive(Debug, Parser)]
#[command(name = "faultproxy", version)]
struct Args {
    /// Where the REST API listens (port 0 picks one; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8474")]
    listen: SocketAddr,
    /// Seed of the random choices (latency jitter, toxicity).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Exit when this process (the harness) is gone.
    #[arg(long)]
    watch_parent: Option<u32>,
}

fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAULTPROXY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("faultproxy: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    std::process::exit(runtime.block_on(run(args)));
}

async fn parent_gone(pid: Option<u32>) {
    let Some(pid) = pid else {
        return std::future::pending().await;
    };
    loop {
        if std::os::unix::process::parent_id() != pid {
            return;
        }
        tokio::time::sleep(PARENT_POLL).await;
    }
}

async fn run(args: Args) -> i32 {
    let mut server = match Server::start(args.listen, args.seed).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("faultproxy: listen '{}': {e}", args.listen);
            return 1;
        }
    };
    println!("faultproxy: listening on {}", server.addr);
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("faultproxy: installing the SIGTERM handler: {e}");
            return 1;
        }
    };
    let code = tokio::select! {
        r = server.wait() => {
            if let Err(e) = r {
                eprintln!("faultproxy: api server: {e}");
            }
            1
        }
        _ = tokio::signal::ctrl_c() => 0,
        _ = term.recv() => 0,
        _ = parent_gone(args.watch_parent) => 0,
    };
    server.shutdown().await;
    code
}
