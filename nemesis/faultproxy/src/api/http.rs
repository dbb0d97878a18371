//! The `http` toxic: matches HTTP/1.1 requests on a link by method and path prefix and acts on
//! the matching exchanges only (docs/contracts.md §7). Not a Toxiproxy toxic: Toxiproxy's own
//! clients can still create it, as `type: "http"` with the attributes below.

use serde_json::{Map, Value};

use super::toxic::{check_known, uint, MAX_ATTRIBUTE};

/// What the toxic does to a selected exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpAction {
    /// The request is delivered upstream; the response is swallowed and the client connection
    /// is left hanging (no byte, no close) until the client gives up or the server closes it: to
    /// the client, a timeout after the request was sent.
    DropResponse,
    /// The response is held `delay_ms` ms (from its first byte) before it is passed on.
    Delay,
    /// The request is not forwarded; the proxy answers `status` with a small JSON body.
    Status,
    /// The request is delivered upstream; when its response arrives the connection is reset
    /// (TCP RST) instead: to the client, a connection loss after the request was sent.
    Reset,
}

impl HttpAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpAction::DropResponse => "drop_response",
            HttpAction::Delay => "delay",
            HttpAction::Status => "status",
            HttpAction::Reset => "reset",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<HttpAction> {
        [
            HttpAction::DropResponse,
            HttpAction::Delay,
            HttpAction::Status,
            HttpAction::Reset,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// The attributes of an `http` toxic.
///
/// Selection: every request whose method and path match is counted (per toxic, over all the
/// proxy's connections). The `k`-th match is selected when `k >= nth`, `(k - nth) % every == 0`
/// and fewer than `limit` exchanges were hit so far (`limit` 0: no limit); a selected exchange is
/// hit with probability `toxicity` (the proxy's seeded RNG). Counters survive updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpToxic {
    /// The request method to match (`POST`); `None` matches any.
    pub method: Option<String>,
    /// Prefix of the request path (query excluded) to match; `/` matches every path.
    pub path: String,
    /// What happens to a hit exchange.
    pub action: HttpAction,
    /// Milliseconds the response is held (`delay`).
    pub delay_ms: u64,
    /// The status answered (`status`; 200..=599).
    pub status: u16,
    /// The first matching exchange that can be hit (1-based).
    pub nth: u64,
    /// After the `nth`, every `every`-th matching exchange can be hit.
    pub every: u64,
    /// At most this many hits (0: no limit).
    pub limit: u64,
}

/// Attribute names, in wire order.
const NAMES: &[&str] = &[
    "method", "path", "action", "delay_ms", "status", "nth", "every", "limit",
];
/// Longest `path` prefix accepted.
pub const MAX_PATH_BYTES: usize = 2048;
/// Longest `method` accepted.
const MAX_METHOD_BYTES: usize = 32;

impl Default for HttpToxic {
    fn default() -> HttpToxic {
        HttpToxic {
            method: None,
            path: "/".into(),
            action: HttpAction::DropResponse,
            delay_ms: 0,
            status: 503,
            nth: 1,
            every: 1,
            limit: 0,
        }
    }
}

fn string<'a>(name: &str, v: &'a Value) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("attribute '{name}' must be a string, got {v}"))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl HttpToxic {
    /// Whether a request with `method` and `path` (query excluded) matches.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && path.starts_with(&self.path)
    }

    /// The attributes object as on the wire (every attribute, so that a read, changed and sent
    /// back as an update round-trips).
    pub fn attributes(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "method".into(),
            Value::from(self.method.clone().unwrap_or_default()),
        );
        m.insert("path".into(), Value::from(self.path.clone()));
        m.insert("action".into(), Value::from(self.action.as_str()));
        m.insert("delay_ms".into(), Value::from(self.delay_ms));
        m.insert("status".into(), Value::from(self.status));
        m.insert("nth".into(), Value::from(self.nth));
        m.insert("every".into(), Value::from(self.every));
        m.insert("limit".into(), Value::from(self.limit));
        m
    }

    /// `attrs` laid over `base` (or the defaults); absent and `null` attributes keep their
    /// value.
    pub fn merge(
        base: Option<&HttpToxic>,
        attrs: &Map<String, Value>,
    ) -> Result<HttpToxic, String> {
        check_known("http", NAMES, attrs)?;
        let mut h = base.cloned().unwrap_or_default();
        for (name, v) in attrs.iter().filter(|(_, v)| !v.is_null()) {
            match name.as_str() {
                "method" => {
                    let m = string(name, v)?;
                    if !m.is_empty() && (m.len() > MAX_METHOD_BYTES || !is_token(m)) {
                        return Err(format!("attribute 'method' is not an HTTP method: {m:?}"));
                    }
                    h.method = (!m.is_empty()).then(|| m.to_owned());
                }
                "path" => {
                    let p = string(name, v)?;
                    if !p.starts_with('/') || p.len() > MAX_PATH_BYTES {
                        return Err(format!(
                            "attribute 'path' must start with '/' and have at most {MAX_PATH_BYTES} bytes, got {p:?}"
                        ));
                    }
                    h.path = p.to_owned();
                }
                "action" => {
                    let a = string(name, v)?;
                    h.action = HttpAction::parse(a).ok_or_else(|| {
                        format!("attribute 'action' must be drop_response, delay, status or reset, got {a:?}")
                    })?;
                }
                "delay_ms" => h.delay_ms = uint(name, v, MAX_ATTRIBUTE)?,
                "status" => h.status = u16::try_from(uint(name, v, 599)?).unwrap_or(599),
                "nth" => h.nth = uint(name, v, MAX_ATTRIBUTE)?,
                "every" => h.every = uint(name, v, MAX_ATTRIBUTE)?,
                "limit" => h.limit = uint(name, v, MAX_ATTRIBUTE)?,
                _ => unreachable!("checked against NAMES"),
            }
        }
        if h.nth == 0 || h.every == 0 {
            return Err(format!(
                "attributes 'nth' and 'every' start at 1, got {} and {}",
                h.nth, h.every
            ));
        }
        if h.action == HttpAction::Status && !(200..=599).contains(&h.status) {
            return Err(format!(
                "attribute 'status' must be 200..=599 for action status, got {}",
                h.status
            ));
        }
        Ok(h)
    }

    /// Whether the `k`-th matching exchange (1-based) is selected, given `hits` so far.
    pub fn selects(&self, k: u64, hits: u64) -> bool {
        k >= self.nth && (k - self.nth) % self.every == 0 && (self.limit == 0 || hits < self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    /// Proves the http toxic's attributes parse with defaults, round-trip, merge on update,
    /// and that bad values are refused naming the attribute.
    #[test]
    fn attributes_parse_merge_and_refuse() {
        let h = HttpToxic::merge(None, &obj(json!({"method": "POST", "path": "/refund"})))
            .expect("parses");
        assert_eq!(h.method.as_deref(), Some("POST"));
        assert_eq!(
            (h.action, h.nth, h.every, h.limit),
            (HttpAction::DropResponse, 1, 1, 0)
        );
        assert!(h.matches("POST", "/refund/7") && !h.matches("POST", "/charge"));
        assert!(!h.matches("GET", "/refund"));
        let back = HttpToxic::merge(None, &h.attributes()).expect("round-trips");
        assert_eq!(back, h);
        let up = HttpToxic::merge(
            Some(&h),
            &obj(json!({"action": "delay", "delay_ms": 5, "method": null})),
        )
        .expect("update");
        assert_eq!(
            (up.action, up.delay_ms, up.method.as_deref()),
            (HttpAction::Delay, 5, Some("POST"))
        );
        for (bad, culprit) in [
            (json!({"action": "explode"}), "action"),
            (json!({"path": "refund"}), "path"),
            (json!({"method": "PO ST"}), "method"),
            (json!({"nth": 0}), "nth"),
            (json!({"action": "status", "status": 100}), "status"),
            (json!({"status": 700}), "status"),
            (json!({"limit": -1}), "limit"),
            (json!({"colour": "red"}), "colour"),
        ] {
            let e = HttpToxic::merge(None, &obj(bad.clone())).expect_err("refused");
            assert!(e.contains(culprit), "{bad}: {e}");
        }
    }

    /// Proves nth/every/limit select exactly the documented exchanges.
    #[test]
    fn selection_follows_nth_every_limit() {
        let h = HttpToxic {
            nth: 2,
            every: 3,
            limit: 2,
            ..HttpToxic::default()
        };
        let mut hits = 0;
        let picked: Vec<u64> = (1..=20)
            .filter(|k| {
                let s = h.selects(*k, hits);
                hits += u64::from(s);
                s
            })
            .collect();
        assert_eq!(picked, vec![2, 5]);
    }
}
