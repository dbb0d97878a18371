//! The JSON bodies of every POST route of every role: a strategy for valid bodies and, per
//! field, the values the route must refuse; and body faults that turn a valid body into one
//! that is malformed by construction (so that a case can never be a valid request by chance).

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

/// What a field holds, which decides the values of a wrong type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Str,
    /// An `i64`.
    Int,
    /// A `u64`.
    UInt,
    /// An array.
    List,
    /// A string with a default (absent is fine, `null` is not).
    DefaultStr,
    /// An optional string (absent and `null` are fine).
    OptStr,
    /// A `u64` with a default.
    DefaultUInt,
}

/// Raw JSON tokens of another type than `kind` (or out of its range).
fn wrong_types(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Str | Kind::DefaultStr => &["null", "true", "7", "1.5", "[]", "{}", "1e400"],
        Kind::OptStr => &["true", "7", "1.5", "[]", "{}"],
        Kind::Int => &[
            "null",
            "true",
            "\"7\"",
            "1.5",
            "[]",
            "{}",
            "1e400",
            "9223372036854775808",
            "-9223372036854775809",
        ],
        Kind::UInt | Kind::DefaultUInt => &[
            "null",
            "true",
            "\"7\"",
            "1.5",
            "[]",
            "{}",
            "1e400",
            "18446744073709551616",
            "-1",
        ],
        Kind::List => &["null", "true", "7", "\"x\"", "{}"],
    }
}

/// One field of a body.
#[derive(Debug, Clone)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Raw JSON values of the right type that the route refuses.
    pub refused: Vec<String>,
}

impl Field {
    fn new<S: Into<String>>(
        name: &'static str,
        kind: Kind,
        refused: impl IntoIterator<Item = S>,
    ) -> Field {
        Field {
            name,
            kind,
            refused: refused.into_iter().map(Into::into).collect(),
        }
    }

    fn required(&self) -> bool {
        matches!(self.kind, Kind::Str | Kind::Int | Kind::UInt | Kind::List)
    }
}

/// A POST route: where, whether it takes an idempotency key, its fields and valid bodies.
pub struct PostRoute {
    /// The role serving it.
    pub role: &'static str,
    /// Its path.
    pub path: &'static str,
    /// It needs `Idempotency-Key`.
    pub keyed: bool,
    /// Open to callers without the secret.
    pub open: bool,
    /// Its fields.
    pub fields: Vec<Field>,
    /// Valid bodies.
    pub valid: BoxedStrategy<Map<String, Value>>,
}

fn route(
    role: &'static str,
    path: &'static str,
    fields: Vec<Field>,
    valid: BoxedStrategy<Map<String, Value>>,
) -> PostRoute {
    PostRoute {
        role,
        path,
        keyed: role != "store",
        open: path == "/orders",
        fields,
        valid,
    }
}

/// A JSON string of `n` characters.
fn long(n: usize) -> String {
    format!("\"{}\"", "x".repeat(n))
}

/// `n` copies of `item` as a JSON array.
fn array_of(item: &str, n: usize) -> String {
    format!("[{}]", vec![item; n].join(","))
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("bodies are objects"),
    }
}

fn id() -> BoxedStrategy<String> {
    "fz-[a-z0-9]{1,12}".boxed()
}

fn sku() -> BoxedStrategy<String> {
    "sku-[0-9]".boxed()
}

/// Identifiers every service refuses: blank, or over 200 characters.
fn bad_ids() -> Vec<String> {
    vec!["\"\"".into(), "\"   \"".into(), long(201)]
}

/// Amounts and quantities every service refuses.
const NOT_POSITIVE: [&str; 3] = ["0", "-1", "-9223372036854775808"];

/// Every POST route of every role.
pub fn post_routes() -> Vec<PostRoute> {
    let mut routes = vec![order_route()];
    routes.extend(effect_routes());
    routes.extend(store_routes());
    routes
}

