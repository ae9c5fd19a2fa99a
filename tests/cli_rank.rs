//! `mmloop rank` end to end on the bundled geo demo: a short Laplace fit (150 draws), candidates
//! designed on the demo panel or stated nationally, a ledger with a stale readout, and bad options.

use mmloop_data::LiftTestRecord;
use mmloop_loop::ledger::Ledger;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn mmloop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmloop")).args(args).output().expect("run mmloop")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// One Laplace fit of the geo demo (data/demo_geo.toml with 150 draws), shared by the tests.
fn fit_dir() -> &'static Path {
    static FIT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &FIT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = std::fs::read_to_string(root().join("data/demo_geo.toml")).unwrap();
        let data = root().join("data/demo_geo.csv");
        let cfg = cfg
            .replace("path = \"demo_geo.csv\"", &format!("path = {:?}", s(&data)))
            .replace("method = \"laplace\"", "method = \"laplace\"\nchains = 1\ndraws = 150");
        assert!(cfg.contains("draws = 150"), "the demo config changed: {cfg}");
        let path = dir.path().join("model.toml");
        std::fs::write(&path, cfg).unwrap();
        let out = dir.path().join("fit");
        let o = mmloop(&["fit", "--config", s(&path), "--out", s(&out), "--quiet"]);
        assert!(o.status.success(), "fit failed: {}", text(&o));
        (dir, out)
    })
    .1
}

/// The quick options every run here uses (few readouts: the Monte-Carlo accuracy is the value
/// module's to prove; here the wiring is).
const QUICK: &[&str] = &["--readouts", "16", "--evpi-draws", "16", "--durations", "4", "--draws", "50", "--pool", "4"];

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

#[test]
fn rank_on_the_demo_panel_writes_every_candidate_and_the_portfolio() {
    let fit = fit_dir();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rank");
    let panel = root().join("data/demo_geo.csv");
    let mut args = vec!["rank", "--fit", s(fit), "--panel", s(&panel), "--out", s(&out)];
    args.extend(QUICK);
    args.extend(["--n-treated", "2", "--designs", "2", "--windows", "5", "--channels", "search,tv+social"]);
    let o = mmloop(&args);
    assert!(o.status.success(), "{}", text(&o));
    let r = json(&out.join("ranking.json"));
    let cands = r["candidates"].as_array().unwrap();
    // 2 designs × 2 channel sets × (go-dark, +50 %) × 1 start
    assert_eq!(cands.len(), 8, "{r:#}");
    let geos = ["atlanta", "boston", "chicago", "dallas", "denver", "houston", "miami", "phoenix", "seattle", "tampa"];
    for c in cands {
        for key in ["eig", "evpi", "net_value", "sigma"] {
            assert!(c[key].as_f64().is_some_and(f64::is_finite), "{key} in {c:#}");
        }
        assert!(c["evoi"]["evoi"].as_f64().unwrap() >= 0.0);
        // k̂ is null when no readout's weight tail was long enough to fit a Pareto (the quick fit's few draws)
        assert!(
            (c["evoi"]["k_hat_max"].is_number() || c["evoi"]["k_hat_max"].is_null())
                && c["evoi"]["estimator"].is_string()
        );
        assert!(c["cost"]["cost"].as_f64().unwrap() >= 0.0);
        assert!(c["quadrant"]["quadrant"].is_string() && c["quadrant"]["eig_target"].is_number());
        let g = c["geos"].as_array().unwrap();
        assert_eq!(g.len(), 2);
        assert!(g.iter().all(|x| geos.contains(&x.as_str().unwrap())));
        assert_eq!(c["precision"]["source"], "design");
        // σ = se_lift × baseline (KPI summed over the treated geos and the window)
        let p = &c["precision"];
        let sigma = p["se_lift"].as_f64().unwrap() * p["baseline_kpi"].as_f64().unwrap();
        assert!((c["sigma"].as_f64().unwrap() - sigma).abs() <= 1e-9 * sigma);
        assert_eq!(c["start"], "2023-01-02", "the period after the data's last (2022-12-26)");
    }
    let csv = std::fs::read_to_string(out.join("ranking.csv")).unwrap();
    assert_eq!(csv.lines().count(), cands.len() + 1);
    let port = json(&out.join("portfolio.json"));
    let picks = port["greedy"]["picks"].as_array().unwrap();
    assert!(picks.len() <= 3);
    assert!(port["exhaustive"].is_object(), "a pool of 4: the exhaustive optimum is beside the greedy one");
    assert_eq!(port["pool"].as_array().unwrap().len(), 4);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2×2") && stdout.contains("portfolio"), "{stdout}");
    // thousands separators: demo sales are in the millions, so σ has at least one group
    assert!(
        stdout.lines().skip(2).take(8).any(|l| l.split_whitespace().any(|w| w.len() > 4 && w.contains(','))),
        "{stdout}"
    );
    for f in ["ranking.json", "ranking.csv", "portfolio.json"] {
        assert!(stdout.contains(f), "the files written are listed: {stdout}");
    }
    assert!(stdout.contains("next:"), "{stdout}");
}

