use super::*;
use std::time::Duration;

fn rec(i: usize) -> LiftTestRecord {
    LiftTestRecord {
        channels: vec![if i.is_multiple_of(2) { "tv".into() } else { "search".into() }],
        geos: vec![format!("geo{i}"), format!("geo{}", i + 1)],
        start: "2021-04-01".into(),
        end: "2021-04-15".into(),
        spend_change: 50_000.0 + i as f64,
        spend_path: None,
        incremental_kpi: 4667.25 + i as f64 * 0.1,
        standard_error: 1200.0 / 3.0,
        estimator: "sc".into(),
        source: "GeoLift_Test.csv".into(),
    }
}

fn write_json(dir: &Path, name: &str, v: &impl Serialize) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

fn file_hash(p: &Path) -> String {
    mmloop_data::hash_file(p).unwrap()
}

#[test]
fn added_readouts_read_back_as_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut recs: Vec<LiftTestRecord> = (0..3).map(rec).collect();
    recs[1].spend_path = Some(vec![SpendDelta { time: "2021-04-01".into(), geo: "geo1".into(), delta: 0.1 + 0.2 }]);
    recs[2].geos.clear(); // a national test
    recs[2].channels = vec!["tv".into(), "radio".into()];
    let cal = write_json(dir.path(), "calibration.json", &recs);
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let ids = l.add_calibration_file(&cal).unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(l.readout_records().unwrap(), recs);
    let e = l.experiment(ids[0]).unwrap();
    assert_eq!(e.status, Status::Read);
    let r = e.readout.unwrap();
    assert_eq!(r.source_hash.as_deref(), Some(file_hash(&cal).as_str()));
    assert_eq!(r.record_hash, record_hash(&recs[0]));
    // iROAS and its 90 % interval: kpi / spend and (kpi ± 1.6449 SE) / spend
    assert!((r.iroas.unwrap() - 4667.25 / 50_000.0).abs() < 1e-15);
    let (lo, hi) = r.iroas_interval.unwrap();
    assert!((lo - (4667.25 - 1.6448536269514722 * 400.0) / 50_000.0).abs() < 1e-12);
    assert!((hi - (4667.25 + 1.6448536269514722 * 400.0) / 50_000.0).abs() < 1e-12);
    // reopening gives the same
    drop(l);
    let l = Ledger::open(dir.path().join("l.db")).unwrap();
    assert_eq!(l.readout_records().unwrap(), recs);
    l.integrity_check().unwrap();
}

#[test]
fn adding_the_same_file_or_record_twice_is_refused_naming_the_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let cal = write_json(dir.path(), "a.json", &vec![rec(0), rec(1)]);
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let ids = l.add_calibration_file(&cal).unwrap();
    let e = l.add_calibration_file(&cal).unwrap_err();
    assert!(matches!(e, LedgerError::DuplicateSource { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("{}, {}", ids[0], ids[1])) && msg.contains("a.json"), "{msg}");
    // the same record in another file (other formatting, other neighbours): refused, nothing added
    let other = dir.path().join("b.json");
    std::fs::write(&other, serde_json::to_string(&vec![rec(5), rec(1)]).unwrap()).unwrap();
    let e = l.add_calibration_file(&other).unwrap_err();
    assert!(matches!(e, LedgerError::DuplicateRecord { index: 2, existing, .. } if existing == ids[1]), "{e}");
    assert!(e.to_string().contains(&format!("experiment {}", ids[1])), "{e}");
    assert_eq!(l.experiments().unwrap().len(), 2, "a refused file must add nothing");
    // the same record twice within one file
    let twice = write_json(dir.path(), "c.json", &vec![rec(7), rec(7)]);
    let e = l.add_calibration_file(&twice).unwrap_err().to_string();
    assert!(e.contains("record 2") && e.contains("record 1"), "{e}");
    assert_eq!(l.experiments().unwrap().len(), 2);
}

