//! `mmloop fit --ledger`: the national demo (156 weeks, last period 2023-12-25) fitted by Laplace,
//! calibrated on ledger readouts whose SE grows with age (SE²·exp(ln2·age/half-life)).

use mmloop_loop::ledger::Ledger;
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

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "mmloop failed:\n{}", text(&o));
    o
}

/// A search test ending 2023-07-03 (25 weeks before the data's end) and a joint TV + social test
/// ending 2023-10-02 (12 weeks before).
const CAL: &str = r#"[
 {"channels":["search"],"geos":[],"start":"2023-06-05","end":"2023-07-03","spend_change":20000,
  "incremental_kpi":40000,"standard_error":8000,"estimator":"sc","source":"demo"},
 {"channels":["tv","social"],"geos":[],"start":"2023-09-04","end":"2023-10-02","spend_change":30000,
  "incremental_kpi":45000,"standard_error":15000,"estimator":"sc","source":"demo"}
]"#;

struct World {
    dir: tempfile::TempDir,
}

impl World {
    /// The demo config (data by absolute path, Laplace) with `calibration` appended; cal.json beside it.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cal.json"), CAL).unwrap();
        let w = World { dir };
        w.config("plain.toml", "");
        w.config("with_cal.toml", "[calibration]\nlift_tests = \"cal.json\"\n");
        w
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, name: &str, calibration: &str) -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        let demo = std::fs::read_to_string(root.join("demo_national.toml")).unwrap();
        let data = root.join("demo_national.csv");
        let text = demo
            .replace("path = \"demo_national.csv\"", &format!("path = {:?}", s(&data)))
            .replace("method = \"nuts\"", "method = \"laplace\"")
            + "\n"
            + calibration;
        // [fit] is the last table of the demo config: a [calibration] table after it is its own table
        let p = self.p(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn ledger(&self) -> PathBuf {
        let l = self.p("loop.ledger");
        if !l.exists() {
            ok(mmloop(&["ledger", s(&l), "add", s(&self.p("cal.json"))]));
        }
        l
    }

    fn fit(&self, config: &str, out: &str, extra: &[&str]) -> Output {
        let (c, o) = (self.p(config), self.p(out));
        let mut args = vec!["fit", "--config", s(&c), "--out", s(&o), "--quiet"];
        args.extend_from_slice(extra);
        mmloop(&args)
    }

    fn json(&self, out: &str, file: &str) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.p(out).join(file)).unwrap()).unwrap()
    }

    fn bytes(&self, out: &str, file: &str) -> Vec<u8> {
        std::fs::read(self.p(out).join(file)).unwrap()
    }
}

fn fits_in(ledger: &Path) -> usize {
    Ledger::open(ledger).unwrap().fits().unwrap().len()
}

/// The ROI posterior (mean, sd) of a channel from summary.json.
fn roi(summary: &serde_json::Value, channel: &str) -> (f64, f64) {
    let c = summary["channels"].as_array().unwrap().iter().find(|c| c["name"] == channel).unwrap();
    (c["roi"]["mean"].as_f64().unwrap(), c["roi"]["sd"].as_f64().unwrap())
}

#[test]
fn ledger_readouts_at_age_zero_give_the_same_posterior_as_the_config_records() {
    let w = World::new();
    // the joint TV + social readout alone, fed (a) by the config and (b) through the ledger at
    // age 0 (as-of = its end, 2023-10-02)
    let one: serde_json::Value = serde_json::from_str(CAL).unwrap();
    std::fs::write(w.p("one.json"), serde_json::to_string(&[&one[1]]).unwrap()).unwrap();
    w.config("with_one.toml", "[calibration]\nlift_tests = \"one.json\"\n");
    let l = w.p("one.ledger");
    ok(mmloop(&["ledger", s(&l), "add", s(&w.p("one.json"))]));
    ok(w.fit("with_one.toml", "direct", &[]));
    ok(w.fit("plain.toml", "via_ledger", &["--ledger", s(&l), "--as-of", "2023-10-02"]));
    // identical draws: the same bytes (the files are written deterministically from the values)
    for f in ["posterior_unconstrained.parquet", "posterior.parquet", "channels.csv", "params.csv"] {
        assert!(
            w.bytes("direct", f) == w.bytes("via_ledger", f),
            "{f} differs between the config and the ledger route"
        );
    }
    let ev = w.json("via_ledger", "evidence.json");
    let readouts = ev["readouts"].as_array().unwrap();
    assert_eq!(readouts.len(), 1);
    assert_eq!(readouts[0]["age_weeks"], 0.0);
    assert_eq!(readouts[0]["variance_inflation"], 1.0);
    assert_eq!(fits_in(&l), 1, "the fit is recorded once");
    // the same readout in the config and the ledger is used once: same posterior again
    let o = ok(w.fit("with_one.toml", "both", &["--ledger", s(&l), "--as-of", "2023-10-02", "--no-retest-fits"]));
    assert!(text(&o).contains("used once"), "{}", text(&o));
    assert!(w.bytes("direct", "posterior_unconstrained.parquet") == w.bytes("both", "posterior_unconstrained.parquet"));
    assert_eq!(fits_in(&l), 2);
}

