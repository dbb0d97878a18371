//! Builds small run directories that follow docs/contracts.md exactly: `spec.json`,
//! `history.jsonl` (schema header, ops by time), `final-state.json`, `metrics.csv` (§5) and
//! `nodes/<node>/<role>.log` JSON lines in tracing's format (§4).

use std::collections::BTreeMap;
use std::path::Path;

use formats::final_state::{
    FinalState, Item, OrderRecord, OrderStatus, PaymentKind, PaymentRecord, ReservationRecord,
    ReservationStatus, ShipmentRecord, ShipmentStatus,
};
use formats::history::{Header, Op, OpType, Process, F, SCHEMA_VERSION};
use formats::Role;
use serde_json::{json, Value};

/// Nanoseconds from seconds.
pub fn ns(s: f64) -> u64 {
    (s * 1e9).round() as u64
}

/// A run directory under construction.
pub struct Run {
    /// `spec.json`.
    pub spec: Value,
    /// Operations, any order; written sorted by time.
    pub ops: Vec<Op>,
    /// `final-state.json`.
    pub state: FinalState,
    /// `metrics.csv` rows: t_s, node, role, metric, labels, value.
    pub metrics: Vec<(f64, String, String, String, String, f64)>,
    /// Log lines per relative path.
    pub logs: BTreeMap<String, Vec<String>>,
    /// Write `metrics.csv` at all.
    pub with_metrics: bool,
    /// The history header's run id.
    pub run_id: String,
    /// The history header's start time.
    pub started_unix_ms: u64,
}

impl Run {
    /// An empty run of a 3-node cluster with every role.
    pub fn new() -> Run {
        Run {
            spec: json!({
                "scenario": "test", "seed": 7, "cluster": "local", "nodes": 3,
                "roles": ["store", "order", "payment", "inventory", "shipping"],
                "time_limit_s": 20.0, "nemesis": "pause",
                "rerun": "harness run --cluster local --nodes 3 --time-limit 20s --seed 7 --scenario test"
            }),
            ops: Vec::new(),
            state: FinalState {
                services: vec![
                    Role::Order,
                    Role::Payment,
                    Role::Inventory,
                    Role::Shipping,
                    Role::Store,
                ],
                ..FinalState::default()
            },
            metrics: Vec::new(),
            logs: BTreeMap::new(),
            with_metrics: true,
            run_id: "test/20260101T000000.000Z".into(),
            started_unix_ms: 1_767_225_600_000,
        }
    }

    fn push(&mut self, t_s: f64, process: Process, op_type: OpType, f: F, value: Value) {
        self.ops.push(Op {
            index: 0,
            time_ns: ns(t_s),
            process,
            op_type,
            f,
            value,
            node: (!process.is_nemesis()).then(|| "n1".to_owned()),
            error: (op_type == OpType::Info && !process.is_nemesis()).then(|| "timeout".to_owned()),
        });
    }

    /// A client operation from `at_s` lasting `latency_s`, ending in `outcome`.
    #[allow(clippy::too_many_arguments)]
    pub fn op(
        &mut self,
        process: u64,
        f: F,
        at_s: f64,
        latency_s: f64,
        outcome: OpType,
        invoke: Value,
        done: Value,
    ) {
        let p = Process::Client(process);
        self.push(at_s, p, OpType::Invoke, f, invoke);
        self.push(at_s + latency_s, p, outcome, f, done);
    }

    /// A fault window recorded as the nemesis does: start invoke + info, heal invoke + info.
    pub fn fault(&mut self, id: &str, fault: &str, target: &str, start_s: f64, end_s: f64) {
        let v = json!({"id": id, "fault": fault, "target": target, "detail": {"fault": fault}});
        self.push(
            start_s,
            Process::NEMESIS,
            OpType::Invoke,
            F::FaultStart,
            v.clone(),
        );
        self.push(
            start_s + 0.001,
            Process::NEMESIS,
            OpType::Info,
            F::FaultStart,
            v,
        );
        let h = json!({"id": id, "fault": fault, "target": target});
        self.push(
            end_s - 0.001,
            Process::NEMESIS,
            OpType::Invoke,
            F::FaultHeal,
            h.clone(),
        );
        self.push(end_s, Process::NEMESIS, OpType::Info, F::FaultHeal, h);
    }

