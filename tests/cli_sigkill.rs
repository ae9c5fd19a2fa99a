//! Issue 10 §1: replacing an earlier output survives SIGKILL at any instant. `mmloop fit` (Laplace,
//! a small national dataset) rewrites the same `--out` over and over and is killed with SIGKILL
//! after a seeded random delay; after every kill the target must hold one complete output — the
//! old or the new — and a final normal run must leave nothing but the target next to it.

#![cfg(unix)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_project(dir: &Path) {
    let mut csv = String::from("date,sales,tv_spend,search_spend\n");
    for w in 0..52 {
        let date = mmloop_data::format_date(18631.0 + 7.0 * w as f64);
        let tv = if w % 5 < 2 { 0.0 } else { 700.0 + 20.0 * w as f64 };
        let search = 120.0 + 11.0 * (w % 4) as f64;
        let sales = 3000.0 + 1.3 * tv + 2.0 * search + 23.0 * ((w * 3) % 7) as f64;
        writeln!(csv, "{date},{sales},{tv},{search}").unwrap();
    }
    std::fs::write(dir.join("sales.csv"), csv).unwrap();
    std::fs::write(
        dir.join("model.toml"),
        r#"[data]
path = "sales.csv"
time = "date"
kpi = "sales"

[media]
adstock = { kind = "geometric", max_lag = 2 }

[[channel]]
name = "tv"
spend = "tv_spend"

[[channel]]
name = "search"
spend = "search_spend"

[baseline]
seasonality = []

[fit]
method = "laplace"
draws = 100
"#,
    )
    .unwrap();
}

fn fit_command(dir: &Path, seed: u64) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mmloop"));
    c.current_dir(dir)
        .args(["fit", "--quiet", "--config", "model.toml", "--out", "runs/fit", "--seed"])
        .arg(seed.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// The target is one complete fit output: the marker names `fit`, every file is there, and each
/// draw file and the saved config hash to what `provenance.json` (written last of all) recorded —
/// a half-written or mixed directory fails one of these. Returns the seed of the run that wrote it.
fn assert_complete(target: &Path) -> u64 {
    let marker = mmloop_data::read_marker(target).unwrap_or_else(|| panic!("{}: no mmloop marker", target.display()));
    assert_eq!(marker.command, "fit");
    for f in ["summary.json", "channels.csv", "params.csv", "contributions.csv", "response_curves.csv", "config.toml"] {
        assert!(target.join(f).is_file(), "{f} missing from {}", target.display());
    }
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join("provenance.json")).expect("provenance.json")).unwrap();
    for (name, hash) in prov["files"].as_object().unwrap() {
        assert_eq!(mmloop_data::hash_file(target.join(name)).unwrap(), hash.as_str().unwrap(), "{name} is not whole");
    }
    assert_eq!(
        mmloop_data::hash_bytes(&std::fs::read(target.join("config.toml")).unwrap()),
        prov["saved_config_sha256"].as_str().unwrap()
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join("summary.json")).unwrap()).expect("summary.json parses");
    assert_eq!(summary["n_draws"].as_u64(), prov["n_draws"].as_u64(), "summary.json and provenance.json disagree");
    let seed = marker.argv.iter().skip_while(|a| *a != "--seed").nth(1).expect("--seed in the marker's argv");
    seed.parse().unwrap()
}

/// A small seeded generator (SplitMix64, Steele et al. 2014) for the kill delays.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn sigkill_while_replacing_an_output_leaves_the_old_or_the_new_complete() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path());
    let target = dir.path().join("runs/fit");
    // the first output, and the time one run takes (the longest of three: the machine is shared)
    let mut run_time = Duration::ZERO;
    for _ in 0..3 {
        let t0 = Instant::now();
        assert!(fit_command(dir.path(), 0).status().unwrap().success());
        run_time = run_time.max(t0.elapsed());
    }
    assert_eq!(assert_complete(&target), 0);

    let mut rng = 20261130u64;
    let mut last_complete = 0u64;
    let (mut seen_new, mut seen_old) = (0, 0);
    let budget = Instant::now();
    let mut kills = 0;
    // ~12 s of kills whatever the machine's speed, at most 60
    while kills < 60 && budget.elapsed() < Duration::from_secs(12) {
        kills += 1;
        let seed = kills as u64;
        // every other kill uniform over the whole run, the others over its last 40 % where the
        // output is written and swapped in; both reach a little past the usual end, so some runs finish
        let u = (splitmix(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
        let frac = if kills % 2 == 0 { 1.1 * u } else { 0.7 + 0.4 * u };
        let delay = run_time.mul_f64(frac);
        let mut child = fit_command(dir.path(), seed).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL on unix
        child.wait().unwrap(); // reaped: its pid is no longer alive for the next run's clean-up
        let s = assert_complete(&target);
        assert!(s == seed || s == last_complete, "kill {kills}: output of run {s}, expected {last_complete} or {seed}");
        if s == seed {
            seen_new += 1;
        } else {
            seen_old += 1;
        }
        last_complete = s;
    }
    eprintln!("{kills} kills: the new output {seen_new} times, the old {seen_old} times");
    assert!(kills >= 10, "only {kills} kills in the time budget");

    // a normal run cleans up what the killed runs left next to the target
    assert!(fit_command(dir.path(), 999).status().unwrap().success());
    assert_eq!(assert_complete(&target), 999);
    let left: Vec<String> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["fit"], "leftovers of killed runs were not cleaned");
}
