//! The lift readout as a library (`mmloop_geolift::readout`) against what `mmloop lift` writes, and
//! `mmloop lift --ledger`: recorded, listed, refused twice, exported back to the same record.

use mmloop_data::LiftTestRecord;
use mmloop_geolift::readout::{ReadoutParams, read_out};
use mmloop_geolift::{Columns, NoProgress, Panel};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn geo(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/geo")).join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} not found", p.display());
        None
    }
}

fn mmloop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmloop")).args(args).output().expect("run mmloop")
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `mmloop lift` on GeoLift_Test (chicago and portland from 2021-04-01 to 2021-04-15, SC), with
/// fewer permutations and placebo replications than the defaults to stay quick.
fn lift_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "lift",
        "--data",
        data,
        "--treated",
        "chicago,portland",
        "--start",
        "2021-04-01",
        "--end",
        "2021-04-15",
        "--spend-change",
        "50000",
        "--permutations",
        "200",
        "--placebo-reps",
        "20",
        "--out",
        out,
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn library_readout_equals_what_the_cli_wrote_on_geolift_test() {
    let Some(data) = geo("GeoLift_Test.csv") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = mmloop(&lift_args(s(&data), s(&out), &["--channel", "tv", "--estimator", "sc,did,tbr"]));
    assert!(o.status.success(), "{}", text(&o));

    let panel = Panel::read_allow_gaps(&data, &Columns::default()).unwrap();
    let settings = ReadoutParams {
        estimators: vec!["sc".into(), "did".into(), "tbr".into()],
        treated: vec!["chicago".into(), "portland".into()],
        start: Some("2021-04-01".into()),
        end: Some("2021-04-15".into()),
        spend_change: Some(50_000.0),
        permutations: 200,
        placebo_reps: 20,
        channels: vec!["tv".into()],
        ..Default::default()
    }
    .check()
    .unwrap();
    let readout = read_out(&panel, &settings, &NoProgress).unwrap();

    // the records are equal field by field (JSON writes the shortest float that reads back exactly)
    let written = LiftTestRecord::read_all(out.join("calibration.json")).unwrap();
    assert_eq!(readout.records(), written.as_slice());
    assert_eq!(written[0].channels, ["tv"]);
    assert_eq!(written[0].estimator, "sc");
    // and so are the bytes of every output the CLI writes
    let cal = serde_json::to_string_pretty(&readout.records).unwrap();
    assert_eq!(cal, std::fs::read_to_string(out.join("calibration.json")).unwrap());
    let lift = serde_json::to_string_pretty(&readout.lift_json("Y")).unwrap();
    assert_eq!(lift, std::fs::read_to_string(out.join("lift.json")).unwrap());
    assert_eq!(readout.periods_csv().unwrap(), std::fs::read_to_string(out.join("lift_periods.csv")).unwrap());
}

#[test]
fn lift_with_ledger_records_the_readout_lists_it_refuses_it_twice_and_exports_the_same_record() {
    let Some(data) = geo("GeoLift_Test.csv") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("loop.ledger");
    let (out1, out2) = (dir.path().join("out1"), dir.path().join("out2"));

    let o = mmloop(&lift_args(s(&data), s(&out1), &["--channel", "tv", "--ledger", s(&ledger)]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("recorded in ledger") && text(&o).contains("as experiment 1"), "{}", text(&o));

    let list = mmloop(&["ledger", s(&ledger), "list"]);
    assert!(list.status.success(), "{}", text(&list));
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(listed.contains("tv") && listed.contains("read") && listed.contains("chicago"), "{listed}");

    // the same test read out again (into another directory: the same calibration.json bytes): the
    // output is written, the ledger refuses the duplicate, says which experiment holds it, exit 0
    let o = mmloop(&lift_args(s(&data), s(&out2), &["--channel", "tv", "--ledger", s(&ledger)]));
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("already recorded as experiment") && err.contains('1') && err.contains("not added"), "{err}");
    assert!(out2.join("calibration.json").exists() && out2.join("lift.json").exists());
    let l = mmloop_loop::ledger::Ledger::open(&ledger).unwrap();
    assert_eq!(l.experiments().unwrap().len(), 1);
    drop(l);

    // `ledger add` of the written file is recognised too (same source hash)
    let o = mmloop(&["ledger", s(&ledger), "add", s(&out1.join("calibration.json"))]);
    assert!(!o.status.success() && text(&o).contains("already added"), "{}", text(&o));

    // export round-trips to the record calibration.json holds
    let exported = dir.path().join("export.json");
    let o = mmloop(&["ledger", s(&ledger), "export", "--format", "json", "--out", s(&exported)]);
    assert!(o.status.success(), "{}", text(&o));
    let back = LiftTestRecord::read_all(&exported).unwrap();
    let written = LiftTestRecord::read_all(out1.join("calibration.json")).unwrap();
    assert_eq!(back, written);
}