fn order_route() -> PostRoute {
    let items_refused = [
        "[]".to_owned(),
        array_of(r#"{"sku":"sku-0","qty":1}"#, 21),
        r#"[{"sku":"","qty":1}]"#.into(),
        r#"[{"sku":"sku-0","qty":0}]"#.into(),
        r#"[{"sku":"sku-0","qty":-3}]"#.into(),
        r#"[{"sku":"sku-0"}]"#.into(),
        r#"[{"sku":"sku-0","qty":1,"x":1}]"#.into(),
        r#"[{"sku":"sku-0","qty":"1"}]"#.into(),
        format!(r#"[{{"sku":{},"qty":1}}]"#, long(101)),
    ];
    let items = prop::collection::vec((sku(), 1i64..5), 1..4);
    let valid = ("[a-z]{1,12}", items, 1i64..100_000)
        .prop_map(|(customer, items, amount)| {
            let items: Vec<Value> = items
                .into_iter()
                .map(|(sku, qty)| json!({"sku": sku, "qty": qty}))
                .collect();
            object(json!({"customer": customer, "items": items, "amount": amount}))
        })
        .boxed();
    let fields = vec![
        Field::new("customer", Kind::Str, bad_ids()),
        Field::new("items", Kind::List, items_refused),
        Field::new("amount", Kind::Int, NOT_POSITIVE),
    ];
    route("order", "/orders", fields, valid)
}

/// The routes of payment, inventory and shipping.
fn effect_routes() -> Vec<PostRoute> {
    let payment = (id(), 1i64..100_000)
        .prop_map(|(o, a)| object(json!({"order_id": o, "amount": a})))
        .boxed();
    let payment_fields = || {
        vec![
            Field::new("order_id", Kind::Str, bad_ids()),
            Field::new("amount", Kind::Int, NOT_POSITIVE),
        ]
    };
    let release = (sku(), 1i64..4, id(), id())
        .prop_map(|(s, q, o, r)| {
            object(json!({"sku": s, "qty": q, "order_id": o, "reservation": r}))
        })
        .boxed();
    let reserve = release
        .clone()
        .prop_map(|mut m| {
            m.remove("reservation");
            m
        })
        .boxed();
    let ship = id().prop_map(|o| object(json!({"order_id": o}))).boxed();
    let cancel = (id(), id())
        .prop_map(|(o, k)| object(json!({"order_id": o, "shipment_key": k})))
        .boxed();
    let mut shipment_keys = bad_ids();
    shipment_keys.push("\"no-such-shipment\"".into());
    vec![
        route("payment", "/charge", payment_fields(), payment.clone()),
        route("payment", "/refund", payment_fields(), payment),
        route("inventory", "/reserve", stock_fields(false), reserve),
        route("inventory", "/release", stock_fields(true), release),
        route(
            "shipping",
            "/ship",
            vec![Field::new("order_id", Kind::Str, bad_ids())],
            ship,
        ),
        route(
            "shipping",
            "/cancel",
            vec![
                Field::new("order_id", Kind::Str, bad_ids()),
                Field::new("shipment_key", Kind::Str, shipment_keys),
            ],
            cancel,
        ),
    ]
}

fn stock_fields(release: bool) -> Vec<Field> {
    let mut fields = vec![
        Field::new("sku", Kind::Str, ["\"\"", "\"nope\"", "\"sku-10\""]),
        Field::new("qty", Kind::Int, NOT_POSITIVE),
        Field::new("order_id", Kind::DefaultStr, [long(201)]),
    ];
    if release {
        fields.push(Field::new(
            "reservation",
            Kind::OptStr,
            ["\"no-such-reservation\""],
        ));
    }
    fields
}

/// The store's POST routes, in the `order` domain.
fn store_routes() -> Vec<PostRoute> {
    let entry = ("fuzz/[a-z]{1,8}", any::<u8>(), 1u64..1000)
        .prop_map(|(k, v, seq)| json!({"key": k, "value": v, "seq": seq}));
    let write = (1u64..1000, prop::collection::vec(entry, 1..3))
        .prop_map(|(t, e)| object(json!({"token": t, "entries": e})))
        .boxed();
    let read = prop::collection::vec("fuzz/[a-z]{1,8}", 1..3)
        .prop_map(|k| object(json!({"keys": k})))
        .boxed();
    let record = ("fuzz/[a-z]{1,8}", 1u64..1000, 1u64..1000).prop_map(|(k, t, seq)| {
        json!({"key": k, "domain": "order", "token": t, "version": {"token": t, "seq": seq}, "value": 1})
    });
    let repair = prop::collection::vec(record, 1..3)
        .prop_map(|r| object(json!({"records": r})))
        .boxed();
    let entries_refused = [
        "[]".to_owned(),
        array_of(r#"{"key":"k","value":1,"seq":1}"#, 65),
        r#"[{"key":"","value":1,"seq":1}]"#.into(),
        format!(r#"[{{"key":{},"value":1,"seq":1}}]"#, long(513)),
        r#"[{"key":"k","value":1}]"#.into(),
        r#"[{"key":"k","value":1,"seq":1,"x":0}]"#.into(),
    ];
    let keys_refused = [
        "[]".to_owned(),
        array_of("\"k\"", 65),
        "[\"\"]".into(),
        format!("[{}]", long(513)),
        "[7]".into(),
    ];
    let records_refused = [
        "[]",
        r#"[{"key":"k","domain":"payment","token":1,"version":{"token":1,"seq":1},"value":1}]"#,
        r#"[{"key":"k","domain":"order","token":2,"version":{"token":1,"seq":1},"value":1}]"#,
        r#"[{"key":"","domain":"order","token":1,"version":{"token":1,"seq":1},"value":1}]"#,
    ];
    let mut routes = vec![
        route(
            "store",
            "/kv/order/write",
            vec![
                Field::new("token", Kind::UInt, Vec::<String>::new()),
                Field::new("entries", Kind::List, entries_refused),
            ],
            write,
        ),
        route(
            "store",
            "/kv/order/read",
            vec![Field::new("keys", Kind::List, keys_refused)],
            read,
        ),
        route(
            "store",
            "/kv/order/repair",
            vec![Field::new("records", Kind::List, records_refused)],
            repair,
        ),
    ];
    routes.extend(lease_routes());
    routes
}

/// The store's lease actions, in the `order` domain (a release takes no `ttl_ms`).
fn lease_routes() -> Vec<PostRoute> {
    let lease = (1u64..1000, 1u64..60_000)
        .prop_map(|(t, ttl)| object(json!({"holder": "fuzzer", "token": t, "ttl_ms": ttl})))
        .boxed();
    let fields = |ttl: &[&str]| {
        vec![
            Field::new("holder", Kind::Str, ["\"\"".to_owned(), long(65)]),
            Field::new("token", Kind::UInt, ["0"]),
            Field::new("ttl_ms", Kind::DefaultUInt, ttl.to_vec()),
        ]
    };
    vec![
        route(
            "store",
            "/lease/order/acquire",
            fields(&["0", "60001"]),
            lease.clone(),
        ),
        route(
            "store",
            "/lease/order/renew",
            fields(&["0", "60001"]),
            lease.clone(),
        ),
        route("store", "/lease/order/release", fields(&[]), lease),
    ]
}

/// How a valid body is made malformed.
#[derive(Debug, Clone)]
pub enum BodyFault {
    /// Bytes that are not JSON (they start with `}`).
    NotJson(Vec<u8>),
    /// The valid body's text cut short (its closing brace is gone).
    Truncated(Index),
    /// A required field left out.
    Missing(Index),
    /// A field of another type.
    WrongType(Index, Index),
    /// A field with a value of its type that the route refuses.
    Refused(Index, Index),
    /// An extra field (every body denies unknown fields).
    Extra(String, u8),
}

/// Body faults.
pub fn body_faults() -> BoxedStrategy<BodyFault> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(BodyFault::NotJson),
        1 => any::<Index>().prop_map(BodyFault::Truncated),
        2 => any::<Index>().prop_map(BodyFault::Missing),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(f, t)| BodyFault::WrongType(f, t)),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(f, r)| BodyFault::Refused(f, r)),
        1 => ("[a-z]{0,8}", any::<u8>()).prop_map(|(n, v)| BodyFault::Extra(n, v)),
    ]
    .boxed()
}

