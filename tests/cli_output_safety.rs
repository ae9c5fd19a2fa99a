//! Issue 10 §1–2 end to end: `--out` never deletes what mmloop did not write nor overlaps an input,
//! and a saved fit refuses to meet changed data or a foreign posterior file.
//!
//! Every refusal is checked the same way: non-zero exit (not a panic), a message saying why, and
//! every file under the test folder byte-for-byte unchanged (SHA-256 of the whole tree before and
//! after).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A national weekly table of 60 weeks: sales driven by two channels and a price control.
fn write_data(path: &Path) {
    let mut csv = String::from("date,sales,tv_spend,search_spend,price\n");
    for w in 0..60 {
        let date = mmloop_data::format_date(18631.0 + 7.0 * w as f64);
        let tv = if w % 6 < 2 { 0.0 } else { 800.0 + 25.0 * w as f64 };
        let search = 150.0 + 9.0 * (w % 5) as f64;
        let price = 1.0 + 0.01 * (w % 3) as f64;
        let sales = 4000.0 + 1.1 * tv + 2.5 * search - 300.0 * price + 17.0 * ((w * 7) % 5) as f64;
        writeln!(csv, "{date},{sales},{tv},{search},{price}").unwrap();
    }
    std::fs::write(path, csv).unwrap();
}

/// A Laplace config reading `data` (as written into the file).
fn config(data: &str) -> String {
    format!(
        r#"[data]
path = "{data}"
time = "date"
kpi = "sales"

[media]
adstock = {{ kind = "geometric", max_lag = 3 }}

[[channel]]
name = "tv"
spend = "tv_spend"

[[channel]]
name = "search"
spend = "search_spend"

[[control]]
column = "price"

[baseline]
seasonality = []

[fit]
method = "laplace"
draws = 200
"#
    )
}

fn mmloop(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmloop")).current_dir(cwd).args(args).output().expect("run mmloop")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `root` (recursively, links not followed) with its SHA-256; directories as "dir".
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &p, out);
            } else if t.is_symlink() {
                out.insert(rel, format!("link to {}", std::fs::read_link(&p).unwrap().display()));
            } else {
                out.insert(rel, mmloop_data::hash_file(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Runs `args` in `cwd`, asserts it is refused with a message containing every one of `parts`,
/// and that nothing under `root` changed.
fn refused(root: &Path, cwd: &Path, args: &[&str], parts: &[&str]) -> String {
    let before = tree(root);
    let o = mmloop(cwd, args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?} was not refused cleanly:\n{e}");
    for p in parts {
        assert!(e.contains(p), "{args:?}: the message lacks {p:?}:\n{e}");
    }
    assert_eq!(tree(root), before, "{args:?} changed files under {}", root.display());
    e
}

/// A project folder: `sales.csv`, `model.toml`, `notes.txt`.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("sales.csv"));
    std::fs::write(dir.path().join("model.toml"), config("sales.csv")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "my notes, not mmloop's\n").unwrap();
    dir
}

fn fit(cwd: &Path, config: &str, out: &str) {
    let o = mmloop(cwd, &["fit", "--quiet", "--config", config, "--out", out]);
    assert!(o.status.success(), "fit failed:\n{}", stderr(&o));
}

#[test]
fn out_dot_in_a_folder_with_user_files_is_refused_and_nothing_changes() {
    let dir = project();
    // the folder holds the config and data: the output would contain them
    refused(dir.path(), dir.path(), &["fit", "--config", "model.toml", "--out", "."], &["contains the input"]);
    // with the config elsewhere, `.` is still the working directory with the user's files in it
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("model.toml"), config(&dir.path().join("sales.csv").display().to_string()))
        .unwrap();
    let cfg = other.path().join("model.toml");
    let notes = tempfile::tempdir().unwrap();
    std::fs::write(notes.path().join("notes.txt"), "mine\n").unwrap();
    refused(
        notes.path(),
        notes.path(),
        &["fit", "--config", cfg.to_str().unwrap(), "--out", "."],
        &["working directory"],
    );
}

#[test]
fn out_at_the_data_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    write_data(&dir.path().join("data/sales.csv"));
    std::fs::write(dir.path().join("model.toml"), config("data/sales.csv")).unwrap();
    let e = refused(
        dir.path(),
        dir.path(),
        &["fit", "--config", "model.toml", "--out", "data"],
        &["contains the input", "sales.csv", "outside every input"],
    );
    assert!(!e.contains("panicked"), "{e}");
    // the same through a symbolic link to the data folder
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.path().join("data"), dir.path().join("link")).unwrap();
        refused(dir.path(), dir.path(), &["fit", "--config", "model.toml", "--out", "link"], &["contains the input"]);
    }
}

