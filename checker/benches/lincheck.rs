//! Benchmarks of the linearizability checker on generated histories with known answers.
//!
//! ```text
//! cargo bench -p checker --bench lincheck
//! LINCHECK_EXPORT_DIR=/tmp/lin cargo bench -p checker --bench lincheck -- --list
//! ```
//!
//! Every workload is generated from a fixed seed, written as standalone JSONL and parsed back,
//! so the operations measured here are exactly the ones a file export gives other checkers
//! (with `LINCHECK_EXPORT_DIR` set the files are written there, named `<workload>.<model>.jsonl`,
//! for running Porcupine on the same histories: see `benches/porcupine/`). The verdict of each
//! workload is asserted before it is timed.

use std::time::Duration;

use checker::lincheck::gen::{break_one_read, generate, GenSpec};
use checker::lincheck::{check, jsonl, LinHistory, ModelKind, Options};
use checker::Validity;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One benchmark history.
struct Workload {
    name: &'static str,
    history: LinHistory,
    expected: Validity,
}

fn spec(model: ModelKind, processes: usize, ops: usize, keys: usize) -> GenSpec {
    GenSpec::new(model, processes, ops, keys)
}

fn workloads() -> Vec<Workload> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, spec: GenSpec, seed: u64, broken: bool| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut history = generate(&spec, &mut rng);
        if broken {
            assert!(
                break_one_read(&mut history, &mut rng),
                "{name}: no read to break"
            );
        }
        let text = jsonl::to_jsonl(&history);
        if let Some(dir) = std::env::var_os("LINCHECK_EXPORT_DIR") {
            let path = std::path::Path::new(&dir).join(format!("{name}.{}.jsonl", spec.model));
            std::fs::write(&path, &text).expect("export written");
            eprintln!("exported {}", path.display());
        }
        let mut parsed = jsonl::parse(text.as_bytes(), name.as_ref(), spec.model).expect("parses");
        parsed.stock_default = history.stock_default;
        out.push(Workload {
            name,
            history: parsed,
            expected: if broken {
                Validity::Invalid
            } else {
                Validity::Valid
            },
        });
    };

    // 10 processes x 10,000 operations each over 10 keys: get/put/append, a few info.
    let mut kv = spec(ModelKind::Kv, 10, 100_000, 10);
    kv.info_per_mille = 1;
    kv.values = 1000;
    add("kv-10p-100k-10keys", kv.clone(), 1, false);
    add("kv-10p-100k-10keys-invalid", kv, 1, true);

    // One register, many processes, few values, many cas and crashed (info) writes: the search
    // branches on every open info operation and every equal value.
    let mut hard = spec(ModelKind::Register, 10, 2_000, 1);
    hard.values = 5;
    hard.info_per_mille = 2;
    hard.read_per_mille = 300;
    hard.max_latency = 30;
    add("register-hard", hard.clone(), 3, false);
    add("register-hard-invalid", hard, 3, true);

    // Stock over 10 SKUs.
    let mut stock = spec(ModelKind::Stock, 10, 100_000, 10);
    stock.info_per_mille = 1;
    stock.initial_stock = 50;
    add("stock-10p-100k-10skus", stock, 5, false);
    out
}

fn bench(c: &mut Criterion) {
    let workloads = workloads();
    let mut group = c.benchmark_group("lincheck");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for w in &workloads {
        for threads in [1usize, 2] {
            let options = Options {
                time_limit: Duration::from_secs(120),
                threads,
                ..Options::default()
            };
            let first = check(&w.history, &options);
            let configurations: usize = first.keys.iter().map(|k| k.configurations).sum();
            eprintln!(
                "{} threads={threads}: {} in {:?} (first run), {configurations} configurations",
                w.name, first.validity, first.elapsed
            );
            assert_eq!(
                first.validity, w.expected,
                "{}: {:?}",
                w.name, first.unknown_reason
            );
            group.bench_with_input(
                BenchmarkId::new(w.name, format!("threads={threads}")),
                &w.history,
                |b, h| b.iter(|| check(h, &options).validity),
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend needs system fonts this machine lacks.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
