//! `harness suite` (and `harness nightly`, the same job) end to end on local clusters: a short
//! suite writes its matrix page, a `junit.xml` that parses with one test case per run and a
//! `summary.json`, and exits 0 when every expectation held; a suite run against a pipeline
//! whose payment service secretly lacks idempotency exits 1 with the failing cell named.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use checker::expectation::Outcome;
use checker::report::suite::{Mode, Summary, JUNIT_XML, SUMMARY_JSON};

use super::{faultproxy_bin, harness, pipeline_bin, text};

/// The suite page directory `<out>/suite/latest` points at.
fn suite_dir(out: &Path, report: &str) -> PathBuf {
    let link = out.join("suite").join("latest");
    std::fs::canonicalize(&link).unwrap_or_else(|e| panic!("{}: {e}\n{report}", link.display()))
}

fn summary(dir: &Path) -> Summary {
    let bytes = std::fs::read(dir.join(SUMMARY_JSON)).expect("summary.json");
    serde_json::from_slice(&bytes).expect("summary.json parses as a suite summary")
}

/// `(test cases, failures, errors)` of a JUnit file, counted from its elements, with the
/// counts its root claims checked against them.
fn junit_counts(dir: &Path) -> (Vec<String>, usize, usize) {
    let xml = std::fs::read_to_string(dir.join(JUNIT_XML)).expect("junit.xml");
    let doc = roxmltree::Document::parse(&xml).expect("junit.xml is XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let cases: Vec<roxmltree::Node<'_, '_>> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let count = |tag: &str| {
        cases
            .iter()
            .filter(|c| c.children().any(|k| k.has_tag_name(tag)))
            .count()
    };
    let (failures, errors) = (count("failure"), count("error"));
    let attr = |name: &str| root.attribute(name).and_then(|v| v.parse::<usize>().ok());
    assert_eq!(attr("tests"), Some(cases.len()), "{xml}");
    assert_eq!(attr("failures"), Some(failures), "{xml}");
    assert_eq!(attr("errors"), Some(errors), "{xml}");
    let names = cases
        .iter()
        .map(|c| c.attribute("name").unwrap_or_default().to_owned())
        .collect();
    (names, failures, errors)
}

/// Proves a short suite (lost-response on and off, one 8 s chaos run with two faults at once)
/// exits 0 with every expectation held: `summary.json` lists the three runs with their
/// outcomes, seeds and rerun commands, `junit.xml` parses with three passing test cases, the
/// matrix page links every run directory, and the runs index lists the runs.
#[test]
fn a_short_suite_holds_and_writes_its_page_junit_and_summary() {
    let _one = super::scenarios::ONE_PAIR_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let (pipeline, faultproxy) = (pipeline_bin(), faultproxy_bin());
    let out = tempfile::tempdir().expect("tempdir");
    let o = out.path().display().to_string();
    let result = harness(&[
        "suite",
        "--only",
        "lost-response",
        "--only",
        "chaos",
        "--chaos-time",
        "8s",
        "--seed",
        "5",
        "--out",
        &o,
    ])
    .arg("--pipeline-bin")
    .arg(&pipeline)
    .arg("--faultproxy-bin")
    .arg(&faultproxy)
    .output()
    .expect("runs");
    let report = text(&result);
    let dir = suite_dir(out.path(), &report);
    let s = summary(&dir);
    assert_eq!(s.outcome, Outcome::Held, "{report}\n{s:#?}");
    assert_eq!(result.status.code(), Some(0), "{report}");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("held"),
        "the last line is the outcome"
    );
    let modes: Vec<(&str, Mode)> = s.cells.iter().map(|c| (c.row.as_str(), c.mode)).collect();
    assert_eq!(
        modes,
        [
            ("lost-response", Mode::On),
            ("lost-response", Mode::Off),
            ("chaos", Mode::Chaos)
        ]
    );
    assert_eq!(s.seeds, [5]);
    let page = std::fs::read_to_string(dir.join("index.html")).expect("page");
    for c in &s.cells {
        assert_eq!(c.outcome, Outcome::Held, "{c:#?}");
        let run = out.path().join(c.dir.as_ref().expect("ran"));
        assert!(run.join("results.json").is_file(), "{}", run.display());
        assert!(
            c.rerun.as_ref().is_some_and(|r| r.contains("--seed")),
            "{c:#?}"
        );
        assert!(!c.evidence.is_empty() || c.mode == Mode::Chaos, "{c:#?}");
        let link = format!("../../{}/index.html", c.dir.as_ref().expect("ran"));
        assert!(page.contains(&link), "the page links {link}");
    }
    assert!(
        s.cells[2].faults.len() >= 2,
        "two faults at once: {:?}",
        s.cells[2]
    );
    assert!(page.contains("lost-response") && page.contains("1 of 1 held"));
    let (names, failures, errors) = junit_counts(&dir);
    assert_eq!((names.len(), failures, errors), (3, 0, 0), "{names:?}");
    assert!(
        names[0].starts_with("lost-response idempotency on seed 5"),
        "{names:?}"
    );
    let index = std::fs::read_to_string(out.path().join("index.html")).expect("runs index");
    assert!(index.contains("lost-response-off/") && index.contains("chaos/"));
}

