//! The run as a value: every `RunConfig` (any value of every field, within what `harness run`
//! accepts) goes to `spec.json` and its rerun command and comes back equal — so a field that
//! one side forgets fails here — and every named scenario's runs rerun as themselves through
//! `harness scenario run`.

use std::path::PathBuf;
use std::time::Duration;

use formats::fault::{FaultPlan, Kind, Kinds, Links, NetEffect, Planned, Route, Shape, Target};
use formats::spec::{
    ClusterKind, InventoryMode, PrometheusChoice, RunConfig, Spec, Switches, WorkloadKind,
};
use formats::Role;
use harness::config::{split_command, validate};
use proptest::prelude::*;

fn ms(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_millis)
}

fn path() -> impl Strategy<Value = PathBuf> {
    "/[a-z]{1,6}(/[a-z0-9 '._-]{1,8}){0,2}".prop_map(PathBuf::from)
}

fn node() -> impl Strategy<Value = String> {
    "n[1-9]".prop_map(String::from)
}

fn role() -> impl Strategy<Value = Role> {
    proptest::sample::select(Role::ALL.to_vec())
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Leader),
        Just(Target::Random),
        node().prop_map(|node| Target::Node { node }),
        role().prop_map(|role| Target::LeaderOf { role }),
    ]
}

fn links() -> impl Strategy<Value = Links> {
    prop_oneof![
        role().prop_map(|role| Links::Service { role }),
        role().prop_map(|role| Links::RandomOne { role }),
        (role(), role()).prop_map(|(from_role, role)| Links::Leaders { from_role, role }),
        (node(), node(), role()).prop_map(|(from, to, role)| Links::One { from, to, role }),
    ]
}

fn effect() -> impl Strategy<Value = NetEffect> {
    prop_oneof![
        (1u64..=60_000, 0u64..=60_000).prop_map(|(latency_ms, j)| NetEffect::Latency {
            latency_ms,
            jitter_ms: j.min(latency_ms),
        }),
        Just(NetEffect::LostResponse),
        Just(NetEffect::Reset),
        (1u64..=1_000_000).prop_map(|rate_kbps| NetEffect::Bandwidth { rate_kbps }),
    ]
}

fn route() -> impl Strategy<Value = Route> {
    (
        proptest::option::of(proptest::sample::select(vec!["GET", "POST", "PUT"])),
        "/[a-z/_-]{0,12}",
    )
        .prop_map(|(method, path)| Route {
            method: method.map(str::to_owned),
            path,
        })
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        proptest::option::of(node()).prop_map(|node| Shape::IsolateOne { node }),
        role().prop_map(|role| Shape::IsolateLeader { role }),
        role().prop_map(|role| Shape::MajorityMinority { role }),
        Just(Shape::RandomHalves),
        Just(Shape::Bridge),
    ]
}

fn plan() -> impl Strategy<Value = FaultPlan> {
    prop_oneof![
        (role(), target()).prop_map(|(role, target)| FaultPlan::Pause { role, target }),
        (role(), target()).prop_map(|(role, target)| FaultPlan::Kill { role, target }),
        shape().prop_map(|shape| FaultPlan::Partition { shape }),
        (effect(), links(), proptest::option::of(route())).prop_map(|(effect, links, route)| {
            // Bandwidth acts on bytes: it takes no route.
            let route = route.filter(|_| !matches!(effect, NetEffect::Bandwidth { .. }));
            FaultPlan::Network {
                effect,
                links,
                route,
            }
        }),
        (role(), 0u64..=60_000)
            .prop_map(|(role, latency_ms)| FaultPlan::Storm { role, latency_ms }),
    ]
}

fn planned() -> impl Strategy<Value = Planned> {
    (ms(0..=10_000), ms(1..=10_000), plan()).prop_map(|(at, duration, plan)| Planned {
        at,
        duration,
        plan,
    })
}

fn kinds() -> impl Strategy<Value = Kinds> {
    proptest::sample::subsequence(Kind::ALL.to_vec(), 0..=Kind::ALL.len())
        .prop_map(|k| Kinds(k.into_iter().collect()))
}

