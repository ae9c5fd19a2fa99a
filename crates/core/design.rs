//! `mmloop design`: choose test markets and length, with power, MDE and expected precision.

use anyhow::{Context, bail};
use mmloop_data::OutputDir;
use mmloop_geolift::design::{
    DesignEstimator, DesignInference, DesignRecord, PowerConfig, SearchSpec, TestType, candidates_csv,
    search_with_progress,
};
use mmloop_geolift::{Columns, OUTLIER_THRESHOLD, Panel};
use std::path::PathBuf;

/// Design a geo experiment: rank treated markets and test lengths by simulated power on history
/// (GeoLift's approach), report the minimum detectable effect, budget and expected precision.
#[derive(clap::Args, Debug)]
pub struct DesignArgs {
    #[command(flatten)]
    pub panel: crate::panel_args::PanelArgs,
    /// Spend column: reports the treated geos' current spend over the test length.
    #[arg(long)]
    pub spend: Option<String>,
    /// Number of treated geos per cell: N or A..B (inclusive).
    #[arg(long, default_value = "2..5")]
    pub n_treated: String,
    /// Test lengths in periods, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "14,21,28",
        value_parser = crate::panel_args::count,
        allow_hyphen_values = true
    )]
    pub duration: Vec<usize>,
    /// Geos every design must treat, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub include: Vec<String>,
    /// Geos never treated (they stay available as controls), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Relative effect sizes to simulate (negative for a go-dark test), comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        default_value = "0,0.025,0.05,0.075,0.1,0.125,0.15,0.2,0.25,0.3"
    )]
    pub effects: Vec<f64>,
    /// Assumed iROAS (> 0): reports the budget needed for the MDE.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::panel_args::real)]
    pub iroas: Option<f64>,
    /// Spend change over the test (> 0 for a heavy-up test, < 0 for a go-dark test): reports the
    /// detectable iROAS and the iROAS standard error.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::panel_args::real)]
    pub budget: Option<f64>,
    /// Number of disjoint test cells.
    #[arg(long, default_value_t = 1, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub cells: usize,
    /// Largest share of the total KPI the treated geos of a cell may hold.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub max_treated_share: f64,
    /// Estimator: sc (GeoLift) or did.
    #[arg(long, default_value = "sc")]
    pub estimator: String,
    /// Inference: conformal (GeoLift) or normal (t test on the pre-period gap; fast, exact for DiD).
    #[arg(long, default_value = "conformal")]
    pub inference: String,
    /// Permutations for the conformal p-value.
    #[arg(long, default_value_t = 1000, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub permutations: usize,
    /// Significance level (GeoLift's default 0.1).
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub alpha: f64,
    /// Power at which the MDE is read off.
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    pub power: f64,
    /// Rolling historical windows simulated per design.
    #[arg(long, default_value_t = 10, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub windows: usize,
    /// Periods between window ends.
    #[arg(long, default_value_t = 1, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub step: usize,
    /// Donor pre-screen for sc: each design's donors are the K geos most correlated with its treated
    /// average before the earliest simulated test (0 = every other geo).
    #[arg(long, default_value_t = 50, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub max_donors: usize,
    /// Most treated sets evaluated; a longer shortlist keeps the sets most correlated with the rest
    /// of the panel (0 = no limit).
    #[arg(long, default_value_t = 200, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub max_candidates: usize,
    /// Master seed.
    #[arg(long, default_value_t = 20210401)]
    pub seed: u64,
    /// Rows of the terminal table.
    #[arg(long, default_value_t = 10, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub top: usize,
    /// Channel(s) whose spend the test moves (recorded in design.json for the loop; repeatable).
    #[arg(long)]
    pub channel: Vec<String>,
    /// Planned first test period, in the data's time notation (recorded in design.json with each
    /// cell's planned end: start + duration − 1 periods).
    #[arg(long)]
    pub start: Option<String>,
    /// Output directory (design.json, candidates.csv).
    #[arg(long)]
    pub out: PathBuf,
}

/// Parses `N`, `A..B` or `A..=B` (both inclusive).
pub(crate) fn parse_range(s: &str) -> anyhow::Result<(usize, usize)> {
    let num =
        |x: &str| x.trim().parse::<usize>().with_context(|| format!("--n-treated: {s:?} is not N or A..B (e.g. 2..5)"));
    match s.split_once("..") {
        Some((a, b)) => Ok((num(a)?, num(b.trim_start_matches('='))?)),
        None => {
            let n = num(s)?;
            Ok((n, n))
        }
    }
}

fn fmt_pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:+.1}%", 100.0 * x)).unwrap_or_else(|| "not reached".into())
}