#[test]
fn bad_calibration_files_name_the_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let p = dir.path().join("bad.json");
    let mut v = serde_json::to_value(vec![rec(0), rec(1)]).unwrap();
    v[1]["oops"] = serde_json::json!(1);
    std::fs::write(&p, v.to_string()).unwrap();
    let e = l.add_calibration_file(&p).unwrap_err().to_string();
    assert!(e.contains("bad.json") && e.contains("record 2") && e.contains("oops"), "{e}");
    std::fs::write(&p, "[{\"start\": ").unwrap();
    let e = l.add_calibration_file(&p).unwrap_err().to_string();
    assert!(e.contains("bad.json") && e.contains("line 1"), "{e}");
    let mut r = rec(0);
    r.standard_error = -1.0;
    let p2 = write_json(dir.path(), "neg.json", &vec![rec(3), r]);
    let e = l.add_calibration_file(&p2).unwrap_err().to_string();
    assert!(e.contains("neg.json") && e.contains("record 2") && e.contains("standard_error"), "{e}");
    let mut r = rec(0);
    r.end = "2021-03-01".into();
    let p3 = write_json(dir.path(), "win.json", &r);
    let e = l.add_calibration_file(&p3).unwrap_err().to_string();
    assert!(e.contains("record 1") && e.contains("before it starts"), "{e}");
    std::fs::write(&p, "[]").unwrap();
    assert!(l.add_calibration_file(&p).unwrap_err().to_string().contains("no records"));
    assert!(l.experiments().unwrap().is_empty());
}

#[test]
fn discard_needs_a_reason_and_keeps_the_experiment_out_of_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let ids = l.add_readouts(&[rec(0), rec(1)], None).unwrap();
    let e = l.discard(ids[0], "  ").unwrap_err().to_string();
    assert!(e.contains("--why"), "{e}");
    l.discard(ids[0], "spend not delivered in geo0").unwrap();
    let e = l.experiment(ids[0]).unwrap();
    assert_eq!(e.status, Status::Discarded);
    assert_eq!(e.discard_reason.as_deref(), Some("spend not delivered in geo0"));
    assert_eq!(e.discarded_from, Some(Status::Read));
    assert_eq!(l.readout_records().unwrap(), vec![rec(1)]);
    let e = l.discard(ids[0], "again").unwrap_err().to_string();
    assert!(e.contains("already discarded"), "{e}");
    let e = l.discard(999, "x").unwrap_err();
    assert!(matches!(e, LedgerError::NoSuchExperiment { id: 999, .. }));
}

#[test]
fn planned_experiments_run_and_keep_their_cells_and_design() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let p = PlannedExperiment {
        channels: vec!["search".into()],
        cells: vec![
            Cell { name: "a".into(), geos: vec!["x".into(), "y".into()] },
            Cell { name: "b".into(), geos: vec!["z".into()] },
        ],
        start: "2025-01-06".into(),
        end: "2025-02-02".into(),
        design: Some(serde_json::json!({"mde": 0.031, "power": 0.8, "budget": 120000.0})),
    };
    let id = l.plan(&p).unwrap();
    l.mark_running(id).unwrap();
    let e = l.experiment(id).unwrap();
    assert_eq!((e.status, e.cells, e.design, e.readout), (Status::Running, p.cells.clone(), p.design.clone(), None));
    assert!(l.mark_running(id).unwrap_err().to_string().contains("is running"));
    assert!(l.readout_records().unwrap().is_empty());
    let csv = to_csv(&l.experiments().unwrap());
    assert!(csv.lines().nth(1).unwrap().starts_with(&format!("{id},running,,,search,x;y;z,2025-01-06")), "{csv}");
}

#[test]
fn fits_and_predictions_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let ids = l.add_readouts(&[rec(0)], None).unwrap();
    let f = NewFit {
        config_hash: "c".repeat(64),
        data_hash: "d".repeat(64),
        method: "nuts".into(),
        diagnostics: serde_json::json!({"max_rhat": 1.004, "divergences": 0}),
        roi_summary: serde_json::json!({"tv": {"mean": 1.9, "sd": 0.4}}),
        fit_dir: Some("fit_out".into()),
    };
    let fit = l.record_fit(&f).unwrap();
    assert_eq!(l.fits().unwrap()[0].fit, f);
    let p = Prediction { fit_id: fit, experiment_id: ids[0], mean: 4000.0, sd: 900.0, q05: 2500.0, q95: 5500.0 };
    l.record_prediction(&p).unwrap();
    assert_eq!(l.predictions_for(ids[0]).unwrap(), vec![p]);
    assert!(matches!(l.record_prediction(&p), Err(LedgerError::DuplicatePrediction { .. })));
    assert!(matches!(l.record_prediction(&Prediction { fit_id: 77, ..p }), Err(LedgerError::NoSuchFit { id: 77, .. })));
    let bad = Prediction { fit_id: fit, experiment_id: ids[0], mean: f64::NAN, ..p };
    assert!(l.record_prediction(&bad).unwrap_err().to_string().contains("finite"));
    let shown = format_experiment(&l.experiment(ids[0]).unwrap(), &l.predictions_for(ids[0]).unwrap());
    assert!(shown.contains("predicted by fit 1"), "{shown}");
}

