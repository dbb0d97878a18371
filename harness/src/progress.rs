//! What a run shows while it works: on a terminal, a spinner line with the phase, elapsed time,
//! ops/s and errors (indicatif); otherwise (tests, CI, a pipe) only plain `harness: ...` lines.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the spinner redraws.
const TICK: Duration = Duration::from_millis(200);

/// Counts for the progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Completed client operations so far.
    pub ops: u64,
    /// Of those, how many did not end `ok`.
    pub errors: u64,
}

/// The run's progress display.
pub struct Progress {
    bar: Option<ProgressBar>,
    last: std::sync::Mutex<(Instant, u64)>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// A spinner when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(TICK);
            bar
        });
        Progress {
            bar,
            last: std::sync::Mutex::new((Instant::now(), 0)),
        }
    }

    /// True when a spinner is drawn.
    pub fn is_drawn(&self) -> bool {
        self.bar.is_some()
    }

    /// Prints `harness: <line>` above the spinner (or plainly).
    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("harness: {line}")),
            None => eprintln!("harness: {line}"),
        }
    }

    /// Enters a phase (`deploy`, `workload`, `quiesce`, `check`) and prints `line`.
    pub fn phase(&self, phase: &str, line: &str) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(phase.to_owned());
        }
        self.line(line);
    }

    /// Updates ops/s (since the previous update) and the error count.
    pub fn update(&self, counts: Counts) {
        let Some(bar) = &self.bar else { return };
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let secs = last.0.elapsed().as_secs_f64().max(1e-3);
        let rate = counts.ops.saturating_sub(last.1) as f64 / secs;
        *last = (Instant::now(), counts.ops);
        bar.set_message(format!(
            "{} ops, {rate:.1} ops/s, {} errors",
            counts.ops, counts.errors
        ));
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
