//! `harness serve`: browse the reports directory on 127.0.0.1 only. Rewrites the runs index on
//! start, then serves files read-only (GET and HEAD); paths never leave the directory.

use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Largest file served; bigger ones get 413 (read them from disk instead).
pub const MAX_SERVED_BYTES: u64 = 512 * 1024 * 1024;
/// Most entries shown in a directory listing.
pub const MAX_LISTED_ENTRIES: usize = 5000;

/// Serves `dir` on `127.0.0.1:port` (0 picks a free port) until Ctrl-C.
pub async fn serve(dir: &Path, port: u16) -> anyhow::Result<()> {
    let root = dir
        .canonicalize()
        .with_context(|| format!("reports directory '{}'", dir.display()))?;
    let listed = checker::report::write_runs_index(&root)
        .with_context(|| format!("writing the runs index in '{}'", root.display()))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "harness: serving {} ({listed} runs) at http://{addr}/ — Ctrl-C stops",
        root.display()
    );
    let app = Router::new().fallback(handle).with_state(root);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}

fn status(code: StatusCode, text: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

/// Decodes `%XX` escapes; `None` on a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file a request path names inside `root`, or `None` if it would leave it.
pub fn resolve(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(uri_path)?;
    let rel = Path::new(decoded.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let path = root.join(rel).canonicalize().ok()?;
    path.starts_with(root).then_some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "png" => "image/png",
        "json" => "application/json",
        "css" => "text/css",
        // jsonl, csv, log and anything else: shown inline as text.
        _ => "text/plain; charset=utf-8",
    }
}

fn listing(dir: &Path, uri_path: &str) -> Response {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return status(StatusCode::NOT_FOUND, "not found");
    };
    let mut names: Vec<String> = entries
        .flatten()
        .take(MAX_LISTED_ENTRIES)
        .map(|e| {
            let mut n = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                n.push('/');
            }
            n
        })
        .collect();
    names.sort();
    let base = if uri_path.ends_with('/') {
        uri_path.to_owned()
    } else {
        format!("{uri_path}/")
    };
    let items: String = names
        .iter()
        .map(|n| {
            let n = checker::report::timeline::escape(n);
            format!("<li><a href=\"{base}{n}\">{n}</a></li>")
        })
        .collect();
    let html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{0}</title><h1>{0}</h1><ul>{items}</ul>",
        checker::report::timeline::escape(uri_path)
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn handle(State(root): State<PathBuf>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "read-only: GET and HEAD only",
        );
    }
    let Some(mut path) = resolve(&root, uri.path()) else {
        return status(StatusCode::NOT_FOUND, "not found");
    };
    if path.is_dir() {
        let index = path.join("index.html");
        if !index.is_file() {
            return listing(&path, uri.path());
        }
        path = index;
    }
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.len() > MAX_SERVED_BYTES => {
            return status(StatusCode::PAYLOAD_TOO_LARGE, "file too large to serve");
        }
        Ok(_) => {}
        Err(_) => return status(StatusCode::NOT_FOUND, "not found"),
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, content_type(&path))],
            Body::from(bytes),
        )
            .into_response(),
        Err(_) => status(StatusCode::NOT_FOUND, "not found"),
    }
}
