//! `mmloop fit` on bad input: one case per bad input of issue 2. Each exits non-zero, prints an
//! error naming the file, column, row (where one applies) and the remedy, and leaves no output
//! directory (nor a staging directory) behind.

use std::fmt::Write as _;
use std::process::Command;

const HEADER: &str = "date,geo,sales,tv_spend,search_spend,price";

/// A clean weekly table: 2 geos × 40 weeks from 2021-01-04.
fn rows() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for w in 0..40 {
        for (g, geo) in ["north", "south"].iter().enumerate() {
            let date = mmloop_data::format_date(18631.0 + 7.0 * w as f64);
            let tv = if w % 6 < 2 { 0.0 } else { 800.0 + 25.0 * w as f64 + 100.0 * g as f64 };
            let search = 150.0 + 9.0 * (w % 5) as f64;
            let sales = 4000.0 + 1.1 * tv + 2.5 * search + 17.0 * ((w * 7 + g) % 5) as f64;
            out.push(vec![
                date,
                geo.to_string(),
                format!("{sales}"),
                format!("{tv}"),
                format!("{search}"),
                "1.0".into(),
            ]);
        }
    }
    out
}

const CONFIG: &str = r#"[data]
path = "sales.csv"
time = "date"
geo = "geo"
kpi = "sales"

[media]
adstock = { kind = "geometric", max_lag = 3 }

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
"#;

/// Writes the case, runs `mmloop fit`, checks the failure leaves nothing behind; returns stderr.
fn fit_fails(rows: &[Vec<String>], config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = format!("{HEADER}\n");
    for r in rows {
        writeln!(csv, "{}", r.join(",")).unwrap();
    }
    std::fs::write(dir.path().join("sales.csv"), csv).unwrap();
    std::fs::write(dir.path().join("model.toml"), config).unwrap();
    let out_parent = dir.path().join("runs");
    std::fs::create_dir(&out_parent).unwrap();
    let out = out_parent.join("fit1");
    let run = Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .args(["fit", "--config"])
        .arg(dir.path().join("model.toml"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(!run.status.success(), "bad input was accepted; stderr:\n{stderr}");
    assert!(!out.exists(), "a failed fit left {}", out.display());
    assert_eq!(
        std::fs::read_dir(&out_parent).unwrap().count(),
        0,
        "a failed fit left files in {}",
        out_parent.display()
    );
    assert!(stderr.contains("error:"), "{stderr}");
    stderr
}

fn has_all(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error lacks {p:?}:\n{msg}");
    }
}

fn edited(edit: impl FnOnce(&mut Vec<Vec<String>>)) -> Vec<Vec<String>> {
    let mut r = rows();
    edit(&mut r);
    r
}

#[test]
fn missing_column_fails_with_did_you_mean() {
    let e = fit_fails(&rows(), &CONFIG.replace("spend = \"search_spend\"", "spend = \"serch_spend\""));
    has_all(&e, &["sales.csv", "\"serch_spend\"", "did you mean \"search_spend\"", "[[channel]] \"search\" spend"]);
}

#[test]
fn empty_cell_fails_naming_column_and_row() {
    let e = fit_fails(&edited(|r| r[6][3] = String::new()), CONFIG);
    has_all(&e, &["sales.csv", "column \"tv_spend\", row 7", "empty", "Fill in the amount spent"]);
}

#[test]
fn nan_cell_fails_naming_column_and_row() {
    let e = fit_fails(&edited(|r| r[11][2] = "NaN".into()), CONFIG);
    has_all(&e, &["sales.csv", "column \"sales\", row 12", "NaN", "Fill in the KPI"]);
}

#[test]
fn negative_spend_fails_naming_column_and_row() {
    let e = fit_fails(&edited(|r| r[3][4] = "-20".into()), CONFIG);
    has_all(&e, &["sales.csv", "column \"search_spend\", row 4", "negative", "Spend must be 0 or more"]);
}

#[test]
fn duplicate_date_geo_fails_naming_both_rows() {
    let e = fit_fails(&edited(|r| r.push(r[8].clone())), CONFIG);
    has_all(&e, &["sales.csv", "rows 9 and 81", "geo \"north\"", "remove or merge the duplicate row"]);
}

#[test]
fn gap_in_dates_fails_naming_the_gap() {
    let e = fit_fails(&edited(|r| r.retain(|row| row[0] != "2021-03-01")), CONFIG);
    has_all(
        &e,
        &["sales.csv", "column \"date\"", "between 2021-02-22", "2021-03-08", "14 days", "Add the missing periods"],
    );
}

#[test]
fn always_zero_channel_fails() {
    let e = fit_fails(&edited(|r| r.iter_mut().for_each(|row| row[3] = "0".into())), CONFIG);
    has_all(&e, &["sales.csv", "channel \"tv\"", "column \"tv_spend\"", "zero in every row", "remove its [[channel]]"]);
}

#[test]
fn too_few_rows_for_lags_fails() {
    let e = fit_fails(&rows(), &CONFIG.replace("max_lag = 3", "max_lag = 26"));
    has_all(&e, &["sales.csv", "adstock.max_lag = 26", "40 fitted periods", "at least 54", "shorten max_lag"]);
}

#[test]
fn too_few_rows_for_fourier_terms_fails() {
    let e = fit_fails(&rows(), &CONFIG.replace("seasonality = []", "seasonality = [{ period = 52.18, order = 20 }]"));
    has_all(&e, &["sales.csv", "Fourier terms 40", "40 fitted periods", "lower the seasonality order"]);
}

#[test]
fn unknown_config_key_fails_with_closest_key() {
    let e = fit_fails(&rows(), &CONFIG.replace("[fit]\n", "[fit]\nchians = 2\n"));
    has_all(&e, &["model.toml", "line 25", "unknown key `chians`", "[fit]", "did you mean `chains`"]);
}

#[test]
fn unknown_method_on_the_command_line_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .args(["fit", "--config", "nope.toml", "--method", "hmc", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && !out.exists());
    assert!(stderr.contains("hmc") && stderr.contains("laplace"), "{stderr}");
}

#[test]
fn missing_config_file_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("missing.toml");
    let run = Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .arg("fit")
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && !out.exists());
    assert!(stderr.contains("missing.toml"), "{stderr}");
}
