//! Evidence tables for the report: each check's details turned into the tables a person reads
//! (offending orders, keys, tokens, log lines). A check this module does not know is shown by
//! its `violations` list, if any, and its raw details.

use serde::Serialize;
use serde_json::Value;

use crate::verdict::CheckResult;

/// Most rows a table shows in the HTML; `results.json` has everything the check listed.
pub const MAX_HTML_ROWS: usize = 200;

/// One table of evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// What it shows.
    pub title: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Cells as text.
    pub rows: Vec<Vec<String>>,
    /// E.g. "40 more rows in results.json".
    pub note: Option<String>,
}

/// Renders a JSON value as a cell.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned(),
            _ => n.to_string(),
        },
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A table from `details[list]`, one row per item, columns picked by field name (a field may
/// be a path `a.b`). `not_listed` names the details field counting items left out.
fn table(
    details: &Value,
    list: &str,
    title: &str,
    columns: &[(&str, &str)],
    not_listed: Option<&str>,
) -> Option<Table> {
    let items = details.get(list)?.as_array()?;
    if items.is_empty() {
        return None;
    }
    let pick = |item: &Value, path: &str| {
        let mut v = item;
        for part in path.split('.') {
            v = v.get(part).unwrap_or(&Value::Null);
        }
        cell(v)
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .take(MAX_HTML_ROWS)
        .map(|item| columns.iter().map(|(_, f)| pick(item, f)).collect())
        .collect();
    let hidden_here = items.len().saturating_sub(MAX_HTML_ROWS);
    let hidden_by_check = not_listed
        .and_then(|f| details.get(f))
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let note = match (hidden_here, hidden_by_check) {
        (0, 0) => None,
        (h, 0) => Some(format!("{h} more rows in results.json")),
        (0, c) => Some(format!(
            "{c} more not listed by the check (counts above cover them)"
        )),
        (h, c) => Some(format!(
            "{h} more rows in results.json; {c} more not listed by the check"
        )),
    };
    Some(Table {
        title: title.to_owned(),
        columns: columns.iter().map(|(c, _)| (*c).to_owned()).collect(),
        rows,
        note,
    })
}

fn map_table(details: &Value, field: &str, title: &str, key: &str, value: &str) -> Option<Table> {
    let map = details.get(field)?.as_object()?;
    if map.is_empty() {
        return None;
    }
    Some(Table {
        title: title.to_owned(),
        columns: vec![key.to_owned(), value.to_owned()],
        rows: map.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect(),
        note: None,
    })
}

fn list_table(details: &Value, field: &str, title: &str, not_listed: &str) -> Option<Table> {
    let items = details.get(field)?.as_array()?;
    if items.is_empty() {
        return None;
    }
    let wrapped: Vec<Value> = items.iter().map(|v| serde_json::json!({"v": v})).collect();
    let mut d = serde_json::json!({ "items": wrapped });
    d[not_listed] = details.get(not_listed).cloned().unwrap_or(Value::Null);
    table(&d, "items", title, &[("entry", "v")], Some(not_listed))
}

/// A check this module does not know: its `violations` list, columns from the first item's
/// fields (or one column when the items are not objects).
fn generic(details: &Value) -> Option<Table> {
    let first = details.get("violations")?.as_array()?.first()?;
    let Some(obj) = first.as_object() else {
        return list_table(details, "violations", "Violations", "violations_not_listed");
    };
    let names: Vec<&str> = obj.keys().map(String::as_str).collect();
    let columns: Vec<(&str, &str)> = names.iter().map(|n| (*n, *n)).collect();
    table(
        details,
        "violations",
        "Violations",
        &columns,
        Some("violations_not_listed"),
    )
}

/// The inventory linearizability check: the operation that could not be linearized, the end of
/// the longest linearizable prefix before it, and every SKU's verdict.
fn linearizability(d: &Value) -> Vec<Option<Table>> {
    let failure = d.get("failure").filter(|f| !f.is_null());
    let stuck = failure.map(|f| {
        let mut op = f["operation"].clone();
        op["stock_after_prefix"] = f["stock_after_prefix"].clone();
        op["prefix_length"] = f["prefix_length"].clone();
        serde_json::json!({ "items": [op] })
    });
    let op_columns = [
        ("index", "index"),
        ("process", "process"),
        ("node", "node"),
        ("operation", "op"),
        ("invoked (s)", "invoked_s"),
        ("completed (s)", "completed_s"),
    ];
    let mut stuck_columns = vec![("SKU", "sku")];
    stuck_columns.extend(op_columns);
    stuck_columns.push(("operations before it", "prefix_length"));
    stuck_columns.push(("stock they leave", "stock_after_prefix"));
    let mut prefix_columns = vec![("#", "position")];
    prefix_columns.extend(op_columns);
    vec![
        stuck.and_then(|s| {
            table(
                &s,
                "items",
                "The operation that cannot be linearized: no order of the operations before it \
                 (below) and those still open explains its result",
                &stuck_columns,
                None,
            )
        }),
        failure.and_then(|f| {
            table(
                f,
                "prefix_tail",
                "End of the longest linearizable prefix before it, in linearization order",
                &prefix_columns,
                Some("prefix_not_listed"),
            )
        }),
        table(
            d,
            "skus",
            "Per SKU",
            &[
                ("SKU", "sku"),
                ("initial stock", "initial"),
                ("operations", "operations"),
                ("verdict", "validity"),
                ("configurations explored", "configurations"),
                ("why unknown", "unknown_reason"),
            ],
            None,
        ),
    ]
}

/// The evidence tables of one check.
pub fn tables(check: &CheckResult) -> Vec<Table> {
    let d = &check.details;
    let t = match check.name.as_str() {
        "history" => vec![list_table(
            d,
            "problems",
            "Malformed sequences",
            "problems_not_listed",
        )],
        "effects" => vec![
            table(
                d,
                "violations",
                "Violations",
                &[
                    ("kind", "kind"),
                    ("order", "order_id"),
                    ("evidence", "evidence"),
                ],
                Some("violations_not_listed"),
            ),
            map_table(
                d,
                "violation_counts",
                "Violations by kind",
                "kind",
                "orders",
            ),
            map_table(d, "by_status", "Orders by final status", "status", "orders"),
            list_table(d, "read_errors", "Final-state read errors", "-"),
        ],
        "idempotency" => vec![
            table(
                d,
                "violations",
                "Keys with more than one effect record",
                &[
                    ("ledger", "ledger"),
                    ("key", "key"),
                    ("physical calls", "calls"),
                    ("records", "records"),
                    ("orders", "order_ids"),
                ],
                Some("violations_not_listed"),
            ),
            table(
                d,
                "ledgers",
                "Keys per ledger",
                &[
                    ("ledger", "ledger"),
                    ("keys", "keys"),
                    ("records", "records"),
                    ("physical calls", "physical_calls"),
                    (
                        "keys presented more than once",
                        "keys_presented_more_than_once",
                    ),
                ],
                None,
            ),
            table(
                d,
                "repeated_keys",
                "Keys presented more than once (each made at most one record)",
                &[
                    ("ledger", "ledger"),
                    ("key", "key"),
                    ("physical calls", "calls"),
                    ("records", "records"),
                    ("orders", "order_ids"),
                ],
                Some("repeated_keys_not_listed"),
            ),
        ],
        "fencing" => vec![
            table(
                d,
                "violations",
                "Writes accepted under a stale token",
                &[
                    ("node", "node"),
                    ("domain", "domain"),
                    ("key", "key"),
                    ("token", "token"),
                    ("higher token before", "prior_token"),
                    ("log line", "at"),
                    ("higher token at", "prior_at"),
                    ("message", "message"),
                ],
                Some("violations_not_listed"),
            ),
            map_table(
                d,
                "rejected_by_domain",
                "Stale tokens rejected per domain",
                "domain",
                "rejections",
            ),
            map_table(
                d,
                "max_token_by_domain",
                "Highest accepted token per domain",
                "domain",
                "token",
            ),
            table(
                d,
                "rejections",
                "Rejected stale tokens",
                &[
                    ("node", "node"),
                    ("domain", "domain"),
                    ("key", "key"),
                    ("rejected token", "rejected_token"),
                    ("current token", "current_token"),
                    ("log line", "at"),
                    ("time", "timestamp"),
                ],
                Some("rejections_not_listed"),
            ),
            list_table(d, "missing_logs", "Store logs missing", "-"),
            list_table(d, "read_errors", "Store logs unreadable", "-"),
            list_table(
                d,
                "incomplete_lines",
                "Relevant log lines lacking fields",
                "-",
            ),
        ],
        "retry-load" => vec![
            table(
                d,
                "over_budget",
                "Caller windows over the retry budget",
                &[
                    ("node", "node"),
                    ("role", "role"),
                    ("downstream", "downstream"),
                    ("from (s)", "start_s"),
                    ("to (s)", "end_s"),
                    ("requests", "requests"),
                    ("requests the budget rests on", "budget_requests"),
                    ("retries", "retries"),
                    ("allowed retries", "allowed_retries"),
                    ("refused", "refused"),
                ],
                None,
            ),
            table(
                d,
                "per_downstream",
                "Totals per downstream",
                &[
                    ("downstream", "downstream"),
                    ("callers", "callers"),
                    ("requests", "requests"),
                    ("retries", "retries"),
                    ("attempts per request", "attempts_per_request"),
                    ("retry share", "retry_share"),
                    ("refused by budget", "refused"),
                ],
                None,
            ),
            table(
                d,
                "recovery",
                "Recovery after each heal",
                &[
                    ("fault", "id"),
                    ("what", "fault"),
                    ("healed at (s)", "healed_s"),
                    ("throughput back after (s)", "recovery_s"),
                ],
                None,
            ),
            table(
                d,
                "windows",
                "Per window and downstream",
                &[
                    ("downstream", "downstream"),
                    ("from (s)", "start_s"),
                    ("to (s)", "end_s"),
                    ("requests", "requests"),
                    ("retries", "retries"),
                    ("attempts per request", "attempts_per_request"),
                    ("retry share", "retry_share"),
                    ("allowed retries", "allowed_retries"),
                    ("refused", "refused"),
                ],
                None,
            ),
        ],
        "signals" => vec![table(
            d,
            "signals",
            "Signals and thresholds",
            &[
                ("signal", "title"),
                ("unit", "unit"),
                ("data", "present"),
                ("baseline", "baseline"),
                ("threshold", "threshold"),
                ("rule", "rule"),
            ],
            None,
        )],
        "perf" => vec![table(
            d,
            "phases",
            "Per phase and operation (latency of ok operations, ms)",
            &[
                ("phase", "phase"),
                ("f", "f"),
                ("ops", "ops"),
                ("ok", "ok"),
                ("fail", "fail"),
                ("info", "info"),
                ("open", "open"),
                ("availability", "availability"),
                ("ok/s", "ok_per_s"),
                ("p50", "latency_ms.p50"),
                ("p90", "latency_ms.p90"),
                ("p99", "latency_ms.p99"),
                ("p99.9", "latency_ms.p999"),
                ("max", "latency_ms.max"),
            ],
            None,
        )],
        crate::lincheck::inventory::CHECK_NAME => linearizability(d),
        _ => vec![generic(d)],
    };
    t.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Validity;

    /// Proves the linearizability check's evidence names the failing operation (SKU, index,
    /// process, node, times, the stock the prefix leaves), lists the prefix before it with
    /// positions, and gives each SKU's verdict.
    #[test]
    fn linearizability_names_the_failing_operation() {
        let op = |index: u64, text: &str| {
            serde_json::json!({"index": index, "process": "3", "node": "n2", "sku": "stock-0",
                "op": text, "invoked_s": 1.25, "completed_s": 1.5})
        };
        let mut first = op(10, "reserve 2 ok");
        first["position"] = 7.into();
        let check = CheckResult {
            name: "linearizability".into(),
            validity: Validity::Invalid,
            summary: "SKU \"stock-0\": read -> 2 ...".into(),
            details: serde_json::json!({
                "failure": {
                    "sku": "stock-0",
                    "operation": op(73, "read -> 2"),
                    "stock_after_prefix": "1",
                    "prefix_length": 7,
                    "prefix_not_listed": 6,
                    "prefix_tail": [first],
                },
                "skus": [{"sku": "stock-0", "initial": 10, "operations": 435,
                    "validity": "invalid", "configurations": 42, "unknown_reason": null}],
            }),
        };
        let t = tables(&check);
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!(
            t[0].rows,
            vec![vec![
                "stock-0",
                "73",
                "3",
                "n2",
                "read -> 2",
                "1.25",
                "1.5",
                "7",
                "1"
            ]]
        );
        assert_eq!(t[1].rows[0][..5], ["7", "10", "3", "n2", "reserve 2 ok"]);
        assert!(t[1].note.as_deref().is_some_and(|n| n.contains('6')));
        assert_eq!(t[2].rows[0][..4], ["stock-0", "10", "435", "invalid"]);
        let valid = CheckResult {
            details: serde_json::json!({"failure": null, "skus": []}),
            ..check
        };
        assert!(
            tables(&valid).is_empty(),
            "nothing failed: no failure tables"
        );
    }

    /// Proves a check the report does not know (e.g. one added later) still shows its
    /// violations as a table with columns from their fields, and notes rows left out.
    #[test]
    fn unknown_checks_get_a_generic_table() {
        let check = CheckResult {
            name: "some-later-check".into(),
            validity: Validity::Invalid,
            summary: "1 key not linearizable".into(),
            details: serde_json::json!({
                "violations": [{"key": "sku-1", "ops": [3, 7]}],
                "violations_not_listed": 4,
            }),
        };
        let t = tables(&check);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].columns, vec!["key", "ops"]);
        assert_eq!(t[0].rows, vec![vec!["sku-1".to_owned(), "3, 7".to_owned()]]);
        assert!(t[0].note.as_deref().is_some_and(|n| n.contains('4')));
    }
}
