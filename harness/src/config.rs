//! The run as a value ([`RunConfig`], from the formats crate): checking one, and spelling one
//! back as the command line that builds it again. `spec.json` stores the config; its `rerun`
//! is [`rerun_command`] of it, and parsing that command gives the same config (the round trip
//! is tested over every field).

use std::time::Duration;

use formats::duration::spell;
use formats::fault::{last_heal, Target};
use formats::spec::{ClusterKind, PrometheusChoice, RunConfig, Switches};
use formats::Role;

use crate::remote::quote_all;

/// Most `--fault` flags one run takes.
pub const MAX_FAULTS: usize = 64;
/// Highest `--rate`.
pub const MAX_RATE: f64 = 10_000.0;

/// Checks what the types cannot: returns the message for a bad-arguments exit (254).
pub fn validate(c: &RunConfig) -> Result<(), String> {
    if let Some(rate) = c.shipping_failure_rate {
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!(
                "--shipping-failure-rate {rate}: must be between 0 and 1"
            ));
        }
    }
    match (c.cluster, &c.nodes_file, c.nodes) {
        (ClusterKind::Ssh, None, _) => return Err("--cluster ssh needs --nodes-file FILE".into()),
        (ClusterKind::Ssh, Some(_), Some(_)) => {
            return Err("--nodes does not apply to --cluster ssh: the nodes file lists them".into())
        }
        (ClusterKind::Local | ClusterKind::Netns, Some(f), _) => {
            return Err(format!(
                "--nodes-file '{}' applies only to --cluster ssh",
                f.display()
            ))
        }
        _ => {}
    }
    if !(c.rate.is_finite() && c.rate > 0.0 && c.rate <= MAX_RATE) {
        return Err(format!(
            "--rate {}: must be between 0 and {MAX_RATE} ops/s",
            c.rate
        ));
    }
    if c.time_limit < Duration::from_secs(1) {
        return Err("--time-limit must be at least 1s".into());
    }
    if !ok_folder(&c.scenario) {
        return Err(format!(
            "--scenario '{}': use letters, digits, '-', '_' or '.', not starting with '.'",
            c.scenario
        ));
    }
    if c.nemesis_interval
        .is_some_and(|d| d < Duration::from_secs(1))
    {
        return Err("--nemesis-interval must be at least 1s".into());
    }
    if c.faults.len() > MAX_FAULTS {
        return Err(format!("at most {MAX_FAULTS} --fault flags"));
    }
    let heal = last_heal(&c.faults);
    if heal > c.time_limit {
        return Err(format!(
            "--time-limit {}: a --fault heals only at {}",
            spell(c.time_limit),
            spell(heal)
        ));
    }
    if !matches!(c.pause_role, Role::Payment | Role::Order | Role::Inventory) {
        return Err(format!(
            "--pause-role '{}': must be payment, order or inventory",
            c.pause_role
        ));
    }
    if matches!(c.pause_target, Target::LeaderOf { .. }) {
        return Err("--pause-target: give leader, random or a node name".into());
    }
    Ok(())
}

fn ok_folder(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !s.starts_with('.')
}

