//! `harness serve`: the reports directory browsed over HTTP on loopback.

use std::process::Stdio;
use std::time::Duration;

use crate::{hand_made_run, harness, text};

/// One HTTP/1.1 request over a plain TCP connection; returns (status, body).
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("reads");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Proves `harness serve` rewrites the runs index and serves it and each run's report on
/// 127.0.0.1, read-only, never outside its directory; a missing directory is exit 254.
#[test]
fn serve_browses_reports_on_loopback() {
    let reports = tempfile::tempdir().expect("tempdir");
    let run = reports.path().join("hand-made/20260101T000000.000Z");
    hand_made_run(&run);
    let o = harness(&["analyze", run.to_str().expect("utf8")])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    let mut child = harness(&[
        "serve",
        "--dir",
        reports.path().to_str().expect("utf8"),
        "--port",
        "0",
    ])
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .expect("serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("serve announces itself");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");

    let (status, body) = http(port, "GET", "/");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("hand-made/20260101T000000.000Z/index.html") && body.contains(">invalid<"),
        "{body}"
    );
    let (status, body) = http(port, "GET", "/hand-made/20260101T000000.000Z/");
    assert_eq!(status, 200);
    assert!(body.contains(r#"id="verdict">INVALID"#), "{body}");
    let (status, _) = http(
        port,
        "GET",
        "/hand-made/20260101T000000.000Z/throughput.png",
    );
    assert_eq!(status, 200);
    for evil in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/hand-made/../../x",
    ] {
        assert_eq!(http(port, "GET", evil).0, 404, "{evil}");
    }
    assert_eq!(http(port, "POST", "/").0, 405);
    let _ = child.kill();
    let _ = child.wait();

    let o = harness(&["serve", "--dir", "/nonexistent/reports"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
}