const RAW: &str = "@@raw@@";

/// `body` with field `name` set to the raw JSON token `token`.
fn with_raw(body: &Map<String, Value>, name: &str, token: &str) -> Vec<u8> {
    let mut m = body.clone();
    m.insert(name.to_owned(), Value::String(RAW.into()));
    Value::Object(m)
        .to_string()
        .replace(&format!("\"{RAW}\""), token)
        .into_bytes()
}

/// The bytes of `valid` with `fault` applied to the fields `fields`.
pub fn render(valid: &Map<String, Value>, fields: &[Field], fault: &BodyFault) -> Vec<u8> {
    let text = Value::Object(valid.clone()).to_string();
    match fault {
        BodyFault::NotJson(b) => [&b"}"[..], b].concat(),
        BodyFault::Truncated(at) => text.as_bytes()[..at.index(text.len() - 1)].to_vec(),
        BodyFault::Missing(i) => {
            let required: Vec<&Field> = fields.iter().filter(|f| f.required()).collect();
            let mut m = valid.clone();
            m.remove(required[i.index(required.len())].name);
            Value::Object(m).to_string().into_bytes()
        }
        BodyFault::WrongType(i, t) => {
            let f = &fields[i.index(fields.len())];
            let tokens = wrong_types(f.kind);
            with_raw(valid, f.name, tokens[t.index(tokens.len())])
        }
        BodyFault::Refused(i, r) => {
            let refusing: Vec<&Field> = fields.iter().filter(|f| !f.refused.is_empty()).collect();
            if refusing.is_empty() {
                return with_raw(valid, "x_extra", "1");
            }
            let f = refusing[i.index(refusing.len())];
            with_raw(valid, f.name, &f.refused[r.index(f.refused.len())])
        }
        BodyFault::Extra(name, v) => with_raw(valid, &format!("x_{name}"), &v.to_string()),
    }
}
