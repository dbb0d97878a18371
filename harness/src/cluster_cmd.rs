//! `harness cluster up|down|status` and `harness nodes-from-ssh-config`.

use std::io::Read;
use std::path::Path;

use crate::cli::{ClusterAction, NodesFromSshConfigArgs};
use crate::cluster::netns;
use crate::{BadInput, EXIT_BAD_ARGS, EXIT_CRASH};

fn report(e: &anyhow::Error) -> i32 {
    eprintln!("harness: {e:#}");
    if e.downcast_ref::<BadInput>().is_some() {
        EXIT_BAD_ARGS
    } else {
        EXIT_CRASH
    }
}

/// Runs a `harness cluster` action; returns the exit code.
pub async fn cluster(action: ClusterAction) -> i32 {
    let result = match action {
        ClusterAction::Up { nodes, state_dir } => up(usize::from(nodes), &state_dir).await,
        ClusterAction::Down { state_dir } => down(&state_dir).await,
        ClusterAction::Status { state_dir } => status(&state_dir).await,
    };
    result.unwrap_or_else(|e| report(&e))
}

async fn up(nodes: usize, state_dir: &Path) -> anyhow::Result<i32> {
    netns::preflight().map_err(BadInput)?;
    let status = netns::up(nodes, state_dir).await?;
    let addrs: Vec<String> = (1..=nodes)
        .map(|i| format!("n{i}={}", netns::node_addr(i)))
        .collect();
    eprintln!(
        "harness: netns cluster up: {} nodes ({}), {} links, {} iptables rules",
        status.namespaces.len(),
        addrs.join(" "),
        status.links.len(),
        status.rules.len()
    );
    eprintln!(
        "harness: nodes file {} (usable with --cluster ssh --nodes-file)",
        netns::nodes_file(state_dir).display()
    );
    Ok(0)
}

async fn down(state_dir: &Path) -> anyhow::Result<i32> {
    netns::preflight().map_err(BadInput)?;
    let removed = netns::down(state_dir).await?;
    eprintln!(
        "harness: netns cluster down: removed {} namespaces, {} processes, {} links, {} iptables rules",
        removed.namespaces, removed.processes, removed.links, removed.rules
    );
    Ok(0)
}

async fn status(state_dir: &Path) -> anyhow::Result<i32> {
    netns::preflight().map_err(BadInput)?;
    let s = netns::status(state_dir).await?;
    for (ns, alive) in &s.namespaces {
        println!(
            "{ns} sshd {}",
            if *alive { "running" } else { "not running" }
        );
    }
    for link in &s.links {
        println!("link {link}");
    }
    for rule in &s.rules {
        println!("iptables {rule}");
    }
    if s.is_up() {
        eprintln!(
            "harness: netns cluster is up with {} nodes",
            s.namespaces.len()
        );
        Ok(0)
    } else if s.is_clean() {
        eprintln!("harness: netns cluster is down");
        Ok(1)
    } else {
        eprintln!("harness: netns cluster is partly up (run `harness cluster down`)");
        Ok(1)
    }
}

/// Prints a nodes file made from `vagrant ssh-config` output; returns the exit code.
pub fn nodes_from_ssh_config(args: &NodesFromSshConfigArgs) -> i32 {
    let mut text = String::new();
    let read = if args.ssh_config.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(&args.ssh_config).map(|t| text = t)
    };
    if let Err(e) = read {
        eprintln!(
            "harness: ssh config '{}': {}",
            args.ssh_config.display(),
            e.to_string().to_lowercase()
        );
        return EXIT_BAD_ARGS;
    }
    match crate::ssh_config::to_nodes_toml(&text, &args.known_hosts, &args.addrs) {
        Ok(toml) => {
            print!("{toml}");
            0
        }
        Err(e) => {
            eprintln!("harness: ssh config '{}': {e}", args.ssh_config.display());
            EXIT_BAD_ARGS
        }
    }
}
