//! The fit directory: the one owner of its format, write ([`write_outputs`]) and read ([`FitDir`]).
//!
//! A fit's results are `summary.json`, CSV tables, the posterior draws as Parquet and the resolved
//! config, all staged in an [`OutputDir`] so a failure leaves nothing behind. `summary.json` is the
//! serialisation of [`FitSummary`] (its diagnostics typed as [`Diagnostics`]), `provenance.json`
//! that of [`FitProvenance`]; [`FitDir::open`] reads both back typed.
//!
//! | file | content |
//! |---|---|
//! | `summary.json` | `channels[]` (`name`, `spend`, `roi`, `mroi`, `cost_per_kpi`, `contribution`, `contribution_share`, each `{mean, sd, q05, q95}`), `fit`, `diagnostics`, `lift_tests`, `model` |
//! | `channels.csv` | one row per channel, the same figures flattened |
//! | `params.csv` | parameter summaries (constrained, scaled units) |
//! | `contributions.csv` | per period: actual, fitted, baseline, each channel's contribution with its 5 %/95 % band, then the fitted mean's 5 %/95 % band (`fitted_q05`, `fitted_q95`) |
//! | `response_curves.csv` | channel, multiplier, spend, response mean/sd/q05/q95 |
//! | `posterior.parquet` | one row per draw: `chain`, `draw`, then every parameter (constrained) |
//! | `posterior_unconstrained.parquet` | the same on the unconstrained scale (what a refit-free reload needs) |
//! | `sample_stats.parquet` | NUTS only: one row per kept draw: `chain`, `draw`, `divergent`, `tree_depth`, `max_depth_reached`, `n_steps`, `step_size`, `energy`, `logp`, `accept_stat` |
//! | `config.toml` | the resolved model spec |
//! | `provenance.json` | [`FitProvenance`]: SHA-256 of the data file, the config file, the saved config and the posterior files; the parameter names and draw count |
//! | `.mmloop-output` | the marker that lets a later `mmloop fit` replace this directory (see [`OutputDir`]) |
//!
//! The draw tables are in the (chain, draw, parameter) layout ArviZ reads: e.g.
//! `az.from_dict(posterior={p: df.pivot(index="chain", columns="draw", values=p).to_numpy() for p in params})`,
//! and the same for `sample_stats` (`diverging` = `divergent`).

use crate::analysis::{Analysis, ChannelSummary, FitMetrics, LiftCheck, Stat};
use crate::model::MmmModel;
use mmloop_data::{DataError, FileHash, OutputDir, hash_bytes, hash_file};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The name of the provenance record in a fit directory.
pub const PROVENANCE: &str = "provenance.json";
/// The name of the summary record in a fit directory.
pub const SUMMARY: &str = "summary.json";
/// The resolved model config saved with a fit.
pub const CONFIG: &str = "config.toml";
/// The unconstrained draws a reload rebuilds the posterior from.
pub const POSTERIOR_UNCONSTRAINED: &str = "posterior_unconstrained.parquet";
/// The constrained draws (what ArviZ reads).
pub const POSTERIOR: &str = "posterior.parquet";

/// `null` as NaN: `summary.json` writes a non-finite figure as `null` (JSON has no NaN), so a
/// reader maps it back to the NaN it was.
pub(crate) fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`null_as_nan`] for each element of a list.
fn nulls_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// The convergence and sampler figures of a fit (`summary.json` → `diagnostics`), tagged by
/// `method`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Diagnostics {
    Nuts(Box<NutsDiagnostics>),
    Laplace(LaplaceReport),
}

