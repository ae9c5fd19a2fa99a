//! `mmloop fit` end to end: a simulated national dataset written as CSV, a config, the command, and
//! the outputs other commands read (summary.json fields, CSV tables, Parquet draws). A failing run
//! exits non-zero and leaves no output directory.

mod common;

use std::path::Path;
use std::process::Command;

fn write_sim(dir: &Path) {
    common::write_sim(
        dir,
        80,
        6,
        r#"[baseline]
seasonality = [{ period = 52, order = 2 }]
[fit]
chains = 2
tune = 200
draws = 200
"#,
    );
}

#[test]
fn fit_writes_summary_tables_and_draws() {
    let dir = tempfile::tempdir().unwrap();
    write_sim(dir.path());
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .args(["fit", "--config"])
        .arg(dir.path().join("sim.toml"))
        .arg("--out")
        .arg(&out)
        .args(["--method", "nuts", "--seed", "3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("ch0") && table.contains("R²"), "{table}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let chans = v["channels"].as_array().unwrap();
    assert_eq!(chans.len(), 2);
    for c in chans {
        for key in ["roi", "mroi", "contribution_share"] {
            for stat in ["mean", "sd", "q05", "q95"] {
                assert!(c[key][stat].as_f64().is_some_and(f64::is_finite), "{key}.{stat} in {c}");
            }
        }
        assert!(c["name"].is_string());
    }
    assert!(v["fit"]["in_sample"]["r2"].as_f64().unwrap() > 0.5);
    assert_eq!(v["diagnostics"]["method"], "nuts");
    for f in
        ["channels.csv", "params.csv", "contributions.csv", "response_curves.csv", "posterior.parquet", "config.toml"]
    {
        assert!(out.join(f).metadata().unwrap().len() > 0, "{f}");
    }
    // the draws load back with (chain, draw, parameters...) and 2 × 200 rows
    let t = mmloop_data::Table::read(out.join("posterior.parquet")).unwrap();
    assert_eq!(t.n_rows(), 400);
    assert!(t.has_column("chain") && t.has_column("draw") && t.has_column("adstock_alpha[ch0]"));
    // and the whole fit reloads without refitting, giving the same analysis
    let (_, data, res) = mmloop_mmm::fit::load_fit(&out).unwrap();
    assert_eq!(res.draws.values.len(), 400);
    let an = mmloop_mmm::fit::analyse_fit(&res, &data);
    let roi0 = v["channels"][0]["roi"]["mean"].as_f64().unwrap();
    assert!((an.channels[0].roi.mean - roi0).abs() < 1e-9 * roi0.abs(), "{} vs {roi0}", an.channels[0].roi.mean);
}

#[test]
fn failed_fit_exits_nonzero_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_sim(dir.path());
    let cfg = std::fs::read_to_string(dir.path().join("sim.toml")).unwrap().replace("spend_ch1", "spend_chX");
    std::fs::write(dir.path().join("bad.toml"), cfg).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .args(["fit", "--config"])
        .arg(dir.path().join("bad.toml"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("spend_chX"));
    assert!(!out.exists());
    let leftovers: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 3, "{leftovers:?}"); // sim.csv, sim.toml, bad.toml
}
