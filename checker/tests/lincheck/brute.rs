//! A brute-force checker written from the semantics alone (no memo, no partitioning, no shared
//! code with the real search), and randomised small histories on which both must agree.
//!
//! Brute force: choose which info operations took effect (every subset); then try every order
//! of the chosen operations that respects real time (an operation may go next only if no other
//! remaining one completed before it was invoked), stepping a map of key -> value.

use std::collections::HashMap;

use checker::lincheck::gen::{generate, GenSpec};
use checker::lincheck::{Call, LinHistory, ModelKind, Operation, Outcome, Val};
use checker::Validity;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The value of a key before anything is written.
fn initial(h: &LinHistory, key: &str) -> Val {
    match h.model {
        ModelKind::Register => Val::Json(serde_json::Value::Null),
        ModelKind::Kv => Val::Text(String::new()),
        ModelKind::Stock => Val::Int(h.initial_stock(key).expect("initial stock")),
    }
}

/// Applies `op` as having taken effect; `None` if it cannot have in state `s`.
fn apply(op: &Operation, s: &Val) -> Option<Val> {
    let done = op.outcome == Outcome::Ok;
    match (&op.call, s) {
        (Call::Read, _) => (op.observed.as_ref() == Some(s)).then(|| s.clone()),
        (Call::Write(v), _) => Some(v.clone()),
        // An info cas that took effect succeeded; a failed one observed a different value.
        (Call::Cas(from, to), s) if op.outcome != Outcome::Fail => (s == from).then(|| to.clone()),
        (Call::Cas(from, _), s) => (s != from).then(|| s.clone()),
        (Call::Append(Val::Text(a)), Val::Text(cur)) => Some(Val::Text(format!("{cur}{a}"))),
        (Call::Reserve(q), Val::Int(n)) if done || op.outcome == Outcome::Info => {
            (n >= q).then(|| Val::Int(n - q))
        }
        (Call::Reserve(q), Val::Int(n)) => (n < q).then(|| s.clone()),
        (Call::Release(q), Val::Int(n)) => Some(Val::Int(n + q)),
        _ => None,
    }
}

fn search(
    h: &LinHistory,
    ops: &[usize],
    placed: &mut Vec<bool>,
    state: &mut HashMap<String, Val>,
) -> bool {
    if placed.iter().all(|p| *p) {
        return true;
    }
    let end = |i: usize| h.ops[ops[i]].complete_pos.unwrap_or(u64::MAX);
    for x in 0..ops.len() {
        if placed[x] {
            continue;
        }
        let call = h.ops[ops[x]].invoke_pos;
        if (0..ops.len()).any(|y| !placed[y] && end(y) < call) {
            continue;
        }
        let op = &h.ops[ops[x]];
        let cur = state
            .get(&op.key)
            .cloned()
            .unwrap_or_else(|| initial(h, &op.key));
        if let Some(next) = apply(op, &cur) {
            placed[x] = true;
            state.insert(op.key.clone(), next);
            if search(h, ops, placed, state) {
                return true;
            }
            state.insert(op.key.clone(), cur);
            placed[x] = false;
        }
    }
    false
}

/// True if some choice of info effects and some real-time order explains every result.
pub fn brute_force(h: &LinHistory) -> bool {
    // Operations that constrain nothing: failed reads/writes/appends/releases did not happen,
    // reads without a result observed nothing.
    let relevant: Vec<usize> = (0..h.ops.len())
        .filter(|&i| {
            let op = &h.ops[i];
            match (&op.call, op.outcome) {
                (Call::Read, Outcome::Ok) => op.observed.is_some(),
                (Call::Read, _) => false,
                (Call::Write(_) | Call::Append(_) | Call::Release(_), Outcome::Fail) => false,
                _ => true,
            }
        })
        .collect();
    let infos: Vec<usize> = relevant
        .iter()
        .copied()
        .filter(|&i| h.ops[i].outcome == Outcome::Info)
        .collect();
    assert!(infos.len() <= 12, "brute force is for small histories");
    for mask in 0u32..(1 << infos.len()) {
        let chosen: Vec<usize> = relevant
            .iter()
            .copied()
            .filter(|i| match infos.iter().position(|j| j == i) {
                Some(bit) => mask & (1 << bit) != 0,
                None => true,
            })
            .collect();
        let mut placed = vec![false; chosen.len()];
        if search(h, &chosen, &mut placed, &mut HashMap::new()) {
            return true;
        }
    }
    false
}