/// NUTS: the run-level convergence checks of `mmloop_inference::summary` (Vehtari et al. 2021
/// R-hat and ESS over the constrained parameters; the extreme value and the parameter it belongs
/// to) and the per-chain sampler figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NutsDiagnostics {
    pub chains: usize,
    pub draws_per_chain: usize,
    /// Largest R-hat (NaN when every R-hat is undefined).
    #[serde(deserialize_with = "null_as_nan")]
    pub max_rhat: f64,
    pub max_rhat_param: Option<String>,
    #[serde(deserialize_with = "null_as_nan")]
    pub min_ess_bulk: f64,
    pub min_ess_bulk_param: Option<String>,
    #[serde(deserialize_with = "null_as_nan")]
    pub min_ess_tail: f64,
    pub min_ess_tail_param: Option<String>,
    /// Divergent transitions after warm-up.
    pub divergences: usize,
    /// Transitions that stopped at the maximum tree depth.
    pub max_tree_depth_hits: usize,
    /// E-BFMI per chain.
    #[serde(deserialize_with = "nulls_as_nan")]
    pub e_bfmi: Vec<f64>,
    /// Plain-language problems, each saying what to try.
    pub warnings: Vec<String>,
    /// Adapted step size per chain.
    #[serde(default, deserialize_with = "nulls_as_nan")]
    pub step_size: Vec<f64>,
    /// Mean tree depth per kept draw, per chain.
    #[serde(default, deserialize_with = "nulls_as_nan")]
    pub mean_tree_depth: Vec<f64>,
    /// Mean leapfrog steps per kept draw (the cost of a draw), per chain.
    #[serde(default, deserialize_with = "nulls_as_nan")]
    pub mean_n_steps: Vec<f64>,
    /// Mean acceptance statistic per chain.
    #[serde(default, deserialize_with = "nulls_as_nan")]
    pub mean_accept_stat: Vec<f64>,
    /// Divergences during warm-up, per chain.
    #[serde(default)]
    pub warmup_divergences: Vec<usize>,
    /// Wall-clock seconds of warm-up and of sampling, per chain.
    #[serde(default, deserialize_with = "nulls_as_nan")]
    pub warmup_seconds: Vec<f64>,
    #[serde(default, deserialize_with = "nulls_as_nan")]
    pub sampling_seconds: Vec<f64>,
}

/// Laplace: the optimisation report (independent Gaussian draws, so R-hat and ESS say nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaplaceReport {
    /// Gaussian draws taken at the mode.
    pub draws: usize,
    #[serde(deserialize_with = "null_as_nan")]
    pub logp_at_mode: f64,
    /// `"converged/starts"`, e.g. `"2/2"`.
    pub starts_converged: String,
    /// Log density where each start ended (`None`: the start failed).
    pub start_logps: Vec<Option<f64>>,
    pub warnings: Vec<String>,
}

impl Diagnostics {
    /// The inference method these figures describe.
    pub fn method(&self) -> crate::spec::FitMethod {
        match self {
            Diagnostics::Nuts(_) => crate::spec::FitMethod::Nuts,
            Diagnostics::Laplace(_) => crate::spec::FitMethod::Laplace,
        }
    }

    /// Every warning, in plain language.
    pub fn warnings(&self) -> &[String] {
        match self {
            Diagnostics::Nuts(n) => &n.warnings,
            Diagnostics::Laplace(l) => &l.warnings,
        }
    }

    /// The NUTS figures, if this was a NUTS fit.
    pub fn nuts(&self) -> Option<&NutsDiagnostics> {
        match self {
            Diagnostics::Nuts(n) => Some(n),
            Diagnostics::Laplace(_) => None,
        }
    }

    /// As the JSON value `summary.json` holds (non-finite figures as `null`).
    pub fn to_json(&self) -> serde_json::Value {
        // a derived Serialize of plain numbers, strings and lists cannot fail
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl std::fmt::Display for Diagnostics {
    /// Compact JSON, as in `summary.json`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// `summary.json` → `model`: what was fitted, to what data, how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The data file as the config named it.
    pub data: String,
    /// `"nuts"` or `"laplace"`.
    pub method: String,
    pub seed: u64,
    pub geos: usize,
    pub periods: usize,
    pub holdout: usize,
    pub channels: Vec<String>,
    pub parameters: Vec<String>,
    pub draws: usize,
}

/// `summary.json` → `inputs`: the hashed input files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryInputs {
    pub data: FileHash,
    pub config: FileHash,
}

/// `summary.json`: the fit's headline figures. Written by [`write_outputs`], read by
/// [`FitDir::summary`]; keys are written in sorted order (the order `serde_json` maps keep).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    pub inputs: SummaryInputs,
    pub model: ModelInfo,
    /// `"revenue per unit of spend"` or `"KPI per unit of spend"`.
    pub roi_units: String,
    pub channels: Vec<ChannelSummary>,
    pub fit: FitMetrics,
    pub diagnostics: Diagnostics,
    pub lift_tests: Vec<LiftCheck>,
    pub n_draws: usize,
}

