//! `mmloop report` on every reportable command's output, checked in headless Chromium: the page loads
//! with no console error and no network request, shows the expected charts, does not overflow a
//! phone-width screen, screenshots and prints. Also: the plotted numbers are the output's numbers, and
//! bad input gets an error naming it. The loop and simulate outputs are made once per test binary
//! with the quick demo settings (`loop --demo --cycles 2 --draws 60 --rank-effort 48 20`, a
//! two-world two-cycle simulation), both with `--report`.
//!
//! Chromium (Debian's `chromium`) must be installed: `.ci/run` installs it when absent. Without it the
//! browser tests fail, they never skip. Screenshots and PDFs are kept under
//! `$CARGO_TARGET_TMPDIR/report-screenshots/` (CI artefacts).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod common;
use common::copy_dir;

const BIN: &str = env!("CARGO_BIN_EXE_mmloop");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn mmloop(args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(ROOT).output().expect("cannot run mmloop")
}

fn ok(args: &[&str]) {
    let o = mmloop(args);
    assert!(o.status.success(), "mmloop {args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
}

/// One output directory per command, made once for the whole test binary on the bundled demo data.
struct Outputs {
    root: PathBuf,
}

fn outputs() -> &'static Outputs {
    static OUT: OnceLock<Outputs> = OnceLock::new();
    OUT.get_or_init(|| {
        // under the target directory, replaced on every run: the outputs and reports stay as artefacts
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-outputs");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let p = |n: &str| root.join(n).display().to_string();
        // Laplace: the report reads the same files as after NUTS, in a second instead of a minute
        ok(&["fit", "--config", "data/demo_national.toml", "--out", &p("fit"), "--method", "laplace", "--quiet"]);
        ok(&["optimize", "--fit", &p("fit"), "--horizon", "13", "--out", &p("optimize")]);
        // --report writes scenario.html beside the output as the command finishes
        ok(&["scenario", "--fit", &p("fit"), "--plan", "data/demo_plan.csv", "--out", &p("scenario"), "--report"]);
        assert!(mmloop_report::is_report(&root.join("scenario.html")), "--report wrote no report");
        ok(&[
            "design",
            "--data",
            "data/demo_geo.csv",
            "--geo",
            "geo",
            "--kpi",
            "sales",
            "--n-treated",
            "2..3",
            "--duration",
            "6,8",
            "--out",
            &p("design"),
        ]);
        ok(&[
            "lift",
            "--data",
            "data/demo_geo_test.csv",
            "--geo",
            "geo",
            "--kpi",
            "sales",
            "--treated",
            "boston,denver,seattle",
            "--start",
            "2022-07-18",
            "--end",
            "2022-09-05",
            "--estimator",
            "sc,did",
            "--channel",
            "search",
            "--spend-change",
            "9840000",
            "--out",
            &p("lift"),
        ]);
        write_rank_fixture(&root.join("rank"));
        // an experiment ledger (a file, named "ledger" here): the lift readout, predicted by the fit
        ok(&["ledger", &p("ledger"), "add", &format!("{}/calibration.json", p("lift"))]);
        ok(&["ledger", &p("ledger"), "predict", "--fit", &p("fit")]);
        Outputs { root }
    })
}

/// `mmloop rank` is being built on another branch: its output is written here by hand, in the shape
/// its API note gives for `ranking.json` (candidates with EIG, EVOI object, cost object, net value,
/// classification; the greedy portfolio), so the report's reader and charts are checked now.
fn write_rank_fixture(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let q = |name: &str, eig: f64, evoi: f64, cost: f64| {
        format!(
            r#"{{"quadrant":"{name}","eig":{eig},"eig_target":0.34657359,"evoi":{evoi},"cost":{cost},"rule":"informative when EIG >= target; worth it when EVOI > cost"}}"#
        )
    };
    let cands = [
        ("tv go-dark boston+denver 8w", "tv", 0.9, 52000.0_f64, 12000.0_f64, "TestNow"),
        ("search heavy-up 3 geos 8w", "search", 0.6, 21000.0, 30000.0, "TestToLearn"),
        ("social go-dark national 4w", "social", 0.2, 40000.0, 9000.0, "Watch"),
        ("<script>alert(1)</script> 4w", "social", 0.1, 3000.0, 8000.0, "Leave"),
    ];
    let mut items = Vec::new();
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| (cands[b].3 - cands[b].4).total_cmp(&(cands[a].3 - cands[a].4)));
    for (rank, &i) in order.iter().enumerate() {
        let (name, ch, eig, evoi, cost, quad) = cands[i];
        items.push(format!(
            r#"{{"rank":{},"name":"{}","channels":["{ch}"],"geos":[],"duration":8,"eig":{eig},"evoi":{{"evoi":{evoi},"mcse":{},"estimator":"plain"}},"evpi":90000.0,"cost":{{"spend_change":-1.0,"expected_lift":0.0,"expected_return":0.0,"cost":{cost},"expected_profit":0.0}},"net_value":{},"quadrant":{}}}"#,
            rank + 1,
            name.replace('"', "\\\""),
            evoi * 0.05,
            evoi - cost,
            q(quad, eig, evoi, cost)
        ));
    }
    let json = format!(
        r#"{{"candidates":[{}],"portfolio":{{"greedy":{{"picks":[{{"candidate":0,"name":"tv go-dark boston+denver 8w","marginal_evoi":52000.0,"marginal_net":40000.0,"joint_evoi":52000.0}},{{"candidate":1,"name":"social go-dark national 4w","marginal_evoi":25000.0,"marginal_net":16000.0,"joint_evoi":77000.0}}],"joint_evoi":77000.0,"total_cost":21000.0,"net_value":56000.0}},"exhaustive":null}},"evpi":{{"evpi":90000.0,"mcse":900.0,"n_draws_used":500,"unit":"money"}},"budget":224395.0,"horizon":13,"thresholds":{{"eig_target_nats":0.34657359}},"notes":["fixture written by tests/report.rs"]}}"#,
        items.join(",")
    );
    std::fs::write(dir.join("ranking.json"), json).unwrap();
    std::fs::write(
        dir.join(".mmloop-output"),
        r#"{"written_by":"mmloop","command":"rank","argv":[],"version":"0.1.0","files":["ranking.json"]}"#,
    )
    .unwrap();
}

