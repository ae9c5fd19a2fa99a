//! `mmloop rank`: which tests to run next — every candidate test with EIG, EVOI, EVPI, cost, net
//! value and its place in the 2×2, and the portfolio for this cycle.

use anyhow::{Context, bail};
use mmloop_data::OutputDir;
use mmloop_geolift::{Columns, Panel};
use mmloop_loop::ledger::Ledger;
use mmloop_loop::rank::{
    CandidateOptions, CandidateSpec, Change, DesignOptions, RankSettings, StatedPrecision, build_candidates,
    portfolio_table, quadrant_table, rank, ranking_csv, ranking_table,
};
use mmloop_loop::value::{EvoiSettings, PortfolioConstraints, Thresholds};
use std::path::{Path, PathBuf};

/// Rank candidate experiments on a fitted posterior: expected information gain, expected value of
/// (sample and perfect) information in money, cost, the 2×2, and a portfolio of tests for this cycle.
#[derive(clap::Args, Debug)]
pub struct RankArgs {
    /// A fit directory written by `mmloop fit`.
    #[arg(long)]
    pub fit: PathBuf,
    /// Regional panel (CSV or Parquet, one row per time × geo) in the model's KPI units — usually the
    /// model's own data file. Candidates then come from a geo design on it; without it, national
    /// tests at a stated precision (--relative-se-go-dark, --relative-se-heavy-up).
    #[arg(long)]
    pub panel: Option<PathBuf>,
    /// The panel's time column (default: the model's).
    #[arg(long, requires = "panel")]
    pub time: Option<String>,
    /// The panel's geo column (default: the model's).
    #[arg(long, requires = "panel")]
    pub geo: Option<String>,
    /// The panel's KPI column (default: the model's; it must be the KPI the model was fitted on).
    #[arg(long, requires = "panel")]
    pub kpi: Option<String>,
    /// Experiment ledger: channels with readouts are flagged, stale ones get a re-test candidate.
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Budget over the planning horizon that a readout could re-allocate (default: the spend of the
    /// last --horizon periods).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::panel_args::real)]
    pub budget: Option<f64>,
    /// Planning horizon in periods: EVOI is the value of re-optimising the budget over it.
    #[arg(long, default_value_t = 13, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub horizon: usize,
    /// Each channel may move this share of its current spend either way (as `mmloop optimize`).
    #[arg(long, default_value_t = 0.3, allow_negative_numbers = true, value_parser = crate::panel_args::real)]
    pub relative: f64,
    /// Objective of the budget decision. EVOI is defined for the expected outcome: `mean` only.
    #[arg(long, default_value = "mean")]
    pub objective: String,
    /// Money per KPI unit (default: the model's revenue per KPI, else 1 — the KPI is money).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::panel_args::real)]
    pub value_per_kpi: Option<f64>,
    /// Most tests in the portfolio of this cycle.
    #[arg(long, default_value_t = 3, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub max_tests: usize,
    /// Largest total cost of the portfolio's tests (money).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::panel_args::real)]
    pub test_budget: Option<f64>,
    /// The portfolio's materiality floor as a share of the decision's EVPI (0 to below 1): a test is
    /// picked only if its marginal net value beats this floor by more than 2 Monte-Carlo errors.
    #[arg(
        long,
        default_value_t = mmloop_loop::rank::DEFAULT_MATERIALITY,
        allow_negative_numbers = true,
        value_parser = crate::panel_args::real
    )]
    pub materiality: f64,
    /// Channels to test, comma separated; join channels moved together with `+` (tv+search).
    /// Default: every channel alone.
    #[arg(long, value_delimiter = ',')]
    pub channels: Vec<String>,
    /// Test lengths in periods (the design search's, or the national tests').
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "4,8",
        value_parser = crate::panel_args::count,
        allow_hyphen_values = true
    )]
    pub durations: Vec<usize>,
    /// Treated geos per design: N or A..B (with --panel).
    #[arg(long, default_value = "2..3")]
    pub n_treated: String,
    /// How many of the design search's best designs become candidates (with --panel).
    #[arg(long, default_value_t = 4, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub designs: usize,
    /// Rolling historical windows simulated per design (with --panel).
    #[arg(long, default_value_t = 10, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub windows: usize,
    /// Heavy-up media multipliers, comma separated (1.5 = +50 %).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1.5",
        allow_negative_numbers = true,
        value_parser = crate::panel_args::real
    )]
    pub heavy_up: Vec<f64>,
    /// No heavy-up candidates.
    #[arg(long)]
    pub no_heavy_up: bool,
    /// No go-dark candidates.
    #[arg(long)]
    pub no_go_dark: bool,
    /// Test starts, in periods after the data's last period (0 = the next period), comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0",
        value_parser = crate::panel_args::count,
        allow_hyphen_values = true
    )]
    pub starts: Vec<usize>,
    /// Without a panel: a go-dark readout's standard error as a share of the window's KPI.
    #[arg(long, default_value_t = 0.02, allow_negative_numbers = true, value_parser = crate::panel_args::real)]
    pub relative_se_go_dark: f64,
    /// Without a panel: a heavy-up readout's standard error as a share of the window's KPI.
    #[arg(long, default_value_t = 0.02, allow_negative_numbers = true, value_parser = crate::panel_args::real)]
    pub relative_se_heavy_up: f64,
    /// Simulated readouts per EVOI (each re-optimises the budget over the draws used).
    #[arg(long, default_value_t = 200, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub readouts: usize,
    /// Draws at which EVPI's per-draw optimum is computed.
    #[arg(long, default_value_t = 500, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub evpi_draws: usize,
    /// EIG (nats) at or above which a test is informative (default ½·ln 2: the readout halves the
    /// posterior variance of its implied lift).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::panel_args::real)]
    pub eig_target: Option<f64>,
    /// The portfolio chooses among this many candidates of largest net value.
    #[arg(long, default_value_t = 10, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub pool: usize,
    /// Rank on at most this many posterior draws, evenly spaced (0 = every draw): each EVOI
    /// re-optimises the budget once per simulated readout over them.
    #[arg(long, default_value_t = 500, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub draws: usize,
    /// Response curves at the long-run adstock level (faster; as `mmloop optimize --steady-state`).
    #[arg(long)]
    pub steady_state: bool,
    /// Master seed of the simulated readouts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows of the terminal table.
    #[arg(long, default_value_t = 15, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub top: usize,
    /// Output directory (ranking.json, ranking.csv, portfolio.json): new, empty, or an earlier
    /// `mmloop rank` output; never the fit directory or another input.
    #[arg(long)]
    pub out: PathBuf,
}