impl FitSummary {
    /// The summary of a fit as [`write_outputs`] writes it.
    pub fn new(analysis: &Analysis, diagnostics: &Diagnostics, model_info: &ModelInfo, inputs: &FitInputs) -> Self {
        FitSummary {
            inputs: SummaryInputs { data: inputs.data.clone(), config: inputs.config.clone() },
            model: model_info.clone(),
            roi_units: if analysis.roi_in_revenue { "revenue per unit of spend" } else { "KPI per unit of spend" }
                .to_string(),
            channels: analysis.channels.clone(),
            fit: analysis.fit.clone(),
            diagnostics: diagnostics.clone(),
            lift_tests: analysis.lift_tests.clone(),
            n_draws: analysis.n_draws,
        }
    }

    /// The `summary.json` text: pretty JSON with sorted keys, non-finite figures as `null`.
    pub fn to_json_text(&self) -> Result<String, serde_json::Error> {
        // through a `Value`, whose maps sort their keys: the byte layout `summary.json` always had
        serde_json::to_string_pretty(&serde_json::to_value(self)?)
    }
}

/// Why a fit directory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FitDirError {
    #[error("{dir}: not a fit directory ({missing} is missing); run `mmloop fit --out {dir}` first")]
    NotAFit { dir: PathBuf, missing: &'static str },
    #[error("{path}: cannot read the fit's provenance record: {message}; refit to write a new one")]
    Provenance { path: PathBuf, message: String },
    #[error("{path}: cannot read the fit's summary: {message}; refit to write a new one")]
    Summary { path: PathBuf, message: String },
}

/// A fit directory written by `mmloop fit`, opened for reading. [`FitDir::open`] checks that the
/// files a reload needs (`config.toml`, `posterior_unconstrained.parquet`) are there; the typed
/// records are read on demand, so a caller that needs only one of them does not fail on another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitDir {
    dir: PathBuf,
}

impl FitDir {
    /// `dir` as a fit directory: an error naming the first missing file a reload needs.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, FitDirError> {
        let dir = dir.as_ref().to_path_buf();
        for missing in [CONFIG, POSTERIOR_UNCONSTRAINED] {
            if !dir.join(missing).exists() {
                return Err(FitDirError::NotAFit { dir, missing });
            }
        }
        Ok(FitDir { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A file of the directory (one of [`SUMMARY`], [`CONFIG`], …).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `provenance.json`, or `None` when the fit predates it (written by an older mmloop).
    pub fn provenance(&self) -> Result<Option<FitProvenance>, FitDirError> {
        let path = self.file(PROVENANCE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FitDirError::Provenance { path, message: e.to_string() }),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| FitDirError::Provenance { path, message: e.to_string() })
    }

    /// `summary.json`, typed.
    pub fn summary(&self) -> Result<FitSummary, FitDirError> {
        let path = self.file(SUMMARY);
        let bytes =
            std::fs::read(&path).map_err(|e| FitDirError::Summary { path: path.clone(), message: e.to_string() })?;
        serde_json::from_slice(&bytes).map_err(|e| FitDirError::Summary { path, message: e.to_string() })
    }

    /// The fit's diagnostics (from `summary.json`).
    pub fn diagnostics(&self) -> Result<Diagnostics, FitDirError> {
        Ok(self.summary()?.diagnostics)
    }
}

/// The files a fit was computed from, hashed when they were read. The output directory may not
/// overlap them, and their hashes go into `provenance.json` so a reload can tell if they changed.
#[derive(Debug, Clone, PartialEq)]
pub struct FitInputs {
    /// The user's config file.
    pub config: FileHash,
    /// The data file the config names.
    pub data: FileHash,
    /// Further files the config reads (lift-test records): protected from the output, not hashed
    /// here (their records are copied into the saved config, whose hash covers them).
    pub others: Vec<PathBuf>,
}

/// `provenance.json`: what a fit was computed from and what it wrote, so that `optimize` and
/// `scenario` refuse to combine its posterior with changed inputs or a foreign draws file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitProvenance {
    /// Format version of this record (1).
    pub format: u32,
    pub data: FileHash,
    pub config: FileHash,
    /// SHA-256 of the `config.toml` saved in the fit directory.
    pub saved_config_sha256: String,
    /// The model's parameter names, in the order of the draw files' columns after `chain`, `draw`.
    pub parameters: Vec<String>,
    /// Rows of each draw file.
    pub n_draws: usize,
    /// SHA-256 of each draw file of the fit directory, by file name.
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// Posterior draws with their chain and draw indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Draws {
    /// Unconstrained draws in the model's sampling coordinates, one vector per draw.
    pub values: Vec<Vec<f64>>,
    /// The same draws' constrained parameter values in layout order, `constrained[i]` =
    /// [`MmmModel::constrain`]`(values[i])` (to rounding, see
    /// [`MmmModel::convert_point_constrained`]): taken once where the draws are made, since each
    /// conversion is a forward pass of the model, and read by everything that needs parameter
    /// values (the analysis, the optimiser's model, `posterior.parquet`). Whoever changes `values`
    /// recomputes these.
    pub constrained: Vec<Vec<f64>>,
    pub chain: Vec<usize>,
    pub draw: Vec<usize>,
}