impl Outputs {
    fn dir(&self, kind: &str) -> PathBuf {
        self.root.join(kind)
    }

    /// Renders the report of `kind` through the CLI and returns its path and text.
    fn report(&self, kind: &str) -> (PathBuf, String) {
        let out = self.root.join(format!("{kind}.html"));
        ok(&["report", &self.dir(kind).display().to_string(), "--out", &out.display().to_string()]);
        let html = std::fs::read_to_string(&out).unwrap();
        (out, html)
    }
}

/// The quick closed-loop demo (two cycles) and a tiny simulation, made once for the whole test
/// binary, each with `--report` (which must write DIR.html beside the output); separate from
/// [`outputs`] so the three fixtures build in parallel.
fn loop_root() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-loop");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let dir = root.join("loop").display().to_string();
        ok(&[
            "loop",
            "--demo",
            "--cycles",
            "2",
            "--draws",
            "60",
            "--rank-effort",
            "48",
            "20",
            "--out",
            &dir,
            "--report",
        ]);
        assert!(mmloop_report::is_report(&root.join("loop.html")), "loop --report wrote no report");
        root
    })
}

fn sim_root() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-sim");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let dir = root.join("sim").display().to_string();
        ok(&[
            "simulate",
            "--worlds",
            "2",
            "--cycles",
            "2",
            "--channels",
            "3",
            "--arms",
            "evoi,none,oracle",
            "--out",
            &dir,
            "--report",
        ]);
        assert!(mmloop_report::is_report(&root.join("sim.html")), "simulate --report wrote no report");
        root
    })
}

/// Renders the report of `dir` through the CLI into `out` and returns its path and text.
fn report_of(dir: &Path, out: &Path) -> (PathBuf, String) {
    ok(&["report", &dir.display().to_string(), "--out", &out.display().to_string()]);
    (out.to_path_buf(), std::fs::read_to_string(out).unwrap())
}

// ---- the browser ---------------------------------------------------------------------------------

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(o) = Command::new("sh").args(["-c", &format!("command -v {name}")]).output()
            && o.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        }
    }
    panic!(
        "chromium is not installed: `apt-get install -y chromium` (.ci/run installs it); the report tests need a real browser"
    );
}

/// Headless Chromium with every background fetch off and every host unresolvable, so nothing can
/// reach the network even by accident; a fresh profile per run.
fn browse(extra: &[String], url: &str) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url);
    let o = cmd.output().expect("cannot start chromium");
    assert!(o.status.success(), "chromium failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// The checker the test puts at the top of a copy of the report (before the page's own security
/// policy, which would refuse it later on): it records script errors, refused loads and every
/// resource the page fetched, and on load writes what it measured into the DOM as JSON.
const CHECKER: &str = r#"<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push('error: ' + (e.message || (e.target && (e.target.src || e.target.href)))); }, true);
document.addEventListener('securitypolicyviolation', function (e) { window.__errors.push('refused: ' + e.blockedURI + ' by ' + e.violatedDirective); });
window.addEventListener('load', function () {
  var figs = Array.prototype.map.call(document.querySelectorAll('figure.chart'), function (f) {
    var svg = f.querySelector('svg.plot');
    var box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
    return { id: f.id, svgs: f.querySelectorAll('svg.plot').length,
             marks: f.querySelectorAll('svg.plot polyline, svg.plot rect, svg.plot circle, svg.plot polygon').length,
             width: box.width, height: box.height, tables: f.querySelectorAll('details table').length };
  });
  // printing opens every closed details (the tables behind the charts) and closes them afterwards
  var details = document.querySelectorAll('details').length;
  window.dispatchEvent(new Event('beforeprint'));
  var closedOnPrint = document.querySelectorAll('details:not([open])').length;
  window.dispatchEvent(new Event('afterprint'));
  var openAfterPrint = document.querySelectorAll('details[open]').length;
  var out = { figs: figs, resources: performance.getEntriesByType('resource').map(function (r) { return r.name; }),
              details: details, closedOnPrint: closedOnPrint, openAfterPrint: openAfterPrint,
              errors: window.__errors, scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
              scripts: document.scripts.length };
  parent.postMessage(JSON.stringify(out), '*');
});
</script>"#;

/// A phone: the report in a 390 × 844 CSS px frame (headless Chromium's window is at least 500 px
/// wide, so the window cannot be the phone). The frame's page posts its measurements here, and this
/// page writes them into its DOM for `--dump-dom`.
fn phone_page(probe: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{{margin:0}} iframe{{border:0;width:390px;height:844px;display:block}}</style>
<script>window.addEventListener('message', function (e) {{ var p = document.createElement('pre'); p.id = 'mmloop-check'; p.textContent = e.data; document.body.appendChild(p); }});</script>
</head><body><iframe src="{probe}"></iframe></body></html>"#
    )
}

