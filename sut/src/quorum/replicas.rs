//! HTTP to the store replicas: one request to one replica, or the same request to several at
//! once with the answers arriving on a channel as they come.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

/// One replica's answer.
#[derive(Debug, Clone)]
pub enum Reply<T> {
    /// 2xx with a body of the expected shape.
    Ok(T),
    /// A definite 4xx refusal.
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code, e.g. `fenced`.
        code: String,
        /// `current_token` of a fenced write.
        current_token: Option<u64>,
        /// The message.
        message: String,
    },
    /// No definite answer: transport error, timeout, 5xx, or an unreadable body.
    Failed(String),
}

/// One store replica.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Its node.
    pub node: String,
    /// Base URL, e.g. `http://127.0.0.1:7101`.
    pub base: String,
}

/// The store replicas, in node order (every coordinator uses the same order).
#[derive(Clone)]
pub struct Replicas {
    list: Arc<Vec<Replica>>,
    http: reqwest::Client,
}

impl Replicas {
    /// Replicas from `(node, base URL)` pairs with a per-request timeout (and no cluster
    /// secret: see [`Replicas::with_client`]).
    pub fn new(list: Vec<(String, String)>, timeout: Duration) -> Replicas {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        Replicas::with_client(list, client)
    }

    /// Replicas reached through `client` (the roles' carries the cluster secret:
    /// [`crate::auth::PeerClient::builder`]), keeping up to 64 idle connections per replica.
    pub fn with_client(list: Vec<(String, String)>, client: reqwest::ClientBuilder) -> Replicas {
        let http = client
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Replicas {
            list: Arc::new(
                list.into_iter()
                    .map(|(node, base)| Replica { node, base })
                    .collect(),
            ),
            http,
        }
    }

    /// The first `n` replicas.
    pub fn first(&self, n: usize) -> Replicas {
        Replicas {
            list: Arc::new(self.list.iter().take(n).cloned().collect()),
            http: self.http.clone(),
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A strict majority of all replicas.
    pub fn majority(&self) -> usize {
        self.list.len() / 2 + 1
    }

    /// Node of replica `i`.
    pub fn node(&self, i: usize) -> &str {
        self.list.get(i).map_or("?", |r| r.node.as_str())
    }

    /// POSTs `body` as JSON to `path` on replica `i`.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        i: usize,
        path: &str,
        body: &B,
    ) -> Reply<T> {
        let Some(r) = self.list.get(i) else {
            return Reply::Failed(format!("no replica {i}"));
        };
        let sent = self
            .http
            .post(format!("{}{path}", r.base))
            .json(body)
            .send()
            .await;
        answer(&r.node, sent).await
    }

    /// GETs `path` with `query` on replica `i`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        i: usize,
        path: &str,
        query: &[(&str, String)],
    ) -> Reply<T> {
        let Some(r) = self.list.get(i) else {
            return Reply::Failed(format!("no replica {i}"));
        };
        let sent = self
            .http
            .get(format!("{}{path}", r.base))
            .query(query)
            .send()
            .await;
        answer(&r.node, sent).await
    }

    /// POSTs `body` to every replica at once; answers arrive on the channel as `(index,
    /// reply)`. Requests run to completion (or their timeout) even if the receiver is dropped.
    pub fn post_all<B, T>(&self, path: &str, body: B) -> mpsc::Receiver<(usize, Reply<T>)>
    where
        B: Serialize + Send + Sync + 'static,
        T: DeserializeOwned + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(self.len().max(1));
        let body = Arc::new(body);
        for i in 0..self.len() {
            let (me, tx, body, path) = (self.clone(), tx.clone(), body.clone(), path.to_owned());
            tokio::spawn(async move {
                let reply = me.post(i, &path, body.as_ref()).await;
                let _ = tx.send((i, reply)).await;
            });
        }
        rx
    }

    /// GETs `path` from every replica at once, like [`Replicas::post_all`].
    pub fn get_all<T>(
        &self,
        path: &str,
        query: Vec<(&'static str, String)>,
    ) -> mpsc::Receiver<(usize, Reply<T>)>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(self.len().max(1));
        let query = Arc::new(query);
        for i in 0..self.len() {
            let (me, tx, query, path) = (self.clone(), tx.clone(), query.clone(), path.to_owned());
            tokio::spawn(async move {
                let reply = me.get(i, &path, &query).await;
                let _ = tx.send((i, reply)).await;
            });
        }
        rx
    }
}

async fn answer<T: DeserializeOwned>(
    node: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Reply<T> {
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return Reply::Failed(format!("store {node}: {e}")),
    };
    let status = resp.status().as_u16();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Reply::Failed(format!("store {node}: reading body: {e}")),
    };
    if (200..300).contains(&status) {
        return match serde_json::from_slice(&bytes) {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Failed(format!("store {node}: unreadable answer: {e}")),
        };
    }
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    if (400..500).contains(&status) {
        Reply::Refused {
            status,
            code: body["error"].as_str().unwrap_or_default().to_owned(),
            current_token: body["current_token"].as_u64(),
            message,
        }
    } else {
        Reply::Failed(format!("store {node}: HTTP {status}: {message}"))
    }
}
