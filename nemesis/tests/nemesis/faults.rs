//! Process and proxy faults through the `Nemesis`: each changes what it should, is recorded and
//! written to the ledger before it starts, and its heal (also from the ledger alone, by a fresh
//! process) undoes it.

use std::collections::BTreeMap;
use std::time::Duration;

use formats::history::OpType;
use formats::Role;
use nemesis::fault::{Links, NetEffect, Target};
use nemesis::grudge::Shape;
use nemesis::ledger::HealLedger;
use nemesis::links::proxy_name;
use nemesis::toxiproxy::NewProxy;
use nemesis::{heal_ledger, FaultPlan, Nemesis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ctl::{state_becomes, Ops, TestCtl, TestNode};
use crate::support;

fn nodes(n: usize) -> BTreeMap<String, TestNode> {
    (1..=n)
        .map(|i| (format!("n{i}"), TestNode::default()))
        .collect()
}

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(5)
}

/// Proves a pause puts the process in state T, is in the ledger and the history while it
/// stands, and its heal resumes it; healing what the ledger lists afterwards finds nothing.
#[tokio::test]
async fn pause_stops_and_heal_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = HealLedger::in_run_dir(dir.path());
    let ctl = TestCtl::new(nodes(2), None);
    let pid = ctl.spawn("n2", "payment");
    let (ops, mut nem) = (Ops::default(), Nemesis::new(ledger.clone()));
    let plan = FaultPlan::Pause {
        role: Role::Payment,
        target: Target::Node { node: "n2".into() },
    };
    let id = nem
        .start(&ctl, &ops, &plan, &mut rng())
        .await
        .expect("started");
    assert_eq!(state_becomes(pid, 'T'), 'T', "paused process is stopped");
    assert_eq!(
        ledger.pending().expect("ledger").len(),
        1,
        "in the ledger while it stands"
    );
    nem.heal(&ctl, &ops, &id).await.expect("healed");
    assert_eq!(state_becomes(pid, 'S'), 'S', "resumed");
    assert!(ledger.pending().expect("ledger").is_empty());
    let s = ops.summary();
    assert_eq!(s.len(), 4, "{s:?}");
    assert_eq!(
        s[0],
        (
            OpType::Invoke,
            "start".into(),
            "pause".into(),
            "n2/payment".into()
        )
    );
    assert_eq!(s[3].1, "heal");
    assert_eq!(heal_ledger(&ledger, &ctl).await.expect("nothing"), 0);
}

/// Proves a kill ends the process and its heal starts the role again; a second heal of the
/// same fault (from the ledger) is a no-op.
#[tokio::test]
async fn kill_then_heal_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = HealLedger::in_run_dir(dir.path());
    let ctl = TestCtl::new(nodes(1), None);
    let pid = ctl.spawn("n1", "order");
    let mut nem = Nemesis::new(ledger.clone());
    let plan = FaultPlan::Kill {
        role: Role::Order,
        target: Target::Random,
    };
    let id = nem
        .start(&ctl, &Ops::default(), &plan, &mut rng())
        .await
        .expect("started");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(ctl.exited("n1", "order"), "killed");
    nem.heal(&ctl, &Ops::default(), &id).await.expect("healed");
    let new_pid = nemesis::Control::pid(&ctl, "n1", Role::Order)
        .await
        .expect("running again");
    assert_ne!(new_pid, pid);
    assert_eq!(state_becomes(new_pid, 'S'), 'S');
    let again = nemesis::ActiveFault::Kill {
        node: "n1".into(),
        role: Role::Order,
        pid,
    };
    again.heal(&ctl).await.expect("idempotent");
    assert_eq!(
        nemesis::Control::pid(&ctl, "n1", Role::Order)
            .await
            .expect("same"),
        new_pid
    );
}