#[derive(Debug, serde::Deserialize)]
struct Fig {
    id: String,
    svgs: usize,
    marks: usize,
    width: f64,
    height: f64,
    tables: usize,
}

#[derive(Debug, serde::Deserialize)]
struct Check {
    figs: Vec<Fig>,
    resources: Vec<String>,
    errors: Vec<String>,
    #[serde(rename = "scrollWidth")]
    scroll_width: f64,
    #[serde(rename = "innerWidth")]
    inner_width: f64,
    scripts: usize,
    details: usize,
    #[serde(rename = "closedOnPrint")]
    closed_on_print: usize,
    #[serde(rename = "openAfterPrint")]
    open_after_print: usize,
    /// Console lines from Chromium's log (filled in by the test, not the page).
    #[serde(default)]
    console: Vec<String>,
}

fn shots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Opens the report of `kind` at phone width (390 × 844 CSS px) and checks everything the browser can
/// tell; returns the chart ids it found.
fn check_in_browser(kind: &str, want: &[&str], print: bool) -> Vec<String> {
    let (path, html) = outputs().report(kind);
    check_report(kind, &path, &html, want, print)
}

/// [`check_in_browser`] of the report `html` written at `path`.
fn check_report(kind: &str, path: &Path, html: &str, want: &[&str], print: bool) -> Vec<String> {
    let path = path.to_path_buf();
    // the file as written: one script (the print helper, allowed by its hash), no URL in any src or
    // href, the fetch-nothing policy
    assert_eq!(html.matches("<script").count(), 1, "{kind}: the report holds a script besides the print helper");
    assert!(
        html.contains(&format!("<script>{}</script>", mmloop_report::page::PRINT_SCRIPT))
            && html.contains(&format!("script-src {}", mmloop_report::page::script_hash())),
        "{kind}: the print helper or its hash in the security policy is missing"
    );
    for attr in ["src=", "href=", "url("] {
        assert!(!html.contains(attr), "{kind}: the report references something ({attr})");
    }
    assert!(!html.contains("http:") && !html.contains("https:"), "{kind}: the report names a URL");
    assert!(html.contains("default-src 'none'"), "{kind}: the content security policy is missing");

    let (c, url) = probe(&path, html, kind);
    assert_clean(kind, &c);
    assert!(
        c.details > 0 && c.closed_on_print == 0 && c.open_after_print == 0,
        "{kind}: printing does not open the {} tables ({} stay closed, {} open after)",
        c.details,
        c.closed_on_print,
        c.open_after_print
    );
    let ids: Vec<String> = c.figs.iter().map(|f| f.id.clone()).collect();
    for w in want {
        assert!(ids.iter().any(|id| id == w), "{kind}: chart {w} missing; charts: {ids:?}");
    }
    for f in &c.figs {
        assert_eq!(f.svgs, 1, "{kind}: chart {} has {} SVGs", f.id, f.svgs);
        // the frame, axes and ticks alone are a handful of marks: a chart with data has more
        assert!(f.marks >= 5, "{kind}: chart {} draws only {} marks", f.id, f.marks);
        assert!(
            f.width > 300.0 && f.width <= 390.0 && f.height > 100.0,
            "{kind}: chart {} is {}×{} px",
            f.id,
            f.width,
            f.height
        );
        assert_eq!(f.tables, 1, "{kind}: chart {} has no table of its numbers", f.id);
    }

    // screenshots, kept as artefacts: the first screen on a phone, and the whole page on a desktop
    let shot = shots_dir().join(format!("{kind}-phone.png"));
    let _ = std::fs::remove_file(&shot);
    browse(&["--window-size=500,900".into(), format!("--screenshot={}", shot.display())], &url);
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "{kind}: no screenshot");
    let shot = shots_dir().join(format!("{kind}.png"));
    let _ = std::fs::remove_file(&shot);
    browse(
        &["--window-size=1000,4000".into(), format!("--screenshot={}", shot.display())],
        &format!("file://{}", path.display()),
    );
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "{kind}: no screenshot");
    if print {
        let pdf = shots_dir().join(format!("{kind}.pdf"));
        let _ = std::fs::remove_file(&pdf);
        browse(
            &["--no-pdf-header-footer".into(), format!("--print-to-pdf={}", pdf.display())],
            &format!("file://{}", path.display()),
        );
        let bytes = std::fs::read(&pdf).unwrap_or_default();
        assert!(bytes.starts_with(b"%PDF") && bytes.len() > 10_000, "{kind}: printing produced no PDF");
    }
    ids
}