#[test]
fn lift_ledger_without_channel_is_refused_before_any_work() {
    let Some(data) = geo("GeoLift_Test.csv") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("loop.ledger");
    let out = dir.path().join("out");
    let o = mmloop(&lift_args(s(&data), s(&out), &["--ledger", s(&ledger)]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("--ledger") && err.contains("--channel"), "{err}");
    assert!(!out.exists() && !ledger.exists(), "nothing may be written");
}

#[test]
fn lift_ledger_without_a_spend_change_or_with_a_blank_channel_is_refused_before_any_work() {
    let Some(data) = geo("GeoLift_Test.csv") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("loop.ledger");
    let out = dir.path().join("out");
    let mut args = lift_args(s(&data), s(&out), &["--channel", "tv", "--ledger", s(&ledger)]);
    // drop "--spend-change 50000"
    let i = args.iter().position(|a| *a == "--spend-change").unwrap();
    args.drain(i..i + 2);
    let o = mmloop(&args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--spend-change X"), "{}", text(&o));
    let o = mmloop(&lift_args(s(&data), s(&out), &["--channel", " ", "--ledger", s(&ledger)]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("blank"), "{}", text(&o));
    assert!(!out.exists() && !ledger.exists(), "nothing may be written");
}

#[test]
fn lift_ledger_that_is_not_a_ledger_fails_before_any_output() {
    let Some(data) = geo("GeoLift_Test.csv") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("notes.txt");
    std::fs::write(&ledger, "my notes, not a database\n").unwrap();
    let out = dir.path().join("out");
    let o = mmloop(&lift_args(s(&data), s(&out), &["--channel", "tv", "--ledger", s(&ledger)]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an mmloop ledger"), "{}", text(&o));
    assert!(!out.exists());
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), "my notes, not a database\n");
}

#[test]
fn lift_ledger_recognises_a_readout_added_before_from_another_file() {
    let Some(data) = geo("GeoLift_Test.csv") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("loop.ledger");
    let (out1, out2) = (dir.path().join("out1"), dir.path().join("out2"));
    let o = mmloop(&lift_args(s(&data), s(&out1), &["--channel", "tv"]));
    assert!(o.status.success(), "{}", text(&o));
    // the same records in a file with other bytes (compact JSON): another source hash, same readout
    let recs = LiftTestRecord::read_all(out1.join("calibration.json")).unwrap();
    let copy = dir.path().join("copy.json");
    std::fs::write(&copy, serde_json::to_vec(&recs).unwrap()).unwrap();
    let o = mmloop(&["ledger", s(&ledger), "add", s(&copy)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mmloop(&lift_args(s(&data), s(&out2), &["--channel", "tv", "--ledger", s(&ledger)]));
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("readout 1 of this run is already recorded as experiment 1"), "{err}");
    assert_eq!(mmloop_loop::ledger::Ledger::open(&ledger).unwrap().experiments().unwrap().len(), 1);
    assert!(out2.join("calibration.json").exists());
}

#[test]
fn library_staggered_readout_equals_what_the_cli_wrote_on_mpdta() {
    let Some(data) = geo("did_mpdta.csv") else { return };
    // mpdta: counties adopt in 2004, 2006 or 2007; D = 1{first.treat > 0 and year >= first.treat}
    let src = std::fs::read_to_string(&data).unwrap();
    let mut csv = String::from("year,county,lemp,D\n");
    for l in src.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let (year, first): (f64, f64) = (f[0].parse().unwrap(), f[4].parse().unwrap());
        csv.push_str(&format!("{},{},{},{}\n", f[0], f[1], f[3], u8::from(first > 0.0 && year >= first)));
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mpdta_d.csv");
    std::fs::write(&p, csv).unwrap();
    let out = dir.path().join("out");
    let o = mmloop(&[
        "lift",
        "--data",
        s(&p),
        "--time",
        "year",
        "--geo",
        "county",
        "--kpi",
        "lemp",
        "--treatment-col",
        "D",
        "--estimator",
        "twfe",
        "--channel",
        "tv",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let cols = Columns {
        time: "year".into(),
        geo: "county".into(),
        kpi: "lemp".into(),
        spend: None,
        treatment: Some("D".into()),
    };
    let panel = Panel::read_allow_gaps(&p, &cols).unwrap();
    let settings = ReadoutParams {
        estimators: vec!["twfe".into()],
        treatment_col: Some("D".into()),
        channels: vec!["tv".into()],
        ..Default::default()
    }
    .check()
    .unwrap();
    let readout = read_out(&panel, &settings, &NoProgress).unwrap();
    assert!(matches!(readout.body, mmloop_geolift::readout::Body::Staggered(_)));
    assert_eq!(readout.records(), LiftTestRecord::read_all(out.join("calibration.json")).unwrap().as_slice());
    let lift = serde_json::to_string_pretty(&readout.lift_json("lemp")).unwrap();
    assert_eq!(lift, std::fs::read_to_string(out.join("lift.json")).unwrap());
    assert!(readout.periods_csv().is_none() && !out.join("lift_periods.csv").exists());
}