#[test]
fn a_foreign_sqlite_file_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("other.db");
    {
        let c = Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
    }
    let before = file_hash(&p);
    for create in [false, true] {
        let e = Ledger::open_with(&p, create, DEFAULT_BUSY_TIMEOUT).unwrap_err();
        assert!(matches!(e, LedgerError::NotALedger { .. }), "{e}");
        let m = e.to_string();
        assert!(m.contains("other.db") && m.contains("another application"), "{m}");
    }
    // a foreign file with its own application id in WAL mode
    let q = dir.path().join("wal.db");
    {
        let c = Connection::open(&q).unwrap();
        c.execute_batch("PRAGMA application_id = 42; PRAGMA journal_mode = WAL; CREATE TABLE t (x);").unwrap();
    }
    let before_q = file_hash(&q);
    assert!(matches!(Ledger::open_or_create(&q), Err(LedgerError::NotALedger { .. })));
    // a database that carries our application id and version by chance, without our tables
    let r = dir.path().join("lookalike.db");
    {
        let c = Connection::open(&r).unwrap();
        c.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION}; CREATE TABLE t (x);"
        ))
        .unwrap();
    }
    let before_r = file_hash(&r);
    let e = Ledger::open_or_create(&r).unwrap_err().to_string();
    assert!(e.contains("lookalike.db") && e.contains("lacks the tables experiments"), "{e}");
    assert_eq!(file_hash(&r), before_r);
    assert_eq!(file_hash(&p), before);
    assert_eq!(file_hash(&q), before_q);
}

#[test]
fn non_sqlite_and_corrupted_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "this is not a database, just a long enough line of text ".repeat(5)).unwrap();
    let before = file_hash(&p);
    let e = Ledger::open_or_create(&p).unwrap_err().to_string();
    assert!(e.contains("notes.txt") && e.contains("not an SQLite database"), "{e}");
    assert_eq!(file_hash(&p), before);
    // a real ledger with its pages after the header overwritten
    let l = dir.path().join("l.db");
    {
        let mut led = Ledger::open_or_create(&l).unwrap();
        led.add_readouts(&(0..200).map(rec).collect::<Vec<_>>(), None).unwrap();
        // fold the WAL into the main file so the damage below hits the data
        led.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    let mut bytes = std::fs::read(&l).unwrap();
    assert!(bytes.len() > 8192);
    for (i, b) in bytes[4096..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    std::fs::write(&l, &bytes).unwrap();
    let e = Ledger::open(&l).unwrap_err();
    assert!(matches!(e, LedgerError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("l.db"), "{e}");
}

#[test]
fn a_ledger_from_a_newer_schema_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("new.db");
    drop(Ledger::open_or_create(&p).unwrap());
    {
        // what a newer mmloop would leave: our application id, a higher version, checkpointed
        let c = Connection::open(&p).unwrap();
        c.execute_batch(&format!("PRAGMA user_version = {}; PRAGMA wal_checkpoint(TRUNCATE);", SCHEMA_VERSION + 3))
            .unwrap();
    }
    let before = file_hash(&p);
    let e = Ledger::open(&p).unwrap_err();
    assert!(
        matches!(e, LedgerError::NewerSchema { found, supported, .. } if found == SCHEMA_VERSION + 3 && supported == SCHEMA_VERSION),
        "{e}"
    );
    let m = e.to_string();
    assert!(m.contains("new.db") && m.contains(&format!("version {}", SCHEMA_VERSION + 3)), "{m}");
    assert_eq!(file_hash(&p), before);
}

#[test]
fn a_newer_schema_still_in_the_wal_is_refused() {
    // the header copy of user_version is stale while the change sits in the WAL; the read-only
    // probe sees it
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("new.db");
    drop(Ledger::open_or_create(&p).unwrap());
    let holder = Connection::open(&p).unwrap();
    holder.execute_batch("PRAGMA wal_autocheckpoint = 0;").unwrap();
    holder.execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1)).unwrap();
    let e = Ledger::open(&p).unwrap_err();
    assert!(matches!(e, LedgerError::NewerSchema { .. }), "{e}");
}

