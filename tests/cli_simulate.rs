//! `mmloop simulate`: identical results.csv whatever the thread count, the output files and their
//! schema, the summary on the terminal, and bad options refused with the option named and nothing
//! written. Tiny settings (arms `none` and `oracle` only: no design search or ranking) keep it fast;
//! the testing arms' machinery is checked in the library's tests.

use std::path::Path;
use std::process::{Command, Output};

fn mmloop(args: &[&str], threads: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .args(args)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("run mmloop")
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn tiny(out: &Path) -> Vec<String> {
    [
        "simulate",
        "--worlds",
        "2",
        "--cycles",
        "2",
        "--arms",
        "none,oracle",
        "--channels",
        "3",
        "--draws",
        "40",
        "--seed",
        "3",
        "--quiet",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

#[test]
fn same_results_whatever_the_thread_count_with_the_stated_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let args_a = tiny(&a);
    let args_b = tiny(&b);
    let oa = mmloop(&args_a.iter().map(String::as_str).collect::<Vec<_>>(), "1");
    assert!(oa.status.success(), "{}", text(&oa));
    let ob = mmloop(&args_b.iter().map(String::as_str).collect::<Vec<_>>(), "2");
    assert!(ob.status.success(), "{}", text(&ob));
    let ra = std::fs::read_to_string(a.join("results.csv")).unwrap();
    let rb = std::fs::read_to_string(b.join("results.csv")).unwrap();
    assert_eq!(ra, rb, "results.csv differs between 1 and 2 threads");
    // schema: the stated columns, one row per world × arm × cycle
    let mut lines = ra.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, mmloop_loop::simulate::COLUMNS.to_vec());
    for col in ["world", "arm", "cycle", "misallocation_cost", "tests"] {
        assert!(header.contains(&col), "{col}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2 * 2 * 2);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for r in &rows {
        assert_eq!(r.len(), header.len());
        assert_eq!(r[col("tests")], "0", "none and oracle never test");
        if r[col("arm")] == "oracle" {
            let cost: f64 = r[col("misallocation_cost")].parse().unwrap();
            let oracle: f64 = r[col("oracle_outcome")].parse().unwrap();
            assert!(cost.abs() <= 1e-9 * oracle, "oracle cost {cost}");
        }
    }
    for f in ["results.parquet", "timings.csv", "summary.json", "summary.txt"] {
        assert!(a.join(f).is_file(), "{f}");
    }
    let parquet = std::fs::read(a.join("results.parquet")).unwrap();
    assert_eq!(&parquet[..4], b"PAR1");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["worlds"], 2);
    assert_eq!(summary["per_arm_cycle"].as_array().unwrap().len(), 2 * 2);
    let first = &summary["per_arm_cycle"][0]["misallocation_cost"];
    for k in ["median", "p10", "p90"] {
        assert!(first[k].is_number(), "{k}");
    }
    let paired = summary["paired"].as_array().unwrap();
    assert!(paired.iter().any(|p| p["arm"] == "none" && p["versus"] == "oracle" && p["over"] == "cumulative"));
    // the summary files equal apart from the wall time
    let strip = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(
        strip(&std::fs::read_to_string(a.join("summary.txt")).unwrap()),
        strip(&std::fs::read_to_string(b.join("summary.txt")).unwrap())
    );
    // the checkpoints are gone once the outputs are written
    let mut left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["a", "b"]);
    let out = String::from_utf8_lossy(&oa.stdout);
    assert!(out.contains("misallocation cost per cycle"), "{out}");
    assert!(out.contains("none") && out.contains("oracle"), "{out}");
}

#[test]
fn bad_options_are_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.display().to_string();
    for (args, expect) in [
        (vec!["simulate", "--arms", "evoi,magic", "--out", &o], "unknown arm \"magic\""),
        (vec!["simulate", "--method", "mcmc", "--out", &o], "--method"),
        (vec!["simulate", "--worlds", "0", "--out", &o], "--worlds"),
        (vec!["simulate", "--channels", "1-2", "--out", &o], "--channels"),
        (vec!["simulate", "--channels", "five", "--out", &o], "--channels"),
        (vec!["simulate", "--worlds", "2", "--nuts-check", "3", "--out", &o], "--nuts-check"),
        (vec!["simulate", "--jobs", "0", "--out", &o], "--jobs"),
    ] {
        let r = mmloop(&args, "1");
        assert!(!r.status.success(), "{args:?} should fail");
        let t = text(&r);
        assert!(t.contains(expect), "{args:?}: {t}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{args:?} left a file");
    }
    // a directory of the user's files is refused before any work
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("mine.txt"), "keep").unwrap();
    let r = mmloop(&tiny(&out).iter().map(String::as_str).collect::<Vec<_>>(), "1");
    assert!(!r.status.success());
    assert_eq!(std::fs::read_to_string(out.join("mine.txt")).unwrap(), "keep");
}

/// Killed (SIGKILL) once a world is in its checkpoint and run again, `simulate` says it resumes,
/// runs only the rest, and writes the results of an uninterrupted run.
#[cfg(unix)]
#[test]
fn a_killed_run_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    let mut args = tiny(&whole);
    args[2] = "3".into(); // --worlds 3
    let o = mmloop(&args.iter().map(String::as_str).collect::<Vec<_>>(), "1");
    assert!(o.status.success(), "{}", text(&o));
    *args.last_mut().unwrap() = killed.display().to_string();
    let checkpoint = dir.path().join(".killed.simulate-checkpoint.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmloop"))
        .args(&args)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // header + one world
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&checkpoint).map_or(0, |t| t.lines().count()) < 2 {
        assert!(t0.elapsed().as_secs() < 120, "no world finished in 2 min");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.exists(), "a killed run wrote its output");
    let o = mmloop(&args.iter().map(String::as_str).collect::<Vec<_>>(), "1");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resuming: "), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(killed.join("results.csv")).unwrap(),
        std::fs::read_to_string(whole.join("results.csv")).unwrap()
    );
    assert!(!checkpoint.exists());
}
