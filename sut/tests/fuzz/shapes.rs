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
    fn new(name: &'static str, kind: Kind, refused: &[&str]) -> Field {
        Field {
            name,
            kind,
            refused: refused.iter().map(|s| (*s).to_owned()).collect(),
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

fn long(n: usize) -> String {
    format!("\"{}\"", "x".repeat(n))
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

/// Every POST route of every role.
pub fn post_routes() -> Vec<PostRoute> {
    let s200 = long(201);
    let empty: &[&str] = &["\"\"", "\"   \""];
    let ids = [empty, &[s200.as_str()]].concat();
    let amounts = ["0", "-1", "-9223372036854775808"];
    let items_refused = [
        "[]".to_owned(),
        format!("[{}]", vec![r#"{"sku":"sku-0","qty":1}"#; 21].join(",")),
        r#"[{"sku":"","qty":1}]"#.into(),
        r#"[{"sku":"sku-0","qty":0}]"#.into(),
        r#"[{"sku":"sku-0","qty":-3}]"#.into(),
        r#"[{"sku":"sku-0"}]"#.into(),
        r#"[{"sku":"sku-0","qty":1,"x":1}]"#.into(),
        r#"[{"sku":"sku-0","qty":"1"}]"#.into(),
        format!(r#"[{{"sku":{},"qty":1}}]"#, long(101)),
    ];
    let items_refused: Vec<&str> = items_refused.iter().map(String::as_str).collect();
    let order = (
        "[a-z]{1,12}",
        prop::collection::vec((sku(), 1i64..5), 1..4),
        1i64..100_000,
    )
        .prop_map(|(customer, items, amount)| {
            let items: Vec<Value> = items
                .into_iter()
                .map(|(sku, qty)| json!({"sku": sku, "qty": qty}))
                .collect();
            object(json!({"customer": customer, "items": items, "amount": amount}))
        })
        .boxed();
    let payment = (id(), 1i64..100_000)
        .prop_map(|(o, a)| object(json!({"order_id": o, "amount": a})))
        .boxed();
    let stock = (sku(), 1i64..4, id(), id())
        .prop_map(|(s, q, o, r)| {
            object(json!({"sku": s, "qty": q, "order_id": o, "reservation": r}))
        })
        .boxed();
    let reserve = stock.clone().prop_map(|mut m| {
        m.remove("reservation");
        m
    });
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
    let lease = (1u64..1000, 1u64..60_000)
        .prop_map(|(t, ttl)| object(json!({"holder": "fuzzer", "token": t, "ttl_ms": ttl})))
        .boxed();
    let entries_refused = [
        "[]".to_owned(),
        format!(
            "[{}]",
            vec![r#"{"key":"k","value":1,"seq":1}"#; 65].join(",")
        ),
        r#"[{"key":"","value":1,"seq":1}]"#.into(),
        format!(r#"[{{"key":{},"value":1,"seq":1}}]"#, long(513)),
        r#"[{"key":"k","value":1}]"#.into(),
        r#"[{"key":"k","value":1,"seq":1,"x":0}]"#.into(),
    ];
    let entries_refused: Vec<&str> = entries_refused.iter().map(String::as_str).collect();
    let keys_refused = [
        "[]".to_owned(),
        format!("[{}]", vec!["\"k\""; 65].join(",")),
        "[\"\"]".into(),
        format!("[{}]", long(513)),
        "[7]".into(),
    ];
    let keys_refused: Vec<&str> = keys_refused.iter().map(String::as_str).collect();
    let records_refused = [
        "[]",
        r#"[{"key":"k","domain":"payment","token":1,"version":{"token":1,"seq":1},"value":1}]"#,
        r#"[{"key":"k","domain":"order","token":2,"version":{"token":1,"seq":1},"value":1}]"#,
        r#"[{"key":"","domain":"order","token":1,"version":{"token":1,"seq":1},"value":1}]"#,
    ];
    let holder = ["\"\"".to_owned(), long(65)];
    let holder: Vec<&str> = holder.iter().map(String::as_str).collect();
    let lease_fields = |ttl: &[&str]| {
        vec![
            Field::new("holder", Kind::Str, &holder),
            Field::new("token", Kind::UInt, &["0"]),
            Field::new("ttl_ms", Kind::DefaultUInt, ttl),
        ]
    };
    let route = |role, path, keyed, fields, valid| PostRoute {
        role,
        path,
        keyed,
        open: path == "/orders",
        fields,
        valid,
    };
    vec![
        route(
            "order",
            "/orders",
            true,
            vec![
                Field::new("customer", Kind::Str, &ids),
                Field::new("items", Kind::List, &items_refused),
                Field::new("amount", Kind::Int, &amounts),
            ],
            order,
        ),
        route(
            "payment",
            "/charge",
            true,
            payment_fields(&ids, &amounts),
            payment.clone(),
        ),
        route(
            "payment",
            "/refund",
            true,
            payment_fields(&ids, &amounts),
            payment,
        ),
        route(
            "inventory",
            "/reserve",
            true,
            stock_fields(false),
            reserve.boxed(),
        ),
        route("inventory", "/release", true, stock_fields(true), stock),
        route(
            "shipping",
            "/ship",
            true,
            vec![Field::new("order_id", Kind::Str, &ids)],
            id().prop_map(|o| object(json!({"order_id": o}))).boxed(),
        ),
        route(
            "shipping",
            "/cancel",
            true,
            vec![
                Field::new("order_id", Kind::Str, &ids),
                Field::new(
                    "shipment_key",
                    Kind::Str,
                    &[empty, &["\"no-such-shipment\""]].concat(),
                ),
            ],
            (id(), id())
                .prop_map(|(o, k)| object(json!({"order_id": o, "shipment_key": k})))
                .boxed(),
        ),
        route(
            "store",
            "/kv/order/write",
            false,
            vec![
                Field::new("token", Kind::UInt, &[]),
                Field::new("entries", Kind::List, &entries_refused),
            ],
            write,
        ),
        route(
            "store",
            "/kv/order/read",
            false,
            vec![Field::new("keys", Kind::List, &keys_refused)],
            read,
        ),
        route(
            "store",
            "/kv/order/repair",
            false,
            vec![Field::new("records", Kind::List, &records_refused)],
            repair,
        ),
        route(
            "store",
            "/lease/order/acquire",
            false,
            lease_fields(&["0", "60001"]),
            lease.clone(),
        ),
        route(
            "store",
            "/lease/order/renew",
            false,
            lease_fields(&["0", "60001"]),
            lease.clone(),
        ),
        route(
            "store",
            "/lease/order/release",
            false,
            lease_fields(&[]),
            lease,
        ),
    ]
}

fn payment_fields(ids: &[&str], amounts: &[&str]) -> Vec<Field> {
    vec![
        Field::new("order_id", Kind::Str, ids),
        Field::new("amount", Kind::Int, amounts),
    ]
}

fn stock_fields(release: bool) -> Vec<Field> {
    let qty = ["0", "-1", "-9223372036854775808"];
    let mut fields = vec![
        Field::new("sku", Kind::Str, &["\"\"", "\"nope\"", "\"sku-10\""]),
        Field::new("qty", Kind::Int, &qty),
        Field::new("order_id", Kind::DefaultStr, &[&long(201)]),
    ];
    if release {
        fields.push(Field::new(
            "reservation",
            Kind::OptStr,
            &["\"no-such-reservation\""],
        ));
    }
    fields
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