#[test]
fn without_a_panel_national_tests_are_ranked_and_a_stale_ledger_readout_is_a_retest() {
    let fit = fit_dir();
    let tmp = tempfile::tempdir().unwrap();
    let ledger = tmp.path().join("loop.ledger");
    // a search test that ended a year before the data's end: 52 weeks at a 26-week half-life
    let rec = LiftTestRecord {
        channels: vec!["search".into()],
        geos: vec!["boston".into(), "miami".into()],
        start: "2021-11-08".into(),
        end: "2021-12-27".into(),
        spend_change: 400_000.0,
        spend_path: None,
        incremental_kpi: 900_000.0,
        standard_error: 250_000.0,
        estimator: "sc".into(),
        source: "cli_rank test".into(),
    };
    Ledger::open_or_create(&ledger).unwrap().add_readouts(&[rec], None).unwrap();
    let out = tmp.path().join("rank");
    let mut args = vec!["rank", "--fit", s(fit), "--ledger", s(&ledger), "--out", s(&out), "--no-heavy-up"];
    args.extend(QUICK);
    let o = mmloop(&args);
    assert!(o.status.success(), "{}", text(&o));
    let r = json(&out.join("ranking.json"));
    let cands = r["candidates"].as_array().unwrap();
    // 3 channels × go-dark × 4 periods nationally, and the re-test
    assert_eq!(cands.len(), 4, "{r:#}");
    let re: Vec<&serde_json::Value> = cands.iter().filter(|c| c["is_retest"] == true).collect();
    assert_eq!(re.len(), 1, "{r:#}");
    assert_eq!(re[0]["sigma"].as_f64(), Some(250_000.0), "the readout's own standard error");
    assert_eq!(re[0]["duration"], 8);
    assert!(re[0]["retest"]["stale"] == true && re[0]["retest"]["variance_inflation"].as_f64().unwrap() > 3.5);
    for c in cands.iter().filter(|c| c["is_retest"] != true) {
        assert!(c["geos"].as_array().unwrap().is_empty(), "national");
        assert_eq!(c["precision"]["source"], "stated");
        assert_eq!(c["retest"].is_object(), c["channels"][0] == "search", "flagged iff search was tested: {c:#}");
    }
    assert!(text(&o).contains("re-test"), "{}", text(&o));
}

#[test]
fn bad_rank_options_fail_naming_the_option_and_write_nothing() {
    let fit = fit_dir();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rank");
    let panel = root().join("data/demo_geo.csv");
    let missing = tmp.path().join("missing.ledger");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--objective", "cvar:0.1"], "--objective"),
        (vec!["--max-tests", "0"], "--max-tests"),
        (vec!["--max-tests", "-1"], "--max-tests"),
        (vec!["--horizon", "0"], "--horizon"),
        (vec!["--budget", "-5"], "--budget"),
        (vec!["--relative-se-go-dark", "2"], "--relative-se-go-dark"),
        (vec!["--heavy-up", "0.5"], "--heavy-up"),
        (vec!["--channels", "radio"], "radio"),
        (vec!["--no-go-dark", "--no-heavy-up"], "--no-go-dark"),
        // a panel whose KPI is not the model's: population instead of sales
        (vec!["--panel", s(&panel), "--kpi", "population"], "--kpi"),
        (vec!["--ledger", s(&missing)], "missing.ledger"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["rank", "--fit", s(fit), "--out", s(&out)];
        args.extend(QUICK);
        args.extend(extra.iter().copied());
        let o = mmloop(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {t}");
        assert!(t.contains(needle), "{extra:?} should name {needle}: {t}");
        assert!(!t.contains("panicked"), "{t}");
        assert!(!out.exists(), "{extra:?} left an output directory");
    }
}
