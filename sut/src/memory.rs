//! Bounds on the process's own memory that no request path sees: malloc arenas and the
//! metrics recorder's histogram samples (docs/soak.md).

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

/// Malloc arenas glibc may create (its default is 8 per core). Each arena keeps the memory its
/// threads freed, so with many threads the resident set grows in steps that are never given
/// back; two arenas keep the contention low on this pipeline's few busy threads.
pub const MALLOC_ARENAS: i32 = 2;

/// How often the recorder's histogram samples are folded into their buckets when nothing
/// scrapes `/metrics` (a scrape folds them too). Without it the samples of an unscraped
/// process accumulate without bound.
pub const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`]. Call it first in `main`, before any
/// thread starts. Elsewhere than glibc it does nothing; `MALLOC_ARENA_MAX` in the environment
/// (glibc's own knob) wins over it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn bound_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists, takes no pointers, and a refused value (return 0) leaves glibc's default.
    let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
    debug_assert_eq!(set, 1, "mallopt(M_ARENA_MAX) refused");
}

/// Elsewhere than glibc the allocator's defaults stay.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn bound_malloc_arenas() {}

/// Folds the recorder's histogram samples into their buckets every
/// [`METRICS_UPKEEP_INTERVAL`], for as long as the process runs.
pub fn spawn_metrics_upkeep(handle: PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}