#[test]
fn out_parent_spelt_with_dotdot_is_refused() {
    let dir = project();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub/..");
    refused(
        dir.path(),
        cwd.path(),
        &["fit", "--config", dir.path().join("model.toml").to_str().unwrap(), "--out", out.to_str().unwrap()],
        &["contains the input"],
    );
    // a folder of the user's files that is no input: refused because mmloop did not write it
    std::fs::create_dir(dir.path().join("mine")).unwrap();
    std::fs::write(dir.path().join("mine/report.docx"), "quarterly report").unwrap();
    let out = dir.path().join("mine/sub/..");
    refused(
        dir.path(),
        cwd.path(),
        &["fit", "--config", dir.path().join("model.toml").to_str().unwrap(), "--out", out.to_str().unwrap()],
        &["report.docx", "mmloop did not write", "Choose a new directory"],
    );
}

#[test]
fn a_fit_replaces_its_own_earlier_output_and_optimize_never_writes_over_the_fit() {
    let dir = project();
    fit(dir.path(), "model.toml", "runs/fit1");
    let fit_dir = dir.path().join("runs/fit1");
    let marker = mmloop_data::read_marker(&fit_dir).expect("the fit directory carries mmloop's marker");
    assert_eq!(marker.command, "fit");
    // a second fit replaces the first (an earlier output of the same command)
    fit(dir.path(), "model.toml", "runs/fit1");
    let left: Vec<String> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["fit1"], "staging or old directories were left behind");
    // a note the user drops into the fit's folder stops the next fit from replacing it
    std::fs::write(fit_dir.join("my_notes.md"), "tv looks high\n").unwrap();
    refused(
        dir.path(),
        dir.path(),
        &["fit", "--config", "model.toml", "--out", "runs/fit1"],
        &["my_notes.md", "did not write"],
    );
    std::fs::remove_file(fit_dir.join("my_notes.md")).unwrap();

    // `optimize --fit F --out F`, an output inside F, and the data folder are all refused
    refused(dir.path(), dir.path(), &["optimize", "--fit", "runs/fit1", "--out", "runs/fit1"], &["is the input"]);
    refused(
        dir.path(),
        dir.path(),
        &["optimize", "--fit", "runs/fit1", "--out", "runs/fit1/opt"],
        &["lies inside the input"],
    );
    refused(dir.path(), dir.path(), &["optimize", "--fit", "runs/fit1", "--out", "runs/fit1/x/.."], &["is the input"]);
    std::fs::write(dir.path().join("plan.csv"), "period,tv,search\n1,1000,200\n2,1000,200\n").unwrap();
    refused(
        dir.path(),
        dir.path(),
        &["scenario", "--fit", "runs/fit1", "--plan", "plan.csv", "--out", "runs"],
        &["contains the input"],
    );
    // a fit output is not replaced by another command's output
    let o = mmloop(dir.path(), &["optimize", "--fit", "runs/fit1", "--out", "runs/opt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    refused(
        dir.path(),
        dir.path(),
        &["fit", "--config", "model.toml", "--out", "runs/opt"],
        &["mmloop optimize", "mmloop fit"],
    );
}

