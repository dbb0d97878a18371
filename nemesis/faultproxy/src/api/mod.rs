//! Toxiproxy's REST API shapes, shared by the `faultproxy` server and the nemesis's typed client
//! so the two cannot drift apart. Field names and units are Toxiproxy's (milliseconds, KB/s),
//! fixed by the wire format. Optional request fields may be absent or `null`, as Toxiproxy's
//! own clients send them.

pub mod http;
pub mod toxic;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

pub use http::{HttpAction, HttpToxic};
pub use toxic::{Stream, Toxic, ToxicKind, ToxicWire, WireError, MAX_ATTRIBUTE};

/// `null` read as the type's default (Go's decoder leaves a field alone on `null`).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A proxy with its toxics, as every proxy read answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proxy {
    /// Unique name.
    pub name: String,
    /// Where it listens (the bound address once started).
    pub listen: String,
    /// Where it connects.
    pub upstream: String,
    /// Whether it accepts connections.
    pub enabled: bool,
    /// Its toxics, upstream first, each stream in creation order.
    #[serde(default, deserialize_with = "null_default")]
    pub toxics: Vec<Toxic>,
}

/// The body of `POST /proxies` and one element of `POST /populate`. Other fields (Go's client
/// sends `"toxics": null`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProxy {
    /// Unique name (required).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Where to listen; empty means `127.0.0.1:0`, and port 0 picks a free port.
    #[serde(default, deserialize_with = "null_default")]
    pub listen: String,
    /// Where to connect (required).
    #[serde(default, deserialize_with = "null_default")]
    pub upstream: String,
    /// Starts enabled unless false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The body of `POST|PATCH /proxies/{name}`: fields left out (or `null`) keep their values;
/// others (`name`, `toxics`, as Go's client sends the whole proxy back) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyUpdate {
    /// New listen address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// New upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Enable or disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The body of `POST|PATCH /proxies/{name}/toxics/{toxic}`: attributes laid over the current
/// ones, and the toxicity; absent or `null` fields keep their values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToxicUpdate {
    /// Attributes laid over the current ones.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub attributes: Map<String, Value>,
    /// New toxicity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<f32>,
}

/// The answer of `POST /populate`: 201 with the proxies created or kept. When creating one
/// fails, the proxies before it stay and the answer carries the error too (with its status):
/// `{"error": .., "status": .., "proxies": [..]}`, as Toxiproxy answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Populated {
    /// What went wrong, if something did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The HTTP status of the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The proxies created or kept, in request order.
    #[serde(default, deserialize_with = "null_default")]
    pub proxies: Vec<Proxy>,
}

/// An error answer: `{"error": "proxy not found", "status": 404}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong (Toxiproxy's text for the errors it has).
    pub error: String,
    /// The HTTP status, repeated.
    pub status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Proves toxics round-trip through Toxiproxy's wire shape, defaults apply (also for
    /// `null` fields, as Go's client sends them), and malformed toxics are refused with
    /// Toxiproxy's text or a message naming the culprit.
    #[test]
    fn toxic_wire_shape() {
        let t: Toxic =
            serde_json::from_value(json!({"type": "latency", "attributes": {"latency": 50}}))
                .expect("parses");
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(
            t.kind,
            ToxicKind::Latency {
                latency: 50,
                jitter: 0
            }
        );
        let v = serde_json::to_value(&t).expect("serializes");
        assert_eq!(
            v,
            json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
                   "toxicity": 1.0, "attributes": {"latency": 50, "jitter": 0}})
        );
        let go: Toxic = serde_json::from_value(json!({"name": "", "type": "timeout",
            "toxicity": null, "attributes": null, "stream": null}))
        .expect("Go client's nulls");
        assert_eq!(go.kind, ToxicKind::Timeout { timeout: 0 });
        assert_eq!((go.toxicity, go.stream), (1.0, Stream::Downstream));
        for (bad, text) in [
            (
                json!({"type": "latency", "attributes": {"latency": -1}}),
                "'latency'",
            ),
            (json!({"type": "nope"}), "invalid toxic type"),
            (
                json!({"type": "noop", "stream": "sideways"}),
                "stream was invalid",
            ),
            (
                json!({"type": "http", "stream": "upstream"}),
                "must be downstream",
            ),
        ] {
            let e = serde_json::from_value::<Toxic>(bad.clone()).expect_err("refused");
            assert!(e.to_string().contains(text), "{bad}: {e}");
        }
        let up = ToxicKind::Latency {
            latency: 5,
            jitter: 1,
        }
        .updated(
            json!({"jitter": 9, "latency": null})
                .as_object()
                .expect("obj"),
        )
        .expect("update");
        assert_eq!(
            up,
            ToxicKind::Latency {
                latency: 5,
                jitter: 9
            }
        );
        let kind: ToxicKind =
            serde_json::from_value(json!({"type": "bandwidth", "attributes": {"rate": 3}}))
                .expect("kind alone");
        assert_eq!(kind, ToxicKind::Bandwidth { rate: 3 });
    }

    /// Proves proxy bodies accept `null` for optional fields and ignore the extra fields
    /// Toxiproxy's clients send.
    #[test]
    fn proxy_bodies_accept_client_shapes() {
        let p: NewProxy = serde_json::from_value(json!({"name": "a", "listen": null,
            "upstream": "127.0.0.1:1", "enabled": null, "toxics": null}))
        .expect("parses");
        assert_eq!((p.listen.as_str(), p.enabled), ("", None));
        let u: ProxyUpdate = serde_json::from_value(json!({"name": "a", "listen": "127.0.0.1:5",
            "upstream": "127.0.0.1:1", "enabled": false, "toxics": [{"type": "noop"}]}))
        .expect("parses");
        assert_eq!(u.enabled, Some(false));
        let t: ToxicUpdate =
            serde_json::from_value(json!({"attributes": null})).expect("null attributes");
        assert!(t.attributes.is_empty() && t.toxicity.is_none());
    }
}
