//! Input that must change nothing: malformed bodies and headers on every POST route, bad
//! queries, unknown routes, domains and actions, wrong methods (each a 4xx JSON error), and
//! reads of any path segment or cursor (each the contract's answer).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::requests::{encode, refusal_problem, send, Auth, Req};
use super::shapes::{body_faults, post_routes, render};
use super::Fuzz;
use crate::state::DOMAINS;

/// Cases per POST route of body faults, and of header faults.
const BODY_CASES: u32 = 64;
const HEADER_CASES: u32 = 24;
/// Cases of each other property.
const CASES: u32 = 64;

/// Header faults that make a valid request malformed, with the status they must get.
#[derive(Debug, Clone)]
enum HeaderFault {
    NoKey,
    Key(Vec<u8>),
    ContentType(Option<&'static str>),
    Auth(Auth),
}

/// Bytes no `Idempotency-Key` may be: too long, blank, not ASCII, or holding a control byte
/// (never CR or LF, which would end the header).
fn bad_keys() -> BoxedStrategy<Vec<u8>> {
    let controls: Vec<u8> = (0u8..=8)
        .chain([0x0b, 0x0c])
        .chain(0x0e..=0x1f)
        .chain([0x7f])
        .collect();
    prop_oneof![
        "[!-~]{201,300}".prop_map(String::into_bytes),
        "[ \t]{0,4}".prop_map(String::into_bytes),
        ("[!-~]{0,8}", 0x80u8..=0xff, "[!-~]{0,8}").prop_map(|(a, b, c)| [
            a.as_bytes(),
            &[b],
            c.as_bytes()
        ]
        .concat()),
        ("[!-~]{0,8}", prop::sample::select(controls), "[!-~]{0,8}").prop_map(|(a, b, c)| [
            a.as_bytes(),
            &[b],
            c.as_bytes()
        ]
        .concat()),
    ]
    .boxed()
}

fn header_faults(keyed: bool, open: bool) -> BoxedStrategy<HeaderFault> {
    let types = prop::sample::select(vec![
        None,
        Some("text/plain"),
        Some("application/xml"),
        Some(""),
        Some("application/x-www-form-urlencoded"),
    ]);
    let auth = prop_oneof![
        Just(Auth::Missing),
        Just(Auth::Basic),
        "[0-9a-f]{64}".prop_map(Auth::Wrong),
    ];
    let mut faults = vec![types.prop_map(HeaderFault::ContentType).boxed()];
    if keyed {
        faults.push(Just(HeaderFault::NoKey).boxed());
        faults.push(bad_keys().prop_map(HeaderFault::Key).boxed());
    }
    if !open {
        faults.push(auth.prop_map(HeaderFault::Auth).boxed());
    }
    proptest::strategy::Union::new(faults).boxed()
}

fn fail(what: &str, problem: String) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {problem}"))
}

/// Malformed bodies, then malformed headers on valid bodies, on every POST route.
pub fn posts(f: &Fuzz) {
    for (n, route) in post_routes().into_iter().enumerate() {
        let base = f.c.url("n1", route.role);
        let what = format!("{} {}", route.role, route.path);
        let strategy = (route.valid.clone(), body_faults(), "[a-z0-9]{8}");
        f.run(
            BODY_CASES,
            10 + n as u8,
            &strategy,
            |(valid, fault, key)| {
                let body = render(&valid, &route.fields, &fault);
                let key = route.keyed.then(|| format!("fz-m-{key}"));
                let r = send(
                    &base,
                    &f.secret,
                    &Req::post(route.path, key.as_deref(), body),
                );
                refusal_problem(&r, None).map_or(Ok(()), |p| Err(fail(&what, p)))
            },
        );
        let strategy = (route.valid.clone(), header_faults(route.keyed, route.open));
        f.run(HEADER_CASES, 40 + n as u8, &strategy, |(valid, fault)| {
            let body = serde_json::Value::Object(valid).to_string().into_bytes();
            let key = route.keyed.then_some("fz-m-header");
            let mut req = Req::post(route.path, key, body);
            let want = match fault {
                HeaderFault::NoKey => {
                    req = req.header("idempotency-key", None);
                    400
                }
                HeaderFault::Key(k) => {
                    req = req.header("idempotency-key", Some(k));
                    400
                }
                HeaderFault::ContentType(t) => {
                    req = req.header("content-type", t.map(|t| t.as_bytes().to_vec()));
                    415
                }
                HeaderFault::Auth(a) => {
                    req.auth = a;
                    401
                }
            };
            let r = send(&base, &f.secret, &req);
            refusal_problem(&r, Some(want)).map_or(Ok(()), |p| Err(fail(&what, p)))
        });
    }
}

