//! `mmloop loop --demo`: cycles against the simulated world with known truth. The quick test runs
//! two short-NUTS cycles with a planted biased experiment; the heavy runs (the default demo's time,
//! 20 seeds of misallocation) are ignored with their commands.

use mmloop_loop::ledger::Ledger;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mmloop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmloop")).args(args).output().expect("run mmloop")
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains("ledger.sqlite") {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn csv(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let t = std::fs::read_to_string(path).unwrap();
    let mut lines = t.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines.map(|l| head.iter().map(|h| h.to_string()).zip(l.split(',').map(String::from)).collect()).collect()
}

/// A quick demo: 2 cycles, 2 × 60 NUTS iterations… per chain, a small ranking effort, the first
/// test reading out with the wrong sign (−1× its true lift: treated and control swapped).
///
/// Why not the 0.3× readout this test planted before: since the demo's model allows each channel an
/// observational bias (sd 0.5 on the log scale, `docs/notes/demo-learning.md`), its prediction of
/// an untested channel's lift spans about ×0.44–2.3 at 90 %, and a readout at 0.3× the truth sits at
/// z ≈ −1.9 (measured on seed 7): within what the model itself does not know, so the check rightly
/// leaves it. A flag needs a readout outside that — as the overconfident model without the bias
/// term flagged seed 7's honest search readout too.
const QUICK: [&str; 11] =
    ["--cycles", "2", "--draws", "60", "--rank-effort", "50", "20", "--plant-bias", "1", "--plant-factor", "-1"];

#[test]
#[ignore = "two short NUTS cycles take ~40 s CPU (minutes on the loaded machine); run with: cargo test -p mmloop --test cli_loop_demo quick_demo -- --ignored"]
fn quick_demo_writes_the_trajectory_flags_the_planted_biased_test_and_reruns_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let mut args = vec!["loop", "--demo", "--quiet", "--out", s(&out)];
    args.extend_from_slice(&QUICK);
    let o = mmloop(&args);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let rows = csv(&out.join("trajectory.csv"));
    assert_eq!(rows.len(), 2, "{t}");
    for col in [
        "cycle",
        "misallocation_cost",
        "roi_error_search",
        "covered90_search",
        "tests_run",
        "tests_cost",
        "discrepancy_flags",
    ] {
        assert!(rows[0].contains_key(col), "trajectory.csv lacks {col}");
    }
    assert!(rows[0]["misallocation_cost"].parse::<f64>().unwrap() >= -1e-6);
    assert_eq!(rows[0]["tests_run"], "1", "the demo runs at least one test a cycle:\n{t}");
    // the planted test (experiment 1, read out at −1× its true lift) is flagged in cycle 2
    assert_eq!(rows[1]["discrepancy_flags"], "1", "{t}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("cycle-2/validation.json")).unwrap()).unwrap();
    let d = &v["predicted_before_calibrating"][0];
    assert!(d["flagged"].as_bool().unwrap() && d["z"].as_f64().unwrap().abs() > 2.0, "{v}");
    assert!(t.contains("experiment 1"), "{t}");
    // the ledger: the test planned in cycle 1 is read, cycle 2's stays planned; one fit per cycle
    let l = Ledger::open(out.join("ledger.sqlite")).unwrap();
    let (e, f) = (l.experiments().unwrap().len(), l.fits().unwrap().len());
    assert!(e >= 2 && f == 2, "experiments {e}, fits {f}");

    // the same command again: every cycle is finished, nothing changes
    let before = (tree(&out), e, f, l.all_predictions().unwrap().len());
    drop(l);
    let o = mmloop(&args);
    assert!(o.status.success(), "{}", text(&o));
    let l = Ledger::open(out.join("ledger.sqlite")).unwrap();
    let after =
        (tree(&out), l.experiments().unwrap().len(), l.fits().unwrap().len(), l.all_predictions().unwrap().len());
    assert!(before == after, "a re-run changed the loop directory or the ledger");
}

#[test]
#[ignore = "the default demo (4 cycles, NUTS 4×(300+300), dense metric); run with: nice -n 15 cargo test -p mmloop --test cli_loop_demo default_demo -- --ignored --nocapture"]
fn default_demo_runs_and_tested_channels_tighten_and_still_cover() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let t0 = std::time::Instant::now();
    let o = mmloop(&["loop", "--demo", "--quiet", "--out", s(&out)]);
    eprintln!("default demo: {:.1} s wall", t0.elapsed().as_secs_f64());
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv(&out.join("trajectory.csv"));
    assert_eq!(rows.len(), 4);
    eprintln!("{}", std::fs::read_to_string(out.join("trajectory.csv")).unwrap());
    let (first, last) = (&rows[0], &rows[3]);
    for ch in ["tv", "search", "social", "display"] {
        if last[&format!("tested_{ch}")] == "true" {
            let w = |r: &std::collections::BTreeMap<String, String>| {
                r[&format!("roi_q95_{ch}")].parse::<f64>().unwrap()
                    - r[&format!("roi_q05_{ch}")].parse::<f64>().unwrap()
            };
            eprintln!(
                "{ch}: 90 % width {:.3} → {:.3}, covers truth: {}",
                w(first),
                w(last),
                last[&format!("covered90_{ch}")]
            );
        }
    }
}

