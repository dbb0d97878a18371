//! # checker
//!
//! Reads a run directory and decides whether the run was valid. It owns the history schema
//! (the harness writes it, the checker reads it), the checks, the composed three-valued verdict
//! and the report (results.json, index.html, PNG graphs).
//!
//! It does no I/O beyond reading a run directory and writing its report files into it.
//!
//! ```no_run
//! let dir = std::path::Path::new("reports/latest");
//! let results = checker::analyze(dir, &checker::checks::Params::default())?;
//! std::process::exit(results.validity.exit_code());
//! # Ok::<(), checker::AnalyzeError>(())
//! ```

pub mod analysis;
pub mod check;
pub mod checks;
pub mod expectation;
pub mod lincheck;
pub mod logs;
pub mod metrics;
pub mod promql;
pub mod report;
pub mod rundir;
pub mod verdict;

pub use check::{Check, Verdict};
pub use checks::Params;
pub use rundir::{ReadError, RunData};
pub use verdict::{CheckId, CheckResult, Results, Validity};

/// Loads a run directory, runs every check with `params` and writes the report (drawn with the
/// same `params`). The one call `harness run` and `harness analyze` both make.
pub fn analyze(dir: &std::path::Path, params: &Params) -> Result<Results, AnalyzeError> {
    analyze_compared(dir, None, params)
}

/// As [`analyze`]; with `other`, a second run directory (e.g. the same scenario without the
/// retry budget) whose retry load is drawn on the same graph. `other` is read, never written.
pub fn analyze_compared(
    dir: &std::path::Path,
    other: Option<&std::path::Path>,
    params: &Params,
) -> Result<Results, AnalyzeError> {
    let run = RunData::load(dir)?;
    let other = other.map(RunData::load).transpose()?;
    let checked = checks::check_all(&run, params);
    report::write_report(&run, &checked, &params.for_run(&run.spec), other.as_ref())?;
    Ok(checked.results)
}

/// Why a run could not be analyzed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The run directory could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] report::ReportError),
}
