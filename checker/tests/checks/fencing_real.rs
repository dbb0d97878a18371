//! The fencing check over a real recorded run (`tests/fixtures/stale-leader-run`: the
//! stale-leader scenario with fencing on, recorded by `harness suite --seed 1`; the store's
//! data directories and the rendered report left out) and over copies of it with one record
//! changed the way a real bug would change it. The untouched copy is the passing twin.

use std::path::{Path, PathBuf};

use checker::checks::Fencing;
use checker::{Params, Validity};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stale-leader-run")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of the recorded run, changed by `change`, analyzed: the fencing check's verdict,
/// summary and details.
fn analyzed(change: impl FnOnce(&Path)) -> (Validity, String, checker::checks::fencing::Details) {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture(), dir.path());
    change(dir.path());
    let results = checker::analyze(dir.path(), &Params::default()).expect("analyzes");
    let r = results
        .get(checker::CheckId::Fencing)
        .expect("a fencing check");
    let d = r.details_of::<Fencing>().expect("typed details");
    (r.validity, r.summary.clone(), d)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("log")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

/// Proves the recorded run passes: the deposed order leader's writes were refused on every
/// replica, the replicas' counters equal their logs, no split lease, no stuck floor.
#[test]
fn the_recorded_run_passes() {
    let (v, summary, d) = analyzed(|_| {});
    assert_eq!(v, Validity::Valid, "{summary}");
    assert!(
        d.rejected_by_domain.get("order").copied().unwrap_or(0) >= 1,
        "{d:#?}"
    );
    assert!(
        d.counts.compared && d.counts.mismatches.is_empty(),
        "{:#?}",
        d.counts
    );
    assert!(d.split_leases.is_empty() && d.stuck_floors.is_empty());
    assert!(d.violations.is_empty());
}

/// Proves a replica that accepted one stale write is invalid: a copy of one of n3's accepted
/// order writes under the new leader's token 2, sent again under the deposed leader's token 1
/// and accepted after it, is named with both lines.
#[test]
fn a_stale_write_accepted_is_invalid() {
    let (v, summary, d) = analyzed(|dir| {
        let log = dir.join("nodes/n3/store.log");
        let mut l = lines(&log);
        let i = l
            .iter()
            .position(|x| {
                x.contains("\"write accepted\"")
                    && x.contains("\"domain\":\"order\"")
                    && x.contains("\"token\":2")
            })
            .expect("an accepted write under token 2");
        let stale = l[i].replace("\"token\":2", "\"token\":1");
        l.insert(i + 1, stale);
        write_lines(&log, &l);
    });
    assert_eq!(v, Validity::Invalid, "{summary}");
    let s = &d.violations[0];
    assert_eq!(
        (s.node.as_str(), s.token, s.prior_token),
        ("n3", 1, 2),
        "{s:#?}"
    );
}

/// Proves two leaders holding one token is invalid: n3 logging that it became order leader
/// under token 2 while n2 held it (a lease granted twice) is a split lease naming both
/// holders.
#[test]
fn a_lease_granted_twice_is_invalid() {
    let (v, summary, d) = analyzed(|dir| {
        let n2 = lines(&dir.join("nodes/n2/order.log"));
        let became = n2
            .iter()
            .find(|x| x.contains("\"became leader\"") && x.contains("\"token\":2"))
            .expect("n2 became leader under token 2")
            .replace("\"holder\":\"n2\"", "\"holder\":\"n3\"");
        let log = dir.join("nodes/n3/order.log");
        let mut l = lines(&log);
        l.push(became);
        write_lines(&log, &l);
    });
    assert_eq!(v, Validity::Invalid, "{summary}");
    let split = &d.split_leases[0];
    assert_eq!(
        (split.domain.as_str(), split.token),
        ("order", 2),
        "{split:#?}"
    );
    assert!(split.holders.contains(&"n2".to_owned()) && split.holders.contains(&"n3".to_owned()));
}

/// Proves a replica whose counter disagrees with its log is unknown with both numbers: one
/// refused write logged twice (the bug of a fenced write producing two lines), and,
/// separately, a counter that counted more than the log shows.
#[test]
fn a_counter_that_disagrees_with_the_log_is_unknown() {
    let (v, summary, d) = analyzed(|dir| {
        let log = dir.join("nodes/n1/store.log");
        let mut l = lines(&log);
        let i = l
            .iter()
            .position(|x| x.contains("\"fencing rejected write\""))
            .expect("a refused write");
        let again = l[i].clone();
        l.insert(i + 1, again);
        write_lines(&log, &l);
    });
    assert_eq!(v, Validity::Unknown, "{summary}");
    let m = &d.counts.mismatches[0];
    assert_eq!((m.node.as_str(), m.domain.as_str()), ("n1", "order"));
    assert_eq!(m.logged, m.counted + 1, "{m:#?}");

    let (v, summary, d) = analyzed(|dir| {
        let path = dir.join("metrics.csv");
        let mut l = lines(&path);
        let last = l
            .iter()
            .rposition(|x| {
                x.contains(",n2,store,fencing_rejected_writes_total,") && x.contains("order")
            })
            .expect("n2's counter");
        let (head, value) = l[last].rsplit_once(',').expect("a value");
        let bumped: f64 = value.parse::<f64>().expect("a number") + 5.0;
        l[last] = format!("{head},{bumped}");
        write_lines(&path, &l);
    });
    assert_eq!(v, Validity::Unknown, "{summary}");
    let m = &d.counts.mismatches[0];
    assert_eq!(m.node, "n2");
    assert_eq!(m.counted, m.logged + 5, "{m:#?}");
    assert!(summary.contains(&m.counted.to_string()), "{summary}");
}