#[test]
fn an_empty_file_left_by_a_killed_creator_becomes_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.db");
    std::fs::write(&p, b"").unwrap();
    let mut l = Ledger::open_or_create(&p).unwrap();
    l.add_readouts(&[rec(0)], None).unwrap();
    assert_eq!(l.experiments().unwrap().len(), 1);
    assert!(matches!(Ledger::open(dir.path().join("missing.db")), Err(LedgerError::Missing { .. })));
}

#[test]
fn a_second_writer_waits_then_fails_cleanly_when_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.db");
    let a = Ledger::open_or_create(&p).unwrap();
    let mut b = Ledger::open_with(&p, false, Duration::from_millis(200)).unwrap();
    // a holds the write lock (an open write transaction) while b tries to write
    a.conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO fits (config_hash, data_hash, method, diagnostics_json, roi_summary_json) VALUES ('c','d','m','{}','{}');").unwrap();
    let t0 = std::time::Instant::now();
    let e = b.add_readouts(&[rec(0)], None).unwrap_err();
    assert!(t0.elapsed() >= Duration::from_millis(150), "b did not wait: {:?}", t0.elapsed());
    assert!(matches!(e, LedgerError::Busy { waited_ms: 200, .. }), "{e}");
    assert!(e.to_string().contains("another process is writing"), "{e}");
    // readers are not blocked by the writer (WAL)
    assert!(b.experiments().unwrap().is_empty());
    a.conn.execute_batch("COMMIT").unwrap();
    b.add_readouts(&[rec(0)], None).unwrap();
    assert_eq!(a.experiments().unwrap().len(), 1);
    a.integrity_check().unwrap();
}

#[test]
fn a_writer_waits_for_a_short_transaction_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.db");
    let mut a = Ledger::open_or_create(&p).unwrap();
    a.add_readouts(&[rec(9)], None).unwrap();
    let p2 = p.clone();
    a.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let h = std::thread::spawn(move || {
        let mut b = Ledger::open_with(&p2, false, Duration::from_secs(10)).unwrap();
        b.add_readouts(&[rec(1)], None)
    });
    std::thread::sleep(Duration::from_millis(300));
    a.conn.execute_batch("COMMIT").unwrap();
    assert_eq!(h.join().unwrap().unwrap().len(), 1);
    assert_eq!(a.experiments().unwrap().len(), 2);
}

#[test]
fn list_and_csv_show_every_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let mut r = rec(0);
    r.source = "a \"quoted\", source".into();
    let ids = l.add_readouts(&[r, rec(1)], None).unwrap();
    l.discard(ids[1], "bad, very bad").unwrap();
    let ex = l.experiments().unwrap();
    let t = format_list(&ex, &[]);
    assert!(t.contains("read") && t.contains("discarded") && t.contains("2 experiments: 1 read, 1 discarded"), "{t}");
    let csv = to_csv(&ex);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[1].contains("\"a \"\"quoted\"\", source\""), "{}", lines[1]);
    assert!(lines[2].contains(",discarded,\"bad, very bad\",read,search,geo1;geo2,"), "{}", lines[2]);
    assert!(lines[1].contains(",50000.0,4667.25,"), "{}", lines[1]);
}

