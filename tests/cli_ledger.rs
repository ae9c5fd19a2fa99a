//! `mmloop ledger` end to end: the built binary adding, listing, exporting and discarding; a writer
//! killed with SIGKILL at seeded random moments; two writers at once; foreign and newer files.

use mmloop_data::LiftTestRecord;
use mmloop_loop::ledger::{Ledger, Status};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mmloop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmloop")).args(args).output().expect("run mmloop")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Record `i` of batch `batch`: `1 + i % 3` channels and `i % 5` geos (0 = national), so a reader
/// can tell from the source alone how many child rows the experiment must have.
fn rec(batch: usize, i: usize) -> LiftTestRecord {
    LiftTestRecord {
        channels: (0..1 + i % 3).map(|c| ["tv", "search", "social"][c].to_string()).collect(),
        geos: (0..i % 5).map(|g| format!("g{}", (i + g) % 40)).collect(),
        start: "2024-03-04".into(),
        end: "2024-03-31".into(),
        spend_change: 10_000.0 + i as f64 * 0.5,
        spend_path: None,
        incremental_kpi: 1_234.5 + batch as f64 + i as f64 / 7.0,
        standard_error: 321.0 + (i % 11) as f64,
        estimator: "sc".into(),
        source: format!("batch{batch}/rec{i}"),
    }
}

fn write_batch(dir: &Path, batch: usize, n: usize) -> (PathBuf, Vec<LiftTestRecord>) {
    let recs: Vec<LiftTestRecord> = (0..n).map(|i| rec(batch, i)).collect();
    let p = dir.join(format!("cal{batch}.json"));
    std::fs::write(&p, serde_json::to_string_pretty(&recs).unwrap()).unwrap();
    (p, recs)
}

fn sha(p: &Path) -> String {
    mmloop_data::hash_file(p).unwrap()
}

/// Splitmix64: a seeded, dependency-free source of kill moments.
struct SplitMix(u64);
impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Checks the ledger is whole: integrity, every batch all there or absent, and every experiment
/// with exactly the channels and geos its record had. Returns the number of experiments per batch.
fn check_consistent(ledger: &Path, per_batch: usize) -> HashMap<usize, usize> {
    let l = Ledger::open(ledger).expect("the ledger opens after a kill");
    l.integrity_check().expect("integrity_check is ok");
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for e in l.experiments().unwrap() {
        let r = e.readout.as_ref().expect("every experiment here is a readout");
        let (b, i) = r.record.source.trim_start_matches("batch").split_once("/rec").expect("our source");
        let (b, i): (usize, usize) = (b.parse().unwrap(), i.parse().unwrap());
        assert_eq!(r.record, rec(b, i), "experiment {} differs from what was written", e.id);
        assert_eq!(e.cells.len(), 1);
        *counts.entry(b).or_default() += 1;
    }
    for (b, n) in &counts {
        assert_eq!(*n, per_batch, "batch {b} is half recorded: {n} of {per_batch} readouts");
    }
    counts
}