fn switches() -> impl Strategy<Value = Switches> {
    proptest::array::uniform5(any::<bool>()).prop_map(|b| Switches {
        no_idempotency: b[0],
        no_fencing: b[1],
        no_retry_budget: b[2],
        no_compensation: b[3],
        no_lease_check: b[4],
    })
}

fn cluster() -> impl Strategy<Value = (ClusterKind, Option<u16>, Option<PathBuf>)> {
    prop_oneof![
        proptest::option::of(1u16..=9).prop_map(|n| (ClusterKind::Local, n, None)),
        proptest::option::of(1u16..=9).prop_map(|n| (ClusterKind::Netns, n, None)),
        path().prop_map(|p| (ClusterKind::Ssh, None, Some(p))),
    ]
}

prop_compose! {
    fn schedule()(
        nemesis in kinds(),
        faults in proptest::collection::vec(planned(), 0..4),
        nemesis_interval in proptest::option::of(ms(1000..=60_000)),
        nemesis_pairs in any::<bool>(),
        fault_at in proptest::option::of(ms(0..=60_000)),
        fault_for in proptest::option::of(ms(1..=60_000)),
    ) -> (Kinds, Vec<Planned>, Option<Duration>, bool, Option<Duration>, Option<Duration>) {
        (nemesis, faults, nemesis_interval, nemesis_pairs, fault_at, fault_for)
    }
}

prop_compose! {
    /// Any config `harness run` accepts, in canonical form.
    fn config()(
        (cluster, nodes, nodes_file) in cluster(),
        insecure_ignore_host_keys in any::<bool>(),
        netns_state_dir in path(),
        time_limit in ms(20_000..=3_600_000),
        rate in (1u32..=1_000_000).prop_map(|r| f64::from(r) / 100.0),
        concurrency in 1u16..=512,
        seed in proptest::option::of(any::<u64>()),
        scenario in "[a-z0-9][a-z0-9._-]{0,12}",
        (nemesis, faults, nemesis_interval, nemesis_pairs, fault_at, fault_for) in schedule(),
        toxiproxy in proptest::option::of("http://127\\.0\\.0\\.1:[1-9][0-9]{3}"),
        faultproxy_bin in proptest::option::of(path()),
        pause_role in proptest::sample::select(vec![Role::Order, Role::Payment, Role::Inventory]),
        pause_target in prop_oneof![
            Just(Target::Leader),
            Just(Target::Random),
            node().prop_map(|node| Target::Node { node }),
        ],
        out in path(),
        pipeline_bin in proptest::option::of(path()),
        prometheus in prop_oneof![
            Just(PrometheusChoice::Auto),
            Just(PrometheusChoice::Off),
            path().prop_map(PrometheusChoice::Binary),
        ],
        cluster_secret_file in proptest::option::of(path()),
        quiesce_timeout in ms(0..=600_000),
        client_timeout in ms(1..=600_000),
        switches in switches(),
        inventory_mode in proptest::option::of(prop_oneof![
            Just(InventoryMode::Linearizable),
            Just(InventoryMode::Eventual),
        ]),
        shipping_failure_rate in proptest::option::of((0u32..=1000).prop_map(|n| f64::from(n) / 1000.0)),
        workload in prop_oneof![
            Just(WorkloadKind::Orders),
            Just(WorkloadKind::Stock),
            Just(WorkloadKind::Mixed),
        ],
        stock_skus in 1u16..=64,
        initial_stock in 0i64..=1_000_000,
        order_stock in 0i64..=1_000_000,
    ) -> RunConfig {
        RunConfig {
            cluster, nodes, nodes_file, insecure_ignore_host_keys, netns_state_dir, time_limit,
            rate, concurrency, seed, scenario, nemesis, faults, nemesis_interval, nemesis_pairs,
            toxiproxy, faultproxy_bin, pause_role, pause_target, out, pipeline_bin, prometheus,
            cluster_secret_file,
            quiesce_timeout, client_timeout, fault_at, fault_for, switches, inventory_mode,
            shipping_failure_rate, workload, stock_skus, initial_stock, order_stock,
            expectation: None,
            paired_with: None,
        }
        .canonical()
    }
}