#[test]
fn at_one_half_life_the_variance_doubles_and_very_old_evidence_leaves_the_prior_fit() {
    let w = World::new();
    let l = w.ledger();
    // the search test ends 2023-07-03, 25 weeks before the data's last period: half-life 25 weeks
    ok(w.fit("plain.toml", "aged", &["--ledger", s(&l), "--half-life", "search=25", "--no-retest-fits"]));
    let sum = w.json("aged", "summary.json");
    let se = sum["lift_tests"][0]["standard_error"].as_f64().unwrap();
    // exp(ln2 / 25 · 25) = 2 up to rounding of ln2/25·25: 1e-12 relative
    assert!((se / (8000.0 * 2f64.sqrt()) - 1.0).abs() < 1e-12, "SE into the fit {se}");
    let ev = w.json("aged", "evidence.json");
    let search = ev["channels"].as_array().unwrap().iter().find(|c| c["channel"] == "search").unwrap().clone();
    assert!((search["variance_inflation"].as_f64().unwrap() - 2.0).abs() < 1e-12);
    assert_eq!(search["half_life_source"], "channel");

    // 50 half-lives (0.5 week half-life, 25 weeks old): variance × 2^50; drop the joint readout
    // (discarded) so the only calibration is the ancient one, and compare with no calibration
    let mut led = Ledger::open(&l).unwrap();
    led.discard(2, "not part of this test").unwrap();
    drop(led);
    ok(w.fit("plain.toml", "ancient", &["--ledger", s(&l), "--half-life", "search=0.5", "--no-retest-fits"]));
    ok(w.fit("plain.toml", "uncalibrated", &[]));
    let (a, b) = (w.json("ancient", "summary.json"), w.json("uncalibrated", "summary.json"));
    let se = a["lift_tests"][0]["standard_error"].as_f64().unwrap();
    assert!((se / (8000.0 * 2f64.powf(25.0)) - 1.0).abs() < 1e-9, "{se}");
    for ch in ["tv", "search", "social"] {
        let ((m1, s1), (m0, s0)) = (roi(&a, ch), roi(&b, ch));
        // the term's weight is 2^-50 ≈ 1e-15 of the fresh one, so the mode is the same; what is
        // left is the optimiser's stopping tolerance (a different path stops ~3e-7 relative away,
        // measured). 1e-4 relative: well inside the 1e-3 asked for, and 500× below the fresh
        // readout's effect checked next. Same seed, so the Laplace draws' MC error cancels.
        assert!((m1 / m0 - 1.0).abs() < 1e-4 && (s1 / s0 - 1.0).abs() < 1e-4, "{ch}: {m1} vs {m0}, {s1} vs {s0}");
    }
    // and a fresh one moves search's ROI by far more than that
    let (fresh, _) = roi(&w.json("aged", "summary.json"), "search");
    assert!((fresh / roi(&b, "search").0 - 1.0).abs() > 0.05);
}

