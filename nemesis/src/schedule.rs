//! Seeded schedules: when each fault starts and how long it lasts. The same seed gives the same
//! schedule.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::fault::FaultPlan;

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// Offset from the start of the workload.
    pub at: Duration,
    /// How long it stays before its heal.
    pub duration: Duration,
    /// What to do.
    pub plan: FaultPlan,
}

/// A pause of `role` once, starting between a quarter and half of `time_limit`, lasting about a
/// quarter of it, healed well before the workload ends. The node is chosen at start time from
/// the run's seeded RNG.
pub fn single_pause(seed: u64, time_limit: Duration, role: &str) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let quarter_ms = (time_limit.as_millis() / 4).max(1) as u64;
    let at = Duration::from_millis(quarter_ms + rng.gen_range(0..=quarter_ms));
    vec![Planned {
        at,
        duration: Duration::from_millis(quarter_ms),
        plan: FaultPlan::Pause {
            role: role.to_owned(),
            node: None,
        },
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves a schedule is a function of its seed and heals before the time limit.
    #[test]
    fn same_seed_same_schedule() {
        let t = Duration::from_secs(20);
        assert_eq!(single_pause(7, t, "payment"), single_pause(7, t, "payment"));
        let s = single_pause(7, t, "payment");
        assert!(s.iter().all(|p| p.at + p.duration < t));
        let distinct: std::collections::HashSet<_> = (0..20)
            .map(|seed| single_pause(seed, t, "payment")[0].at)
            .collect();
        assert!(
            distinct.len() > 1,
            "different seeds should give different schedules"
        );
    }
}
