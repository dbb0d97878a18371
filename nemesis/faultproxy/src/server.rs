//! A running API server: the REST API bound on an address, serving the [`Registry`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::registry::Registry;
use crate::routes;

/// A running API server (used by tests and the binary).
pub struct Server {
    /// Where the API listens.
    pub addr: SocketAddr,
    registry: Arc<Mutex<Registry>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds the API on `listen` and serves it in the background; `seed` drives every random
    /// choice of the toxics.
    pub async fn start(listen: SocketAddr, seed: u64) -> std::io::Result<Server> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let registry = Arc::new(Mutex::new(Registry::new(seed)));
        let app = routes::router(registry.clone());
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.changed().await;
                })
                .await
        });
        Ok(Server {
            addr,
            registry,
            stop,
            task,
        })
    }

    /// The API's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the API and every proxy.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.registry.lock().await.shutdown().await;
    }

    /// Resolves when the API server ends on its own (an I/O error).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}
