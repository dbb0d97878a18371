//! The faultproxy's REST API: Toxiproxy's routes, shapes and status codes; malformed requests
//! get a JSON error and change nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support;

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.body(b.to_owned());
    }
    let resp = req.send().await.expect("api answers");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("json body ({e}): {text}"))
    };
    (status, v)
}

/// Proves the proxy routes answer with Toxiproxy's status codes and shapes: create 201, list,
/// show, duplicate 409, unknown 404 with `{"error","status"}`, malformed bodies 400 leaving the
/// proxies as they were, update 200, delete 204, `/version`.
#[tokio::test]
async fn proxy_routes_follow_toxiproxy() {
    use reqwest::Method;
    let (server, _) = support::faultproxy().await;
    let echo = support::echo().await;
    let http = reqwest::Client::new();
    let base = server.url();
    let body =
        json!({"name": "db", "listen": "127.0.0.1:0", "upstream": echo.to_string()}).to_string();
    let (st, v) = call(&http, Method::POST, format!("{base}/proxies"), Some(&body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "db");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["toxics"], json!([]));
    assert_eq!(v["upstream"], echo.to_string());
    let (st, v) = call(&http, Method::POST, format!("{base}/proxies"), Some(&body)).await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::CONFLICT, json!(409)),
        "{v}"
    );

    for bad in [
        "{not json",
        r#"{"listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}"#,
        r#"{"name": "x", "listen": "127.0.0.1:0"}"#,
        r#"{"name": "x", "listen": "nowhere", "upstream": "127.0.0.1:1"}"#,
        r#"{"name": "x", "upstream": "no-port"}"#,
        r#"{"name": "a/b", "upstream": "127.0.0.1:1"}"#,
    ] {
        let (st, v) = call(&http, Method::POST, format!("{base}/proxies"), Some(bad)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["status"], 400);
        assert!(!v["error"].as_str().expect("error text").is_empty());
    }
    let (st, v) = call(&http, Method::GET, format!("{base}/proxies"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v.as_object().expect("map").len(),
        1,
        "malformed creates changed nothing: {v}"
    );

    let (st, v) = call(&http, Method::GET, format!("{base}/proxies/nope"), None).await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::NOT_FOUND, json!(404))
    );
    assert!(v["error"]
        .as_str()
        .expect("msg")
        .contains("proxy not found"));

    let (st, v) = call(
        &http,
        Method::POST,
        format!("{base}/proxies/db"),
        Some(r#"{"enabled": "no"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = call(
        &http,
        Method::POST,
        format!("{base}/proxies/db"),
        Some(r#"{"enabled": false}"#),
    )
    .await;
    assert_eq!(
        (st, v["enabled"].clone()),
        (StatusCode::OK, json!(false)),
        "{v}"
    );
    let (st, v) = call(&http, Method::GET, format!("{base}/proxies/db"), None).await;
    assert_eq!((st, v["enabled"].clone()), (StatusCode::OK, json!(false)));

    let (st, v) = call(&http, Method::GET, format!("{base}/version"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["version"].as_str().expect("version").starts_with("2."));

    let (st, _) = call(&http, Method::DELETE, format!("{base}/proxies/db"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&http, Method::DELETE, format!("{base}/proxies/db"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = call(&http, Method::PUT, format!("{base}/proxies"), None).await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::METHOD_NOT_ALLOWED, json!(405))
    );
    server.shutdown().await;
}

/// Proves the toxic routes: create 200 with defaults filled in, duplicate 409, bad type /
/// stream / attribute 400 (nothing added), show, update (attributes merged), delete 204, 404s.
#[tokio::test]
async fn toxic_routes_follow_toxiproxy() {
    use reqwest::Method;
    let (server, client) = support::faultproxy().await;
    let echo = support::echo().await;
    support::proxy(&client, "db", echo).await;
    let http = reqwest::Client::new();
    let t = format!("{}/proxies/db/toxics", server.url());
    let (st, v) = call(
        &http,
        Method::POST,
        t.clone(),
        Some(r#"{"type":"latency","attributes":{"latency":100}}"#),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
               "toxicity": 1.0, "attributes": {"latency": 100, "jitter": 0}})
    );
    let (st, _) = call(
        &http,
        Method::POST,
        t.clone(),
        Some(r#"{"type":"latency","attributes":{"latency":1}}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    for bad in [
        r#"{"type":"warp"}"#,
        r#"{"type":"latency","stream":"sideways"}"#,
        r#"{"type":"latency","name":"l2","attributes":{"latency":-5}}"#,
        r#"{"type":"latency","name":"l3","attributes":{"latncy":5}}"#,
        r#"{"type":"latency","name":"l4","toxicity":1.5}"#,
        r#"{"type":"latency","name":"l5","attributes":{"latency":99999999999}}"#,
        r#"{"type":"slicer","name":"s1","attributes":{"average_size":0}}"#,
        r#"{"type":"slicer","name":"s2","attributes":{"average_size":10,"size_variation":10}}"#,
        r#"[1,2]"#,
    ] {
        let (st, v) = call(&http, Method::POST, t.clone(), Some(bad)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (st, v) = call(&http, Method::GET, t.clone(), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v.as_array().expect("list").len(),
        1,
        "bad toxics added nothing: {v}"
    );
    let one = format!("{t}/latency_downstream");
    let (st, v) = call(
        &http,
        Method::POST,
        one.clone(),
        Some(r#"{"attributes":{"jitter":7}}"#),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["attributes"], json!({"latency": 100, "jitter": 7}));
    let (st, v) = call(
        &http,
        Method::POST,
        one.clone(),
        Some(r#"{"attributes":{"jitter":"x"}}"#),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let got = client
        .toxic("db", "latency_downstream")
        .await
        .expect("typed read");
    assert_eq!(
        got.kind,
        nemesis::toxiproxy::ToxicKind::Latency {
            latency: 100,
            jitter: 7
        }
    );
    let (st, _) = call(&http, Method::DELETE, one.clone(), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = call(&http, Method::GET, one, None).await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::NOT_FOUND, json!(404))
    );
    let (st, _) = call(
        &http,
        Method::GET,
        format!("{}/proxies/nope/toxics", server.url()),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    server.shutdown().await;
}

/// Proves `/populate` validates every proxy before creating any (201 with `{"proxies"}`) and
/// `/reset` enables every proxy and removes every toxic (204).
#[tokio::test]
async fn populate_and_reset() {
    use nemesis::toxiproxy::{NewProxy, Stream, Toxic, ToxicKind};
    let (server, client) = support::faultproxy().await;
    let echo = support::echo().await;
    let np = |name: &str| NewProxy {
        name: name.into(),
        listen: "127.0.0.1:0".into(),
        upstream: echo.to_string(),
        enabled: None,
    };
    let mut bad = np("b");
    bad.upstream = String::new();
    let err = client.populate(&[np("a"), bad]).await.expect_err("refused");
    assert!(err.to_string().contains("upstream at proxy 2"), "{err}");
    assert!(
        client.proxies().await.expect("list").is_empty(),
        "nothing created"
    );
    let made = client
        .populate(&[np("a"), np("b")])
        .await
        .expect("populated");
    assert_eq!(made.len(), 2);
    client
        .add_toxic(
            "a",
            &Toxic::new(
                ToxicKind::Latency {
                    latency: 10,
                    jitter: 0,
                },
                Stream::Upstream,
            ),
        )
        .await
        .expect("toxic");
    client.set_enabled("b", false).await.expect("disable");
    client.reset().await.expect("reset");
    let all = client.proxies().await.expect("list");
    assert!(
        all.values().all(|p| p.enabled && p.toxics.is_empty()),
        "{all:?}"
    );
    server.shutdown().await;
}