    /// A completed order with every effect: charge, shipment, reservation.
    pub fn completed_order(&mut self, process: u64, id: &str, at_s: f64, latency_s: f64) {
        let key = format!("key-{id}");
        self.op(
            process,
            F::PlaceOrder,
            at_s,
            latency_s,
            OpType::Ok,
            json!({"key": key, "customer": "c1", "items": [{"sku": "sku-1", "qty": 1}], "amount": 500}),
            json!({"key": key, "order_id": id}),
        );
        self.state.orders.push(OrderRecord {
            order_id: id.into(),
            idempotency_key: key,
            status: OrderStatus::Completed,
            amount: 500,
            items: vec![Item {
                sku: "sku-1".into(),
                qty: 1,
            }],
            reason: None,
        });
        self.state.payments.push(PaymentRecord {
            key: format!("{id}:charge"),
            kind: PaymentKind::Charge,
            order_id: id.into(),
            amount: 500,
            replays: 0,
        });
        self.state.shipments.push(ShipmentRecord {
            key: format!("{id}:ship"),
            order_id: id.into(),
            status: ShipmentStatus::Created,
            replays: 0,
        });
        self.state.reservations.push(ReservationRecord {
            key: format!("{id}:reserve"),
            order_id: id.into(),
            sku: "sku-1".into(),
            qty: 1,
            status: ReservationStatus::Committed,
            replays: None,
        });
    }

    /// One metric sample.
    pub fn metric(&mut self, t: f64, node: &str, role: &str, metric: &str, labels: &str, v: f64) {
        self.metrics
            .push((t, node.into(), role.into(), metric.into(), labels.into(), v));
    }

    /// One JSON log line in tracing's format, stamped `t_s` seconds after the run started.
    pub fn log_at(&mut self, node: &str, role: &str, t_s: f64, message: &str, fields: Value) {
        let mut fields = fields;
        fields["message"] = json!(message);
        let ms = self.started_unix_ms + (t_s * 1000.0).round() as u64;
        let secs = ms / 1000;
        let stamp = format!(
            "2026-01-01T{:02}:{:02}:{:02}.{:03}000Z",
            (secs / 3600) % 24,
            (secs / 60) % 60,
            secs % 60,
            ms % 1000
        );
        assert_eq!(
            self.started_unix_ms % 86_400_000,
            0,
            "log_at assumes runs start at midnight"
        );
        let line = json!({"timestamp": stamp, "level": "INFO", "fields": fields,
            "target": format!("sut::roles::{role}")});
        self.logs
            .entry(format!("nodes/{node}/{role}.log"))
            .or_default()
            .push(line.to_string());
    }

    /// One JSON log line in tracing's format.
    pub fn log(&mut self, node: &str, role: &str, message: &str, fields: Value) {
        let mut fields = fields;
        fields["message"] = json!(message);
        let n = self
            .logs
            .get(&format!("nodes/{node}/{role}.log"))
            .map_or(0, Vec::len);
        let line = json!({
            "timestamp": format!("2026-01-01T00:00:{:02}.000000Z", n % 60),
            "level": "INFO",
            "fields": fields,
            "target": format!("sut::roles::{role}"),
        });
        self.logs
            .entry(format!("nodes/{node}/{role}.log"))
            .or_default()
            .push(line.to_string());
    }

    /// Writes the run directory.
    pub fn write(&self, dir: &Path) {
        std::fs::write(
            dir.join("spec.json"),
            serde_json::to_vec_pretty(&self.spec).expect("spec"),
        )
        .expect("write spec");
        let mut ops = self.ops.clone();
        ops.sort_by_key(|o| o.time_ns);
        let header = Header {
            schema_version: SCHEMA_VERSION,
            run_id: self.run_id.clone(),
            started_unix_ms: self.started_unix_ms,
        };
        let mut text = serde_json::to_string(&header).expect("header") + "\n";
        for (i, mut op) in ops.into_iter().enumerate() {
            op.index = i as u64;
            text.push_str(&serde_json::to_string(&op).expect("op"));
            text.push('\n');
        }
        std::fs::write(dir.join("history.jsonl"), text).expect("write history");
        std::fs::write(
            dir.join("final-state.json"),
            serde_json::to_vec_pretty(&self.state).expect("state"),
        )
        .expect("write state");
        if self.with_metrics {
            let mut csv = String::from("t_s,node,role,metric,labels,value\n");
            let mut rows = self.metrics.clone();
            rows.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (t, node, role, metric, labels, v) in rows {
                let labels = if labels.is_empty() {
                    String::new()
                } else {
                    format!("\"{}\"", labels.replace('"', "\"\""))
                };
                csv.push_str(&format!("{t:.3},{node},{role},{metric},{labels},{v}\n"));
            }
            std::fs::write(dir.join("metrics.csv"), csv).expect("write metrics");
        }
        for (rel, lines) in &self.logs {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, lines.join("\n") + "\n").expect("write log");
        }
    }
}

