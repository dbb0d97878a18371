//! REST API conformance, written from Toxiproxy's documentation (its README: "HTTP API",
//! "Proxy fields", "Toxic fields", "Endpoints", "Populating Proxies") and from what its server
//! answers the clients that depend on it: status codes, shapes, defaults, error texts, `null`
//! fields as its Go client sends them, the 403 for browsers and the request-id header.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::support::{self, Answer};

fn assert_error(a: &Answer, status: StatusCode, text: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.json["status"], json!(status.as_u16()), "{}", a.text);
    assert_eq!(a.json["error"], json!(text), "{}", a.text);
}

/// Proves the proxy endpoints: `POST /proxies` 201 with the proxy fields (`enabled` true by
/// default, port 0 replaced by the bound port), 409 for a duplicate, 400 `missing required field`,
/// `GET /proxies` a map by name, `GET`/`POST`/`PATCH`/`DELETE /proxies/{proxy}` with 404
/// `proxy not found`, and `enabled: false` taking the proxy down and back up on the same address.
#[tokio::test]
async fn proxy_endpoints() {
    let (server, api) = support::faultproxy().await;
    let echo = support::echo().await;
    let body =
        json!({"name": "redis", "listen": "127.0.0.1:0", "upstream": echo.to_string()}).to_string();
    let a = api.call(Method::POST, "/proxies", Some(&body)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let listen = a.json["listen"].as_str().expect("listen").to_owned();
    assert!(!listen.ends_with(":0"));
    assert_eq!(
        a.json,
        json!({"name": "redis", "listen": listen, "upstream": echo.to_string(),
               "enabled": true, "toxics": []})
    );
    assert_error(
        &api.call(Method::POST, "/proxies", Some(&body)).await,
        StatusCode::CONFLICT,
        "proxy already exists",
    );
    assert_error(
        &api.call(
            Method::POST,
            "/proxies",
            Some(r#"{"upstream": "127.0.0.1:1"}"#),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "missing required field: name",
    );
    assert_error(
        &api.call(Method::POST, "/proxies", Some(r#"{"name": "x"}"#))
            .await,
        StatusCode::BAD_REQUEST,
        "missing required field: upstream",
    );
    let a = api.call(Method::GET, "/proxies", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["redis"]["listen"], json!(listen));
    assert_error(
        &api.call(Method::GET, "/proxies/nope", None).await,
        StatusCode::NOT_FOUND,
        "proxy not found",
    );
    // POST (deprecated by Toxiproxy) and PATCH both update.
    for (method, enabled) in [
        (Method::POST, false),
        (Method::PATCH, true),
        (Method::PATCH, false),
    ] {
        let body = json!({ "enabled": enabled }).to_string();
        let a = api.call(method, "/proxies/redis", Some(&body)).await;
        assert_eq!(
            (a.status, a.json["enabled"].clone()),
            (StatusCode::OK, json!(enabled))
        );
        assert_eq!(a.json["listen"], json!(listen), "same address");
    }
    assert!(
        TcpStream::connect(&listen).await.is_err(),
        "a disabled proxy refuses"
    );
    let a = api
        .call(
            Method::PATCH,
            "/proxies/redis",
            Some(r#"{"enabled": true}"#),
        )
        .await;
    assert_eq!(a.json["enabled"], json!(true));
    TcpStream::connect(&listen).await.expect("enabled again");
    let a = api
        .call(
            Method::POST,
            "/proxies",
            Some(
                &json!({"name": "off", "upstream": echo.to_string(), "enabled": false}).to_string(),
            ),
        )
        .await;
    assert_eq!(
        (a.status, a.json["enabled"].clone()),
        (StatusCode::CREATED, json!(false))
    );
    let a = api.call(Method::DELETE, "/proxies/redis", None).await;
    assert_eq!((a.status, a.text.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_error(
        &api.call(Method::DELETE, "/proxies/redis", None).await,
        StatusCode::NOT_FOUND,
        "proxy not found",
    );
    server.shutdown().await;
}

/// Proves the toxic endpoints: create (200) with Toxiproxy's defaults (name `<type>_<stream>`,
/// stream `downstream`, toxicity 1.0, every attribute shown), 409 `toxic already exists`,
/// 400 `invalid toxic type` and `stream was invalid, ...`, list, show, update by POST and PATCH
/// (attributes merged), delete 204, 404 `toxic not found` and `proxy not found`, and the bodies
/// Toxiproxy's Go client sends (`"attributes": null`, empty name, `null` toxicity).
#[tokio::test]
async fn toxic_endpoints() {
    let (server, api) = support::faultproxy().await;
    api.proxy("redis", support::echo().await).await;
    let t = "/proxies/redis/toxics";
    let a = api
        .call(
            Method::POST,
            t,
            Some(r#"{"type": "latency", "attributes": {"latency": 1000}}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        a.json,
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
               "toxicity": 1.0, "attributes": {"latency": 1000, "jitter": 0}})
    );
    let a = api
        .call(
            Method::POST,
            t,
            Some(r#"{"type": "latency", "stream": "upstream", "toxicity": 0.5}"#),
        )
        .await;
    assert_eq!(
        (a.json["name"].clone(), a.json["toxicity"].clone()),
        (json!("latency_upstream"), json!(0.5))
    );
    assert_error(
        &api.call(Method::POST, t, Some(r#"{"type": "latency"}"#))
            .await,
        StatusCode::CONFLICT,
        "toxic already exists",
    );
    assert_error(
        &api.call(Method::POST, t, Some(r#"{"type": "warp"}"#)).await,
        StatusCode::BAD_REQUEST,
        "invalid toxic type",
    );
    assert_error(
        &api.call(
            Method::POST,
            t,
            Some(r#"{"type": "latency", "stream": "sideways"}"#),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "stream was invalid, can be either upstream or downstream",
    );
    // Go's client: `Toxic{Name: "", Type, Stream, Toxicity, Attributes: nil}`.
    let go = r#"{"name": "", "type": "timeout", "stream": "downstream", "toxicity": 1, "attributes": null}"#;
    let a = api.call(Method::POST, t, Some(go)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["name"], json!("timeout_downstream"));
    assert_eq!(a.json["attributes"], json!({"timeout": 0}));
    let a = api.call(Method::GET, t, None).await;
    let names: Vec<&str> = a
        .json
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "latency_upstream",
            "latency_downstream",
            "timeout_downstream"
        ],
        "upstream first"
    );
    let one = format!("{t}/latency_downstream");
    let a = api
        .call(Method::POST, &one, Some(r#"{"attributes": {"jitter": 7}}"#))
        .await;
    assert_eq!(
        a.json["attributes"],
        json!({"latency": 1000, "jitter": 7}),
        "{}",
        a.text
    );
    // Go's client's update: `{"attributes": attrs, "toxicity": t}`, attrs possibly nil.
    let a = api
        .call(
            Method::PATCH,
            &one,
            Some(r#"{"attributes": null, "toxicity": 0.25}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        (
            a.json["toxicity"].clone(),
            a.json["attributes"]["jitter"].clone()
        ),
        (json!(0.25), json!(7))
    );
    let a = api.call(Method::GET, &one, None).await;
    assert_eq!(a.json["toxicity"], json!(0.25));
    assert_error(
        &api.call(Method::GET, &format!("{t}/nope"), None).await,
        StatusCode::NOT_FOUND,
        "toxic not found",
    );
    assert_error(
        &api.call(Method::PATCH, &format!("{t}/nope"), Some("{}"))
            .await,
        StatusCode::NOT_FOUND,
        "toxic not found",
    );
    assert_error(
        &api.call(Method::GET, "/proxies/nope/toxics", None).await,
        StatusCode::NOT_FOUND,
        "proxy not found",
    );
    let a = api.call(Method::DELETE, &one, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_error(
        &api.call(Method::DELETE, &one, None).await,
        StatusCode::NOT_FOUND,
        "toxic not found",
    );
    let a = api.call(Method::GET, "/proxies/redis", None).await;
    assert_eq!(
        a.json["toxics"].as_array().expect("toxics").len(),
        2,
        "a proxy shows its toxics"
    );
    server.shutdown().await;
}

fn names(proxies: &Value) -> Vec<String> {
    proxies
        .as_array()
        .expect("proxies")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

/// Proves `POST /populate`: 201 `{"proxies": [..]}` in request order; a missing field at any
/// position (400 `... at proxy N`) creates nothing; a proxy whose listen address (compared after
/// resolving `localhost`) and upstream are unchanged is kept with its toxics, a changed one is
/// replaced; proxies are created in order up to the first failure, and the failure answers with
/// its status, `error` and the `proxies` created before it.
#[tokio::test]
async fn populate_follows_toxiproxy() {
    let (server, api) = support::faultproxy().await;
    let echo = support::echo().await.to_string();
    let other = support::echo().await.to_string();
    let bad = json!([{"name": "a", "upstream": echo}, {"name": "b", "listen": "127.0.0.1:0"}]);
    let a = api
        .call(Method::POST, "/populate", Some(&bad.to_string()))
        .await;
    assert_error(
        &a,
        StatusCode::BAD_REQUEST,
        "missing required field: upstream at proxy 2",
    );
    assert_eq!(
        api.call(Method::GET, "/proxies", None).await.json,
        json!({}),
        "nothing created"
    );

    let body = json!([{"name": "a", "listen": "127.0.0.1:0", "upstream": echo},
                      {"name": "b", "listen": "127.0.0.1:0", "upstream": echo, "enabled": null}]);
    let a = api
        .call(Method::POST, "/populate", Some(&body.to_string()))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(names(&a.json["proxies"]), ["a", "b"]);
    assert!(a.json.get("error").is_none(), "{}", a.text);
    let port_of = |v: &Value| {
        v["listen"]
            .as_str()
            .expect("listen")
            .rsplit(':')
            .next()
            .expect("port")
            .to_owned()
    };
    let (a_port, b_port) = (
        port_of(&a.json["proxies"][0]),
        port_of(&a.json["proxies"][1]),
    );
    api.call(
        Method::POST,
        "/proxies/a/toxics",
        Some(r#"{"type": "noop"}"#),
    )
    .await;
    api.call(
        Method::POST,
        "/proxies/b/toxics",
        Some(r#"{"type": "noop"}"#),
    )
    .await;

    let again = json!([{"name": "a", "listen": format!("localhost:{a_port}"), "upstream": echo},
                       {"name": "b", "listen": format!("127.0.0.1:{b_port}"), "upstream": other}]);
    let a = api
        .call(Method::POST, "/populate", Some(&again.to_string()))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(
        a.json["proxies"][0]["toxics"]
            .as_array()
            .expect("toxics")
            .len(),
        1,
        "a kept, with its toxic"
    );
    assert_eq!(
        a.json["proxies"][1]["toxics"],
        json!([]),
        "b replaced: {}",
        a.text
    );
    assert_eq!(a.json["proxies"][1]["upstream"], json!(other));
    assert_eq!(port_of(&a.json["proxies"][1]), b_port, "on the same port");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr").to_string();
    let partial = json!([{"name": "c", "upstream": echo},
                         {"name": "d", "listen": taken_addr, "upstream": echo},
                         {"name": "e", "upstream": echo}]);
    let a = api
        .call(Method::POST, "/populate", Some(&partial.to_string()))
        .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.text);
    assert_eq!(a.json["status"], json!(500));
    assert!(
        a.json["error"]
            .as_str()
            .expect("error")
            .contains(&taken_addr),
        "{}",
        a.text
    );
    assert_eq!(
        names(&a.json["proxies"]),
        ["c"],
        "created up to the failure"
    );
    let all = api.call(Method::GET, "/proxies", None).await.json;
    let listed: BTreeSet<&str> = all
        .as_object()
        .expect("map")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(listed, BTreeSet::from(["a", "b", "c"]), "e was not created");
    drop(taken);
    server.shutdown().await;
}

/// Proves `POST /reset` (204) enables every proxy and removes every toxic, and `GET /version`
/// answers `{"version": ..}` with a Toxiproxy 2.x version.
#[tokio::test]
async fn reset_and_version() {
    let (server, api) = support::faultproxy().await;
    let echo = support::echo().await;
    api.proxy("a", echo).await;
    api.proxy("b", echo).await;
    api.call(
        Method::POST,
        "/proxies/a/toxics",
        Some(r#"{"type": "latency"}"#),
    )
    .await;
    api.call(Method::PATCH, "/proxies/b", Some(r#"{"enabled": false}"#))
        .await;
    let a = api.call(Method::POST, "/reset", None).await;
    assert_eq!((a.status, a.text.as_str()), (StatusCode::NO_CONTENT, ""));
    let all = api.call(Method::GET, "/proxies", None).await.json;
    for p in all.as_object().expect("map").values() {
        assert_eq!(
            (p["enabled"].clone(), p["toxics"].clone()),
            (json!(true), json!([])),
            "{p}"
        );
    }
    let a = api.call(Method::GET, "/version", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.json["version"]
            .as_str()
            .expect("version")
            .starts_with("2."),
        "{}",
        a.text
    );
    server.shutdown().await;
}

/// Proves browsers are refused as Toxiproxy refuses them (403 `User agent not allowed` for a
/// `Mozilla/` user agent, nothing changed), and that every answer, errors and refusals
/// included, carries a distinct `X-Toxiproxy-Request-Id`.
#[tokio::test]
async fn browsers_refused_and_request_ids() {
    let (server, api) = support::faultproxy().await;
    let browser = reqwest::Client::builder()
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0")
        .build()
        .expect("client");
    let body = json!({"name": "x", "upstream": "127.0.0.1:1"}).to_string();
    let resp = browser
        .post(format!("{}/proxies", api.base))
        .body(body)
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let id = resp.headers().get("x-toxiproxy-request-id").cloned();
    assert_eq!(
        resp.text().await.expect("text").trim(),
        "User agent not allowed"
    );
    assert!(id.is_some(), "the refusal has a request id");
    assert_eq!(
        api.call(Method::GET, "/proxies", None).await.json,
        json!({}),
        "nothing created"
    );
    let mut ids = BTreeSet::new();
    for (method, path) in [
        (Method::GET, "/version"),
        (Method::GET, "/proxies/none"),
        (Method::POST, "/proxies"),
        (Method::GET, "/proxies"),
    ] {
        let a = api.call(method, path, Some("{")).await;
        let id = a
            .request_id
            .unwrap_or_else(|| panic!("{path}: no request id"));
        assert_eq!(id.len(), 20, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)),
            "{id}"
        );
        ids.insert(id);
    }
    assert_eq!(ids.len(), 4, "distinct ids: {ids:?}");
    server.shutdown().await;
}