async fn leader_server(leader: &'static str, node: &'static str) -> String {
    let app = axum::Router::new().route(
        "/admin/leader",
        axum::routing::get(move || async move {
            axum::Json(serde_json::json!({"node": node, "role": "order",
                "is_leader": node == leader, "leader": leader, "token": 3}))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

/// Proves "the current leader" is found through `GET /admin/leader` and is what a leader pause
/// stops; and that a plan whose target cannot be resolved is recorded as a failed start and
/// leaves the ledger empty.
#[tokio::test]
async fn leader_pause_hits_the_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = HealLedger::in_run_dir(dir.path());
    let mut ctl = TestCtl::new(nodes(3), None);
    for n in ["n1", "n2", "n3"] {
        ctl.urls
            .insert((n.into(), "order".into()), leader_server("n3", n).await);
    }
    let pids: Vec<u32> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| ctl.spawn(n, "order"))
        .collect();
    let (ops, mut nem) = (Ops::default(), Nemesis::new(ledger.clone()));
    let plan = FaultPlan::Pause {
        role: Role::Order,
        target: Target::Leader,
    };
    let id = nem
        .start(&ctl, &ops, &plan, &mut rng())
        .await
        .expect("started");
    assert_eq!(state_becomes(pids[2], 'T'), 'T', "the leader n3 is paused");
    // A process just spawned may still be running (R) when sampled: each follower must settle
    // asleep (S), never stopped, within the bound.
    assert_eq!(
        [state_becomes(pids[0], 'S'), state_becomes(pids[1], 'S')],
        ['S', 'S'],
        "the followers n1 and n2 are not paused"
    );
    nem.heal(&ctl, &ops, &id).await.expect("healed");

    let plan = FaultPlan::Pause {
        role: Role::Payment,
        target: Target::Leader,
    };
    let err = nem
        .start(&ctl, &ops, &plan, &mut rng())
        .await
        .expect_err("no payment leader");
    assert!(format!("{err:#}").contains("payment"), "{err:#}");
    let last = ops
        .0
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("recorded");
    assert_eq!(last.0, OpType::Info);
    assert!(last.3.is_some(), "the failed start carries its error");
    assert!(ledger.pending().expect("ledger").is_empty());
}

/// Three nodes whose links for role `payment` go through a faultproxy to echo servers.
async fn proxied_cluster() -> (
    faultproxy::Server,
    nemesis::toxiproxy::ToxiproxyClient,
    BTreeMap<String, String>,
) {
    let (server, client) = support::faultproxy().await;
    let mut listen = BTreeMap::new();
    for to in ["n1", "n2", "n3"] {
        let echo = support::echo().await;
        for from in ["n1", "n2", "n3"].iter().filter(|f| **f != to) {
            let name = proxy_name(from, to, "payment");
            let p = client
                .create_proxy(&NewProxy {
                    name: name.clone(),
                    listen: "127.0.0.1:0".into(),
                    upstream: echo.to_string(),
                    enabled: None,
                })
                .await
                .expect("link");
            listen.insert(name, p.listen);
        }
    }
    (server, client, listen)
}

/// Proves a proxy partition isolating n1 disables exactly the links to and from n1 (traffic
/// between n2 and n3 still flows), a service latency toxic lands on every link into the
/// service, and that after the nemesis process is gone (a crash) healing the ledger alone
/// re-enables every link and removes every toxic — twice is harmless, and a proxy server that
/// is gone counts as healed.
#[tokio::test]
async fn proxy_faults_heal_from_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = HealLedger::in_run_dir(dir.path());
    let (server, client, listen) = proxied_cluster().await;
    let ctl = TestCtl::new(nodes(3), Some(server.url()));
    {
        let mut nem = Nemesis::new(ledger.clone());
        let ops = Ops::default();
        let plan = FaultPlan::Partition {
            shape: Shape::IsolateOne {
                node: Some("n1".into()),
            },
        };
        nem.start(&ctl, &ops, &plan, &mut rng())
            .await
            .expect("partition");
        let plan = FaultPlan::Network {
            effect: NetEffect::Latency {
                latency_ms: 200,
                jitter_ms: 0,
            },
            links: Links::Service {
                role: Role::Payment,
            },
            route: None,
        };
        nem.start(&ctl, &ops, &plan, &mut rng())
            .await
            .expect("latency");
        let targets: Vec<String> = ops.summary().into_iter().map(|s| s.3).collect();
        assert!(
            targets[0].contains("n1-x-n2") && targets[0].contains("n1-x-n3"),
            "{targets:?}"
        );
        // The nemesis is dropped here without healing, as if its process had been killed.
    }
    let proxies = client.proxies().await.expect("list");
    for (name, p) in &proxies {
        let touches_n1 = name.contains(".n1.");
        assert_eq!(p.enabled, !touches_n1, "{name}");
        assert_eq!(p.toxics.len(), 1, "{name} has the latency toxic");
    }
    assert!(
        tokio::net::TcpStream::connect(&listen["link.n2.n1.payment"])
            .await
            .is_err()
    );
    assert!(
        tokio::net::TcpStream::connect(&listen["link.n2.n3.payment"])
            .await
            .is_ok()
    );
    assert_eq!(ledger.pending().expect("ledger").len(), 2);

    let fresh = TestCtl::new(nodes(3), None);
    assert_eq!(heal_ledger(&ledger, &fresh).await.expect("healed"), 2);
    let proxies = client.proxies().await.expect("list");
    assert!(
        proxies.values().all(|p| p.enabled && p.toxics.is_empty()),
        "{proxies:?}"
    );
    assert_eq!(heal_ledger(&ledger, &fresh).await.expect("again"), 0);

    let pending = nemesis::ActiveFault::Toxics {
        kind: nemesis::fault::Kind::Latency,
        api: server.url(),
        proxies: vec!["link.n1.n2.payment".into()],
        toxic: nemesis::fault::toxic_of(NetEffect::LostResponse, None, "nemesis-f9"),
    };
    server.shutdown().await;
    pending
        .heal(&fresh)
        .await
        .expect("a proxy server that is gone counts as healed");
}
