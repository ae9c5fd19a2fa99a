//! `mmloop fit`: config → data → posterior → analysis → output directory, with a summary table.

use anyhow::Context;
use mmloop_mmm::config::{FitOverrides, apply_overrides, load_config, to_toml};
use mmloop_mmm::spec::FitMethod;
use std::path::{Path, PathBuf};

/// Fit a marketing-mix model and write its posterior and analysis.
#[derive(clap::Args, Debug)]
pub struct FitArgs {
    /// The model's TOML config (see examples/).
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory: new, empty, or an earlier `mmloop fit` output (replaced atomically; nothing
    /// is written on failure). May not be or hold the config or data file.
    #[arg(long)]
    pub out: PathBuf,
    /// Fitting method: `laplace` or `nuts` (default: the config's `[fit] method`).
    #[arg(long)]
    pub method: Option<String>,
    /// Random seed (default: the config's `[fit] seed`).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// No progress bar (none is drawn when stderr is not a terminal either).
    #[arg(long)]
    pub quiet: bool,
}

/// The lift-test files named in the config's `[calibration] lift_tests` (a path or a list),
/// relative to the config's folder: inputs the output directory may not overlap. Their records are
/// copied into the saved config, so its hash covers their contents.
fn lift_test_files(config: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(config) else { return Vec::new() };
    let Ok(table) = text.parse::<toml::Table>() else { return Vec::new() };
    let base = config.parent().unwrap_or(Path::new(""));
    let entries = match table.get("calibration").and_then(|c| c.get("lift_tests")) {
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    };
    entries.into_iter().map(|p| base.join(p)).collect()
}

pub fn run(args: FitArgs) -> anyhow::Result<()> {
    let method = match &args.method {
        Some(m) => Some(m.parse::<FitMethod>().map_err(anyhow::Error::msg).context("--method")?),
        None => None,
    };
    let mut spec = load_config(&args.config)?;
    apply_overrides(&mut spec, &FitOverrides { method, seed: args.seed });
    // refuse an unusable --out now, not after the fit
    let lift_files = lift_test_files(&args.config);
    let mut protected: Vec<&Path> = vec![&args.config, &spec.data.path];
    protected.extend(lift_files.iter().map(PathBuf::as_path));
    mmloop_data::OutputDir::check(&args.out, "fit", &protected)?;
    let config_hash = mmloop_data::FileHash::of(&args.config)?;
    let data = mmloop_mmm::Dataset::load(&spec)?;
    // hashed right after reading, so the record describes the data the model saw
    let inputs = mmloop_mmm::output::FitInputs {
        config: config_hash,
        data: mmloop_data::FileHash::of(&spec.data.path)?,
        others: lift_files,
    };
    eprintln!(
        "fitting {} ({} geos × {} periods, {} channels) by {} …",
        args.config.display(),
        data.n_geos(),
        data.n_times(),
        data.n_channels(),
        spec.fit.method
    );
    let options = mmloop_mmm::fit::FitOptions { quiet: args.quiet, ..Default::default() };
    let result = mmloop_mmm::fit::fit_with(&spec, &data, options)?;
    let analysis = mmloop_mmm::fit::analyse_checked(&result, &data)?;
    let info = mmloop_mmm::fit::model_info(&spec, &data, &result);
    // the saved config names the data by its absolute path, so the fit reloads from anywhere
    let mut saved = spec.clone();
    if let Ok(p) = std::fs::canonicalize(&saved.data.path) {
        saved.data.path = p;
    }
    let dir = mmloop_mmm::output::write_outputs(
        &args.out,
        &result.model,
        &analysis,
        &result.draws,
        &result.diagnostics,
        &result.sample_stats,
        &info,
        &to_toml(&saved),
        &inputs,
    )?;
    print!("{}", mmloop_mmm::output::summary_table(&analysis));
    eprint!("{}", mmloop_mmm::output::diagnostics_report(&result.diagnostics));
    eprintln!("wrote {}", dir.display());
    Ok(())
}