/// Misallocation after the first and the last cycle of one demo run, and per channel tested
/// by the last cycle: its 90 % interval width in the first and the last cycle and whether the
/// last one covers the truth.
struct SeedResult {
    first: f64,
    last: f64,
    tested: Vec<(String, f64, f64, bool)>,
}

fn seed_result(out: &Path) -> SeedResult {
    let rows = csv(&out.join("trajectory.csv"));
    let m = |r: &std::collections::BTreeMap<String, String>| r["misallocation_cost"].parse::<f64>().unwrap();
    let (first, last) = (&rows[0], &rows[rows.len() - 1]);
    let mut tested = Vec::new();
    for ch in ["tv", "search", "social", "display"] {
        if last[&format!("tested_{ch}")] == "true" {
            let w = |r: &std::collections::BTreeMap<String, String>| {
                r[&format!("roi_q95_{ch}")].parse::<f64>().unwrap()
                    - r[&format!("roi_q05_{ch}")].parse::<f64>().unwrap()
            };
            tested.push((ch.to_string(), w(first), w(last), last[&format!("covered90_{ch}")] == "true"));
        }
    }
    SeedResult { first: m(first), last: m(last), tested }
}

/// The proof over 20 demo worlds (seeds 1–20, the default demo): the last cycle's
/// misallocation below the first's on most seeds, and tested channels' intervals tighter while
/// still covering the truth. `MMLOOP_STUDY_SEEDS=a-b` runs a part (to split the run),
/// `MMLOOP_STUDY_OUT=DIR` keeps every run's directory and writes `DIR/study.csv`.
#[test]
#[ignore = "20 default demos (4 cycles, NUTS 4×(300+300) each, ~80 s CPU a seed, 30+ min on 2 cores); run with: nice -n 15 cargo test -p mmloop --test cli_loop_demo misallocation_over_20_seeds -- --ignored --nocapture"]
fn misallocation_over_20_seeds() {
    let (lo, hi) = std::env::var("MMLOOP_STUDY_SEEDS")
        .ok()
        .and_then(|v| v.split_once('-').and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))))
        .unwrap_or((1, 20));
    let keep = std::env::var("MMLOOP_STUDY_OUT").ok().map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let root = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let mut table = String::from("seed,misallocation_first,misallocation_last,improved,tested\n");
    let (mut better, mut runs, mut tightened, mut covered, mut tested_n) = (0, 0, 0, 0, 0);
    for seed in lo..=hi {
        let out = root.join(format!("seed-{seed}"));
        let seed_s = seed.to_string();
        let o = mmloop(&["loop", "--demo", "--quiet", "--seed", &seed_s, "--out", s(&out)]);
        if !o.status.success() {
            eprintln!("seed {seed}: failed: {}", text(&o));
            continue;
        }
        let r = seed_result(&out);
        runs += 1;
        better += usize::from(r.last < r.first);
        let tested: Vec<String> = r
            .tested
            .iter()
            .map(|(ch, w0, w1, cov)| {
                tested_n += 1;
                tightened += usize::from(w1 < w0);
                covered += usize::from(*cov);
                format!("{ch} {w0:.3}->{w1:.3}{}", if *cov { " covers" } else { " misses" })
            })
            .collect();
        eprintln!("seed {seed}: misallocation {:.0} → {:.0}; tested: {}", r.first, r.last, tested.join(", "));
        table.push_str(&format!("{seed},{},{},{},{}\n", r.first, r.last, r.last < r.first, tested.join(";")));
    }
    eprintln!(
        "the last cycle's misallocation is below the first's on {better} of {runs} seeds; {tightened} of {tested_n} \
         tested channels' 90 % intervals are tighter than in cycle 1, {covered} of {tested_n} cover the truth"
    );
    if let Some(k) = &keep {
        std::fs::write(k.join("study.csv"), table).unwrap();
    }
    assert!(2 * better > runs, "only {better} of {runs} seeds improved");
}