#[test]
fn evidence_json_reports_ages_sds_and_the_retest_verdict() {
    let w = World::new();
    let l = w.ledger();
    let o = ok(w.fit("plain.toml", "ev", &["--ledger", s(&l)]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("re-test"), "{}", text(&o));
    let ev = w.json("ev", "evidence.json");
    for c in ev["channels"].as_array().unwrap() {
        let (with, without, ratio) = (
            c["laplace_roi_sd_with"].as_f64().unwrap(),
            c["laplace_roi_sd_without"].as_f64().unwrap(),
            c["sd_ratio"].as_f64().unwrap(),
        );
        assert!((ratio - with / without).abs() < 1e-12);
        assert_eq!(c["due_for_retest"].as_bool().unwrap(), ratio > 0.8);
        assert!(c["newest_age_weeks"].as_f64().unwrap() > 0.0);
    }
    let tv = ev["channels"].as_array().unwrap().iter().find(|c| c["channel"] == "tv").unwrap();
    assert_eq!(tv["newest_age_weeks"].as_f64().unwrap(), 12.0);
    assert_eq!(tv["half_life_weeks"].as_f64().unwrap(), 52.0);
    // the fit is in the ledger with its hashes, method, ROI summary and directory
    let fits = Ledger::open(&l).unwrap().fits().unwrap();
    assert_eq!(fits.len(), 1);
    let f = &fits[0].fit;
    assert_eq!(f.method, "laplace");
    assert_eq!(f.config_hash, mmloop_data::FileHash::of(w.p("plain.toml")).unwrap().sha256);
    assert!(f.roi_summary["search"]["sd"].as_f64().is_some());
    assert_eq!(Path::new(f.fit_dir.as_deref().unwrap()), std::fs::canonicalize(w.p("ev")).unwrap());
}

/// Runs a fit that must fail, and checks the message, that no output directory appeared and that
/// the ledger gained no fit.
fn refused(w: &World, config: &str, extra: &[&str], expect: &[&str]) {
    let l = w.ledger();
    let before = fits_in(&l);
    let o = w.fit(config, "bad_out", extra);
    let t = text(&o);
    assert!(!o.status.success(), "should fail: {extra:?}\n{t}");
    for e in expect {
        assert!(t.contains(e), "{extra:?}: expected {e:?} in:\n{t}");
    }
    assert!(!w.p("bad_out").exists(), "{extra:?}: output directory written");
    assert_eq!(fits_in(&l), before, "{extra:?}: a fit was recorded");
}

#[test]
fn bad_half_lives_as_of_and_ledgers_are_refused_before_anything_is_written() {
    let w = World::new();
    let l = w.ledger();
    let ls = s(&l).to_string();
    refused(
        &w,
        "plain.toml",
        &["--ledger", &ls, "--half-life", "radio=10"],
        &["--half-life radio", "tv, search, social"],
    );
    refused(&w, "plain.toml", &["--ledger", &ls, "--half-life", "tv=-3"], &["--half-life tv", "positive"]);
    refused(&w, "plain.toml", &["--ledger", &ls, "--half-life", "tv=0"], &["--half-life tv", "positive"]);
    refused(&w, "plain.toml", &["--ledger", &ls, "--half-life", "tv"], &["CHANNEL=WEEKS"]);
    w.config("hl_unknown.toml", "[calibration]\nhalf_lives = { radio = 10 }\n");
    refused(&w, "hl_unknown.toml", &["--ledger", &ls], &["half_lives.radio", "radio"]);
    w.config("hl_neg.toml", "[calibration]\nhalf_lives = { tv = -52 }\n");
    refused(&w, "hl_neg.toml", &["--ledger", &ls], &["half_lives.tv", "positive"]);
    // as-of before a readout's end: refused (no negative ages, no clamping), naming the experiment
    refused(&w, "plain.toml", &["--ledger", &ls, "--as-of", "2023-08-01"], &["experiment 2", "after the as-of"]);
    refused(&w, "plain.toml", &["--ledger", &ls, "--as-of", "week 3"], &["--as-of"]);
    // a readout for a channel the model lacks
    let other = w.p("radio.json");
    std::fs::write(&other, CAL.replace("\"search\"", "\"radio\"")).unwrap();
    let l2 = w.p("radio.ledger");
    ok(mmloop(&["ledger", s(&l2), "add", s(&other)]));
    let o = w.fit("plain.toml", "bad_out", &["--ledger", s(&l2)]);
    assert!(!o.status.success() && text(&o).contains("experiment 1") && text(&o).contains("\"radio\""), "{}", text(&o));
    assert!(!w.p("bad_out").exists());
    assert_eq!(fits_in(&l2), 0);
    // a readout whose window lies beyond the data: nothing to price it on; the error names the
    // ledger experiment behind the lift-test number
    let late = w.p("late.json");
    std::fs::write(&late, CAL.replace("2023-06-05", "2024-01-08").replace("2023-07-03", "2024-02-05")).unwrap();
    let l3 = w.p("late.ledger");
    ok(mmloop(&["ledger", s(&l3), "add", s(&late)]));
    let o = w.fit("plain.toml", "bad_out", &["--ledger", s(&l3), "--as-of", "2024-03-01"]);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("ledger experiment 1") && t.contains("not one of the data's periods"),
        "{t}"
    );
    assert!(!w.p("bad_out").exists());
    assert_eq!(fits_in(&l3), 0);
    // a missing and a corrupted ledger
    let missing = w.p("nope.ledger");
    let o = w.fit("plain.toml", "bad_out", &["--ledger", s(&missing)]);
    assert!(!o.status.success() && text(&o).contains("no ledger"), "{}", text(&o));
    assert!(!w.p("bad_out").exists() && !missing.exists());
    let broken = w.p("broken.ledger");
    let mut bytes = std::fs::read(&l).unwrap();
    for b in bytes.iter_mut().skip(100).take(4000) {
        *b = 0xA5;
    }
    std::fs::write(&broken, &bytes).unwrap();
    let o = w.fit("plain.toml", "bad_out", &["--ledger", s(&broken)]);
    assert!(!o.status.success() && text(&o).contains(s(&broken)), "{}", text(&o));
    assert!(!w.p("bad_out").exists());
    // --out may not be the ledger
    let o = w.fit("plain.toml", "loop.ledger", &["--ledger", &ls]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(Ledger::open(&l).unwrap().integrity_check().is_ok());
}

#[test]
fn roi_prior_mode_equals_the_same_roi_prior_written_in_the_config() {
    let w = World::new();
    // the search readout alone, at age 0: iROAS 40000 / 20000 = 2 with SE 8000 / 20000 = 0.4
    let one: serde_json::Value = serde_json::from_str(CAL).unwrap();
    std::fs::write(w.p("search.json"), serde_json::to_string(&[&one[0]]).unwrap()).unwrap();
    let l = w.p("search.ledger");
    ok(mmloop(&["ledger", s(&l), "add", s(&w.p("search.json"))]));
    w.config("prior.toml", "[[calibration.roi_prior]]\nchannel = \"search\"\nmean = 2.0\nstandard_error = 0.4\n");
    ok(w.fit("prior.toml", "direct", &[]));
    let o = ok(w.fit(
        "plain.toml",
        "via_ledger",
        &["--ledger", s(&l), "--as-of", "2023-07-03", "--ledger-as", "roi-prior"],
    ));
    assert!(text(&o).contains("ROI prior LogNormal"), "{}", text(&o));
    for f in ["posterior_unconstrained.parquet", "channels.csv"] {
        assert!(w.bytes("direct", f) == w.bytes("via_ledger", f), "{f} differs");
    }
    let ev = w.json("via_ledger", "evidence.json");
    assert_eq!(ev["roi_priors"][0]["mean"], 2.0);
    let search = ev["channels"].as_array().unwrap().iter().find(|c| c["channel"] == "search").unwrap();
    // a fresh ±0.4 readout pins search's ROI (uncalibrated Laplace sd ≈ 2.6 on the demo, measured):
    // the ratio is far below the 0.8 re-test threshold
    assert!(search["sd_ratio"].as_f64().unwrap() < 0.5 && search["due_for_retest"] == false, "{search}");
    // an unknown mode is refused, naming the option
    let o = w.fit("plain.toml", "bad_out", &["--ledger", s(&l), "--ledger-as", "nonsense"]);
    assert!(!o.status.success() && text(&o).contains("--ledger-as"), "{}", text(&o));
}

/// Issue 11 §4: a readout that arrives after a fit is predicted by that fit (same config) before the
/// next `fit --ledger` calibrates on it, and the prediction is stored as out of sample.
#[test]
fn a_new_readout_is_predicted_by_the_previous_fit_before_it_calibrates_the_next() {
    let w = World::new();
    let all: serde_json::Value = serde_json::from_str(CAL).unwrap();
    std::fs::write(w.p("first.json"), serde_json::to_string(&[&all[0]]).unwrap()).unwrap();
    std::fs::write(w.p("second.json"), serde_json::to_string(&[&all[1]]).unwrap()).unwrap();
    let l = w.p("loop.ledger");
    ok(mmloop(&["ledger", s(&l), "add", s(&w.p("first.json"))]));
    // cycle 1: no earlier fit of this config, so nothing predicts the first readout (a note says so)
    let o = ok(w.fit("plain.toml", "c1", &["--ledger", s(&l), "--as-of", "2023-10-02", "--no-retest-fits"]));
    assert!(text(&o).contains("no earlier fit of this config"), "{}", text(&o));
    // the second readout arrives; cycle 2's fit --ledger has cycle 1's fit predict it first
    ok(mmloop(&["ledger", s(&l), "add", s(&w.p("second.json"))]));
    let o = ok(w.fit("plain.toml", "c2", &["--ledger", s(&l), "--as-of", "2023-10-02", "--no-retest-fits"]));
    assert!(text(&o).contains("predicted by fit 1 before calibrating: experiment 2"), "{}", text(&o));
    let led = mmloop_loop::ledger::Ledger::open(&l).unwrap();
    let rows = led.all_predictions().unwrap();
    let of = |id: i64| rows.iter().filter(|r| r.prediction.experiment_id == id).collect::<Vec<_>>();
    // experiment 2: out of sample, by the fit made before it arrived
    assert_eq!(of(2).len(), 1, "one prediction of experiment 2");
    assert_eq!((of(2)[0].prediction.fit_id, of(2)[0].in_sample), (1, false));
    // experiment 1: fit 1 had calibrated on it, so its prediction is labelled in-sample, never scored
    assert!(of(1).iter().all(|r| r.in_sample), "fit 1 saw experiment 1: {:?}", of(1));
}
