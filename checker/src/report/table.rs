//! Evidence tables: what the report shows of a check's details (offending orders, keys,
//! tokens, log lines). Each check builds its own from its typed details
//! ([`crate::check::Check::tables`]).

use std::fmt::Display;

use serde::Serialize;

/// Most rows a table shows in the HTML; `results.json` has everything the check listed.
pub const MAX_HTML_ROWS: usize = 200;

/// One table of evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

impl Table {
    /// A table of `items`, one row each from `row`, at most [`MAX_HTML_ROWS`]; `not_listed`
    /// counts items the check itself left out of its details.
    pub fn of<T>(
        title: &str,
        columns: &[&str],
        items: &[T],
        not_listed: usize,
        row: impl Fn(&T) -> Vec<String>,
    ) -> Table {
        let rows: Vec<Vec<String>> = items.iter().take(MAX_HTML_ROWS).map(&row).collect();
        debug_assert!(rows.iter().all(|r| r.len() == columns.len()), "{title}");
        let hidden_here = items.len().saturating_sub(MAX_HTML_ROWS);
        let note = match (hidden_here, not_listed) {
            (0, 0) => None,
            (h, 0) => Some(format!("{h} more rows in results.json")),
            (0, c) => Some(format!(
                "{c} more not listed by the check (counts above cover them)"
            )),
            (h, c) => Some(format!(
                "{h} more rows in results.json; {c} more not listed by the check"
            )),
        };
        Table {
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows,
            note,
        }
    }

    /// A two-column table of `(key, value)` pairs.
    pub fn pairs<K: Display, V: Display>(
        title: &str,
        key: &str,
        value: &str,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Table {
        let items: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Table::of(title, &[key, value], &items, 0, |(k, v)| {
            vec![k.clone(), v.clone()]
        })
    }

    /// A one-column table of text entries.
    pub fn list(title: &str, entries: &[String], not_listed: usize) -> Table {
        Table::of(title, &["entry"], entries, not_listed, |e| vec![e.clone()])
    }

    /// True when it has no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A number as a cell: integers as they are, others to three decimals without trailing zeros.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    format!("{v:.3}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
}

/// An optional number as a cell (`-` when absent).
pub fn opt_num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), num)
}

/// An optional value as a cell (`-` when absent).
pub fn opt<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Any displayable value as a cell.
pub fn text<T: Display>(v: T) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves rows are capped with a note naming the rows left out, counts of items the check
    /// left out are noted too, and numbers read as people write them.
    #[test]
    fn tables_cap_rows_and_note_what_is_left_out() {
        let items: Vec<u32> = (0..(MAX_HTML_ROWS as u32 + 5)).collect();
        let t = Table::of("n", &["n"], &items, 0, |n| vec![n.to_string()]);
        assert_eq!(t.rows.len(), MAX_HTML_ROWS);
        assert_eq!(t.note.as_deref(), Some("5 more rows in results.json"));
        let t = Table::of("n", &["n"], &items[..2], 4, |n| vec![n.to_string()]);
        assert!(t.note.as_deref().is_some_and(|n| n.contains('4')));
        assert_eq!(num(3.0), "3");
        assert_eq!(num(1.25), "1.25");
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(opt_num(None), "-");
    }
}
