//! Snapshots of what each command prints on the bundled data (insta), so that a change to the
//! terminal output — a number format, a column, a message — shows up in review as a diff of
//! `tests/snapshots/*.snap`. Accept a deliberate change with `INSTA_UPDATE=always cargo test --test
//! cli_snapshots` (or `cargo insta review`) and commit the new snapshots.
//!
//! Every command runs with fixed seeds on a fresh copy of `data/`, the fit by Laplace (deterministic
//! and fast); what varies from run to run is redacted: the temporary directory and wall-clock times.

use std::path::Path;
use std::process::Command;

mod common;
use common::copy_dir;

/// Runs `mmloop ARGS` in `dir`, asserts success, and returns its stdout and stderr, redacted.
fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mmloop")).args(args).current_dir(dir).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "mmloop {}: {}\n{stdout}\n{stderr}", args.join(" "), out.status);
    redact(&format!("$ mmloop {}\n--- stdout\n{stdout}--- stderr\n{stderr}", args.join(" ")), dir)
}

/// Replaces the temporary directory by `[DIR]` and every wall-clock duration (`0.26 s`, `12 ms`)
/// by `[T]`.
fn redact(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "[DIR]");
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let mut i = 0;
        let mut first = true;
        while i < words.len() {
            let is_time = i + 1 < words.len()
                && matches!(words[i + 1].trim_end_matches([',', ')', ';']), "s" | "ms")
                && words[i].parse::<f64>().is_ok();
            if !first {
                out.push(' ');
            }
            first = false;
            if is_time {
                out.push_str("[T] ");
                out.push_str(words[i + 1]);
                i += 2;
            } else {
                out.push_str(words[i]);
                i += 1;
            }
        }
        out.push('\n');
    }
    out
}

fn fresh_copy() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root.join("data"), &tmp.path().join("data"));
    tmp
}

#[test]
fn redaction_hides_only_durations_and_the_directory() {
    let d = Path::new("/tmp/abc");
    assert_eq!(
        redact("in 0.26 s at /tmp/abc/out, 3 s; 12 ms) 7 geos", d),
        "in [T] s at [DIR]/out, [T] s; [T] ms) 7 geos\n"
    );
}

#[test]
fn the_fit_optimize_and_scenario_output_on_the_national_demo() {
    let tmp = fresh_copy();
    let d = tmp.path();
    insta::assert_snapshot!(
        "fit_laplace",
        run(d, &["fit", "--config", "data/demo_national.toml", "--method", "laplace", "--out", "out/fit"])
    );
    insta::assert_snapshot!(
        "optimize",
        run(d, &["optimize", "--fit", "out/fit", "--horizon", "13", "--out", "out/plan"])
    );
    insta::assert_snapshot!(
        "scenario",
        run(d, &["scenario", "--fit", "out/fit", "--plan", "data/demo_plan.csv", "--out", "out/scenario"])
    );
    // stated-precision candidates (a national model has no panel), at a small Monte Carlo effort
    insta::assert_snapshot!(
        "rank",
        run(
            d,
            &[
                "rank",
                "--fit",
                "out/fit",
                "--readouts",
                "16",
                "--evpi-draws",
                "16",
                "--draws",
                "50",
                "--out",
                "out/rank"
            ]
        )
    );
}

#[test]
fn the_loop_demo_and_simulate_output() {
    let tmp = fresh_copy();
    let d = tmp.path();
    insta::assert_snapshot!(
        "loop_demo",
        run(d, &["loop", "--demo", "--cycles", "1", "--draws", "60", "--rank-effort", "48", "20", "--out", "out/demo"])
    );
    insta::assert_snapshot!(
        "simulate",
        run(
            d,
            &[
                "simulate",
                "--worlds",
                "1",
                "--cycles",
                "2",
                "--arms",
                "none,oracle",
                "--channels",
                "3",
                "--draws",
                "40",
                "--seed",
                "3",
                "--quiet",
                "--out",
                "out/sim"
            ]
        )
    );
}

#[test]
fn the_design_lift_and_ledger_output_on_the_geo_demo() {
    let tmp = fresh_copy();
    let d = tmp.path();
    insta::assert_snapshot!(
        "design",
        run(
            d,
            &[
                "design",
                "--data",
                "data/demo_geo.csv",
                "--geo",
                "geo",
                "--kpi",
                "sales",
                "--n-treated",
                "2..3",
                "--duration",
                "8",
                "--out",
                "out/design"
            ]
        )
    );
    insta::assert_snapshot!(
        "lift",
        run(
            d,
            &[
                "lift",
                "--data",
                "data/demo_geo_test.csv",
                "--geo",
                "geo",
                "--kpi",
                "sales",
                "--treated",
                "boston,denver,seattle",
                "--start",
                "2022-07-18",
                "--end",
                "2022-09-05",
                "--estimator",
                "all",
                "--channel",
                "search",
                "--spend-change",
                "9840000",
                "--out",
                "out/lift",
            ]
        )
    );
    insta::assert_snapshot!("ledger_add", run(d, &["ledger", "loop.ledger", "add", "out/lift/calibration.json"]));
    insta::assert_snapshot!("ledger_list", run(d, &["ledger", "loop.ledger", "list"]));
}