/// The page count of a PDF Chromium printed (the page tree's `/Count`).
fn pdf_pages(pdf: &[u8]) -> usize {
    let s = String::from_utf8_lossy(pdf);
    s.match_indices("/Count ")
        .filter_map(|(i, _)| s[i + 7..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Prints `html` (saved beside `path` as `name`) to PDF and returns its page count.
fn print_pages(path: &Path, name: &str, html: &str) -> usize {
    let file = path.with_file_name(name);
    std::fs::write(&file, html).unwrap();
    let pdf = shots_dir().join(name.replace(".html", ".pdf"));
    let _ = std::fs::remove_file(&pdf);
    browse(
        &["--no-pdf-header-footer".into(), format!("--print-to-pdf={}", pdf.display())],
        &format!("file://{}", file.display()),
    );
    pdf_pages(&std::fs::read(&pdf).unwrap_or_default())
}

/// Opens `html` (saved beside `path`) with the checker in a phone-sized frame; returns what the
/// checker measured and the URL of the phone page.
fn probe(path: &Path, html: &str, kind: &str) -> (Check, String) {
    let probe = path.with_file_name(format!("{kind}.probe.html"));
    let i = html.find("<head>").expect("no <head>") + "<head>".len();
    std::fs::write(&probe, format!("{}{CHECKER}{}", &html[..i], &html[i..])).unwrap();
    let phone = path.with_file_name(format!("{kind}.phone.html"));
    std::fs::write(&phone, phone_page(&probe.file_name().unwrap().to_string_lossy())).unwrap();
    let url = format!("file://{}", phone.display());
    let run = browse(&["--window-size=500,900".into(), "--virtual-time-budget=3000".into(), "--dump-dom".into()], &url);
    let dom = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let start =
        dom.find("<pre id=\"mmloop-check\">").expect("the checker did not run") + "<pre id=\"mmloop-check\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end].replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    let mut c: Check = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{kind}: checker output {json}: {e}"));
    c.console = stderr.lines().filter(|l| l.contains("CONSOLE")).map(String::from).collect();
    (c, url)
}

/// No console message, no error, no fetch, no script but the checker, no horizontal overflow on a phone.
fn assert_clean(kind: &str, c: &Check) {
    assert!(c.console.is_empty(), "{kind}: console messages: {:#?}", c.console);
    assert!(c.errors.is_empty(), "{kind}: errors in the page: {:?}", c.errors);
    assert!(c.resources.is_empty(), "{kind}: the page fetched {:?}", c.resources);
    assert_eq!(c.scripts, 2, "{kind}: scripts other than the test's checker and the print helper ran");
    assert!(c.inner_width <= 390.0, "{kind}: the frame is not phone-sized ({})", c.inner_width);
    assert!(
        c.scroll_width <= c.inner_width,
        "{kind}: the page is wider ({} px) than a phone screen ({} px)",
        c.scroll_width,
        c.inner_width
    );
}

#[test]
fn the_browser_check_catches_a_fetch_a_script_error_and_an_overflow() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("bad.html");
    let html = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>\
        <img src=\"missing.png\" alt=\"\"><img src=\"http://example.invalid/x.png\" alt=\"\"><div style=\"width:900px\">wide</div>\
        <script>undefinedFunction();</script></body></html>";
    let (c, _) = probe(&path, html, "bad");
    // a network fetch is listed by the browser (and fails: every host is unresolvable); a failed
    // local file shows as an error event
    assert_eq!(c.resources, ["http://example.invalid/x.png"], "the network fetch went unseen");
    assert!(c.errors.iter().any(|e| e.ends_with("missing.png")), "the failed file load went unseen: {:?}", c.errors);
    assert!(c.errors.iter().any(|e| e.contains("undefinedFunction")), "the script error went unseen: {:?}", c.errors);
    assert!(c.scroll_width > c.inner_width, "the overflow went unseen: {} vs {}", c.scroll_width, c.inner_width);
    assert_eq!(c.scripts, 2);
    assert!(!c.console.is_empty(), "the console error went unseen");
}

#[test]
fn fit_report_opens_offline_on_a_phone_and_prints() {
    let ids = check_in_browser(
        "fit",
        &["fit-actual", "fit-contrib", "fit-shares", "fit-roi", "fit-response", "fit-adstock", "fit-prior-0"],
        true,
    );
    // one prior-vs-posterior chart per channel of the demo (tv, search, social)
    assert_eq!(ids.iter().filter(|i| i.starts_with("fit-prior-")).count(), 3, "{ids:?}");
    // the tables behind the charts print: without the print stylesheet's rule and the helper script,
    // Chromium prints the closed details' summaries only, on fewer pages
    let (path, html) = outputs().report("fit");
    let with = print_pages(&path, "fit.print.html", &html);
    let stripped = html
        .replace(&format!("<script>{}</script>", mmloop_report::page::PRINT_SCRIPT), "")
        .replace("details::details-content { content-visibility: visible; display: contents; }", "");
    assert!(stripped.len() < html.len() - 100, "the print rules were not found to strip");
    let without = print_pages(&path, "fit.noprint.html", &stripped);
    assert!(
        with > without && without > 0,
        "printing shows no tables: {with} pages with the print rules, {without} without"
    );
}

