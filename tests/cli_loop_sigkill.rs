//! `mmloop loop` killed (SIGKILL) at seeded random moments of a cycle and run again: the cycle
//! finishes as an uninterrupted run does, with no duplicate ledger rows (fits, predictions,
//! experiments) and no leftovers.

#![cfg(unix)]

use mmloop_loop::ledger::Ledger;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CAL: &str = r#"[{"channels":["search"],"geos":[],"start":"2023-06-05","end":"2023-07-03","spend_change":20000,
  "incremental_kpi":40000,"standard_error":8000,"estimator":"sc","source":"demo"}]"#;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// The national demo by Laplace, a loop config, and cycle 1 run, then a readout added: the next
/// run is cycle 2 (predict the readout with cycle 1's fit, calibrate on it, recommend).
fn project(dir: &Path) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let demo = std::fs::read_to_string(root.join("demo_national.toml")).unwrap();
    let model = demo
        .replace("path = \"demo_national.csv\"", &format!("path = {:?}", s(&root.join("demo_national.csv"))))
        .replace("method = \"nuts\"", "method = \"laplace\"");
    std::fs::write(dir.join("model.toml"), model).unwrap();
    std::fs::write(dir.join("cal.json"), CAL).unwrap();
    let cfg = dir.join("loop.toml");
    std::fs::write(&cfg, "model = \"model.toml\"\nledger = \"loop.ledger\"\n[calibration]\nretest_fits = false\n")
        .unwrap();
    let out = dir.join("run");
    assert!(command(&cfg, &out).status().unwrap().success());
    let add = Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .args(["ledger", s(&dir.join("loop.ledger")), "add", s(&dir.join("cal.json"))])
        .output()
        .unwrap();
    assert!(add.status.success());
    (cfg, out)
}

fn command(cfg: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mmloop"));
    c.args(["loop", "--config", s(cfg), "--out", s(out), "--no-tests", "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

fn rows(ledger: &Path) -> (usize, usize, usize) {
    let l = Ledger::open(ledger).unwrap();
    l.integrity_check().unwrap();
    (l.experiments().unwrap().len(), l.fits().unwrap().len(), l.all_predictions().unwrap().len())
}

/// cycle.json without the absolute fit path (the two runs live in different folders).
fn state(out: &Path, n: u32) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(format!("cycle-{n}/cycle.json"))).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("fit_dir");
    v.as_object_mut().unwrap().remove("fit_reused");
    v
}

/// SplitMix64 (Steele et al. 2014) for the kill delays.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn sigkill_mid_cycle_then_rerun_finishes_it_with_no_duplicate_ledger_rows() {
    // the reference: cycle 2 uninterrupted, and how long it takes
    let reference = tempfile::tempdir().unwrap();
    let (cfg_r, out_r) = project(reference.path());
    let t0 = Instant::now();
    assert!(command(&cfg_r, &out_r).status().unwrap().success());
    let run_time = t0.elapsed();
    let expected = state(&out_r, 2);
    assert_eq!(rows(&reference.path().join("loop.ledger")), (1, 2, 1));

    let dir = tempfile::tempdir().unwrap();
    let (cfg, out) = project(dir.path());
    let ledger = dir.path().join("loop.ledger");
    let mut rng = 20261130u64;
    let mut kills = 0;
    let budget = Instant::now();
    // kills spread over the whole run (a little past its usual end, so some runs finish); each
    // later run resumes what the earlier ones left
    while kills < 8 && budget.elapsed() < Duration::from_secs(40) {
        kills += 1;
        let u = (splitmix(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
        let mut child = command(&cfg, &out).spawn().unwrap();
        std::thread::sleep(run_time.mul_f64(1.1 * u));
        let _ = child.kill();
        child.wait().unwrap();
        let (e, f, p) = rows(&ledger);
        assert!(e == 1 && f <= 2 && p <= 1, "kill {kills}: ledger rows {:?}", (e, f, p));
    }
    assert!(command(&cfg, &out).status().unwrap().success());
    assert_eq!(rows(&ledger), (1, 2, 1), "no duplicate fits, predictions or experiments after {kills} kills");
    assert_eq!(state(&out, 2), expected, "the resumed cycle concludes as the uninterrupted one");
    // and once more: finished, nothing changes
    assert!(command(&cfg, &out).status().unwrap().success());
    assert_eq!(rows(&ledger), (1, 2, 1));
    assert!(!out.join("cycle-3").exists());
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".mmloop-loop")
        .collect();
    assert!(left.is_empty(), "leftovers of killed runs: {left:?}");
}