#[test]
fn ledger_add_list_export_round_trips_the_calibration_records() {
    let dir = tempfile::tempdir().unwrap();
    let led = dir.path().join("loop.ledger");
    let (cal, recs) = write_batch(dir.path(), 0, 5);
    let o = mmloop(&["ledger", s(&led), "add", s(&cal)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("added 5 readouts") && text(&o).contains("1, 2, 3, 4, 5"), "{}", text(&o));
    let o = mmloop(&["ledger", s(&led), "list"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("5 experiments: 5 read") && out.contains("tv,search,social"), "{out}");
    let o = mmloop(&["ledger", s(&led), "show", "3"]);
    assert!(o.status.success() && text(&o).contains("batch0/rec2"), "{}", text(&o));
    let exported = dir.path().join("sub/export.json");
    let o = mmloop(&["ledger", s(&led), "export", "--format", "json", "--out", s(&exported)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(LiftTestRecord::read_all(&exported).unwrap(), recs, "export is the calibration file's records");
    let o = mmloop(&["ledger", s(&led), "export", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && csv.lines().count() == 6, "{csv}");
    assert!(csv.starts_with("id,status,"), "{csv}");
    let o = mmloop(&["ledger", s(&led), "export", "--format", "xml"]);
    assert!(!o.status.success() && text(&o).contains("csv or json"));
}

#[test]
fn ledger_add_refuses_the_same_readout_twice() {
    let dir = tempfile::tempdir().unwrap();
    let led = dir.path().join("loop.ledger");
    let (cal, _) = write_batch(dir.path(), 0, 2);
    assert!(mmloop(&["ledger", s(&led), "add", s(&cal)]).status.success());
    let o = mmloop(&["ledger", s(&led), "add", s(&cal)]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("already added") && t.contains("experiment(s) 1, 2") && t.contains("cal0.json"), "{t}");
    // the same records re-serialised in another file are the same readouts
    let other = dir.path().join("again.json");
    std::fs::write(&other, serde_json::to_string(&vec![rec(0, 1)]).unwrap()).unwrap();
    let t = text(&mmloop(&["ledger", s(&led), "add", s(&other)]));
    assert!(t.contains("same readout as experiment 2"), "{t}");
    assert_eq!(Ledger::open(&led).unwrap().experiments().unwrap().len(), 2);
}

#[test]
fn ledger_discard_requires_why_and_sets_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let led = dir.path().join("loop.ledger");
    let (cal, recs) = write_batch(dir.path(), 0, 2);
    assert!(mmloop(&["ledger", s(&led), "add", s(&cal)]).status.success());
    let o = mmloop(&["ledger", s(&led), "discard", "1"]);
    assert!(!o.status.success() && text(&o).contains("--why"), "{}", text(&o));
    assert_eq!(Ledger::open(&led).unwrap().experiment(1).unwrap().status, Status::Read);
    let o = mmloop(&["ledger", s(&led), "discard", "1", "--why", "   "]);
    assert!(!o.status.success() && text(&o).contains("non-empty reason"), "{}", text(&o));
    let o = mmloop(&["ledger", s(&led), "discard", "1", "--why", "geo g1 went dark early"]);
    assert!(o.status.success(), "{}", text(&o));
    let e = Ledger::open(&led).unwrap().experiment(1).unwrap();
    assert_eq!((e.status, e.discard_reason.as_deref()), (Status::Discarded, Some("geo g1 went dark early")));
    // a discarded readout no longer calibrates: the JSON export leaves it out
    let o = mmloop(&["ledger", s(&led), "export"]);
    let back: Vec<LiftTestRecord> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(back, recs[1..]);
    let t = text(&mmloop(&["ledger", s(&led), "discard", "9", "--why", "x"]));
    assert!(t.contains("no experiment 9"), "{t}");
}

#[test]
fn ledger_refuses_foreign_newer_and_missing_files_without_touching_them() {
    let dir = tempfile::tempdir().unwrap();
    let (cal, _) = write_batch(dir.path(), 0, 1);
    // a plain text file
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "not a ledger at all; ".repeat(10)).unwrap();
    // a foreign SQLite database
    let other = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
    // a ledger from a newer mmloop: ours, with a higher schema version in the header
    let newer = dir.path().join("newer.ledger");
    assert!(mmloop(&["ledger", s(&newer), "add", s(&cal)]).status.success());
    let mut bytes = std::fs::read(&newer).unwrap();
    let v = mmloop_loop::ledger::SCHEMA_VERSION as u32 + 1;
    bytes[60..64].copy_from_slice(&v.to_be_bytes());
    // the WAL was checkpointed when the writer closed; drop it so the header is the whole truth
    let _ = std::fs::remove_file(dir.path().join("newer.ledger-wal"));
    let _ = std::fs::remove_file(dir.path().join("newer.ledger-shm"));
    std::fs::write(&newer, &bytes).unwrap();
    for (f, want) in
        [(&txt, "not an SQLite database"), (&other, "another application"), (&newer, "newer than this mmloop")]
    {
        let before = sha(f);
        for args in [vec!["list"], vec!["add", s(&cal)], vec!["export"]] {
            let mut a = vec!["ledger", s(f)];
            a.extend(args.iter().copied());
            let o = mmloop(&a);
            let t = text(&o);
            assert!(!o.status.success() && t.contains(want) && t.contains(s(f)), "{a:?}: {t}");
        }
        assert_eq!(sha(f), before, "{} was modified", f.display());
    }
    let t = text(&mmloop(&["ledger", s(&dir.path().join("nope.ledger")), "list"]));
    assert!(t.contains("no ledger at this path"), "{t}");
    assert!(!dir.path().join("nope.ledger").exists(), "list must not create a ledger");
}

/// A child `mmloop ledger add` is killed with SIGKILL at seeded random moments across its whole
/// run (start-up, parsing, the write transaction, the commit). After every kill the ledger opens,
/// `PRAGMA integrity_check` is ok, and each batch of readouts is entirely present or entirely
/// absent, every experiment with all its channel, cell and geo rows.
#[test]
fn ledger_survives_sigkill_at_random_moments_without_half_records() {
    let dir = tempfile::tempdir().unwrap();
    let led = dir.path().join("loop.ledger");
    const PER_BATCH: usize = 1500;
    // an uninterrupted run first: how long one add takes here
    let (cal, _) = write_batch(dir.path(), 0, PER_BATCH);
    let t0 = Instant::now();
    assert!(mmloop(&["ledger", s(&led), "add", s(&cal)]).status.success());
    let full = t0.elapsed();
    let mut rng = SplitMix(20_261_130);
    let (mut completed, mut absent) = (vec![0usize], Vec::new());
    for batch in 1..=30 {
        let (cal, _) = write_batch(dir.path(), batch, PER_BATCH);
        let mut child = Command::new(env!("CARGO_BIN_EXE_mmloop"))
            .args(["ledger", s(&led), "add", s(&cal)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // kill moments spread over 1.3 × the uninterrupted run time
        std::thread::sleep(full.mul_f64(1.3 * rng.next_f64()));
        let _ = child.kill(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        let counts = check_consistent(&led, PER_BATCH);
        let present = counts.contains_key(&batch);
        if status.success() {
            assert!(present, "batch {batch}: the process succeeded but its readouts are missing");
        }
        if present { completed.push(batch) } else { absent.push(batch) }
    }
    eprintln!(
        "sigkill: one add of {PER_BATCH} readouts takes {full:?}; {} batches committed, {} killed before commit",
        completed.len(),
        absent.len()
    );
    // the seeded kill moments must actually have interrupted writes, or this test proved nothing
    assert!(!absent.is_empty(), "no kill landed before a commit; the kill window is wrong");
    let o = mmloop(&["ledger", s(&led), "check"]);
    assert!(o.status.success() && text(&o).contains(": ok ("), "{}", text(&o));
    // batches that were killed can be added again, once
    let (cal, _) = write_batch(dir.path(), absent[0], PER_BATCH);
    assert!(mmloop(&["ledger", s(&led), "add", s(&cal)]).status.success());
    check_consistent(&led, PER_BATCH);

    // kills while a new ledger is being created (file creation, schema, WAL switch, first add):
    // whatever is left opens as a ledger, all or nothing
    let (cal, _) = write_batch(dir.path(), 1000, 200);
    let fresh = dir.path().join("fresh0.ledger");
    let t0 = Instant::now();
    assert!(mmloop(&["ledger", s(&fresh), "add", s(&cal)]).status.success());
    let create = t0.elapsed();
    let mut left_empty = 0;
    for k in 1..=15 {
        let fresh = dir.path().join(format!("fresh{k}.ledger"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_mmloop"))
            .args(["ledger", s(&fresh), "add", s(&cal)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(create.mul_f64(1.2 * rng.next_f64()));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !fresh.exists() {
            assert!(!status.success());
            continue;
        }
        drop(Ledger::open_or_create(&fresh).expect("a ledger killed while being created opens"));
        let counts = check_consistent(&fresh, 200);
        if counts.is_empty() {
            left_empty += 1;
        }
        if status.success() {
            assert_eq!(counts.get(&1000), Some(&200));
        }
    }
    eprintln!("sigkill at creation: one create+add of 200 takes {create:?}; {left_empty} of 15 left without readouts");
}

/// Two processes add different calibration files to the same (new) ledger at the same moment,
/// five times over: both succeed (one waits for the other, creation included) or one fails with
/// the clean busy message; the ledger is never corrupted and holds exactly what succeeded.
#[test]
fn ledger_two_writers_at_once_wait_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let led = dir.path().join(format!("loop{round}.ledger"));
        let (a, _) = write_batch(dir.path(), 2 * round, 800);
        let (b, _) = write_batch(dir.path(), 2 * round + 1, 800);
        let spawn = |cal: &Path| {
            Command::new(env!("CARGO_BIN_EXE_mmloop"))
                .args(["ledger", s(&led), "add", s(cal)])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (ca, cb) = (spawn(&a), spawn(&b));
        let (oa, ob) = (ca.wait_with_output().unwrap(), cb.wait_with_output().unwrap());
        let mut expected = 0;
        for o in [&oa, &ob] {
            if o.status.success() {
                expected += 800;
            } else {
                assert!(text(o).contains("another process is writing"), "round {round}: {}", text(o));
            }
        }
        assert!(expected > 0, "round {round}: neither writer succeeded: {} / {}", text(&oa), text(&ob));
        let counts = check_consistent(&led, 800);
        assert_eq!(counts.values().sum::<usize>(), expected, "round {round}");
    }
    // the waiting is real: a writer that finds the lock taken for 1 s still succeeds
    let led = dir.path().join("held.ledger");
    let (cal, _) = write_batch(dir.path(), 99, 10);
    assert!(mmloop(&["ledger", s(&led), "add", s(&cal)]).status.success());
    let holder = rusqlite::Connection::open(&led).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (cal2, _) = write_batch(dir.path(), 98, 10);
    let t0 = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .args(["ledger", s(&led), "add", s(&cal2)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    holder.execute_batch("COMMIT").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(t0.elapsed() >= Duration::from_millis(1000));
    assert_eq!(check_consistent(&led, 10).len(), 2);
}

/// `mmloop lift --ledger` records the readouts it wrote: the ledger's JSON export is exactly the
/// output's calibration.json, with that file's hash; a second identical run is refused by the
/// ledger (same readouts) but its output is still written; a foreign ledger fails before estimating.
#[test]
fn lift_with_ledger_records_its_calibration_records() {
    let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/geo/GeoLift_Test_MultiCell.csv"));
    if !data.exists() {
        eprintln!("SKIPPED: {} not found", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let led = dir.path().join("loop.ledger");
    let lift = |out: &Path, ledger: &Path| {
        mmloop(&[
            "lift",
            "--data",
            s(&data),
            "--cell",
            "a=chicago,cincinnati",
            "--cell",
            "b=honolulu,indianapolis",
            "--start",
            "2021-04-01",
            "--end",
            "2021-04-15",
            "--channel",
            "tv",
            "--spend-change",
            "40000",
            "--permutations",
            "100",
            "--placebo-reps",
            "20",
            "--out",
            s(out),
            "--ledger",
            s(ledger),
        ])
    };
    let out = dir.path().join("out");
    let o = lift(&out, &led);
    assert!(o.status.success() && text(&o).contains("as experiments 1, 2"), "{}", text(&o));
    let cal = out.join("calibration.json");
    let l = Ledger::open(&led).unwrap();
    assert_eq!(l.readout_records().unwrap(), LiftTestRecord::read_all(&cal).unwrap());
    let e = l.experiment(2).unwrap();
    assert_eq!(e.readout.unwrap().source_hash.unwrap(), sha(&cal));
    assert_eq!(e.cells[0].geos, ["honolulu", "indianapolis"]);
    drop(l);
    // the same test run again: the output is written, the ledger recognises the readout and does not
    // add it again, and the run succeeds (re-running a pipeline is idempotent; see `mmloop lift --help`)
    let out2 = dir.path().join("out2");
    let o = lift(&out2, &led);
    assert!(o.status.success() && text(&o).contains("already recorded as experiment(s) 1, 2"), "{}", text(&o));
    assert!(out2.join("calibration.json").exists());
    assert_eq!(Ledger::open(&led).unwrap().experiments().unwrap().len(), 2);
    // a file that is not a ledger: refused before estimating, no output, file untouched
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "x".repeat(200)).unwrap();
    let out3 = dir.path().join("out3");
    let o = lift(&out3, &notes);
    assert!(!o.status.success() && text(&o).contains("not an SQLite database"), "{}", text(&o));
    assert!(!out3.exists());
    assert_eq!(std::fs::read(&notes).unwrap(), "x".repeat(200).as_bytes());
}

#[test]
fn ledger_evidence_ages_readouts_by_channel_half_life() {
    let dir = tempfile::tempdir().unwrap();
    let led = dir.path().join("loop.ledger");
    let (cal, _) = write_batch(dir.path(), 0, 2); // ends 2024-03-31: rec 0 tv, rec 1 tv+search
    assert!(mmloop(&["ledger", s(&led), "add", s(&cal)]).status.success());
    // 2024-03-31 + 364 days = 52 weeks: tv alone (52 w) variance x2; tv+search ages with search (26 w): x4
    let o = mmloop(&["ledger", s(&led), "evidence", "--as-of", "2025-03-30"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let row = |id: &str| t.lines().find(|l| l.trim_start().starts_with(id)).unwrap_or("").to_string();
    assert!(row("1 ").contains(" 52.0 ") && row("1 ").contains(" 2.00 "), "{t}");
    assert!(row("2 ").contains(" 26.0 ") && row("2 ").contains(" 4.00 "), "{t}");
    assert!(t.contains("52 (tv)") && t.contains("26 (search)"), "{t}");
    // an override names its channel when wrong, and changes the half-life when right
    let t = text(&mmloop(&["ledger", s(&led), "evidence", "--as-of", "2025-03-30", "--half-life", "tv=-4"]));
    assert!(t.contains("half_life.channels.tv") && t.contains("positive"), "{t}");
    let t = text(&mmloop(&["ledger", s(&led), "evidence", "--as-of", "2025-03-30", "--half-life", "tv=26"]));
    assert!(t.contains("26 (set)"), "{t}");
    let t = text(&mmloop(&["ledger", s(&led), "evidence", "--as-of", "2024-01-01"]));
    assert!(t.contains("experiment 1") && t.contains("after the as-of"), "{t}");
}