#[test]
fn lift_report_opens_offline_on_a_phone() {
    check_in_browser(
        "lift",
        &["lift-estimates-0", "lift-path-0", "lift-effect-0", "lift-weights-0", "lift-placebo-0"],
        true,
    );
}

#[test]
fn lift_report_draws_the_per_period_band_of_lift_periods_csv() {
    let (_, html) = outputs().report("lift");
    let t = mmloop_data::Table::read(outputs().dir("lift").join("lift_periods.csv")).unwrap();
    let est = t.str_column("estimator").unwrap();
    let sc = |col: &str| -> Vec<Option<f64>> {
        let v = t.f64_column_opt(col).unwrap();
        (0..v.len()).filter(|&i| est[i] == "sc").map(|i| v[i]).collect()
    };
    // sc carries a band (one interval per test period, none before), did does not
    let (lower, upper) = (sc("effect_lower"), sc("effect_upper"));
    assert_eq!(lower.iter().filter(|v| v.is_some()).count(), 8, "{lower:?}");
    assert_eq!(table_cells(&html, "lift-effect-0", "sc lower"), lower);
    assert_eq!(table_cells(&html, "lift-effect-0", "sc upper"), upper);
    assert!(!html.contains("did lower") && html.contains("did has no per-period interval"));
}

#[test]
fn design_report_opens_offline_on_a_phone() {
    check_in_browser("design", &["design-power", "design-duration", "design-mde"], false);
}

#[test]
fn optimize_report_opens_offline_on_a_phone() {
    check_in_browser("optimize", &["opt-spend", "opt-outcomes", "opt-mroi", "opt-response"], false);
}

#[test]
fn rank_report_opens_offline_on_a_phone_and_escapes_a_hostile_name() {
    check_in_browser("rank", &["rank-2x2", "rank-portfolio"], false);
    let (_, html) = outputs().report("rank");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "the hostile test name is not shown escaped");
}

#[test]
fn ledger_report_opens_offline_on_a_phone() {
    check_in_browser(
        "ledger",
        &["ledger-experiments", "ledger-history", "ledger-calibration", "ledger-roi-0", "ledger-age", "ledger-decay"],
        false,
    );
    let (_, html) = outputs().report("ledger");
    // the one experiment: the lift readout's measurement, exactly
    let cal: Vec<mmloop_data::LiftTestRecord> =
        serde_json::from_slice(&std::fs::read(outputs().dir("lift").join("calibration.json")).unwrap()).unwrap();
    assert_eq!(table_column(&html, "ledger-history", "measured"), [cal[0].incremental_kpi]);
}

#[test]
fn scenario_report_opens_offline_on_a_phone() {
    check_in_browser("scenario", &["scn-outcome", "scn-roi"], false);
}

#[test]
fn loop_report_of_the_whole_directory_opens_offline_and_plots_the_readouts_and_the_truth() {
    let root = loop_root();
    // `loop --report` wrote it; `mmloop report DIR` writes the same page
    let (path, html) = report_of(&root.join("loop"), &root.join("loop-again.html"));
    assert_eq!(html, std::fs::read_to_string(root.join("loop.html")).unwrap());
    let ids = check_report(
        "loop",
        &path,
        &html,
        &[
            "loop-roi-0",
            "loop-roi-3",
            "loop-age",
            "loop-decay",
            "loop-readouts",
            "loop-spend",
            "loop-misalloc",
            "loop-roi-error",
            "loop-coverage",
            "ledger-experiments",
            "ledger-calibration",
            "last-2x2",
            "last-spend",
            "last-mroi",
            "last-roi",
        ],
        true,
    );
    // one ROI-over-cycles chart per channel of the demo world (tv, search, social, display)
    assert_eq!(ids.iter().filter(|i| i.starts_with("loop-roi-") && *i != "loop-roi-error").count(), 4, "{ids:?}");
    // the plotted figures are the files' figures
    let t = mmloop_data::Table::read(root.join("loop/trajectory.csv")).unwrap();
    assert_eq!(table_column(&html, "loop-misalloc", "misallocation cost"), t.f64_column("misallocation_cost").unwrap());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("loop/cycle-2/validation.json")).unwrap()).unwrap();
    let measured: Vec<f64> =
        v["predicted_before_calibrating"].as_array().unwrap().iter().map(|d| d["measured"].as_f64().unwrap()).collect();
    assert!(!measured.is_empty(), "the demo's second cycle read no experiment");
    assert_eq!(table_column(&html, "loop-readouts", "measured"), measured);
    // the decay curve is the loop's formula: σ²_eff / σ² = exp(ln 2 · age / half-life)
    let ev: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("loop/cycle-2/evidence.json")).unwrap()).unwrap();
    let search = ev.as_array().unwrap().iter().find(|e| e["channel"] == "search").unwrap();
    let (age, h) = (search["newest_age_weeks"].as_f64().unwrap(), search["half_life_weeks"].as_f64().unwrap());
    // (a channel without a readout has no inflation: "–")
    let plotted: Vec<f64> =
        table_cells(&html, "loop-decay", "variance inflation exp(λt)").into_iter().flatten().collect();
    let want = (std::f64::consts::LN_2 * age / h).exp();
    assert!(plotted.iter().any(|v| (v - want).abs() < 1e-12), "no inflation {want} in {plotted:?}");
    assert!(plotted.iter().any(|v| (v - search["variance_inflation"].as_f64().unwrap()).abs() < 1e-12));
    // the loop's ledger (DIR/ledger.sqlite): every experiment with its status, as the ledger holds it
    let ledger = mmloop_loop::ledger::Ledger::open(root.join("loop/ledger.sqlite")).unwrap();
    let exps = ledger.experiments().unwrap();
    let want: Vec<f64> = exps.iter().map(|e| e.id as f64).collect();
    assert_eq!(table_column(&html, "ledger-experiments", "experiment"), want);
    assert!(exps.iter().any(|e| e.status == mmloop_loop::ledger::Status::Planned), "the demo planned no test");
}

