//! A PromQL subset evaluator for the pipeline's alerting rules (`sut/prometheus/alerts.yml`,
//! copied into every run directory as `alerts.yml`), so that the `alerts` check can say which
//! alerts would have fired from `metrics.csv` alone, with or without a Prometheus in the run.
//!
//! - [`parse`]: the expressions the rules use ([`parse::parse`]), over the tokens of `lex`.
//! - [`store`]: series with staleness, from `metrics.csv` ([`store::Store::from_metrics`]).
//! - [`eval`]: one instant, as Prometheus 2.x evaluates it.
//! - [`rules`]: rule files, `for:`, alert labels and annotations, firing spans.
//! - [`promtool`]: `promtool test rules` files, to run promtool's tests here.

pub mod duration;
pub mod eval;
mod lex;
pub mod parse;
pub mod promtool;
pub mod rules;
pub mod scraped;
pub mod store;
