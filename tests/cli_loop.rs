//! `mmloop loop --config`: one cycle on the national demo (156 weeks) fitted by Laplace: its
//! artefacts, a re-run that changes nothing, a new readout that starts the next cycle, and bad
//! configs refused with the key or file named and nothing written.

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

/// A search readout ending 2023-07-03, 25 weeks before the data's end.
const CAL: &str = r#"[{"channels":["search"],"geos":[],"start":"2023-06-05","end":"2023-07-03","spend_change":20000,
  "incremental_kpi":40000,"standard_error":8000,"estimator":"sc","source":"demo"}]"#;

/// A temporary folder with the national demo's model config (Laplace, data by absolute path) and
/// a loop config naming it.
fn setup(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let demo = std::fs::read_to_string(root.join("demo_national.toml")).unwrap();
    let model = demo
        .replace("path = \"demo_national.csv\"", &format!("path = {:?}", s(&root.join("demo_national.csv"))))
        .replace("method = \"nuts\"", "method = \"laplace\"");
    std::fs::write(dir.path().join("model.toml"), model).unwrap();
    std::fs::write(dir.path().join("cal.json"), CAL).unwrap();
    let cfg = dir.path().join("loop.toml");
    std::fs::write(
        &cfg,
        format!(
            "model = \"model.toml\"\nledger = \"loop.ledger\"\n\n[budget]\nhorizon = 13\n\n[calibration]\nretest_fits = false\n{extra}"
        ),
    )
    .unwrap();
    (dir, cfg)
}

/// Every file under `dir` with its bytes, sorted by path (leftovers of killed runs included).
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn rows(ledger: &Path) -> (usize, usize, usize) {
    let l = Ledger::open(ledger).unwrap();
    (l.experiments().unwrap().len(), l.fits().unwrap().len(), l.all_predictions().unwrap().len())
}

#[test]
fn a_cycle_writes_its_artefacts_a_rerun_changes_nothing_and_a_new_readout_starts_the_next() {
    let (dir, cfg) = setup("");
    let out = dir.path().join("run");
    let ledger = dir.path().join("loop.ledger");
    let args = ["loop", "--config", s(&cfg), "--out", s(&out), "--no-tests", "--quiet"];
    let o = ok(mmloop(&args));
    let t = text(&o);
    for f in ["cycle.json", "brief.txt", "budget.json", "budget.csv", "validation.json", "plan.json", "changes.json"] {
        assert!(out.join("cycle-1").join(f).is_file(), "cycle-1/{f} missing:\n{t}");
    }
    assert!(out.join("fit-1").join("summary.json").is_file());
    assert!(t.contains("what the model believes") && t.contains("what to spend") && t.contains("next:"), "{t}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cycle-1/cycle.json")).unwrap()).unwrap();
    let b = state["optimal_outcome"].clone();
    assert!(
        b["q05"].as_f64().unwrap() <= b["mean"].as_f64().unwrap()
            && b["mean"].as_f64().unwrap() <= b["q95"].as_f64().unwrap()
    );
    assert_eq!(rows(&ledger), (0, 1, 0));

    // the same inputs again: nothing runs, nothing changes (files and ledger rows)
    let before = (tree(&out), rows(&ledger));
    let o = ok(mmloop(&args));
    assert!(text(&o).contains("nothing to do"), "{}", text(&o));
    assert_eq!((tree(&out), rows(&ledger)), before);

    // a readout arrives: cycle 2 predicts it with cycle 1's fit, calibrates on it, says what moved
    ok(mmloop(&["ledger", s(&ledger), "add", s(&dir.path().join("cal.json"))]));
    let o = ok(mmloop(&args));
    let t = text(&o);
    assert!(out.join("cycle-2/cycle.json").is_file(), "{t}");
    assert!(t.contains("experiment 1"), "the new readout is named in the brief:\n{t}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cycle-2/validation.json")).unwrap()).unwrap();
    assert_eq!(v["predicted_before_calibrating"].as_array().unwrap().len(), 1, "{v}");
    let ch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cycle-2/changes.json")).unwrap()).unwrap();
    let search = ch.as_array().unwrap().iter().find(|c| c["channel"] == "search").unwrap();
    assert_eq!(search["reason"], "new evidence", "{ch}");
    // one fit per cycle, one out-of-sample prediction of the readout
    assert_eq!(rows(&ledger), (1, 2, 1));
}