#[test]
fn loop_history_from_the_ledger_opens_offline_with_the_ledgers_numbers() {
    let root = loop_root();
    // a copy: the ledger report opens the file, and the loop's own directory stays as the loop wrote it
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("loop.sqlite");
    std::fs::copy(root.join("loop/ledger.sqlite"), &file).unwrap();
    let (path, html) = report_of(&file, &root.join("loop-ledger.html"));
    let ids = check_report(
        "loop-ledger",
        &path,
        &html,
        &[
            "ledger-experiments",
            "ledger-history",
            "ledger-calibration",
            "ledger-roi-0",
            "ledger-roi-3",
            "ledger-age",
            "ledger-decay",
        ],
        false,
    );
    // one ROI-over-fits chart per channel of the demo world (tv, search, social, display)
    assert_eq!(ids.iter().filter(|i| i.starts_with("ledger-roi-")).count(), 4, "{ids:?}");
    // the readouts and the fits' ROI are the ledger's
    let ledger = mmloop_loop::ledger::Ledger::open(&file).unwrap();
    let h = mmloop_loop::validate::history(&ledger).unwrap();
    assert!(!h.rows.is_empty(), "the demo's ledger has no predicted readout");
    assert_eq!(
        table_column(&html, "ledger-history", "measured"),
        h.rows.iter().map(|r| r.measured).collect::<Vec<_>>()
    );
    assert_eq!(table_column(&html, "ledger-calibration", "z"), h.rows.iter().map(|r| r.z).collect::<Vec<_>>());
    let fits = ledger.fits().unwrap();
    let tv: Vec<f64> = fits
        .iter()
        .map(|f| {
            let s = &f.fit.roi_summary;
            let roi =
                s.as_array().and_then(|a| a.iter().find(|c| c["name"] == "tv")).map(|c| &c["roi"]).unwrap_or(&s["tv"]);
            roi["mean"].as_f64().unwrap()
        })
        .collect();
    let plotted: Vec<f64> = table_cells(&html, "ledger-roi-0", "ROI mean").into_iter().flatten().collect();
    let mut dedup = plotted.clone();
    dedup.dedup();
    assert_eq!(dedup, tv, "tv's ROI per fit");
    // the same page from a directory that keeps the ledger as ledger.sqlite
    std::fs::copy(&file, d.path().join("ledger.sqlite")).unwrap();
    let (_, again) = report_of(d.path(), &root.join("loop-ledger-dir.html"));
    assert!(again.contains("id=\"ledger-decay\""));
}

#[test]
fn loop_report_of_one_cycle_shows_the_ranking_plan_budget_and_readouts() {
    let root = loop_root();
    let (path, html) = report_of(&root.join("loop/cycle-2"), &root.join("cycle-2.html"));
    check_report(
        "cycle",
        &path,
        &html,
        &["cycle-readouts", "cycle-2x2", "cycle-spend", "cycle-mroi", "cycle-roi"],
        false,
    );
    // every candidate of the ranking is in the 2×2
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("loop/cycle-2/ranking.json")).unwrap()).unwrap();
    let eig: Vec<f64> = r["candidates"].as_array().unwrap().iter().map(|c| c["eig"].as_f64().unwrap()).collect();
    let mut plotted = table_column(&html, "cycle-2x2", "EIG (nats)");
    let mut eig_sorted = eig.clone();
    plotted.sort_by(f64::total_cmp);
    eig_sorted.sort_by(f64::total_cmp);
    assert_eq!(plotted, eig_sorted);
    // the recommendation is budget.json's
    let b: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("loop/cycle-2/budget.json")).unwrap()).unwrap();
    let rec: Vec<f64> =
        b["channels"].as_array().unwrap().iter().map(|c| c["optimal_spend"].as_f64().unwrap()).collect();
    assert_eq!(table_column(&html, "cycle-spend", "recommended"), rec);
    // the first cycle has no readout and says so instead of drawing an empty chart
    let (_, first) = report_of(&root.join("loop/cycle-1"), &root.join("cycle-1.html"));
    assert!(first.contains("No new readout this cycle") && !first.contains("id=\"cycle-readouts\""));
}