fn settings(a: &RankArgs) -> anyhow::Result<(CandidateOptions, RankSettings)> {
    if a.objective.trim() != "mean" {
        bail!(
            "--objective {:?}: the value of information is defined for the expected outcome; use --objective mean \
             (risk-averse objectives are for `mmloop optimize`)",
            a.objective
        );
    }
    let (n_min, n_max) = crate::design::parse_range(&a.n_treated)?;
    let mut changes = Vec::new();
    if !a.no_go_dark {
        changes.push(Change::Multiplier(0.0));
    }
    if !a.no_heavy_up {
        for &m in &a.heavy_up {
            if m.is_nan() || m <= 1.0 {
                bail!("--heavy-up {m}: a heavy-up multiplies the channel's media by more than 1 (1.5 = +50 %)");
            }
            changes.push(Change::Multiplier(m));
        }
    }
    if changes.is_empty() {
        bail!("--no-go-dark and --no-heavy-up together leave no test to rank; drop one of them");
    }
    let channels: Vec<Vec<String>> =
        a.channels.iter().map(|s| s.split('+').map(|c| c.trim().to_string()).collect()).collect();
    let spec = CandidateSpec {
        channels,
        changes,
        starts: a.starts.clone(),
        designs: a.designs,
        durations: a.durations.clone(),
        ..Default::default()
    };
    let design =
        DesignOptions { n_min, n_max, durations: a.durations.clone(), windows: a.windows, ..Default::default() };
    let precision =
        StatedPrecision { go_dark: a.relative_se_go_dark, heavy_up: a.relative_se_heavy_up, ..Default::default() };
    let mut thresholds = Thresholds::default();
    if let Some(t) = a.eig_target {
        thresholds.eig_target_nats = t;
    }
    let rank_settings = RankSettings {
        horizon: a.horizon,
        budget: a.budget,
        relative: a.relative,
        value_per_kpi: a.value_per_kpi,
        constraints: PortfolioConstraints { max_tests: a.max_tests, test_budget: a.test_budget, ..Default::default() },
        materiality: a.materiality,
        portfolio_pool: a.pool,
        thresholds,
        evoi: EvoiSettings { n_readouts: a.readouts, seed: a.seed, ..Default::default() },
        evpi_draws: a.evpi_draws,
        max_draws: (a.draws > 0).then_some(a.draws),
        steady_state: a.steady_state,
        ..Default::default()
    };
    rank_settings.validate()?;
    precision.validate()?;
    Ok((CandidateOptions { spec, design, precision }, rank_settings))
}

