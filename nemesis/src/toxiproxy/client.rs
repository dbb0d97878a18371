//! A small typed async client for Toxiproxy's REST API. It drives `faultproxy` and a real
//! Toxiproxy the same way.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api::{ApiError, NewProxy, Populated, Proxy, ProxyUpdate, Toxic, ToxicUpdate};

/// How long one API call may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the transfer failed.
    #[error("{method} {url}: {source}")]
    Http {
        /// Method.
        method: Method,
        /// URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{method} {url}: HTTP {status}: {message}")]
    Api {
        /// Method.
        method: Method,
        /// URL.
        url: String,
        /// Status code.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The answer did not have the expected shape.
    #[error("{method} {url}: unexpected answer: {detail}")]
    Decode {
        /// Method.
        method: Method,
        /// URL.
        url: String,
        /// What did not parse.
        detail: String,
    },
}

impl ClientError {
    /// The proxy or toxic does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, .. })
    }

    /// The server is not there (connection refused): nothing is left to heal on it.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Http { source, .. } if source.is_connect())
    }
}

/// A client of one Toxiproxy-compatible server.
#[derive(Debug, Clone)]
pub struct ToxiproxyClient {
    base: String,
    http: reqwest::Client,
}

impl ToxiproxyClient {
    /// A client of the server at `base` (`http://127.0.0.1:8474`; a bare `host:port` gets
    /// `http://`).
    pub fn new(base: &str) -> Result<ToxiproxyClient, ClientError> {
        let base = if base.contains("://") {
            base.trim_end_matches('/').to_owned()
        } else {
            format!("http://{}", base.trim_end_matches('/'))
        };
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| ClientError::Http {
                method: Method::GET,
                url: base.clone(),
                source,
            })?;
        Ok(ToxiproxyClient { base, http })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, bytes_body::Body), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let http_err = |source| ClientError::Http {
            method: method.clone(),
            url: url.clone(),
            source,
        };
        let resp = req.send().await.map_err(http_err)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(http_err)?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_owned());
            return Err(ClientError::Api {
                method,
                url,
                status: status.as_u16(),
                message,
            });
        }
        Ok((status, bytes_body::Body { method, url, bytes }))
    }

    async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let (_, body) = self.call(method, path, body).await?;
        body.decode()
    }

    /// `GET /version`: the server's version string.
    pub async fn version(&self) -> Result<String, ClientError> {
        let (_, body) = self.call::<()>(Method::GET, "/version", None).await?;
        // Toxiproxy ≥ 2.6 answers {"version": ".."}; older ones plain text.
        match serde_json::from_slice::<serde_json::Value>(&body.bytes) {
            Ok(v) => Ok(v["version"].as_str().unwrap_or_default().to_owned()),
            Err(_) => Ok(String::from_utf8_lossy(&body.bytes).trim().to_owned()),
        }
    }

    /// `GET /proxies`: every proxy by name.
    pub async fn proxies(&self) -> Result<std::collections::BTreeMap<String, Proxy>, ClientError> {
        self.json::<_, ()>(Method::GET, "/proxies", None).await
    }

    /// `POST /proxies`: creates a proxy.
    pub async fn create_proxy(&self, p: &NewProxy) -> Result<Proxy, ClientError> {
        self.json(Method::POST, "/proxies", Some(p)).await
    }

    /// `POST /populate`: creates or replaces proxies.
    pub async fn populate(&self, ps: &[NewProxy]) -> Result<Vec<Proxy>, ClientError> {
        let out: Populated = self.json(Method::POST, "/populate", Some(ps)).await?;
        Ok(out.proxies)
    }

    /// `GET /proxies/{name}`.
    pub async fn proxy(&self, name: &str) -> Result<Proxy, ClientError> {
        self.json::<_, ()>(Method::GET, &format!("/proxies/{name}"), None)
            .await
    }

    /// `POST /proxies/{name}`: updates fields.
    pub async fn update_proxy(&self, name: &str, u: &ProxyUpdate) -> Result<Proxy, ClientError> {
        self.json(Method::POST, &format!("/proxies/{name}"), Some(u))
            .await
    }

    /// Enables or disables a proxy (a disabled proxy refuses and drops connections).
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<Proxy, ClientError> {
        let u = ProxyUpdate {
            enabled: Some(enabled),
            ..ProxyUpdate::default()
        };
        self.update_proxy(name, &u).await
    }

    /// `DELETE /proxies/{name}`.
    pub async fn delete_proxy(&self, name: &str) -> Result<(), ClientError> {
        self.call::<()>(Method::DELETE, &format!("/proxies/{name}"), None)
            .await
            .map(|_| ())
    }

    /// `GET /proxies/{name}/toxics`.
    pub async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, ClientError> {
        self.json::<_, ()>(Method::GET, &format!("/proxies/{proxy}/toxics"), None)
            .await
    }

    /// `POST /proxies/{name}/toxics`: adds a toxic.
    pub async fn add_toxic(&self, proxy: &str, t: &Toxic) -> Result<Toxic, ClientError> {
        self.json(Method::POST, &format!("/proxies/{proxy}/toxics"), Some(t))
            .await
    }

    /// `GET /proxies/{name}/toxics/{toxic}`.
    pub async fn toxic(&self, proxy: &str, toxic: &str) -> Result<Toxic, ClientError> {
        self.json::<_, ()>(
            Method::GET,
            &format!("/proxies/{proxy}/toxics/{toxic}"),
            None,
        )
        .await
    }

    /// `POST /proxies/{name}/toxics/{toxic}`: updates attributes or toxicity.
    pub async fn update_toxic(
        &self,
        proxy: &str,
        toxic: &str,
        u: &ToxicUpdate,
    ) -> Result<Toxic, ClientError> {
        self.json(
            Method::POST,
            &format!("/proxies/{proxy}/toxics/{toxic}"),
            Some(u),
        )
        .await
    }

    /// `DELETE /proxies/{name}/toxics/{toxic}`.
    pub async fn delete_toxic(&self, proxy: &str, toxic: &str) -> Result<(), ClientError> {
        self.call::<()>(
            Method::DELETE,
            &format!("/proxies/{proxy}/toxics/{toxic}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// `POST /reset`: enables every proxy and removes every toxic.
    pub async fn reset(&self) -> Result<(), ClientError> {
        self.call::<()>(Method::POST, "/reset", None)
            .await
            .map(|_| ())
    }
}

mod bytes_body {
    use super::ClientError;
    use reqwest::Method;

    /// A successful answer's body, with where it came from for error messages.
    pub struct Body {
        pub method: Method,
        pub url: String,
        pub bytes: bytes::Bytes,
    }

    impl Body {
        pub fn decode<T: serde::de::DeserializeOwned>(self) -> Result<T, ClientError> {
            serde_json::from_slice(&self.bytes).map_err(|e| ClientError::Decode {
                method: self.method,
                url: self.url,
                detail: format!("{e}: {}", String::from_utf8_lossy(&self.bytes)),
            })
        }
    }
}