impl Draws {
    /// Draws of `model` in its sampling coordinates, their constrained values computed here (in
    /// parallel, each draw on its own: the same values for any thread count).
    pub fn new(model: &MmmModel, values: Vec<Vec<f64>>, chain: Vec<usize>, draw: Vec<usize>) -> Draws {
        use rayon::prelude::*;
        let constrained = values.par_iter().map(|q| model.constrain(q)).collect();
        Draws { values, constrained, chain, draw }
    }
}

fn stat_cols(prefix: &str) -> String {
    format!("{prefix}_mean,{prefix}_sd,{prefix}_q05,{prefix}_q95")
}

fn stat_vals(s: &Stat) -> String {
    format!("{},{},{},{}", s.mean, s.sd, s.q05, s.q95)
}

/// CSV-quotes a field when needed.
fn q(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Writes every output file into `dir` atomically. `dir` must be new, empty, or an earlier fit
/// output, and may not overlap the inputs (see [`OutputDir::create_for`]).
#[allow(clippy::too_many_arguments)] // one argument per output: the call site names each
pub fn write_outputs(
    dir: &Path,
    model: &MmmModel,
    analysis: &Analysis,
    draws: &Draws,
    diagnostics: &Diagnostics,
    sample_stats: &[Vec<mmloop_inference::DrawStats>],
    model_info: &ModelInfo,
    config_toml: &str,
    inputs: &FitInputs,
) -> Result<PathBuf, OutputError> {
    write_outputs_with(dir, model, analysis, draws, diagnostics, sample_stats, model_info, config_toml, inputs, &[])
}

/// [`write_outputs`] plus further files (name, bytes) written into the same directory before it is
/// committed, so they appear together with the fit or not at all (`evidence.json` of `fit --ledger`).
#[allow(clippy::too_many_arguments)]
pub fn write_outputs_with(
    dir: &Path,
    model: &MmmModel,
    analysis: &Analysis,
    draws: &Draws,
    diagnostics: &Diagnostics,
    sample_stats: &[Vec<mmloop_inference::DrawStats>],
    model_info: &ModelInfo,
    config_toml: &str,
    inputs: &FitInputs,
    extra: &[(&str, Vec<u8>)],
) -> Result<PathBuf, OutputError> {
    let mut protected: Vec<&Path> = vec![&inputs.config.path, &inputs.data.path];
    protected.extend(inputs.others.iter().map(PathBuf::as_path));
    let out = OutputDir::create_for(dir, "fit", &protected)?;
    let text = FitSummary::new(analysis, diagnostics, model_info, inputs)
        .to_json_text()
        .map_err(|e| OutputError::Write { path: dir.join(SUMMARY), message: e.to_string() })?;
    out.write(SUMMARY, text.as_bytes())?;

    let mut s = format!(
        "channel,spend,{},{},{},{},{}\n",
        stat_cols("roi"),
        stat_cols("mroi"),
        stat_cols("cost_per_kpi"),
        stat_cols("contribution"),
        stat_cols("contribution_share")
    );
    for c in &analysis.channels {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{}",
            q(&c.name),
            c.spend,
            stat_vals(&c.roi),
            stat_vals(&c.mroi),
            stat_vals(&c.cost_per_kpi),
            stat_vals(&c.contribution),
            stat_vals(&c.contribution_share)
        );
    }
    out.write("channels.csv", s.as_bytes())?;

    let mut s = String::from("parameter,mean,sd,q05,q95\n");
    for p in &analysis.params {
        let _ = writeln!(s, "{},{}", q(&p.name), stat_vals(&p.stat));
    }
    out.write("params.csv", s.as_bytes())?;

    let names: Vec<String> = model.channels.iter().map(|c| q(&c.name)).collect();
    let mut s = String::from("time,holdout,actual,fitted,baseline");
    for n in &names {
        let _ = write!(s, ",{n},{n}_q05,{n}_q95");
    }
    // appended last, so readers of the older layout find every column where it was
    s.push_str(",fitted_q05,fitted_q95\n");
    for r in &analysis.periods {
        let _ = write!(s, "{},{},{},{},{}", q(&r.time), r.holdout, r.actual, r.fitted, r.baseline);
        for c in 0..names.len() {
            let _ = write!(s, ",{},{},{}", r.contributions[c], r.contributions_q05[c], r.contributions_q95[c]);
        }
        let _ = writeln!(s, ",{},{}", r.fitted_q05, r.fitted_q95);
    }
    out.write("contributions.csv", s.as_bytes())?;

    let mut s = String::from("channel,multiplier,spend,response_mean,response_sd,response_q05,response_q95\n");
    for rc in &analysis.response_curves {
        for p in &rc.points {
            let _ = writeln!(s, "{},{},{},{}", q(&rc.channel), p.multiplier, p.spend, stat_vals(&p.response));
        }
    }
    out.write("response_curves.csv", s.as_bytes())?;

    let mut files = BTreeMap::new();
    for (name, constrained) in [(POSTERIOR, true), (POSTERIOR_UNCONSTRAINED, false)] {
        write_draws(&out, name, model, draws, constrained)?;
        files.insert(name.to_string(), hash_file(out.path(name))?);
    }
    if !sample_stats.is_empty() {
        write_sample_stats(&out, sample_stats)?;
    }
    out.write(CONFIG, config_toml.as_bytes())?;
    let provenance = FitProvenance {
        format: 1,
        data: inputs.data.clone(),
        config: inputs.config.clone(),
        saved_config_sha256: hash_bytes(config_toml.as_bytes()),
        parameters: model.names(),
        n_draws: draws.values.len(),
        files,
    };
    let text = serde_json::to_string_pretty(&provenance)
        .map_err(|e| OutputError::Write { path: dir.join(PROVENANCE), message: e.to_string() })?;
    out.write(PROVENANCE, text.as_bytes())?;
    for (name, bytes) in extra {
        out.write(name, bytes)?;
    }
    Ok(out.commit()?)
}