#[test]
fn a_new_ledger_carries_its_application_id_and_version_in_the_file_header() {
    // the preflight reads the raw header: the id must be in the main file from the first commit on,
    // not only in the WAL
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.db");
    let mut l = Ledger::open_or_create(&p).unwrap();
    l.add_readouts(&[rec(0)], None).unwrap();
    let head = std::fs::read(&p).unwrap();
    assert_eq!(&head[..16], b"SQLite format 3\0");
    assert_eq!(i64::from(u32::from_be_bytes(head[68..72].try_into().unwrap())), APPLICATION_ID);
    assert_eq!(i64::from(u32::from_be_bytes(head[60..64].try_into().unwrap())), SCHEMA_VERSION);
    let v: i64 = l.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let mode: String = l.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    let fk: i64 = l.conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!((v, mode.as_str(), fk), (SCHEMA_VERSION, "wal", 1));
}

#[test]
fn decayed_readouts_age_each_read_experiment_and_name_the_bad_one() {
    use crate::decay::{HalfLives, TimeUnit};
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let ids = l.add_readouts(&[rec(0), rec(1), rec(2)], None).unwrap();
    l.discard(ids[2], "test").unwrap();
    let h = HalfLives::default();
    // 2021-04-15 + 364 days = 52 weeks: tv (52 w) variance × 2, search (26 w) × 4
    let d = l.decayed_readouts("2022-04-14", TimeUnit::Weeks, &h).unwrap();
    assert_eq!(d.iter().map(|(i, _)| *i).collect::<Vec<_>>(), ids[..2]);
    assert!((d[0].1.variance_inflation - 2.0).abs() < 1e-12);
    assert!((d[1].1.variance_inflation - 4.0).abs() < 1e-12);
    assert!((d[1].1.record.standard_error - 2.0 * rec(1).standard_error).abs() < 1e-9);
    let e = l.decayed_readouts("2021-01-01", TimeUnit::Weeks, &h).unwrap_err().to_string();
    assert!(e.contains(&format!("experiment {}", ids[0])) && e.contains("after the as-of"), "{e}");
}

#[test]
fn a_planned_experiment_is_read_out_by_attaching_its_readout() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let r = rec(4); // channel tv, geos geo4, geo5
    let plan = |geos: Vec<String>| PlannedExperiment {
        channels: vec!["tv".into()],
        cells: vec![Cell { name: "a".into(), geos }],
        start: "2021-04-01".into(),
        end: "2021-04-10".into(),
        design: Some(serde_json::json!({"power": 0.8})),
    };
    let id = l.plan(&plan(vec!["geo5".into(), "geo4".into()])).unwrap();
    l.mark_running(id).unwrap();
    let other = l.plan(&plan(vec!["geo9".into()])).unwrap();
    let e = l.attach_readout(other, &r, None).unwrap_err().to_string();
    assert!(e.contains("the plan is on") && e.contains("geo9"), "{e}");
    l.attach_readout(id, &r, None).unwrap();
    let e = l.experiment(id).unwrap();
    assert_eq!(e.status, Status::Read);
    assert_eq!(e.end, "2021-04-15", "the window is the readout's");
    assert_eq!(e.design, Some(serde_json::json!({"power": 0.8})), "the design figures stay");
    assert_eq!(l.readout_records().unwrap(), vec![r.clone()]);
    // read twice, or the same readout on another plan: refused
    assert!(l.attach_readout(id, &r, None).unwrap_err().to_string().contains("is read"));
    let third = l.plan(&plan(vec!["geo4".into(), "geo5".into()])).unwrap();
    assert!(
        matches!(l.attach_readout(third, &r, None), Err(LedgerError::DuplicateRecord { existing, .. }) if existing == id)
    );
    l.integrity_check().unwrap();
}

#[test]
fn a_version_1_ledger_migrates_and_its_predictions_read_as_out_of_sample() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v1.db");
    {
        // a ledger as version 1 wrote it: its schema, one experiment, fit and prediction
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "application_id", APPLICATION_ID).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute_batch(
            "INSERT INTO experiments (status, window_start, window_end) VALUES ('planned', '2021-04-01', '2021-04-15');
             INSERT INTO fits (config_hash, data_hash, method, diagnostics_json, roi_summary_json) VALUES ('c', 'd', 'nuts', '{}', '[]');
             INSERT INTO predictions (fit_id, experiment_id, mean, sd, q05, q95) VALUES (1, 1, 10.0, 2.0, 7.0, 13.0);",
        )
        .unwrap();
    }
    let mut l = Ledger::open(&p).unwrap();
    let v: i64 = l.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let rows = l.all_predictions().unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].in_sample);
    assert_eq!(rows[0].prediction.mean, 10.0);
    // the new column is writable and checked
    l.record_fit(&NewFit {
        config_hash: "c2".into(),
        data_hash: "d".into(),
        method: "laplace".into(),
        diagnostics: serde_json::json!({}),
        roi_summary: serde_json::json!([]),
        fit_dir: None,
    })
    .unwrap();
    let pr = Prediction { fit_id: 2, experiment_id: 1, mean: 9.0, sd: 1.0, q05: 7.5, q95: 10.5 };
    l.record_predictions(&[(pr, true)]).unwrap();
    assert!(l.all_predictions().unwrap()[1].in_sample);
    l.integrity_check().unwrap();
}