/// The words after `harness run` that build `c` again. Every field is named: a field added to
/// [`RunConfig`] does not build until it is spelled here (the expectation and the pairing are
/// a scenario's, spelled by [`scenario_words`]).
pub fn rerun_words(c: &RunConfig) -> Vec<String> {
    let RunConfig {
        cluster,
        nodes,
        nodes_file,
        insecure_ignore_host_keys,
        netns_state_dir,
        time_limit,
        rate,
        concurrency,
        seed,
        scenario,
        nemesis,
        faults,
        nemesis_interval,
        nemesis_pairs,
        toxiproxy,
        faultproxy_bin,
        pause_role,
        pause_target,
        out,
        pipeline_bin,
        prometheus,
        cluster_secret_file,
        quiesce_timeout,
        client_timeout,
        fault_at,
        fault_for,
        switches,
        inventory_mode,
        shipping_failure_rate,
        workload,
        stock_skus,
        initial_stock,
        order_stock,
        expectation: _,
        paired_with: _,
    } = c;
    let mut w = Words::default();
    w.flag("cluster", cluster);
    w.opt("nodes", nodes.as_ref());
    w.opt("nodes-file", nodes_file.as_ref().map(|p| p.display()));
    w.switch("insecure-ignore-host-keys", *insecure_ignore_host_keys);
    w.flag("netns-state-dir", netns_state_dir.display());
    w.flag("time-limit", spell(*time_limit));
    w.flag("rate", rate);
    w.flag("concurrency", concurrency);
    w.opt("seed", seed.as_ref());
    w.flag("scenario", scenario);
    if faults.is_empty() {
        w.flag("nemesis", nemesis);
        w.opt("nemesis-interval", nemesis_interval.map(spell));
        w.switch("nemesis-pairs", *nemesis_pairs);
        w.opt("fault-at", fault_at.map(spell));
        w.opt("fault-for", fault_for.map(spell));
    }
    for f in faults {
        w.flag("fault", f);
    }
    w.opt("toxiproxy", toxiproxy.as_ref());
    w.opt(
        "faultproxy-bin",
        faultproxy_bin.as_ref().map(|p| p.display()),
    );
    w.flag("pause-role", pause_role);
    w.flag("pause-target", pause_target);
    w.flag("out", out.display());
    w.opt("pipeline-bin", pipeline_bin.as_ref().map(|p| p.display()));
    if *prometheus != PrometheusChoice::Auto {
        w.flag("prometheus", prometheus);
    }
    w.opt(
        "cluster-secret-file",
        cluster_secret_file.as_ref().map(|p| p.display()),
    );
    w.flag("quiesce-timeout", spell(*quiesce_timeout));
    w.flag("client-timeout", spell(*client_timeout));
    let Switches {
        no_idempotency,
        no_fencing,
        no_retry_budget,
        no_compensation,
        no_lease_check,
    } = *switches;
    w.switch("no-idempotency", no_idempotency);
    w.switch("no-fencing", no_fencing);
    w.switch("no-retry-budget", no_retry_budget);
    w.switch("no-compensation", no_compensation);
    w.switch("no-lease-check", no_lease_check);
    w.opt("inventory-mode", inventory_mode.as_ref());
    w.opt("shipping-failure-rate", shipping_failure_rate.as_ref());
    w.flag("workload", workload);
    w.flag("stock-skus", stock_skus);
    w.flag("initial-stock", initial_stock);
    w.flag("order-stock", order_stock);
    w.0
}

#[derive(Default)]
struct Words(Vec<String>);

impl Words {
    fn flag(&mut self, name: &str, value: impl std::fmt::Display) {
        self.0.push(format!("--{name}"));
        self.0.push(value.to_string());
    }

    fn opt(&mut self, name: &str, value: Option<impl std::fmt::Display>) {
        if let Some(v) = value {
            self.flag(name, v);
        }
    }

    fn switch(&mut self, name: &str, on: bool) {
        if on {
            self.0.push(format!("--{name}"));
        }
    }
}

/// The shell command that reruns `c`: `harness scenario run ...` for a named scenario's run,
/// `harness run ...` otherwise.
pub fn rerun_command(c: &RunConfig) -> String {
    let (head, words): (&[&str], Vec<String>) = match scenario_words(c) {
        Some(words) => (&["harness", "scenario", "run"], words),
        None => (&["harness", "run"], rerun_words(c)),
    };
    let all: Vec<String> = head.iter().map(|w| (*w).to_owned()).chain(words).collect();
    quote_all(&all)
}

/// Splits a command [`rerun_command`] wrote back into its words: words separated by spaces,
/// each plain or in single quotes (with `'\''` for a quote inside), as a POSIX shell reads
/// them.
pub fn split_command(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unclosed quote in {command:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(format!("a trailing backslash in {command:?}")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// The words after `harness scenario run` that build a scenario's run `c` again (`None` when
/// `c` is no scenario's), from what a user may override (`crate::scenario::Overrides`).
pub fn scenario_words(c: &RunConfig) -> Option<Vec<String>> {
    let e = c.expectation.as_ref()?;
    let mut w = Words(vec![e.scenario.clone()]);
    w.switch("protection-off", !e.protection_on);
    w.opt("seed", c.seed.as_ref());
    w.flag("time-limit", spell(c.time_limit));
    w.flag("out", c.out.display());
    w.opt("pipeline-bin", c.pipeline_bin.as_ref().map(|p| p.display()));
    w.opt(
        "faultproxy-bin",
        c.faultproxy_bin.as_ref().map(|p| p.display()),
    );
    if c.cluster != ClusterKind::Local || c.nodes.is_some() || c.nodes_file.is_some() {
        w.flag("cluster", c.cluster.as_str());
    }
    w.opt("nodes", c.nodes.as_ref());
    w.opt("nodes-file", c.nodes_file.as_ref().map(|p| p.display()));
    Some(w.0)
}