pub fn run(a: DesignArgs) -> anyhow::Result<()> {
    let (n_min, n_max) = parse_range(&a.n_treated)?;
    let estimator = match a.estimator.as_str() {
        "sc" => DesignEstimator::Sc { demean: true },
        "did" => DesignEstimator::DiD,
        o => bail!("--estimator: unknown estimator {o:?}; use sc or did"),
    };
    let inference = match a.inference.as_str() {
        "conformal" => DesignInference::Conformal { permutations: a.permutations },
        "normal" => DesignInference::Normal,
        o => bail!("--inference: unknown inference {o:?}; use conformal or normal"),
    };
    if let Some(r) = a.iroas
        && !(r.is_finite() && r > 0.0)
    {
        bail!(
            "--iroas {r}: an iROAS (incremental KPI per unit of spend) must be a positive number; for a go-dark test give the positive return the channel is believed to have, with negative --effects"
        );
    }
    if let Some(b) = a.budget {
        if !b.is_finite() || b == 0.0 {
            bail!("--budget {b}: the spend change over the test must be a finite non-zero number");
        }
        let go_dark = matches!(mmloop_geolift::design::select::test_type(&a.effects), Ok(TestType::GoDark));
        if b < 0.0 && !go_dark {
            bail!(
                "--budget {b}: a negative budget is a spend cut, but the --effects describe a heavy-up test (positive effects). Give a positive --budget, or negative --effects for a go-dark test"
            );
        }
        if b > 0.0 && go_dark {
            bail!(
                "--budget {b}: the --effects describe a go-dark test (negative effects), whose spend change is a cut: give it as a negative --budget"
            );
        }
    }
    let cols =
        Columns { time: a.panel.time, geo: a.panel.geo, kpi: a.panel.kpi, spend: a.spend.clone(), treatment: None };
    let panel = Panel::read(&a.panel.data, &cols)?;
    if let Some(s) = &a.start {
        mmloop_geolift::design::planned_start(&panel, s)?;
    }
    let warnings = panel.screen_outliers(OUTLIER_THRESHOLD);
    crate::panel_args::print_outliers("design", &warnings);
    let cfg = PowerConfig {
        estimator,
        inference,
        alpha: a.alpha,
        windows: a.windows,
        step: a.step,
        seed: a.seed,
        effects: a.effects,
        ..Default::default()
    };
    let spec = SearchSpec {
        n_min,
        n_max,
        durations: a.duration,
        include: a.include,
        exclude: a.exclude,
        cells: a.cells,
        max_treated_share: a.max_treated_share,
        target_power: a.power,
        max_donors: a.max_donors,
        max_candidates: a.max_candidates,
        ..Default::default()
    };
    eprintln!(
        "design: {} geos × {} periods from {}; {}..{} treated, durations {:?}, {} effects, {} windows",
        panel.geos.len(),
        panel.times.len(),
        panel.source,
        n_min,
        n_max,
        spec.durations,
        cfg.effects.len(),
        cfg.windows
    );
    let start = std::time::Instant::now();
    let bar = crate::panel_args::Bar::new();
    bar.stage("design: correlations and shortlist");
    let sel = search_with_progress(&panel, &spec, &cfg, &bar)?;
    bar.clear();
    sel.check_finite()?;
    eprintln!(
        "evaluated {} designs ({} treated sets) in {:.2} s",
        sel.candidates.len(),
        sel.n_shortlisted - sel.n_capped,
        start.elapsed().as_secs_f64()
    );
    if sel.n_capped > 0 {
        eprintln!(
            "note: {} of {} shortlisted treated sets were not evaluated (--max-candidates {}: the sets most correlated with the rest of the panel were kept)",
            sel.n_capped, sel.n_shortlisted, a.max_candidates
        );
    }
    if let Some(k) = sel.donor_screen {
        eprintln!(
            "note: donor pre-screen: each design's donors are the {k} geos most correlated with its treated average before the earliest simulated test (--max-donors)"
        );
    }
    let mut record = DesignRecord::new(&sel, &cfg, spec.target_power, a.iroas, a.budget);
    record.warnings = warnings;
    record.set_plan(a.channel.clone(), a.start.clone(), &panel)?;
    let out = OutputDir::create_for(&a.out, "design", &[&a.panel.data])?;
    out.write("design.json", &serde_json::to_vec_pretty(&record)?)?;
    out.write("candidates.csv", candidates_csv(&sel, &cfg, a.iroas, a.budget).as_bytes())?;
    let dir = out.commit()?;

    println!(
        "{:>4}  {:<48} {:>7} {:>12} {:>9} {:>9} {:>8} {:>7}",
        "rank", "treated", "periods", "MDE", "se(lift)", "lift@0", "scaledL2", "share"
    );
    for c in sel.candidates.iter().take(a.top) {
        let mut names = c.treated.join(", ");
        if names.chars().count() > 48 {
            names = names.chars().take(45).collect::<String>() + "...";
        }
        println!(
            "{:>4}  {:<48} {:>7} {:>12} {:>8.1}% {:>+8.1}% {:>8.3} {:>6.1}%",
            c.rank,
            names,
            c.duration,
            fmt_pct(c.mde),
            100.0 * c.curve.se_lift,
            100.0 * c.curve.lift_at_zero,
            c.curve.scaled_l2,
            100.0 * c.treated_share
        );
    }
    for cell in &record.cells {
        println!(
            "chosen{}: {} for {} periods — MDE {} at {:.0}% power (α = {}), incremental KPI needed {}",
            if record.cells.len() > 1 { format!(" cell {}", cell.rank) } else { String::new() },
            cell.treated.join(", "),
            cell.duration,
            fmt_pct(cell.mde),
            100.0 * spec.target_power,
            cfg.alpha,
            cell.mde_incremental.map(|m| format!("{m:.0}")).unwrap_or_else(|| "-".into())
        );
        if let Some(b) = cell.implied_budget {
            println!("  budget needed at iROAS {}: {b:.0}", a.iroas.unwrap_or_default());
        }
        if let (Some(r), Some(se)) = (cell.detectable_iroas, cell.se_iroas) {
            println!("  with budget {}: detectable iROAS {r:.3}, se(iROAS) {se:.3}", a.budget.unwrap_or_default());
        }
    }
    if let Some(spend) = &panel.spend {
        let first = &sel.cells[0];
        let idx: Vec<usize> = first.treated.iter().filter_map(|g| panel.geo_index(g).ok()).collect();
        let t = panel.times.len();
        let cur: f64 = idx.iter().map(|&g| (t - first.duration..t).map(|s| spend[[g, s]]).sum::<f64>()).sum();
        println!("  current spend of the chosen geos over the last {} periods: {cur:.0}", first.duration);
    }
    println!("wrote {}/design.json and candidates.csv", dir.display());
    Ok(())
}
