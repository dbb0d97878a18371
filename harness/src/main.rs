//! `harness`: run, analyze and heal fault-injection tests of the saga pipeline.

use clap::Parser;
use harness::cli::{Cli, Command};
use harness::{EXIT_BAD_ARGS, EXIT_CRASH};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_BAD_ARGS,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HARNESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("harness: starting the async runtime: {e}");
            std::process::exit(EXIT_CRASH);
        }
    };
    let code = runtime.block_on(dispatch(cli.command));
    std::process::exit(code);
}

/// The exit code of a command that ends in a verdict's code or an error: bad input is 254,
/// anything else a crash.
fn exit_code(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("harness: {e:#}");
            if e.downcast_ref::<harness::BadInput>().is_some() {
                EXIT_BAD_ARGS
            } else {
                EXIT_CRASH
            }
        }
    }
}

async fn dispatch(command: Command) -> i32 {
    match command {
        Command::Run(args) => {
            let config = args.into_config();
            if let Err(msg) = harness::config::validate(&config) {
                eprintln!("harness: {msg}");
                return EXIT_BAD_ARGS;
            }
            exit_code(harness::run::run(config).await)
        }
        Command::Analyze(args) => {
            for dir in std::iter::once(&args.run_dir).chain(args.compare.as_ref()) {
                if !dir.is_dir() {
                    eprintln!("harness: run directory '{}' does not exist", dir.display());
                    return EXIT_BAD_ARGS;
                }
            }
            match harness::run::check_compared(&args.run_dir, args.compare.as_deref()) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("harness: {e:#}");
                    formats::Validity::Unknown.exit_code()
                }
            }
        }
        Command::Lincheck(args) => lincheck(&args),
        Command::Serve(args) => {
            if !args.dir.is_dir() {
                eprintln!(
                    "harness: reports directory '{}' does not exist",
                    args.dir.display()
                );
                return EXIT_BAD_ARGS;
            }
            match harness::serve::serve(&args.dir, args.port).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("harness: {e:#}");
                    EXIT_CRASH
                }
            }
        }
        Command::Heal(args) => match harness::heal::heal(&args.run_dir).await {
            Ok(n) => {
                eprintln!(
                    "harness: healed {n} standing faults in {}",
                    args.run_dir.display()
                );
                0
            }
            Err(e) => {
                eprintln!("harness: {e:#}");
                EXIT_CRASH
            }
        },
        Command::Bench(harness::cli::BenchCommand::Consistency(args)) => {
            exit_code(harness::bench::consistency(&args).await)
        }
        Command::Cluster(args) => harness::cluster_cmd::cluster(args.action).await,
        Command::Scenario(args) => harness::scenario::runner::main(args.action).await,
        Command::Suite(args) => harness::suite::main(args, "suite").await,
        Command::Nightly(args) => harness::suite::main(args, "nightly").await,
        Command::NodesFromSshConfig(args) => harness::cluster_cmd::nodes_from_ssh_config(&args),
        Command::SeamTable(args) => {
            match harness::seam_table::main(&args.dirs, args.write.as_deref()) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("harness: {e:#}");
                    EXIT_CRASH
                }
            }
        }
    }
}

/// `harness lincheck`: reads the file, checks it, prints the verdict, returns the exit code.
fn lincheck(args: &harness::cli::LincheckArgs) -> i32 {
    use checker::lincheck::{check, html, jsonl, text, ModelKind, Options};
    use harness::cli::LinModel;
    if let Err(msg) = args.validate() {
        eprintln!("harness: {msg}");
        return EXIT_BAD_ARGS;
    }
    let model = match args.model {
        LinModel::Register => ModelKind::Register,
        LinModel::Kv => ModelKind::Kv,
        LinModel::Stock => ModelKind::Stock,
    };
    let mut history = match jsonl::read_file(&args.file, model) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("harness: {e}");
            return EXIT_BAD_ARGS;
        }
    };
    match (model, args.initial) {
        (ModelKind::Register, Some(n)) => history.register_initial = n.into(),
        (ModelKind::Stock, n) => history.stock_default = n,
        _ => {}
    }
    let options = Options {
        time_limit: args.time_limit,
        memory_limit_bytes: args.memory_limit_mib.saturating_mul(1 << 20),
        ..Options::default()
    };
    let outcome = check(&history, &options);
    print!(
        "{}: {}",
        args.file.display(),
        text::report(&history, &outcome)
    );
    if let Some(path) = &args.html {
        let title = format!("Linearizability of {}", args.file.display());
        if let Err(e) = std::fs::write(path, html::render(&history, &outcome, &title)) {
            eprintln!("harness: writing '{}': {e}", path.display());
            return EXIT_CRASH;
        }
    }
    outcome.validity.exit_code()
}