fn write_draws(
    out: &OutputDir,
    name: &str,
    model: &MmmModel,
    draws: &Draws,
    constrained: bool,
) -> Result<(), OutputError> {
    let err = |e: PolarsError| OutputError::Write { path: out.target().join(name), message: e.to_string() };
    let n = draws.values.len();
    let mut cols: Vec<Column> = Vec::with_capacity(model.params.len() + 2);
    cols.push(Column::new("chain".into(), draws.chain.iter().map(|&c| c as u32).collect::<Vec<u32>>()));
    cols.push(Column::new("draw".into(), draws.draw.iter().map(|&c| c as u32).collect::<Vec<u32>>()));
    let values = if constrained { &draws.constrained } else { &draws.values };
    for (i, p) in model.params.iter().enumerate() {
        let v: Vec<f64> = values.iter().map(|d| d[i]).collect();
        cols.push(Column::new(p.name.as_str().into(), v));
    }
    let mut df = DataFrame::new(n, cols).map_err(err)?;
    let file = std::fs::File::create(out.path(name))
        .map_err(|e| OutputError::Write { path: out.target().join(name), message: e.to_string() })?;
    ParquetWriter::new(file).finish(&mut df).map_err(err)?;
    Ok(())
}

/// `sample_stats.parquet`: one row per kept NUTS draw, chains in order.
fn write_sample_stats(out: &OutputDir, stats: &[Vec<mmloop_inference::DrawStats>]) -> Result<(), OutputError> {
    let name = "sample_stats.parquet";
    let err = |e: PolarsError| OutputError::Write { path: out.target().join(name), message: e.to_string() };
    let rows: Vec<(u32, u32, &mmloop_inference::DrawStats)> = stats
        .iter()
        .enumerate()
        .flat_map(|(c, chain)| chain.iter().enumerate().map(move |(d, s)| (c as u32, d as u32, s)))
        .collect();
    let f64s = |f: fn(&mmloop_inference::DrawStats) -> f64| rows.iter().map(|r| f(r.2)).collect::<Vec<f64>>();
    let cols = vec![
        Column::new("chain".into(), rows.iter().map(|r| r.0).collect::<Vec<u32>>()),
        Column::new("draw".into(), rows.iter().map(|r| r.1).collect::<Vec<u32>>()),
        Column::new("divergent".into(), rows.iter().map(|r| r.2.divergent).collect::<Vec<bool>>()),
        Column::new("tree_depth".into(), rows.iter().map(|r| r.2.tree_depth as u32).collect::<Vec<u32>>()),
        Column::new("max_depth_reached".into(), rows.iter().map(|r| r.2.max_depth_reached).collect::<Vec<bool>>()),
        Column::new("n_steps".into(), rows.iter().map(|r| r.2.n_steps as u32).collect::<Vec<u32>>()),
        Column::new("step_size".into(), f64s(|s| s.step_size)),
        Column::new("energy".into(), f64s(|s| s.energy)),
        Column::new("logp".into(), f64s(|s| s.logp)),
        Column::new("accept_stat".into(), f64s(|s| s.accept_stat)),
    ];
    let mut df = DataFrame::new(rows.len(), cols).map_err(err)?;
    let file = std::fs::File::create(out.path(name))
        .map_err(|e| OutputError::Write { path: out.target().join(name), message: e.to_string() })?;
    ParquetWriter::new(file).finish(&mut df).map_err(err)?;
    Ok(())
}