/// Every GET route of every role, and the POST routes, as (role, method, path).
const ROUTES: &[(&str, &str, &str)] = &[
    ("store", "POST", "/kv/order/write"),
    ("store", "POST", "/kv/order/read"),
    ("store", "POST", "/kv/order/repair"),
    ("store", "GET", "/kv/order/scan"),
    ("store", "GET", "/lease/order"),
    ("store", "POST", "/lease/order/acquire"),
    ("order", "POST", "/orders"),
    ("order", "GET", "/orders/x"),
    ("order", "GET", "/admin/orders"),
    ("order", "GET", "/admin/leader"),
    ("payment", "POST", "/charge"),
    ("payment", "POST", "/refund"),
    ("payment", "GET", "/admin/ledger"),
    ("payment", "GET", "/admin/leader"),
    ("inventory", "POST", "/reserve"),
    ("inventory", "POST", "/release"),
    ("inventory", "GET", "/stock/sku-0"),
    ("inventory", "GET", "/admin/reservations"),
    ("inventory", "GET", "/admin/stock"),
    ("inventory", "GET", "/admin/leader"),
    ("shipping", "POST", "/ship"),
    ("shipping", "POST", "/cancel"),
    ("shipping", "GET", "/admin/shipments"),
    ("shipping", "GET", "/health"),
    ("payment", "GET", "/metrics"),
];

/// The admin reads: (role, path).
const ADMIN_READS: &[(&str, &str)] = &[
    ("order", "/admin/orders"),
    ("payment", "/admin/ledger"),
    ("shipping", "/admin/shipments"),
    ("inventory", "/admin/reservations"),
    ("inventory", "/admin/stock"),
];

/// Bad `limit`s: not digits, negative, fractional, past `usize`.
fn bad_limits() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z]{1,5}",
        "-[0-9]{1,5}",
        "[0-9]{21,30}",
        Just("1.5".to_owned()),
        Just(String::new()),
        Just("18446744073709551616".to_owned()),
    ]
    .boxed()
}

/// Bad `limit`s on the admin reads, bad scan queries.
pub fn queries(f: &Fuzz) {
    let admin = (prop::sample::select(ADMIN_READS), bad_limits());
    f.run(CASES, 70, &admin, |((role, path), limit)| {
        let r = send(
            &f.c.url("n1", role),
            &f.secret,
            &Req::get(format!("{path}?limit={}", encode(limit.as_bytes()))),
        );
        refusal_problem(&r, Some(400)).map_or(Ok(()), |p| Err(fail(path, p)))
    });
    let scan = prop_oneof![
        bad_limits().prop_map(|l| format!("limit={}", encode(l.as_bytes()))),
        Just("limit=0".to_owned()),
        (1001u64..u64::MAX).prop_map(|l| format!("limit={l}")),
        "[a-z]{1,8}"
            .prop_filter("unknown", |k| !["prefix", "after", "limit"]
                .contains(&k.as_str()))
            .prop_map(|k| format!("{k}=1")),
    ];
    let store = f.c.url("n1", "store");
    f.run(CASES, 71, &scan, |query| {
        let r = send(
            &store,
            &f.secret,
            &Req::get(format!("/kv/order/scan?{query}")),
        );
        refusal_problem(&r, Some(400)).map_or(Ok(()), |p| Err(fail("store scan", p)))
    });
}