/// Shell-quotes a word when it needs it.
fn sh(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./,:=+@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn run(a: RankArgs) -> anyhow::Result<()> {
    let (options, rank_settings) = settings(&a)?;
    let mut inputs: Vec<&Path> = vec![&a.fit];
    inputs.extend(a.panel.as_deref());
    inputs.extend(a.ledger.as_deref());
    OutputDir::check(&a.out, "rank", &inputs)?;
    let fit = crate::optimize::load_fit(&a.fit)?;
    let data_path = fit.spec.data.path.clone();
    let panel = match &a.panel {
        Some(p) => {
            let d = &fit.spec.data;
            let cols = Columns {
                time: a.time.clone().unwrap_or_else(|| d.time_column.clone()),
                geo: a.geo.clone().or_else(|| d.geo_column.clone()).unwrap_or_else(|| "geo".into()),
                kpi: a.kpi.clone().unwrap_or_else(|| d.kpi_column.clone()),
                spend: None,
                treatment: None,
            };
            Some(Panel::read(p, &cols).with_context(|| format!("--panel {}", p.display()))?)
        }
        None => None,
    };
    let ledger = match &a.ledger {
        Some(p) => Some(Ledger::open(p).with_context(|| format!("--ledger {}", p.display()))?),
        None => None,
    };
    let bar = crate::panel_args::Bar::new();
    let started = std::time::Instant::now();
    if panel.is_some() {
        bar.stage("rank: designing candidate tests on the panel");
    }
    let set = build_candidates(&fit, panel.as_ref(), ledger.as_ref(), &options, &bar)?;
    bar.clear();
    for n in &set.notes {
        eprintln!("note: {n}");
    }
    eprintln!(
        "rank: {} candidate tests ({}), {} of {} posterior draws, {} readouts per EVOI …",
        set.candidates.len(),
        if panel.is_some() { "geo designs on the panel" } else { "national, stated precision" },
        rank_settings.max_draws.unwrap_or(usize::MAX).min(fit.draws.len()),
        fit.draws.len(),
        rank_settings.evoi.n_readouts
    );
    let ranking = rank(&fit, &set.candidates, &rank_settings, &bar)?;
    bar.clear();
    for n in &ranking.notes {
        eprintln!("note: {n}");
    }
    let mut json = serde_json::to_value(&ranking)?;
    if let (Some(obj), Some(sel)) = (json.as_object_mut(), &set.selection) {
        obj.insert(
            "design".into(),
            serde_json::json!({
                "n_shortlisted": sel.n_shortlisted,
                "n_evaluated": sel.candidates.len(),
                "test_type_searched": sel.test_type,
                "note": "sigma = se_lift × baseline_kpi of each design (synthetic control, rolling historical windows)",
            }),
        );
    }
    if let Some(obj) = json.as_object_mut() {
        obj.insert("candidate_notes".into(), serde_json::to_value(&set.notes)?);
    }
    let mut protected = inputs.clone();
    protected.push(&data_path);
    let out = OutputDir::create_for(&a.out, "rank", &protected)?;
    out.write("ranking.json", &serde_json::to_vec_pretty(&json)?)?;
    out.write("ranking.csv", ranking_csv(&ranking).as_bytes())?;
    out.write("portfolio.json", &serde_json::to_vec_pretty(&ranking.portfolio)?)?;
    let dir = out.commit()?;

    println!();
    print!("{}", ranking_table(&ranking, a.top));
    println!();
    print!("{}", quadrant_table(&ranking));
    println!();
    print!("{}", portfolio_table(&ranking));
    eprintln!("ranked in {:.1} s", started.elapsed().as_secs_f64());
    println!("\nwrote {}:", dir.display());
    for f in ["ranking.json", "ranking.csv", "portfolio.json"] {
        println!("  {}", dir.join(f).display());
    }
    // the natural next step: design the first pick in detail
    if let Some(pick) = ranking.portfolio.greedy.picks.first() {
        let c = &ranking.candidates[pick.candidate];
        let mut cmd = String::from("mmloop design");
        match &a.panel {
            Some(p) if !c.geos.is_empty() => {
                let d = &fit.spec.data;
                cmd += &format!(" --data {}", sh(&p.display().to_string()));
                cmd += &format!(" --time {}", sh(a.time.as_deref().unwrap_or(&d.time_column)));
                cmd += &format!(" --geo {}", sh(a.geo.as_deref().or(d.geo_column.as_deref()).unwrap_or("geo")));
                cmd += &format!(" --kpi {}", sh(a.kpi.as_deref().unwrap_or(&d.kpi_column)));
                cmd += &format!(" --include {} --n-treated {}", sh(&c.geos.join(",")), c.geos.len());
                cmd += &format!(" --duration {}", c.duration);
                if c.test_type == "go-dark" {
                    cmd += " --effects=-0.3,-0.2,-0.15,-0.1,-0.05,0";
                }
                for ch in &c.channels {
                    cmd += &format!(" --channel {}", sh(ch));
                }
                cmd += &format!(" --start {} --out {}", sh(&c.start), sh(&format!("design_{}", c.channels.join("_"))));
                println!("next: design the first pick in detail (its power, MDE and budget):\n  {cmd}");
            }
            _ => {
                println!(
                    "next: run the first pick, {}, from {} to {}; read it out with `mmloop lift` and add it to the \
                     ledger (`mmloop ledger FILE add calibration.json`)",
                    c.name, c.start, c.end
                );
            }
        }
    } else {
        println!("next: no test pays for itself this cycle; refit when new data arrive and rank again");
    }
    Ok(())
}
