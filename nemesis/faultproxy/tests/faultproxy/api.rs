//! The REST API's own rules beyond Toxiproxy's documentation: malformed requests get a JSON
//! error naming the culprit and change nothing; limits and names are checked.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support;

/// Proves malformed proxy bodies get 400 with `{"error", "status"}` and create nothing, and
/// updates refuse bad fields without changing the proxy.
#[tokio::test]
async fn malformed_proxies_change_nothing() {
    let (server, api) = support::faultproxy().await;
    let echo = support::echo().await;
    api.proxy("db", echo).await;
    for bad in [
        "{not json",
        r#"{"listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}"#,
        r#"{"name": "x", "listen": "127.0.0.1:0"}"#,
        r#"{"name": "x", "listen": "nowhere", "upstream": "127.0.0.1:1"}"#,
        r#"{"name": "x", "upstream": "no-port"}"#,
        r#"{"name": "a/b", "upstream": "127.0.0.1:1"}"#,
        r#"{"name": 5, "upstream": "127.0.0.1:1"}"#,
    ] {
        let a = api.call(Method::POST, "/proxies", Some(bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert_eq!(a.json["status"], 400);
        assert!(!a.json["error"].as_str().expect("error text").is_empty());
    }
    let a = api.call(Method::GET, "/proxies", None).await;
    assert_eq!(a.json.as_object().expect("map").len(), 1, "{}", a.text);
    let before = api.call(Method::GET, "/proxies/db", None).await.json;
    for bad in [
        r#"{"enabled": "no"}"#,
        r#"{"upstream": "nohost"}"#,
        r#"{"listen": "x"}"#,
    ] {
        let a = api.call(Method::PATCH, "/proxies/db", Some(bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
    assert_eq!(
        api.call(Method::GET, "/proxies/db", None).await.json,
        before
    );
    let a = api.call(Method::PUT, "/proxies", None).await;
    assert_eq!(
        (a.status, a.json["status"].clone()),
        (StatusCode::METHOD_NOT_ALLOWED, json!(405))
    );
    server.shutdown().await;
}

/// Proves malformed toxics get 400 naming the culprit and add nothing, updates with bad values
/// change nothing, and attribute values are bounded.
#[tokio::test]
async fn malformed_toxics_change_nothing() {
    let (server, api) = support::faultproxy().await;
    api.proxy("db", support::echo().await).await;
    let t = "/proxies/db/toxics";
    let a = api
        .call(
            Method::POST,
            t,
            Some(r#"{"type":"latency","attributes":{"latency":100}}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    for (bad, culprit) in [
        (
            r#"{"type":"latency","name":"l2","attributes":{"latency":-5}}"#,
            "latency",
        ),
        (
            r#"{"type":"latency","name":"l3","attributes":{"latncy":5}}"#,
            "latncy",
        ),
        (
            r#"{"type":"latency","name":"l4","toxicity":1.5}"#,
            "toxicity",
        ),
        (
            r#"{"type":"latency","name":"l5","attributes":{"latency":99999999999}}"#,
            "limit",
        ),
        (
            r#"{"type":"slicer","name":"s1","attributes":{"average_size":0}}"#,
            "average_size",
        ),
        (
            r#"{"type":"slicer","name":"s2","attributes":{"average_size":10,"size_variation":10}}"#,
            "size_variation",
        ),
        (r#"{"type":"noop","name":"bad/name"}"#, "name"),
        (
            r#"{"type":"http","name":"h1","attributes":{"action":"explode"}}"#,
            "action",
        ),
        (r#"[1,2]"#, "bad request body"),
    ] {
        let a = api.call(Method::POST, t, Some(bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert!(
            a.json["error"].as_str().expect("text").contains(culprit),
            "{bad}: {}",
            a.text
        );
    }
    let a = api.call(Method::GET, t, None).await;
    assert_eq!(a.json.as_array().expect("list").len(), 1, "{}", a.text);
    let one = format!("{t}/latency_downstream");
    for bad in [
        json!({"attributes": {"jitter": "x"}}),
        json!({"toxicity": -1}),
    ] {
        let a = api.update("db", "latency_downstream", bad.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
    let a = api.call(Method::GET, &one, None).await;
    assert_eq!(a.json["attributes"], json!({"latency": 100, "jitter": 0}));
    assert_eq!(a.json["toxicity"], json!(1.0));
    server.shutdown().await;
}

/// Proves the number of toxics per proxy is bounded, with a 400 past it.
#[tokio::test]
async fn toxics_per_proxy_are_bounded() {
    let (server, api) = support::faultproxy().await;
    api.proxy("db", support::echo().await).await;
    let max = faultproxy::registry::MAX_TOXICS_PER_PROXY;
    for i in 0..max {
        let body = json!({"type": "noop", "name": format!("n{i}")}).to_string();
        let a = api
            .call(Method::POST, "/proxies/db/toxics", Some(&body))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let body = json!({"type": "noop", "name": "one-more"}).to_string();
    let a = api
        .call(Method::POST, "/proxies/db/toxics", Some(&body))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let list: Value = api.call(Method::GET, "/proxies/db/toxics", None).await.json;
    assert_eq!(list.as_array().expect("list").len(), max);
    server.shutdown().await;
}
