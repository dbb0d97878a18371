//! Headless Chromium loads a generated report from a file URL: the page must load, the verdict
//! must be in the rendered DOM, and a screenshot must be taken. Skips with a reason when
//! Chromium is absent, except under `CI=true`, where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::{copy_run, stored_fixture};

/// How long Chromium may take for one page.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|p| p.is_file())
}

/// Runs Chromium headless with networking features off; returns stdout, or panics with stderr
/// when it fails or outlives [`CHROMIUM_TIMEOUT`].
fn run_chromium(bin: &Path, profile: &Path, args: &[String]) -> String {
    let out_file = profile.join("stdout.txt");
    let err_file = profile.join("stderr.txt");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).expect("stdout file"))
        .stderr(std::fs::File::create(&err_file).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish in {CHROMIUM_TIMEOUT:?}: {}",
                std::fs::read_to_string(&err_file).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    std::fs::read_to_string(&out_file).expect("stdout")
}

/// Proves a generated report loads in headless Chromium from a file URL with the verdict in
/// the rendered DOM, and that a screenshot of it is a real picture.
#[test]
fn chromium_renders_the_report() {
    let Some(bin) = chromium() else {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "chromium is not installed but CI=true (add it to .ci/run)"
        );
        eprintln!("skipping chromium_renders_the_report: no chromium on PATH");
        return;
    };
    let run = copy_run(&stored_fixture());
    checker::analyze(run.path(), &checker::Params::default()).expect("analyzes");
    let url = format!("file://{}", run.path().join("index.html").display());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dom = run_chromium(&bin, tmp.path(), &["--dump-dom".into(), url.clone()]);
    assert!(
        dom.contains(r#"id="verdict">INVALID</span>"#),
        "verdict missing from the rendered DOM: {}",
        &dom[..dom.len().min(2000)]
    );
    assert!(dom.contains("id=\"check-fencing\""), "checks rendered");

    let shot = tmp.path().join("report.png");
    run_chromium(
        &bin,
        tmp.path(),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
            url,
        ],
    );
    let img = image::open(&shot).expect("screenshot decodes").to_rgb8();
    assert_eq!(img.dimensions(), (1280, 2000));
    let first = *img.get_pixel(0, 0);
    let differing = img.pixels().filter(|p| **p != first).count();
    assert!(
        differing > 20_000,
        "screenshot looks blank ({differing} pixels)"
    );
}