/// A small random history: generated linearizable, then some results changed at random so
/// that many are not.
fn random_history(model: ModelKind, seed: u64, ops: usize, processes: usize) -> LinHistory {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut spec = GenSpec::new(model, processes, ops, rng.gen_range(1..=2));
    spec.values = 3;
    spec.info_per_mille = 200;
    spec.read_per_mille = 400;
    spec.max_latency = 6;
    spec.initial_stock = rng.gen_range(0..6);
    let mut h = generate(&spec, &mut rng);
    for op in &mut h.ops {
        if !rng.gen_bool(0.25) {
            continue;
        }
        match (&op.call, op.outcome) {
            (Call::Read, Outcome::Ok) => {
                op.observed = Some(match model {
                    ModelKind::Register => Val::Json(rng.gen_range(0..3).into()),
                    ModelKind::Kv => {
                        Val::Text(["", "0", "1", "01", "10"][rng.gen_range(0..5)].into())
                    }
                    ModelKind::Stock => Val::Int(rng.gen_range(-2..8)),
                })
            }
            (_, Outcome::Ok) => op.outcome = Outcome::Fail,
            (_, Outcome::Fail) => op.outcome = Outcome::Ok,
            _ => {}
        }
    }
    h
}

fn agree(model: ModelKind, seed: u64, ops: usize, processes: usize) -> Result<bool, TestCaseError> {
    let h = random_history(model, seed, ops, processes);
    let expected = brute_force(&h);
    let got = super::run(&h).validity;
    prop_assert_eq!(
        got,
        if expected {
            Validity::Valid
        } else {
            Validity::Invalid
        },
        "seed {} model {}: {:#?}",
        seed,
        model,
        h.ops
    );
    Ok(expected)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Proves the register checker agrees with brute force on random small histories.
    #[test]
    fn register_agrees_with_brute_force(seed in any::<u64>(), ops in 1usize..=7, processes in 1usize..=3) {
        agree(ModelKind::Register, seed, ops, processes)?;
    }

    /// Proves the kv checker agrees with brute force on random small histories.
    #[test]
    fn kv_agrees_with_brute_force(seed in any::<u64>(), ops in 1usize..=7, processes in 1usize..=3) {
        agree(ModelKind::Kv, seed, ops, processes)?;
    }

    /// Proves the stock checker agrees with brute force on random small histories.
    #[test]
    fn stock_agrees_with_brute_force(seed in any::<u64>(), ops in 1usize..=7, processes in 1usize..=3) {
        agree(ModelKind::Stock, seed, ops, processes)?;
    }
}

/// Proves the random histories exercise both answers (a cross-check that only ever saw valid
/// histories would prove little), and that unperturbed generated histories are linearizable.
#[test]
fn random_histories_cover_both_answers() {
    for model in [ModelKind::Register, ModelKind::Kv, ModelKind::Stock] {
        let (mut valid, mut invalid) = (0, 0);
        for seed in 0..200 {
            match agree(model, seed, 6, 3) {
                Ok(true) => valid += 1,
                Ok(false) => invalid += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            valid >= 20 && invalid >= 20,
            "{model}: {valid} valid, {invalid} invalid"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut spec = GenSpec::new(model, 4, 300, 3);
        spec.info_per_mille = 30;
        let h = generate(&spec, &mut rng);
        assert_eq!(
            super::run(&h).validity,
            Validity::Valid,
            "{model}: generated history"
        );
    }
}
