//! `mmloop optimize` and `mmloop scenario` end to end: fit the demo data briefly, then plan on it.

use std::path::Path;
use std::process::Command;

fn mmloop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mmloop"))
}

/// A short NUTS fit of the national demo data (2 chains × 150 + 150: enough draws to plan on).
fn quick_fit(dir: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = dir.join("model.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[data]
path = "{}"
time = "date"
kpi = "sales"
[[channel]]
name = "tv"
spend = "tv_spend"
[[channel]]
name = "search"
spend = "search_spend"
[[channel]]
name = "social"
spend = "social_spend"
exposure = "social_impressions"
[[control]]
column = "price_index"
[[control]]
column = "promo"
[fit]
chains = 2
tune = 150
draws = 150
"#,
            root.join("data/demo_national.csv").display()
        ),
    )
    .unwrap();
    let out = dir.join("fit");
    let o = mmloop().args(["fit", "--config"]).arg(&cfg).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "fit failed: {}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn optimize_and_scenario_run_on_a_saved_fit() {
    let dir = tempfile::tempdir().unwrap();
    let fit = quick_fit(dir.path());

    let out = dir.path().join("opt");
    let o = mmloop()
        .args(["optimize", "--fit"])
        .arg(&fit)
        .args(["--objective", "cvar:0.1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "optimize failed: {}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("optimize.json")).unwrap()).unwrap();
    let chans = report["channels"].as_array().unwrap();
    assert_eq!(chans.len(), 3);
    let current: f64 = chans.iter().map(|c| c["current_spend"].as_f64().unwrap()).sum();
    let optimal: f64 = chans.iter().map(|c| c["optimal_spend"].as_f64().unwrap()).sum();
    assert!((current - optimal).abs() < 1e-6 * current, "default budget is the current spend");
    for c in chans {
        let (s, cur) = (c["optimal_spend"].as_f64().unwrap(), c["current_spend"].as_f64().unwrap());
        assert!(s >= 0.7 * cur - 1e-6 && s <= 1.3 * cur + 1e-6, "±30% default bounds violated: {c}");
    }
    assert!(out.join("optimize.csv").exists());
    let gains = std::fs::read_to_string(out.join("gain_draws.csv")).unwrap();
    assert_eq!(gains.lines().count(), 1 + 300, "one row per posterior draw (2 chains × 150)");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Budget allocation") && stdout.contains("tv"), "{stdout}");

    let plan = dir.path().join("plan.csv");
    std::fs::write(&plan, "period,tv,search,social\n1,10000,5000,4000\n2,10000,5000,4000\n3,0,5000,4000\n").unwrap();
    let sout = dir.path().join("scen");
    let o = mmloop()
        .args(["scenario", "--fit"])
        .arg(&fit)
        .arg("--plan")
        .arg(&plan)
        .arg("--out")
        .arg(&sout)
        .output()
        .unwrap();
    assert!(o.status.success(), "scenario failed: {}", String::from_utf8_lossy(&o.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(sout.join("scenario.json")).unwrap()).unwrap();
    assert_eq!(rep["total_spend"].as_f64().unwrap(), 47000.0);
    assert!(rep["total_outcome"]["q05"].as_f64().unwrap() <= rep["total_outcome"]["q95"].as_f64().unwrap());

    // the recommendation as a plan: scenario prices it to the optimiser's own expected outcome (the
    // same flat spend through the same draws, so equal up to summation order)
    let sout = dir.path().join("scen_opt");
    let o = mmloop()
        .args(["scenario", "--fit"])
        .arg(&fit)
        .arg("--plan")
        .arg(out.join("plan.csv"))
        .arg("--out")
        .arg(&sout)
        .output()
        .unwrap();
    assert!(o.status.success(), "scenario on plan.csv failed: {}", String::from_utf8_lossy(&o.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(sout.join("scenario.json")).unwrap()).unwrap();
    let priced = rep["total_outcome"]["mean"].as_f64().unwrap();
    let promised = report["optimal_outcome"]["mean"].as_f64().unwrap();
    assert!((priced - promised).abs() <= 1e-9 * promised.abs(), "scenario {priced} vs optimize {promised}");
    assert!((rep["total_spend"].as_f64().unwrap() - optimal).abs() <= 1e-9 * optimal);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("wrote") && stderr.contains("scenario.json"), "lists the files written: {stderr}");
}

#[test]
fn infeasible_budget_fails_cleanly_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let fit = quick_fit(dir.path());
    let out = dir.path().join("opt");
    let o = mmloop().args(["optimize", "--fit"]).arg(&fit).args(["--budget", "1", "--out"]).arg(&out).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("lower bounds sum to") && err.contains("above the budget"), "{err}");
    assert!(!out.exists(), "no output directory on failure");
}