/// Plain-language convergence report for the terminal: one line of figures, then every warning
/// (each says what to try). Empty for a Laplace fit (its optimisation report is in summary.json).
pub fn diagnostics_report(diagnostics: &Diagnostics) -> String {
    let Diagnostics::Nuts(d) = diagnostics else {
        return String::new();
    };
    let mut s = format!(
        "NUTS: {} chains × {} draws; max R-hat {:.3}, min bulk ESS {:.0}, min tail ESS {:.0}, {} divergences, {} max-tree-depth hits\n",
        d.chains, d.draws_per_chain, d.max_rhat, d.min_ess_bulk, d.min_ess_tail, d.divergences, d.max_tree_depth_hits
    );
    if d.warnings.is_empty() {
        s.push_str("no convergence problems found (R-hat ≤ 1.01, ESS ≥ 400, no divergences)\n");
    }
    for w in &d.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

/// A readable terminal table of the channel figures and fit metrics.
pub fn summary_table(analysis: &Analysis) -> String {
    use mmloop_data::human::{amount, count, number, percent};
    let mut s = String::new();
    let unit = if analysis.roi_in_revenue { "revenue/spend" } else { "KPI/spend" };
    let _ = writeln!(
        s,
        "{:<16} {:>12} {:>24} {:>24} {:>18}",
        "channel",
        "spend",
        format!("ROI ({unit}) [90%]"),
        "mROI [90%]",
        "share of KPI ± sd"
    );
    let interval = |m: f64, lo: f64, hi: f64| format!("{} [{}, {}]", number(m), number(lo), number(hi));
    for c in &analysis.channels {
        let _ = writeln!(
            s,
            "{:<16} {:>12} {:>24} {:>24} {:>18}",
            c.name,
            amount(c.spend),
            interval(c.roi.mean, c.roi.q05, c.roi.q95),
            interval(c.mroi.mean, c.mroi.q05, c.mroi.q95),
            format!("{} ± {}", percent(c.contribution_share.mean), percent(c.contribution_share.sd))
        );
    }
    let metrics = |m: &crate::analysis::Metrics| {
        format!("R² {}  MAPE {}  NRMSE {}", number(m.r2), percent(m.mape), number(m.nrmse))
    };
    let m = &analysis.fit.in_sample;
    let _ = writeln!(s, "fit (in-sample, {}): {}", count(m.n, "cell"), metrics(m));
    if let Some(h) = &analysis.fit.holdout {
        let _ = writeln!(s, "fit (holdout, {}):   {}", count(h.n, "cell"), metrics(h));
    }
    for l in &analysis.lift_tests {
        let _ = writeln!(
            s,
            "lift test {}: measured {} ± {}, model {} [90% {}, {}]",
            l.index,
            amount(l.observed),
            amount(l.standard_error),
            amount(l.implied.mean),
            amount(l.implied.q05),
            amount(l.implied.q95)
        );
    }
    s
}