/// Quorum latency buckets (seconds), as the pipeline declares them.
pub const BUCKETS_S: [f64; 8] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The scenario every check test starts from: 3 nodes, 20 s, two clients placing an order every
/// half second, the order leader (n1) paused from 8 s to 12 s. While it is paused orders stall
/// and time out, consumer lag and quorum latency climb, n2 wins the order lease (token 2), the
/// store replicas reject the old leader's token-1 writes after it resumes, callers retry within
/// the budget, and one charge is replayed (a duplicate effect, deduplicated). Every order ends
/// completed with exactly its effects. Legal in every check.
pub fn legal_run() -> Run {
    let mut run = Run::new();
    run.fault("f1", "pause", "n1/order", 8.0, 12.0);
    let mut n = 0;
    for process in 0..2u64 {
        let mut t = 0.2 + process as f64 * 0.25;
        while t < 19.0 {
            n += 1;
            let id = format!("o{n}");
            let paused = (8.0..12.0).contains(&t);
            let latency = if paused {
                12.2 - t
            } else {
                0.02 + (n % 7) as f64 * 0.004
            };
            run.completed_order(process, &id, t, latency);
            t += latency.max(0.5);
        }
    }
    if let Some(p) = run.state.payments.iter_mut().find(|p| p.order_id == "o20") {
        p.replays = 1;
    }
    for node in ["n1", "n2", "n3"] {
        store_logs(&mut run, node);
        metrics_for(&mut run, node);
    }
    run
}

fn store_logs(run: &mut Run, node: &str) {
    for (i, token) in [1, 1, 1, 2, 2].iter().enumerate() {
        run.log(
            node,
            "store",
            "write accepted",
            json!({"domain": "order", "key": format!("saga/o{}", i + 1), "token": token, "version": i + 1}),
        );
    }
    run.log(
        node,
        "store",
        "fencing rejected write",
        json!({"domain": "order", "key": "saga/o3", "rejected_token": 1, "current_token": 2}),
    );
    run.log(
        node,
        "store",
        "write accepted",
        json!({"domain": "order", "key": "saga/o9", "token": 2, "version": 9}),
    );
}

fn metrics_for(run: &mut Run, node: &str) {
    let leader_n1 = node == "n1";
    let (mut requests, mut retries, mut writes_fast, mut writes_slow) = (0.0, 0.0, 0.0, 0.0);
    let mut dup = 0.0;
    for s in 0..20 {
        let t = s as f64 + 0.02;
        let paused = (8..12).contains(&s);
        requests += 10.0;
        if (9..13).contains(&s) {
            retries += 1.0;
        }
        for d in ["payment", "inventory"] {
            let l = format!("{{downstream=\"{d}\"}}");
            run.metric(t, node, "order", "requests_total", &l, requests);
            run.metric(t, node, "order", "retry_attempts_total", &l, retries);
            run.metric(t, node, "order", "retry_budget_exhausted_total", &l, 0.0);
        }
        let lag = if leader_n1 && paused {
            0.0
        } else if paused {
            4.0 * (s - 7) as f64
        } else {
            1.0
        };
        if !(leader_n1 && paused) {
            run.metric(t, node, "order", "consumer_lag_records", "", lag);
        }
        let elections = if node == "n2" && s >= 9 { 1.0 } else { 0.0 };
        let token = if s >= 9 { 2.0 } else { 1.0 };
        run.metric(
            t,
            node,
            "order",
            "leader_elections_total",
            "{domain=\"order\"}",
            elections,
        );
        run.metric(
            t,
            node,
            "order",
            "leader_token",
            "{domain=\"order\"}",
            token,
        );
        writes_fast += 20.0;
        if paused {
            writes_slow += 5.0;
        }
        for (base, slow_share) in [
            ("quorum_write_duration_seconds", 1.0),
            ("quorum_read_duration_seconds", 0.5),
        ] {
            for le in BUCKETS_S
                .iter()
                .map(|b| b.to_string())
                .chain(["+Inf".to_owned()])
            {
                let bound: f64 = le.parse().expect("le");
                let count = writes_fast
                    + if bound >= 0.25 {
                        writes_slow * slow_share
                    } else {
                        0.0
                    };
                let l = format!("{{state=\"order\",le=\"{le}\"}}");
                run.metric(
                    t + 0.01,
                    node,
                    "store",
                    &format!("{base}_bucket"),
                    &l,
                    count,
                );
            }
        }
        if node == "n2" && s == 13 {
            dup += 1.0;
        }
        run.metric(
            t,
            node,
            "payment",
            "duplicate_effects_total",
            "{kind=\"charge\"}",
            dup,
        );
    }
}
