//! One error shape on every path of every role: unknown routes, wrong methods, bad paths and
//! queries, over-long request targets, over-large heads and bodies, garbage instead of HTTP.

use std::io::Write;
use std::time::Duration;

use crate::cluster::{Cluster, Spec};
use crate::raw::{self, assert_json_error, Reply};

/// Each role with one of its POST routes and one GET route that takes a path or a query.
const ROUTES: &[(&str, &str, &str)] = &[
    ("store", "/kv/order/write", "/kv/order/scan?limit=abc"),
    ("order", "/orders", "/admin/orders?limit=-1"),
    ("payment", "/charge", "/admin/ledger?limit=1e9"),
    ("inventory", "/reserve", "/stock/%FF%FE"),
    ("shipping", "/ship", "/admin/shipments?limit=x"),
];

/// Eleven megabytes.
const HUGE_BODY_BYTES: usize = 11 * 1024 * 1024;

fn reply_of(resp: reqwest::blocking::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// POSTs an 11 MB body with a `content-length` to `url`.
fn huge_post(c: &Cluster, url: &str) -> Reply {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let resp = client
        .post(url)
        .bearer_auth(c.secret())
        .header("content-type", "application/json")
        .header("idempotency-key", "huge")
        .body(vec![b' '; HUGE_BODY_BYTES])
        .send()
        .unwrap_or_else(|e| panic!("{url}: no answer to the huge body: {e:?}"));
    reply_of(resp)
}

/// POSTs an 11 MB chunked body to `path` over a raw connection (reqwest's blocking client
/// reports the body it could not finish sending, not the answer that came first).
fn huge_chunked(c: &Cluster, base: &str, path: &str) -> Reply {
    const CHUNK_BYTES: usize = 64 * 1024;
    let mut s = raw::connect(base);
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\nidempotency-key: huge\r\n\
         transfer-encoding: chunked\r\n\r\n",
        c.secret()
    );
    s.write_all(head.as_bytes()).expect("head");
    let mut chunk = format!("{CHUNK_BYTES:x}\r\n").into_bytes();
    chunk.extend(std::iter::repeat_n(b' ', CHUNK_BYTES));
    chunk.extend_from_slice(b"\r\n");
    for _ in 0..HUGE_BODY_BYTES / CHUNK_BYTES {
        if s.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    raw::read_reply(&mut s, Duration::from_secs(20)).expect("an answer to the chunked body")
}

/// Proves every role answers, each as a JSON `{error, message}` with its status and
/// `content-type: application/json`: an unknown route 404 (401 without the secret: only the
/// open routes are routed for anyone), a wrong method 405 with `allow`, a bad query or path
/// segment 400, a 20,000- and a 100,000-character path 414, an 11 MB body (with a length and
/// chunked) 413 `body_too_large`, a 200 KB header 431, and bytes that are not HTTP 400.
#[test]
fn every_error_has_one_json_shape() {
    let c = Spec::new(1, &["inventory", "payment", "shipping", "order"]).start();
    let secret = c.secret();
    for (role, post_route, bad_get) in ROUTES {
        let base = c.url("n1", role);
        let what = |w: &str| format!("{role}: {w}");
        let r = raw::get(&base, "/no/such/route", Some(&secret));
        assert_json_error(&r, 404, Some("not_found"), &what("unknown route"));
        let r = raw::get(&base, "/no/such/route", None);
        assert_json_error(
            &r,
            401,
            Some("unauthorized"),
            &what("unknown route, no secret"),
        );

        let r = raw::exchange(
            &base,
            b"DELETE /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        );
        assert_json_error(&r, 405, Some("method_not_allowed"), &what("DELETE /health"));
        assert!(
            r.header("allow").is_some_and(|a| a.contains("GET")),
            "{r:?}"
        );
        let r = raw::get(&base, post_route, Some(&secret));
        assert_json_error(
            &r,
            405,
            Some("method_not_allowed"),
            &what("GET of a POST route"),
        );

        let r = raw::get(&base, bad_get, Some(&secret));
        assert_json_error(&r, 400, None, &what(bad_get));

        for len in [20_000, 100_000] {
            let path = format!("/{}", "a".repeat(len));
            let r = raw::get(&base, &path, Some(&secret));
            assert_json_error(
                &r,
                414,
                Some("uri_too_long"),
                &what(&format!("{len}-char path")),
            );
        }

        let r = huge_post(&c, &format!("{base}{post_route}"));
        assert_json_error(&r, 413, Some("body_too_large"), &what("11 MB body"));
        let r = huge_chunked(&c, &base, post_route);
        assert_json_error(&r, 413, Some("body_too_large"), &what("11 MB chunked body"));

        let big_header = format!(
            "GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\nconnection: close\r\n\r\n",
            "b".repeat(200_000)
        );
        let r = raw::exchange(&base, big_header.as_bytes());
        assert_json_error(&r, 431, Some("headers_too_large"), &what("200 KB header"));
        let r = raw::exchange(&base, b"\x16\x03\x01 not http at all\r\n\r\n");
        assert_json_error(&r, 400, Some("bad_request"), &what("garbage"));

        let r = raw::get(&base, "/health", None);
        assert_eq!(r.status, 200, "{role} still healthy: {r:?}");
    }
}
