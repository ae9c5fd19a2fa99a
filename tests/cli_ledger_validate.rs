//! `mmloop ledger FILE predict | check-fit | history` end to end on the national demo (Laplace
//! fits of data/demo_national.csv): predictions recorded once per experiment with the fit's
//! provenance, a planted readout flagged in words, the history exported, a calibrated fit checked
//! in-sample, and bad input refused naming the experiment with the ledger left as it was.

use mmloop_data::LiftTestRecord;
use mmloop_loop::ledger::Ledger;
use mmloop_loop::validate::predict_readout;
use mmloop_mmm::optimize::FittedModel;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mmloop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmloop")).args(args).output().expect("run mmloop")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The demo's config with an absolute data path and, optionally, lift tests.
fn config(dir: &Path, name: &str, lift_tests: Option<&Path>) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut t = std::fs::read_to_string(root.join("data/demo_national.toml"))
        .unwrap()
        .replace("path = \"demo_national.csv\"", &format!("path = {:?}", s(&root.join("data/demo_national.csv"))));
    if let Some(p) = lift_tests {
        t += &format!("\n[calibration]\nlift_tests = {:?}\n", s(p));
    }
    let p = dir.join(name);
    std::fs::write(&p, t).unwrap();
    p
}

fn fit(dir: &Path, cfg: &Path, out: &str) -> PathBuf {
    let o = dir.join(out);
    let r = mmloop(&["fit", "--config", s(cfg), "--out", s(&o), "--method", "laplace", "--quiet"]);
    assert!(r.status.success(), "{}", text(&r));
    o
}

fn rec(channel: &str, start: &str, end: &str, change: f64) -> LiftTestRecord {
    LiftTestRecord {
        channels: vec![channel.into()],
        geos: vec![],
        start: start.into(),
        end: end.into(),
        spend_change: change,
        spend_path: None,
        incremental_kpi: 0.0,
        standard_error: 1.0,
        estimator: "cli test".into(),
        source: "cli_ledger_validate".into(),
    }
}