#[test]
fn simulate_report_opens_offline_and_its_bands_are_the_simulators_quantiles() {
    let root = sim_root();
    let (path, html) = report_of(&root.join("sim"), &root.join("sim-again.html"));
    assert_eq!(html, std::fs::read_to_string(root.join("sim.html")).unwrap());
    check_report("simulate", &path, &html, &["sim-misalloc", "sim-efficiency", "sim-paired"], false);
    // the bands computed from results.csv equal summary.json's quantiles (the same function)
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("sim/summary.json")).unwrap()).unwrap();
    let per: Vec<&serde_json::Value> = s["per_arm_cycle"].as_array().unwrap().iter().collect();
    for (col, key) in [("median", "median"), ("p10", "p10"), ("p90", "p90")] {
        let want: Vec<f64> = per.iter().map(|x| x["misallocation_cost"][key].as_f64().unwrap_or(f64::NAN)).collect();
        assert_eq!(table_column(&html, "sim-misalloc", col), want, "{col}");
    }
    // the verdicts are there, in the simulator's words
    assert!(html.contains("Verdicts") && html.contains("no clear difference"), "no verdict lines");
}

#[test]
fn simulate_report_tolerates_new_columns_and_splits_by_scenario() {
    let root = sim_root();
    let d = tempfile::tempdir().unwrap();
    let sim = d.path().join("sim");
    copy_dir(&root.join("sim"), &sim);
    let csv = std::fs::read_to_string(sim.join("results.csv")).unwrap();
    // two scenarios in one file (the simulator writes one per run in its own `scenario` column,
    // which is replaced here), and a column the report does not know
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let own = header.iter().position(|h| *h == "scenario");
    let keep = |cells: Vec<&str>| -> Vec<String> {
        cells.iter().enumerate().filter(|(j, _)| Some(*j) != own).map(|(_, c)| c.to_string()).collect()
    };
    let mut out = format!("scenario,{},brand_new\n", keep(header.clone()).join(","));
    for (i, l) in lines.enumerate() {
        let cells = keep(l.split(',').collect());
        out.push_str(&format!("{},{},{i}\n", if i % 2 == 0 { "a" } else { "b" }, cells.join(",")));
    }
    std::fs::write(sim.join("results.csv"), out).unwrap();
    let (_, html) = report_of(&sim, &d.path().join("sim.html"));
    for id in ["sim-misalloc-0", "sim-misalloc-1", "sim-efficiency-1"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no chart {id}");
    }
}

// ---- the numbers ----------------------------------------------------------------------------------

/// The exact values (`data-value`) of column `col` in the table of chart `id`; every cell must hold one.
fn table_column(html: &str, id: &str, col: &str) -> Vec<f64> {
    table_cells(html, id, col)
        .into_iter()
        .map(|v| v.unwrap_or_else(|| panic!("{id}: a {col} cell without value")))
        .collect()
}

/// The exact values of column `col` in the table of chart `id`, `None` for a cell without a figure.
fn table_cells(html: &str, id: &str, col: &str) -> Vec<Option<f64>> {
    let start = html.find(&format!("<figure class=\"chart\" id=\"{id}\">")).unwrap_or_else(|| panic!("no chart {id}"));
    let fig = &html[start..start + html[start..].find("</figure>").unwrap()];
    let head = &fig[fig.find("<thead>").unwrap()..fig.find("</thead>").unwrap()];
    let cols: Vec<&str> = head.split("<th scope=\"col\">").skip(1).map(|c| &c[..c.find("</th>").unwrap()]).collect();
    let k = cols.iter().position(|c| *c == col).unwrap_or_else(|| panic!("{id}: no column {col:?} in {cols:?}"));
    let body = &fig[fig.find("<tbody>").unwrap()..];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            let cell = row.split("<td").nth(k + 1).unwrap();
            let v = cell.split("data-value=\"").nth(1)?;
            Some(v[..v.find('"').unwrap()].parse().unwrap())
        })
        .collect()
}

#[test]
fn fit_report_plots_the_fitted_series_of_contributions_csv_summed() {
    let o = outputs();
    let (_, html) = o.report("fit");
    let t = mmloop_data::Table::read(o.dir("fit").join("contributions.csv")).unwrap();
    let mut sum = t.f64_column("baseline").unwrap();
    for ch in ["tv", "search", "social"] {
        for (s, v) in sum.iter_mut().zip(t.f64_column(ch).unwrap()) {
            *s += v;
        }
    }
    let fitted = t.f64_column("fitted").unwrap();
    let plotted = table_column(&html, "fit-actual", "fitted");
    let stacked = table_column(&html, "fit-contrib", "sum (= fitted)");
    assert_eq!(plotted.len(), sum.len());
    assert_eq!(stacked.len(), sum.len());
    for i in 0..sum.len() {
        // the fitted mean is the mean over draws of (baseline + Σ contributions); the CSV holds each
        // term's own mean, so they agree up to floating-point summation order (~1e-12 relative)
        let tol = 1e-9 * sum[i].abs().max(1.0);
        assert!((plotted[i] - sum[i]).abs() < tol, "period {i}: plotted fitted {} vs CSV sum {}", plotted[i], sum[i]);
        assert!((stacked[i] - sum[i]).abs() < tol, "period {i}: stack top {} vs CSV sum {}", stacked[i], sum[i]);
        assert_eq!(plotted[i], fitted[i], "period {i}: the chart's fitted value is not the CSV's");
    }
    // and the band around it is the CSV's band
    assert_eq!(table_column(&html, "fit-actual", "fitted 5 %"), t.f64_column("fitted_q05").unwrap());
}