/// Unknown store domains and lease actions, unknown routes (404 with the secret, 401 without),
/// and every route called with another method.
pub fn unknown(f: &Fuzz) {
    let store = f.c.url("n1", "store");
    let write = br#"{"token":1,"entries":[{"key":"k","value":1,"seq":1}]}"#.to_vec();
    let lease = br#"{"holder":"fuzzer","token":1,"ttl_ms":1000}"#.to_vec();
    let domain = "[a-z]{1,10}".prop_filter("unknown", |d| !DOMAINS.contains(&d.as_str()));
    let places = prop::sample::select(vec!["write", "read", "repair", "scan", "lease", "acquire"]);
    f.run(CASES, 72, &(domain, places), |(d, place)| {
        let req = match place {
            "scan" => Req::get(format!("/kv/{d}/scan")),
            "lease" => Req::get(format!("/lease/{d}")),
            "acquire" => Req::post(format!("/lease/{d}/acquire"), None, lease.clone()),
            "read" => Req::post(format!("/kv/{d}/read"), None, br#"{"keys":["k"]}"#.to_vec()),
            "repair" => {
                let rec = format!(r#"{{"records":[{{"key":"k","domain":"{d}","token":1,"version":{{"token":1,"seq":1}},"value":1}}]}}"#);
                Req::post(format!("/kv/{d}/repair"), None, rec.into_bytes())
            }
            _ => Req::post(format!("/kv/{d}/write"), None, write.clone()),
        };
        let r = send(&store, &f.secret, &req);
        refusal_problem(&r, Some(404)).map_or(Ok(()), |p| Err(fail("unknown domain", p)))
    });
    let action = "[a-z]{1,10}".prop_filter("unknown", |a| {
        !["acquire", "renew", "release"].contains(&a.as_str())
    });
    f.run(CASES / 2, 73, &action, |a| {
        let r = send(
            &store,
            &f.secret,
            &Req::post(format!("/lease/order/{a}"), None, lease.clone()),
        );
        refusal_problem(&r, Some(404)).map_or(Ok(()), |p| Err(fail("unknown lease action", p)))
    });
    let roles = prop::sample::select(vec!["store", "order", "payment", "inventory", "shipping"]);
    let unknown = (
        roles,
        "/zz-[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}",
        any::<bool>(),
    );
    f.run(CASES, 74, &unknown, |(role, path, with_secret)| {
        let mut req = Req::get(path);
        let want = if with_secret {
            404
        } else {
            req.auth = Auth::Missing;
            401
        };
        let r = send(&f.c.url("n1", role), &f.secret, &req);
        refusal_problem(&r, Some(want)).map_or(Ok(()), |p| Err(fail("unknown route", p)))
    });
    let wrong = (
        prop::sample::select(ROUTES),
        prop::sample::select(vec!["PUT", "DELETE", "PATCH", "GET", "POST"]),
    );
    f.run(CASES, 75, &wrong, |((role, method, path), other)| {
        if method == other {
            return Ok(());
        }
        let mut req = Req::get(path);
        req.method = other;
        req.body = (other != "GET").then(|| b"{}".to_vec());
        let r = send(&f.c.url("n1", role), &f.secret, &req);
        refusal_problem(&r, Some(405)).map_or(Ok(()), |p| Err(fail(&format!("{other} {path}"), p)))
    });
}

/// Reads of any path segment (orders, stock): 404, or 400 for bytes that are not UTF-8.
pub fn path_reads(f: &Fuzz) {
    let order = f.c.url("n1", "order");
    let segment = prop_oneof![
        ".{1,40}".prop_map(|s| (s.into_bytes(), vec![404])),
        ".{201,240}".prop_map(|s| (s.into_bytes(), vec![404])),
        prop::collection::vec(any::<u8>(), 1..40).prop_map(|b| (b, vec![400, 404])),
    ];
    f.run(
        CASES,
        80,
        &(segment.clone(), any::<bool>()),
        |((bytes, want), open)| {
            let mut req = Req::get(format!("/orders/{}", encode(&bytes)));
            if open {
                req.auth = Auth::Missing;
            }
            let r = send(&order, &f.secret, &req);
            let ok = want.iter().any(|w| refusal_problem(&r, Some(*w)).is_none());
            prop_assert!(ok, "GET /orders/{:?}: {:?}", bytes, r);
            Ok(())
        },
    );
    let inventory = f.c.url("n1", "inventory");
    f.run(CASES, 81, &segment, |(bytes, want)| {
        let r = send(
            &inventory,
            &f.secret,
            &Req::get(format!("/stock/{}", encode(&bytes))),
        );
        let ok = want.iter().any(|w| refusal_problem(&r, Some(*w)).is_none());
        prop_assert!(ok, "GET /stock/{:?}: {:?}", bytes, r);
        Ok(())
    });
}

/// Pages of every admin read and store scan from any cursor, store reads of any keys, and
/// the lease and leader views.
pub fn page_reads(f: &Fuzz) {
    let page = (prop::sample::select(ADMIN_READS), ".{0,20}", 0usize..5000);
    f.run(CASES, 82, &page, |((role, path), after, limit)| {
        let target = format!("{path}?after={}&limit={limit}", encode(after.as_bytes()));
        let r = send(&f.c.url("n1", role), &f.secret, &Req::get(target));
        let body = r.json();
        prop_assert!(
            r.status == 200 && body["items"].is_array() && body.get("next").is_some(),
            "{path}: {r:?}"
        );
        Ok(())
    });
    let store = f.c.url("n1", "store");
    let scan = (
        prop::sample::select(DOMAINS),
        ".{0,12}",
        ".{0,12}",
        1usize..=1000,
    );
    f.run(CASES, 83, &scan, |(d, prefix, after, limit)| {
        let target = format!(
            "/kv/{d}/scan?prefix={}&after={}&limit={limit}",
            encode(prefix.as_bytes()),
            encode(after.as_bytes())
        );
        let r = send(&store, &f.secret, &Req::get(target));
        prop_assert!(
            r.status == 200 && r.json()["items"].is_array(),
            "scan: {r:?}"
        );
        Ok(())
    });
    let keys = (
        prop::sample::select(DOMAINS),
        prop::collection::vec(".{1,100}", 1..=64),
    );
    f.run(CASES, 84, &keys, |(d, keys)| {
        let body = serde_json::json!({"keys": keys}).to_string().into_bytes();
        let r = send(
            &store,
            &f.secret,
            &Req::post(format!("/kv/{d}/read"), None, body),
        );
        let n = r.json()["records"].as_array().map(Vec::len);
        prop_assert!(r.status == 200 && n == Some(keys.len()), "read: {r:?}");
        Ok(())
    });
    for (role, path) in [
        ("store", "/lease/order".to_owned()),
        ("order", "/admin/leader".into()),
        ("payment", "/admin/leader".into()),
        ("inventory", "/admin/leader".into()),
    ]
    .into_iter()
    .chain(
        DOMAINS
            .iter()
            .filter(|d| pipeline::store::wire::is_fenced(d))
            .map(|d| ("store", format!("/lease/{d}"))),
    ) {
        let r = send(&f.c.url("n1", role), &f.secret, &Req::get(path.clone()));
        assert!(
            r.status == 200 && r.json().is_object(),
            "{role} {path}: {r:?}"
        );
    }
}