#[test]
fn record_predictions_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).unwrap();
    let ids = l.add_readouts(&[rec(0), rec(1)], None).unwrap();
    let fit = l
        .record_fit(&NewFit {
            config_hash: "c".into(),
            data_hash: "d".into(),
            method: "laplace".into(),
            diagnostics: serde_json::json!({}),
            roi_summary: serde_json::json!([]),
            fit_dir: None,
        })
        .unwrap();
    let p = |id: i64| Prediction { fit_id: fit, experiment_id: id, mean: 1.0, sd: 1.0, q05: 0.0, q95: 2.0 };
    // the second names an experiment that does not exist: the first is not kept either
    let e = l.record_predictions(&[(p(ids[0]), false), (p(999), false)]).unwrap_err();
    assert!(matches!(e, LedgerError::NoSuchExperiment { id: 999, .. }), "{e}");
    assert!(l.all_predictions().unwrap().is_empty());
    // the same pair twice in one batch is a duplicate
    let e = l.record_predictions(&[(p(ids[1]), false), (p(ids[1]), true)]).unwrap_err();
    assert!(matches!(e, LedgerError::DuplicatePrediction { .. }), "{e}");
    assert!(l.all_predictions().unwrap().is_empty());
    assert_eq!(l.record_predictions(&[(p(ids[0]), false), (p(ids[1]), true)]).unwrap().len(), 2);
}

#[test]
fn keyed_plans_are_added_once_and_a_version_2_ledger_migrates_to_carry_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v2.db");
    {
        // a ledger as version 2 wrote it, with one planned experiment
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "application_id", APPLICATION_ID).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.execute_batch(schema::MIGRATIONS[1]).unwrap();
        c.pragma_update(None, "user_version", 2).unwrap();
        c.execute_batch("INSERT INTO experiments (status, window_start, window_end) VALUES ('planned', '10', '15');")
            .unwrap();
    }
    let mut l = Ledger::open(&p).unwrap();
    let v: i64 = l.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let plan = |ch: &str| PlannedExperiment {
        channels: vec![ch.into()],
        cells: vec![Cell { name: "test".into(), geos: vec!["g1".into(), "g2".into()] }],
        start: "20".into(),
        end: "25".into(),
        design: Some(serde_json::json!({"cost": 10.0})),
    };
    let items = vec![("loop:a:cycle-1:x".to_string(), plan("tv")), ("loop:a:cycle-1:y".to_string(), plan("search"))];
    let first = l.plan_keyed(&items).unwrap();
    assert_eq!(first, vec![(2, true), (3, true)]);
    // the same keys again (a re-run after an interruption): nothing added, the same ids
    let again = l.plan_keyed(&items).unwrap();
    assert_eq!(again, vec![(2, false), (3, false)]);
    assert_eq!(l.experiments().unwrap().len(), 3);
    assert_eq!(l.planned_by_key("loop:a:cycle-1:y").unwrap(), Some(3));
    assert_eq!(l.planned_by_key("loop:a:cycle-2:y").unwrap(), None);
    let e = l.experiment(3).unwrap();
    assert_eq!((e.status, e.channels.clone(), e.cells[0].geos.len()), (Status::Planned, vec!["search".to_string()], 2));
    // an empty key is refused and nothing is written
    assert!(l.plan_keyed(&[(" ".into(), plan("tv"))]).is_err());
    assert_eq!(l.experiments().unwrap().len(), 3);
}