// ---- bad input and output safety ------------------------------------------------------------------

fn err(args: &[&str]) -> String {
    let o = mmloop(args);
    assert!(!o.status.success(), "mmloop {args:?} should have failed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_input_gets_an_error_naming_it() {
    let o = outputs();
    let d = tempfile::tempdir().unwrap();
    // a directory mmloop did not write
    let e = err(&["report", ROOT]);
    assert!(e.contains("not an mmloop output directory"), "{e}");
    // a missing file
    let lift = d.path().join("lift");
    copy_dir(&o.dir("lift"), &lift);
    std::fs::remove_file(lift.join("calibration.json")).unwrap();
    let e = err(&["report", &lift.display().to_string()]);
    assert!(e.contains("calibration.json") && e.contains("missing"), "{e}");
    // a truncated JSON
    let fit = d.path().join("fit");
    copy_dir(&o.dir("fit"), &fit);
    let s = std::fs::read(fit.join("summary.json")).unwrap();
    std::fs::write(fit.join("summary.json"), &s[..s.len() / 2]).unwrap();
    let e = err(&["report", &fit.display().to_string()]);
    assert!(e.contains("summary.json") && e.contains("EOF"), "{e}");
    // a truncated CSV row
    let design = d.path().join("design");
    copy_dir(&o.dir("design"), &design);
    let c = std::fs::read_to_string(design.join("candidates.csv")).unwrap();
    std::fs::write(design.join("candidates.csv"), format!("{c}1,x\n")).unwrap();
    let e = err(&["report", &design.display().to_string()]);
    assert!(e.contains("candidates.csv"), "{e}");
    assert!(!d.path().join("lift.html").exists() && !d.path().join("fit.html").exists(), "a failed report left a file");
}

#[test]
fn bad_loop_and_simulate_outputs_get_an_error_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    // a loop directory whose second cycle's state is truncated
    let lp = d.path().join("loop");
    copy_dir(&loop_root().join("loop"), &lp);
    let s = std::fs::read(lp.join("cycle-2/cycle.json")).unwrap();
    std::fs::write(lp.join("cycle-2/cycle.json"), &s[..s.len() / 2]).unwrap();
    let e = err(&["report", &lp.display().to_string()]);
    assert!(e.contains("cycle-2/cycle.json") && e.contains("EOF"), "{e}");
    // one cycle with a truncated validation.json
    let s = std::fs::read(lp.join("cycle-1/validation.json")).unwrap();
    std::fs::write(lp.join("cycle-1/validation.json"), &s[..s.len() / 2]).unwrap();
    let e = err(&["report", &lp.join("cycle-1").display().to_string()]);
    assert!(e.contains("cycle-1/validation.json") && e.contains("EOF"), "{e}");
    // a simulation without a needed column, and without its summary
    let sim = d.path().join("sim");
    copy_dir(&sim_root().join("sim"), &sim);
    let csv = std::fs::read_to_string(sim.join("results.csv")).unwrap();
    std::fs::write(sim.join("results.csv"), csv.replacen("misallocation_cost,", "misallocation,", 1)).unwrap();
    let e = err(&["report", &sim.display().to_string()]);
    assert!(e.contains("results.csv") && e.contains("misallocation_cost"), "{e}");
    std::fs::write(sim.join("results.csv"), csv).unwrap();
    std::fs::remove_file(sim.join("summary.json")).unwrap();
    let e = err(&["report", &sim.display().to_string()]);
    assert!(e.contains("summary.json") && e.contains("missing"), "{e}");
    assert!(!d.path().join("loop.html").exists() && !d.path().join("sim.html").exists(), "a failed report left a file");
}

#[test]
fn report_never_replaces_a_file_it_did_not_write_nor_writes_into_the_output() {
    let o = outputs();
    let d = tempfile::tempdir().unwrap();
    let mine = d.path().join("notes.html");
    std::fs::write(&mine, "<p>my notes</p>").unwrap();
    let dir = o.dir("scenario").display().to_string();
    let e = err(&["report", &dir, "--out", &mine.display().to_string()]);
    assert!(e.contains("not a report mmloop wrote"), "{e}");
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "<p>my notes</p>");
    let inside = o.dir("scenario").join("report.html");
    let e = err(&["report", &dir, "--out", &inside.display().to_string()]);
    assert!(e.contains("input"), "{e}");
    assert!(!inside.exists());
    // --report on a command without an output directory says so
    let e = err(&["ledger", &o.dir("ledger").display().to_string(), "list", "--report"]);
    assert!(e.contains("--report") && e.contains("has no HTML report"), "{e}");
    // an earlier report is replaced
    let out = d.path().join("r.html").display().to_string();
    ok(&["report", &dir, "--out", &out]);
    ok(&["report", &dir, "--out", &out]);
}
