//! `mmloop design` end to end on GeoLift_PreTest: outputs, table, and bad requests that fail cleanly
//! without leaving an output directory.

use std::path::Path;
use std::process::Command;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/geo/GeoLift_PreTest.csv");

fn run(args: &[&str], out: &Path) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .arg("design")
        .args(["--data", DATA, "--out"])
        .arg(out)
        .args(args)
        .output()
        .expect("mmloop runs");
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

fn have_data() -> bool {
    if !Path::new(DATA).exists() {
        eprintln!("SKIPPED: {DATA} not found");
        return false;
    }
    true
}

const FAST: [&str; 6] = ["--permutations", "200", "--windows", "5", "--effects", "0,0.05,0.1,0.15,0.2,0.25"];

#[test]
fn design_writes_record_and_ranked_candidates_for_geolift_pretest() {
    if !have_data() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    let mut args = vec!["--n-treated", "2..3", "--duration", "10,15", "--iroas", "3", "--budget", "50000"];
    args.extend(FAST);
    let (ok, stdout, stderr) = run(&args, &out);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("rank") && stdout.contains("chosen:"), "{stdout}");
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("design.json")).unwrap()).unwrap();
    let cell = &rec["cells"][0];
    for key in ["treated", "duration", "power_curve", "mde", "se_lift", "se_incremental", "se_iroas", "implied_budget"]
    {
        assert!(!cell[key].is_null(), "design.json cell lacks {key}: {cell}");
    }
    assert_eq!(rec["effect_grid"].as_array().unwrap().len(), 6);
    assert!(rec["method"].as_str().unwrap().contains("conformal"));
    assert_eq!(rec["precision_by_duration"].as_array().unwrap().len(), 2);
    // implied budget = |MDE| × baseline KPI / iROAS
    let b = cell["mde"].as_f64().unwrap().abs() * cell["baseline_kpi"].as_f64().unwrap() / 3.0;
    assert!((cell["implied_budget"].as_f64().unwrap() - b).abs() <= 1e-9 * b);
    let csv = std::fs::read_to_string(out.join("candidates.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("rank,treated,n_treated,duration,mde"));
    assert_eq!(rows.len() - 1, rec["n_evaluated"].as_u64().unwrap() as usize);
    assert!(rows[1].starts_with("1,"));
}

#[test]
fn bad_design_requests_fail_with_a_message_and_leave_no_output() {
    if !have_data() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--n-treated", "2..45", "--duration", "15"], "--n-treated"),
        (&["--n-treated", "2..3", "--duration", "85"], "--duration"),
        (&["--n-treated", "2..3", "--duration", "15", "--include", "chicagoo"], "did you mean \"chicago\""),
        (&["--n-treated", "2..3", "--duration", "15", "--exclude", "atlantis"], "--exclude"),
        (&["--n-treated", "2..3", "--duration", "15", "--max-treated-share", "0.001"], "no candidate"),
        (&["--n-treated", "two", "--duration", "15"], "--n-treated"),
    ];
    for (i, (args, msg)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("bad{i}"));
        let mut a = args.to_vec();
        a.extend(FAST);
        let (ok, _, stderr) = run(&a, &out);
        assert!(!ok, "{args:?} should fail");
        assert!(stderr.contains(msg), "{args:?}: expected {msg:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
}

#[test]
fn design_records_channel_planned_window_and_cost_and_design_json_reads_back() {
    if !have_data() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    let mut args =
        vec!["--n-treated", "2", "--duration", "15", "--budget", "40000", "--channel", "tv", "--start", "2021-06-01"];
    args.extend(FAST);
    let (ok, _, stderr) = run(&args, &out);
    assert!(ok, "{stderr}");
    let bytes = std::fs::read(out.join("design.json")).unwrap();
    let rec: mmloop_geolift::design::DesignRecord = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(rec.channels, ["tv"]);
    assert_eq!(rec.start.as_deref(), Some("2021-06-01"));
    assert_eq!(rec.cells[0].end.as_deref(), Some("2021-06-15"));
    assert_eq!(rec.spend_change, Some(40_000.0));
    let cost = rec.cells[0].cost.expect("cost with a --budget");
    assert_eq!((cost.extra_spend, cost.spend_cut), (40_000.0, 0.0));
    // what was read back writes the same file again
    assert_eq!(serde_json::to_vec_pretty(&rec).unwrap(), bytes);

    // a start not in the panel's notation fails before the search, with nothing written
    let out2 = tmp.path().join("d2");
    let (ok, _, stderr) = run(&["--n-treated", "2", "--duration", "15", "--start", "June"], &out2);
    assert!(!ok && stderr.contains("--start") && stderr.contains("YYYY-MM-DD"), "{stderr}");
    assert!(!out2.exists());
}