/// Proves the suite catches a protection that is silently broken: with a pipeline whose
/// payment service always runs without idempotency, lost-response with its protection "on"
/// double-charges, so that cell's expectation does not hold: exit 1, `not-held` on stdout,
/// one JUnit failure naming the cell, while the off cell (which expects double charges)
/// still holds.
#[test]
fn a_suite_with_a_broken_protection_exits_1() {
    let _one = super::scenarios::ONE_PAIR_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let (pipeline, faultproxy) = (pipeline_bin(), faultproxy_bin());
    let out = tempfile::tempdir().expect("tempdir");
    let wrapper = out.path().join("pipeline-without-idempotency");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# payment always without idempotency\nif [ \"$1\" = payment ]; then\n  \
             case \" $* \" in *\" --no-idempotency \"*) ;; *) set -- \"$@\" --no-idempotency ;; \
             esac\nfi\nexec '{}' \"$@\"\n",
            pipeline.display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let runs = out.path().join("runs");
    let o = runs.display().to_string();
    let result = harness(&[
        "suite",
        "--only",
        "lost-response",
        "--seed",
        "5",
        "--out",
        &o,
    ])
    .arg("--pipeline-bin")
    .arg(&wrapper)
    .arg("--faultproxy-bin")
    .arg(&faultproxy)
    .output()
    .expect("runs");
    let report = text(&result);
    let dir = suite_dir(&runs, &report);
    let s = summary(&dir);
    assert_eq!(result.status.code(), Some(1), "{report}\n{s:#?}");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(stdout.lines().last(), Some("not-held"), "{stdout}");
    assert_eq!(s.outcome, Outcome::NotHeld);
    let on = &s.cells[0];
    assert_eq!(
        (on.mode, on.outcome),
        (Mode::On, Outcome::NotHeld),
        "{on:#?}"
    );
    assert_eq!(on.verdict, "invalid", "{on:#?}");
    assert_eq!(s.cells[1].outcome, Outcome::Held, "{:#?}", s.cells[1]);
    let (names, failures, errors) = junit_counts(&dir);
    assert_eq!((names.len(), failures, errors), (2, 1, 0), "{names:?}");
    let xml = std::fs::read_to_string(dir.join(JUNIT_XML)).expect("junit");
    assert!(xml.contains("expectation not held"), "{xml}");
}

/// Proves bad suite options are refused before anything runs: an unknown `--only` name (the
/// error lists the known rows) and a chaos time too short to hold two faults, each exit 254
/// with nothing written.
#[test]
fn bad_suite_options_exit_254() {
    let out = tempfile::tempdir().expect("tempdir");
    let o = out.path().join("runs").display().to_string();
    for (args, needle) in [
        (vec!["--only", "nope"], "chaos"),
        (vec!["--chaos-time", "1s"], "--chaos-time"),
    ] {
        let mut all = vec!["suite", "--out", o.as_str()];
        all.extend(args);
        let result = harness(&all).output().expect("runs");
        assert_eq!(result.status.code(), Some(254), "{}", text(&result));
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(stderr.contains(needle), "{stderr}");
        assert!(!out.path().join("runs").exists(), "nothing written");
    }
}