fn spec_of(c: &RunConfig) -> Spec {
    let mut c = c.clone();
    c.seed = Some(c.seed.unwrap_or(7));
    let names: Vec<String> = (1..=c.node_count()).map(|i| format!("n{i}")).collect();
    harness::spec::spec_of(
        &c,
        &names,
        serde_json::json!({"kind": c.cluster.as_str()}),
        "/bin/pipeline".as_ref(),
    )
}

/// The config `rerun_command(c)` builds again, through its shell words and `harness run`'s
/// parser.
fn reparsed(command: &str) -> RunConfig {
    let words = split_command(command).expect("splits");
    assert_eq!(&words[..2], ["harness", "run"], "{command}");
    harness::cli::parse_run_words(&words[2..]).unwrap_or_else(|e| panic!("{command}: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Proves config -> spec.json -> rerun command -> parsed config gives an equal config and
    /// an equal spec.json, for every field (a field one side forgets takes its default on the
    /// way back and fails the comparison).
    #[test]
    fn every_config_reruns_as_itself(c in config()) {
        prop_assert_eq!(validate(&c), Ok(()));
        let spec = spec_of(&c);
        let json = serde_json::to_value(&spec).expect("serializes");
        let (read, note) = Spec::from_json(json.clone()).expect("reads");
        prop_assert_eq!(note, None);
        prop_assert_eq!(&read, &spec);
        let back = reparsed(&read.rerun);
        let mut want = c.clone();
        want.seed = read.config.seed;
        prop_assert_eq!(&back, &want);
        prop_assert_eq!(serde_json::to_value(spec_of(&back)).expect("serializes"), json);
    }
}

/// Proves every named scenario's runs, protection on and off, on a local, ssh or netns
/// cluster, rerun as themselves: the scenario command spelled into `spec.json` parses back into
/// the overrides that rebuild the same config (and so the same spec.json).
#[test]
fn every_scenario_reruns_as_itself() {
    let overrides = harness::scenario::Overrides {
        seed: Some(99),
        time_limit: Some(Duration::from_secs(17)),
        out: Some(PathBuf::from("/tmp/some where")),
        pipeline_bin: Some(PathBuf::from("/opt/p'ipeline")),
        faultproxy_bin: Some(PathBuf::from("/opt/fault proxy")),
        cluster: None,
    };
    let on_ssh = harness::scenario::Overrides {
        cluster: Some(harness::scenario::ClusterChoice {
            cluster: formats::spec::ClusterKind::Ssh,
            nodes: None,
            nodes_file: Some(PathBuf::from("/etc/sagaj/nodes.toml")),
        }),
        ..overrides.clone()
    };
    let on_netns = harness::scenario::Overrides {
        cluster: Some(harness::scenario::ClusterChoice {
            cluster: formats::spec::ClusterKind::Netns,
            nodes: Some(4),
            nodes_file: None,
        }),
        ..overrides.clone()
    };
    for (s, overrides) in harness::scenario::all().into_iter().flat_map(|s| {
        [
            (s.clone(), &overrides),
            (s.clone(), &on_ssh),
            (s, &on_netns),
        ]
    }) {
        for on in [true, false] {
            let c = s.config(on, overrides).expect("builds");
            let spec = spec_of(&c);
            let words = split_command(&spec.rerun).expect("splits");
            assert_eq!(
                &words[..3],
                ["harness", "scenario", "run"],
                "{}",
                spec.rerun
            );
            let args = harness::cli::parse_scenario_run_words(&words[3..]).expect("parses");
            assert_eq!(args.name, s.name);
            assert_eq!(args.protection_off, !on);
            let o = harness::scenario::runner::overrides(&args, 0);
            let back = harness::scenario::find(&args.name)
                .expect("found")
                .config(!args.protection_off, &o)
                .expect("builds");
            assert_eq!(back, c, "{} on={on}", s.name);
            assert_eq!(spec_of(&back), spec, "{} on={on}", s.name);
        }
    }
}

/// Proves the shell words read back as written, quotes and spaces included, and a broken
/// command is refused.
#[test]
fn commands_split_back_into_their_words() {
    let words = [
        "harness",
        "run",
        "--out",
        "/a b/it's",
        "--fault",
        "kind=x,at=1s",
    ];
    let line = harness::remote::quote_all(&words);
    assert_eq!(split_command(&line).expect("splits"), words);
    assert!(split_command("harness 'open").is_err());
}