/// Runs `mmloop loop` on a config and checks it fails naming `expect`, with no loop directory made.
fn refused(cfg_text: &str, expect: &[&str]) {
    let (dir, cfg) = setup("");
    std::fs::write(&cfg, cfg_text).unwrap();
    let out = dir.path().join("run");
    let o = mmloop(&["loop", "--config", s(&cfg), "--out", s(&out), "--no-tests", "--quiet"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    for e in expect {
        assert!(t.contains(e), "expected {e:?} in:\n{t}");
    }
    assert!(!out.exists(), "nothing may be written:\n{t}");
    assert!(!dir.path().join("loop.ledger").exists(), "no ledger may be created:\n{t}");
}

#[test]
fn bad_loop_configs_and_missing_files_are_refused_naming_the_key_or_file() {
    let base = "model = \"model.toml\"\nledger = \"loop.ledger\"\n";
    refused(&format!("{base}[budget]\nhorizn = 13\n"), &["loop.toml", "horizn"]);
    refused(&format!("{base}[budget]\nhorizon = 0\n"), &["budget.horizon", "at least 1"]);
    refused(&format!("{base}[budget]\nobjective = \"best\"\n"), &["budget.objective"]);
    refused(&format!("{base}[budget]\nrelative = 2\n"), &["budget.relative"]);
    refused(&format!("{base}[tests]\nmax_per_cycle = 0\n"), &["tests.max_per_cycle"]);
    refused(&format!("{base}[calibration]\nhalf_lives = {{ radio = 10 }}\n"), &["calibration.half_lives.radio", "tv"]);
    refused(&format!("{base}[calibration]\nhalf_lives = {{ tv = -1 }}\n"), &["calibration.half_lives.tv", "positive"]);
    refused(&format!("{base}[calibration]\nthreshold = 0\n"), &["calibration.threshold"]);
    refused(&format!("{base}[[budget.bounds]]\nchannel = \"tv\"\nlower = 5\nupper = 1\n"), &["budget.bounds[1]"]);
    refused("model = \"nope.toml\"\nledger = \"loop.ledger\"\n", &["model", "nope.toml"]);
    refused("ledger = \"loop.ledger\"\n", &["loop.toml", "model"]);
    refused(&format!("{base}[panel]\npath = \"panel.csv\"\n"), &["panel.path", "panel.csv"]);
    // a loop directory that is a folder of the user's files
    let (dir, cfg) = setup("");
    let out = dir.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = mmloop(&["loop", "--config", s(&cfg), "--out", s(&out), "--no-tests", "--quiet"]);
    assert!(!o.status.success() && text(&o).contains("not an mmloop loop directory"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

/// A data error found after the loop directory was opened (the config and model config are fine,
/// a value in the data is not): the error names the file and the first cycle leaves no directory
/// behind (not even its marker); a re-run once the data are fixed starts cleanly.
#[test]
fn a_first_cycle_that_fails_on_its_data_leaves_nothing_behind() {
    let (dir, cfg) = setup("");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let data = std::fs::read_to_string(root.join("demo_national.csv")).unwrap();
    let mut lines: Vec<String> = data.lines().map(String::from).collect();
    let mut cells: Vec<&str> = lines[5].split(',').collect();
    cells[1] = "lots";
    lines[5] = cells.join(",");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let model = std::fs::read_to_string(dir.path().join("model.toml")).unwrap();
    let model = model.replace(s(&root.join("demo_national.csv")), s(&bad));
    std::fs::write(dir.path().join("model.toml"), model).unwrap();
    let out = dir.path().join("run");
    let o = mmloop(&["loop", "--config", s(&cfg), "--out", s(&out), "--no-tests", "--quiet"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("bad.csv") && t.contains("lots"), "the error names the file and the value:\n{t}");
    assert!(!out.exists(), "a failed first cycle leaves no loop directory:\n{t}");
    // the data fixed, the same command runs the first cycle
    std::fs::copy(root.join("demo_national.csv"), &bad).unwrap();
    ok(mmloop(&["loop", "--config", s(&cfg), "--out", s(&out), "--no-tests", "--quiet"]));
    assert!(out.join("cycle-1").join("cycle.json").is_file());
}

#[test]
fn against_plan_scores_the_objective_on_the_gain_over_the_plan_in_force() {
    let (dir, cfg) = setup("");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[budget]\nhorizon = 13\n",
        "[budget]\nhorizon = 13\nobjective = \"cvar:0.05\"\nagainst_plan = true\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("run");
    ok(mmloop(&["loop", "--config", s(&cfg), "--out", s(&out), "--no-tests", "--quiet"]));
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cycle-1/budget.json")).unwrap()).unwrap();
    let value = b["objective_value"].as_f64().unwrap();
    let gain_q05 = b["gain"]["q05"].as_f64().unwrap();
    let outcome_q05 = b["optimal_outcome"]["q05"].as_f64().unwrap();
    let tol = 1e-6 * b["budget"].as_f64().unwrap();
    // the objective is CVaR of the gain over the current spend (the plan in force in cycle 1):
    // never below staying put (0 in every draw), never above the gain's own 5 % quantile; CVaR of
    // the outcome (what the objective scores without against_plan) would be near the outcome's
    assert!(value >= -tol, "CVaR of the gain {value} below staying put");
    assert!(value <= gain_q05 + tol, "CVaR of the gain {value} above its 5 % quantile {gain_q05}");
    assert!(value < 0.5 * outcome_q05, "{value} looks like CVaR of the outcome (q05 {outcome_q05})");
    assert!(b["objective"].as_str().unwrap().starts_with("cvar:0.05"), "{}", b["objective"]);
}
