//! Jepsen's grudges: which nodes stop hearing which. A grudge maps each node to the nodes whose
//! traffic it drops; every grudge here is symmetric (if a drops b, b drops a).

use std::collections::{BTreeMap, BTreeSet};

pub use formats::fault::Shape;
use rand::seq::SliceRandom;
use rand::RngCore;

/// Node → the nodes it no longer hears from.
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// The grudge of a complete split into `components`: every node drops every node of the other
/// components.
pub fn complete(components: &[Vec<String>]) -> Grudge {
    let mut g = Grudge::new();
    for (i, comp) in components.iter().enumerate() {
        let others: BTreeSet<String> = components
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, c)| c.iter().cloned())
            .collect();
        for n in comp {
            g.insert(n.clone(), others.clone());
        }
    }
    g
}

/// `node` alone against the rest.
pub fn isolate(nodes: &[String], node: &str) -> Grudge {
    let rest: Vec<String> = nodes.iter().filter(|n| *n != node).cloned().collect();
    complete(&[vec![node.to_owned()], rest])
}

/// A minority (⌊(n−1)/2⌋ nodes, at least one) starting with `first` if given, the rest shuffled.
pub fn majority_minority(nodes: &[String], first: Option<&str>, rng: &mut dyn RngCore) -> Grudge {
    let mut shuffled: Vec<String> = nodes.to_vec();
    shuffled.shuffle(rng);
    if let Some(f) = first {
        if let Some(i) = shuffled.iter().position(|n| n == f) {
            shuffled.swap(0, i);
        }
    }
    let minority = ((nodes.len().saturating_sub(1)) / 2).max(1);
    let (a, b) = shuffled.split_at(minority.min(shuffled.len()));
    complete(&[a.to_vec(), b.to_vec()])
}

/// Shuffled nodes split in two halves (the first ⌊n/2⌋).
pub fn random_halves(nodes: &[String], rng: &mut dyn RngCore) -> Grudge {
    let mut shuffled: Vec<String> = nodes.to_vec();
    shuffled.shuffle(rng);
    let (a, b) = shuffled.split_at(nodes.len() / 2);
    complete(&[a.to_vec(), b.to_vec()])
}

/// Jepsen's bridge: shuffled nodes, the middle one hears everyone, each half hears only itself
/// and the middle.
pub fn bridge(nodes: &[String], rng: &mut dyn RngCore) -> Grudge {
    let mut shuffled: Vec<String> = nodes.to_vec();
    shuffled.shuffle(rng);
    let mid = nodes.len() / 2;
    let (left, rest) = shuffled.split_at(mid);
    let Some((middle, right)) = rest.split_first() else {
        return Grudge::new();
    };
    let mut g = complete(&[left.to_vec(), right.to_vec()]);
    g.insert(middle.clone(), BTreeSet::new());
    g
}

/// Whether traffic between `a` and `b` is cut.
pub fn cuts(g: &Grudge, a: &str, b: &str) -> bool {
    g.get(a).is_some_and(|s| s.contains(b)) || g.get(b).is_some_and(|s| s.contains(a))
}

/// `n1 | n2 n3` for complete splits, `n1 -x- n3` pairs otherwise.
pub fn describe(g: &Grudge) -> String {
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for (a, bs) in g {
        for b in bs {
            let p = if a < b {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            pairs.insert(p);
        }
    }
    pairs
        .iter()
        .map(|(a, b)| format!("{a}-x-{b}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// Proves each grudge cuts what it should: isolation cuts one node from all others, halves
    /// and majority/minority split all nodes in two, the bridge node keeps both sides, and every
    /// grudge is symmetric.
    #[test]
    fn grudges_have_their_shapes() {
        let ns = nodes(5);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let g = isolate(&ns, "n2");
        assert_eq!(g["n2"].len(), 4);
        assert!(ns.iter().filter(|n| *n != "n2").all(|n| g[n].len() == 1));
        let g = majority_minority(&ns, Some("n4"), &mut rng);
        assert_eq!(
            g["n4"].len(),
            3,
            "leader in a minority of 2 drops the majority of 3"
        );
        let g = random_halves(&ns, &mut rng);
        let sizes: BTreeSet<usize> = g.values().map(BTreeSet::len).collect();
        assert_eq!(sizes, BTreeSet::from([2, 3]));
        let g = bridge(&ns, &mut rng);
        let middle: Vec<_> = g.iter().filter(|(_, s)| s.is_empty()).collect();
        assert_eq!(middle.len(), 1, "one bridge node: {g:?}");
        assert!(g.values().filter(|s| !s.is_empty()).all(|s| s.len() == 2));
        for g in [
            isolate(&ns, "n1"),
            bridge(&ns, &mut rng),
            random_halves(&ns, &mut rng),
        ] {
            for (a, bs) in &g {
                for b in bs {
                    assert!(g[b].contains(a), "symmetric: {a} {b}");
                }
            }
        }
    }
}