#[test]
fn predict_flags_a_planted_readout_history_scores_it_and_check_fit_labels_a_calibrated_fit_in_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let fit1 = fit(d, &config(d, "cfg.toml", None), "fit1");
    let model = FittedModel::load(&fit1).unwrap();
    // a readout the model agrees with, and one claiming 3× what it implies with a small SE
    let mut ok = rec("search", "2022-09-05", "2022-10-03", 50_000.0);
    let p = predict_readout(&model, &ok).unwrap();
    ok.incremental_kpi = p.mean;
    ok.standard_error = p.sd;
    let mut planted = rec("tv", "2022-06-06", "2022-07-04", 100_000.0);
    let p = predict_readout(&model, &planted).unwrap();
    planted.incremental_kpi = 3.0 * p.mean;
    planted.standard_error = 0.05 * p.mean;
    let cal = d.join("cal.json");
    std::fs::write(&cal, serde_json::to_string(&vec![ok, planted]).unwrap()).unwrap();
    let ledger = d.join("l.db");
    let r = mmloop(&["ledger", s(&ledger), "add", s(&cal)]);
    assert!(r.status.success(), "{}", text(&r));

    let r = mmloop(&["ledger", s(&ledger), "predict", "--fit", s(&fit1)]);
    let out = text(&r);
    assert!(r.status.success(), "{out}");
    assert!(out.contains("recorded as fit 1"), "{out}");
    assert!(out.contains("experiment 1 (search)") && out.contains("consistent, z = 0.0"), "{out}");
    assert!(
        out.contains("experiment 2 (tv)") && out.contains("under-credits tv by 3.0×") && out.contains("FLAGGED"),
        "{out}"
    );
    assert!(out.contains("iROAS"), "{out}");
    // again: the fit is recognised by its directory and hashes, nothing is predicted twice
    let r = mmloop(&["ledger", s(&ledger), "predict", "--fit", s(&fit1)]);
    let out = text(&r);
    assert!(
        r.status.success() && out.contains("already recorded as fit 1") && out.contains("nothing to predict"),
        "{out}"
    );
    {
        let l = Ledger::open(&ledger).unwrap();
        let fits = l.fits().unwrap();
        assert_eq!(fits.len(), 1);
        let prov: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fit1.join("provenance.json")).unwrap()).unwrap();
        assert_eq!(fits[0].fit.data_hash, prov["data"]["sha256"].as_str().unwrap());
        assert_eq!(fits[0].fit.config_hash, prov["config"]["sha256"].as_str().unwrap());
        let preds = l.all_predictions().unwrap();
        assert_eq!(preds.len(), 2);
        assert!(preds.iter().all(|p| !p.in_sample && p.prediction.fit_id == 1));
    }

    // show: the prediction against the readout, in words
    let r = mmloop(&["ledger", s(&ledger), "show", "2"]);
    let out = text(&r);
    assert!(r.status.success() && out.contains("fit 1: experiment 2 (tv)") && out.contains("FLAGGED"), "{out}");

    // history: table, JSON and CSV
    let r = mmloop(&["ledger", s(&ledger), "history"]);
    let out = text(&r);
    assert!(r.status.success(), "{out}");
    assert!(out.contains("all: 2 out-of-sample test(s), 90 % interval coverage 50%"), "{out}");
    let r = mmloop(&["ledger", s(&ledger), "history", "--format", "json"]);
    let h: serde_json::Value = serde_json::from_slice(&r.stdout).expect("history JSON");
    assert_eq!(h["rows"].as_array().unwrap().len(), 2);
    assert_eq!(h["overall"]["n"], 2);
    assert!(h["rows"][1]["z"].as_f64().unwrap() > 2.0);
    let csv = d.join("h.csv");
    let r = mmloop(&["ledger", s(&ledger), "history", "--format", "csv", "--out", s(&csv)]);
    assert!(r.status.success(), "{}", text(&r));
    let c = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(c.lines().count(), 3);
    assert!(c.starts_with("experiment_id,channels,"));
    let r = mmloop(&["ledger", s(&ledger), "history", "--format", "xml"]);
    assert!(!r.status.success() && text(&r).contains("--format must be table, json or csv"));

    // a fit calibrated on both readouts: check-fit labels both in-sample and gives p-values
    let fit2 = fit(d, &config(d, "cfg2.toml", Some(&cal)), "fit2");
    let r = mmloop(&["ledger", s(&ledger), "check-fit", "--fit", s(&fit2)]);
    let out = text(&r);
    assert!(r.status.success(), "{out}");
    assert_eq!(out.matches("in-sample: the fit was calibrated on this readout").count(), 2, "{out}");
    assert_eq!(out.matches("posterior predictive p = ").count(), 2, "{out}");
    let r = mmloop(&["ledger", s(&ledger), "check-fit", "--fit", s(&fit2), "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).expect("check-fit JSON");
    for c in j.as_array().unwrap() {
        assert_eq!(c["discrepancy"]["in_sample"], true);
        let p = c["p_value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert_eq!(c["strained"], p < 0.05);
    }
    // check-fit writes nothing
    assert_eq!(Ledger::open(&ledger).unwrap().fits().unwrap().len(), 1);

    // the anchor remedy: a config with tv's ROI prior from experiment 2, fitted and checked
    let anchored = d.join("anchored.toml");
    let r = mmloop(&["ledger", s(&ledger), "anchor", "2", "--config", s(&d.join("cfg2.toml")), "--out", s(&anchored)]);
    let out = text(&r);
    assert!(r.status.success() && out.contains("tv's ROI prior is experiment 2's iROAS"), "{out}");
    let spec = mmloop_mmm::config::load_config(&anchored).unwrap();
    assert_eq!(spec.calibration.roi_priors.len(), 1);
    assert_eq!(spec.calibration.lift_tests.len(), 1, "experiment 2's lift term is removed, experiment 1's kept");
    let fit3 = fit(d, &anchored, "fit3");
    let r = mmloop(&["ledger", s(&ledger), "check-fit", "--fit", s(&fit3), "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).expect("check-fit JSON");
    assert_eq!(j[1]["discrepancy"]["in_sample"], true, "an anchored fit has seen the test");
    // an existing --out is refused, a channel set or unknown id is an error
    let r = mmloop(&["ledger", s(&ledger), "anchor", "2", "--config", s(&d.join("cfg2.toml")), "--out", s(&anchored)]);
    assert!(!r.status.success() && text(&r).contains("exists"), "{}", text(&r));
    let r = mmloop(&[
        "ledger",
        s(&ledger),
        "anchor",
        "9",
        "--config",
        s(&d.join("cfg2.toml")),
        "--out",
        s(&d.join("x.toml")),
    ]);
    assert!(!r.status.success() && text(&r).contains("no experiment 9"), "{}", text(&r));
}

#[test]
fn bad_input_is_refused_naming_the_experiment_and_the_ledger_gets_no_fit_or_prediction() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let fit1 = fit(d, &config(d, "cfg.toml", None), "fit1");
    let cases = [
        (rec("radio", "2022-06-06", "2022-07-04", 1000.0), "\"radio\" is not in the model"),
        (rec("tv", "2019-01-07", "2019-02-04", 1000.0), "2019-01-07"),
    ];
    for (i, (bad, needle)) in cases.into_iter().enumerate() {
        let mut good = rec("tv", "2022-06-06", "2022-07-04", 1000.0);
        good.incremental_kpi = 500.0;
        good.standard_error = 100.0;
        let mut bad = bad;
        bad.incremental_kpi = 400.0;
        bad.standard_error = 100.0;
        let cal = d.join(format!("cal{i}.json"));
        std::fs::write(&cal, serde_json::to_string(&vec![good, bad]).unwrap()).unwrap();
        let ledger = d.join(format!("l{i}.db"));
        assert!(mmloop(&["ledger", s(&ledger), "add", s(&cal)]).status.success());
        let r = mmloop(&["ledger", s(&ledger), "predict", "--fit", s(&fit1)]);
        let out = text(&r);
        assert!(!r.status.success(), "{out}");
        assert!(out.contains("experiment 2") && out.contains(needle), "{out}");
        let l = Ledger::open(&ledger).unwrap();
        assert!(l.fits().unwrap().is_empty() && l.all_predictions().unwrap().is_empty(), "nothing written");
        assert_eq!(l.experiments().unwrap().len(), 2);
        drop(l);
        let r = mmloop(&["ledger", s(&ledger), "check-fit", "--fit", s(&fit1)]);
        assert!(!r.status.success() && text(&r).contains("experiment 2"), "{}", text(&r));
    }
    let ledger = d.join("l0.db");
    for t in ["0", "-2", "nan"] {
        let r = mmloop(&["ledger", s(&ledger), "predict", "--fit", s(&fit1), &format!("--threshold={t}")]);
        assert!(!r.status.success() && text(&r).contains("--threshold"), "{t}: {}", text(&r));
    }
    // a directory that is not a fit
    let r = mmloop(&["ledger", s(&ledger), "predict", "--fit", s(d)]);
    assert!(!r.status.success() && text(&r).contains("loading the fit in"), "{}", text(&r));
}
