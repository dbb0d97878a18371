//! The one shape every check has: a name, typed details, a run over the run directory's data,
//! and the evidence tables the report renders from its own details.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::checks::Params;
use crate::report::table::Table;
use crate::rundir::RunData;
use crate::verdict::{CheckId, Validity};

/// What one check found, with its typed details and any pages of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<D> {
    /// Its verdict.
    pub validity: Validity,
    /// One sentence a person reads first.
    pub summary: String,
    /// The evidence.
    pub details: D,
    /// Extra report pages it wrote (e.g. `linearizability.html`).
    pub pages: Vec<Page>,
}

impl<D> Verdict<D> {
    /// A verdict without pages.
    pub fn new(validity: Validity, summary: impl Into<String>, details: D) -> Verdict<D> {
        Verdict {
            validity,
            summary: summary.into(),
            details,
            pages: Vec::new(),
        }
    }
}

/// A report page a check renders itself, written into the run directory with the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// File name in the run directory.
    pub file: &'static str,
    /// Its HTML.
    pub html: String,
}

/// One check (Jepsen's checker protocol): `run` reads a loaded run and the parameters, and
/// returns a verdict with typed details; `tables` turns those details into the report's
/// evidence tables. A field of the details is therefore named by the compiler everywhere it is
/// read: in the tables, in scenario expectations (`crate::expectation`), in tests.
pub trait Check {
    /// The check's id, also its name in `results.json`.
    const ID: CheckId;
    /// The evidence it records.
    type Details: Serialize + DeserializeOwned + std::fmt::Debug;

    /// Runs the check.
    fn run(run: &RunData, params: &Params) -> Verdict<Self::Details>;

    /// The evidence tables of its details (empty tables are left out by the report).
    fn tables(details: &Self::Details) -> Vec<Table>;
}