#[test]
fn optimize_refuses_a_fit_whose_data_changed_after_fitting() {
    let dir = project();
    fit(dir.path(), "model.toml", "fit");
    let csv = dir.path().join("sales.csv");
    let original = std::fs::read_to_string(&csv).unwrap();
    // one cell: the first week's sales
    let mut lines: Vec<String> = original.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[1].split(',').map(String::from).collect();
    cells[1] = format!("{}", cells[1].parse::<f64>().unwrap() * 1000.0);
    lines[1] = cells.join(",");
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let recorded = mmloop_data::hash_bytes(original.as_bytes());
    let now = mmloop_data::hash_file(&csv).unwrap();
    for args in [
        vec!["optimize", "--fit", "fit", "--out", "opt"],
        vec!["scenario", "--fit", "fit", "--plan", "plan.csv", "--out", "scen"],
    ] {
        std::fs::write(dir.path().join("plan.csv"), "period,tv,search\n1,1000,200\n").unwrap();
        refused(dir.path(), dir.path(), &args, &["sales.csv", "data file has changed", &recorded, &now, "refit"]);
    }
    // restoring the file makes the fit usable again
    std::fs::write(&csv, original).unwrap();
    let o = mmloop(dir.path(), &["optimize", "--fit", "fit", "--out", "opt"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_posterior_file_copied_over_another_is_refused() {
    let dir = project();
    fit(dir.path(), "model.toml", "fit");
    let f = dir.path().join("fit");
    let unc = f.join("posterior_unconstrained.parquet");
    let original = std::fs::read(&unc).unwrap();
    // the constrained draws: the same columns, the wrong scale
    std::fs::copy(f.join("posterior.parquet"), &unc).unwrap();
    refused(
        dir.path(),
        dir.path(),
        &["optimize", "--fit", "fit", "--out", "opt"],
        &["posterior_unconstrained.parquet", "posterior draws file has changed", "copied over"],
    );
    // without provenance.json (a fit from an older mmloop) the column check still refuses a
    // draws file of another model, and the old fit otherwise loads with a warning
    std::fs::remove_file(f.join("provenance.json")).unwrap();
    std::fs::write(dir.path().join("other.toml"), config("sales.csv").replace("[[control]]\ncolumn = \"price\"\n", ""))
        .unwrap();
    fit(dir.path(), "other.toml", "fit_other");
    std::fs::copy(dir.path().join("fit_other/posterior_unconstrained.parquet"), &unc).unwrap();
    refused(
        dir.path(),
        dir.path(),
        &["optimize", "--fit", "fit", "--out", "opt"],
        &["posterior_unconstrained.parquet", "columns are not", "restore the file or refit"],
    );
    // and the constrained draws copied over the unconstrained ones (same columns, same count)
    std::fs::copy(f.join("posterior.parquet"), &unc).unwrap();
    refused(
        dir.path(),
        dir.path(),
        &["optimize", "--fit", "fit", "--out", "opt"],
        &["posterior.parquet", "one of the two files was replaced"],
    );
    std::fs::write(&unc, &original).unwrap();
    let o = mmloop(dir.path(), &["optimize", "--fit", "fit", "--out", "opt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning:") && stderr(&o).contains("provenance.json"), "{}", stderr(&o));
}

/// A long daily panel: 8 geos × 30 days, geo g0 lifted by 20 from day 25.
fn write_panel(path: &Path) {
    let mut csv = String::from("date,location,Y\n");
    for t in 0..30 {
        for g in 0..8 {
            let y = 100 + 10 * g + 3 * ((t * 7 + g) % 5) + if g == 0 && t >= 24 { 20 } else { 0 };
            writeln!(csv, "{},g{g},{y}", mmloop_data::format_date(18628.0 + t as f64)).unwrap();
        }
    }
    std::fs::write(path, csv).unwrap();
}

#[test]
fn lift_never_writes_over_its_data_or_the_users_folders() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("geo")).unwrap();
    write_panel(&dir.path().join("geo/panel.csv"));
    std::fs::write(dir.path().join("geo/readme.md"), "where the panel came from\n").unwrap();
    let lift = |data: &str, out: &str| -> Vec<String> {
        ["lift", "--data", data, "--treated", "g0", "--start", "2021-01-25", "--estimator", "did", "--out", out]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let check = |cwd: &Path, args: Vec<String>, parts: &[&str]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(dir.path(), cwd, &a, parts);
    };
    check(dir.path(), lift("geo/panel.csv", "geo"), &["contains the input", "panel.csv"]);
    check(dir.path(), lift("geo/panel.csv", "geo/panel.csv"), &["is the input"]);
    check(&dir.path().join("geo"), lift("panel.csv", "."), &["contains the input"]);
    check(&dir.path().join("geo"), lift("panel.csv", "x/../.."), &["contains the input"]);
    // a readout written once can be rewritten in place, and nothing else is left next to it
    for _ in 0..2 {
        let args = lift("geo/panel.csv", "out/lift1");
        let o = mmloop(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(dir.path().join("out/lift1/calibration.json").is_file());
    let left: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["lift1"]);
}

#[test]
fn a_fit_output_holding_a_lift_test_file_the_config_reads_is_not_replaced() {
    let dir = project();
    fit(dir.path(), "model.toml", "fit1");
    // the user keeps the readout next to the fit's files and points the next config at it
    let record = r#"[{"channels": ["tv"], "start": "2021-06-07", "end": "2021-07-05", "spend_change": 5000.0,
        "incremental_kpi": 5500.0, "standard_error": 900.0, "estimator": "did"}]"#;
    std::fs::write(dir.path().join("fit1/readout.json"), record).unwrap();
    let cfg = config("sales.csv") + "\n[calibration]\nlift_tests = \"fit1/readout.json\"\n";
    std::fs::write(dir.path().join("calibrated.toml"), cfg).unwrap();
    refused(
        dir.path(),
        dir.path(),
        &["fit", "--config", "calibrated.toml", "--out", "fit1"],
        &["contains the input", "readout.json"],
    );
    fit(dir.path(), "calibrated.toml", "fit2");
}
