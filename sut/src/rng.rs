//! The one seeded RNG a process draws its random choices from (backoff and election jitter).
//! It is seeded from the config's `settings.seed`, the node and the role, so a rerun with the
//! same seed makes the same choices in the same order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ids::fnv1a64;

/// A seeded RNG shared by a process's tasks.
#[derive(Clone)]
pub struct SharedRng {
    inner: Arc<Mutex<ChaCha8Rng>>,
}

impl SharedRng {
    /// Seeded from `seed` and the process's identity.
    pub fn new(seed: u64, node: &str, role: &str) -> SharedRng {
        let mixed = seed ^ fnv1a64(format!("{node}/{role}").as_bytes());
        SharedRng::from_seed(mixed)
    }

    /// Seeded from `seed` alone (tests).
    pub fn from_seed(seed: u64) -> SharedRng {
        SharedRng {
            inner: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    /// Uniform in `[0, max]`.
    pub fn duration_up_to(&self, max: Duration) -> Duration {
        let ms = max.as_millis() as u64;
        match self.inner.lock() {
            Ok(mut r) => Duration::from_millis(r.gen_range(0..=ms)),
            Err(_) => max / 2,
        }
    }
}
