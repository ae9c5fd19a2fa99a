//! `mmloop ledger FILE ...`: see and curate the experiment ledger. Thin: the logic is in
//! `mmloop_loop::ledger`.

use anyhow::{Context, bail};
use mmloop_loop::decay::{HalfLives, TimeUnit};
use mmloop_loop::ledger::{self, Ledger};
use mmloop_loop::validate;
use std::path::{Path, PathBuf};

/// See and curate the experiment ledger (an SQLite file): list, show, add readouts, discard, export;
/// check fits against the tests (predict, check-fit, history).
#[derive(clap::Args, Debug)]
pub struct LedgerArgs {
    /// The ledger file (created by `add` when it does not exist).
    pub file: PathBuf,
    #[command(subcommand)]
    pub command: LedgerCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum LedgerCommand {
    /// List every experiment (and the recorded fits).
    List,
    /// Show one experiment in full.
    Show {
        /// Experiment id (from `list`).
        #[arg(allow_hyphen_values = true)]
        id: i64,
    },
    /// Record the readouts of a calibration.json (as written by `mmloop lift`).
    Add {
        /// The calibration JSON file: one record or a list of records.
        calibration: PathBuf,
    },
    /// Mark an experiment as discarded: it stays in the ledger but no longer calibrates fits.
    Discard {
        /// Experiment id (from `list`).
        #[arg(allow_hyphen_values = true)]
        id: i64,
        /// Why it is discarded (required).
        #[arg(long, required = true)]
        why: String,
    },
    /// How old each readout is and how much it still weighs: SE_eff = SE·exp(λ·age/2), λ = ln2/half-life.
    Evidence {
        /// The fit's last period or a date to age the readouts to, in the data's time notation.
        #[arg(long)]
        as_of: String,
        /// Unit of a numeric time column: weeks or days (ISO dates are always subtracted in days).
        #[arg(long, default_value = "weeks")]
        time_unit: String,
        /// Half-life override CHANNEL=WEEKS (repeatable); defaults by channel class: search, display,
        /// digital 26, social 39, TV, video, radio, OOH, print 52.
        #[arg(long)]
        half_life: Vec<String>,
    },
    /// Check the whole file: SQLite's integrity check and the foreign keys.
    Check,
    /// What a fit predicts for every read experiment not predicted yet (recorded with the fit; a
    /// fit already calibrated on a readout predicts it in-sample and is labelled so).
    Predict {
        /// The fit directory (`mmloop fit --out DIR`).
        #[arg(long)]
        fit: PathBuf,
        /// |z| beyond which a readout and its prediction are flagged.
        #[arg(long, default_value_t = mmloop_loop::validate::DEFAULT_THRESHOLD, allow_hyphen_values = true)]
        threshold: f64,
    },
    /// Check a (calibrated) fit against every read experiment: discrepancy z, and the posterior
    /// predictive p-value of its lift term (p < 0.05: the fit strains against the test).
    CheckFit {
        /// The fit directory (`mmloop fit --out DIR`).
        #[arg(long)]
        fit: PathBuf,
        /// |z| beyond which a readout and the fit's implied lift are flagged.
        #[arg(long, default_value_t = mmloop_loop::validate::DEFAULT_THRESHOLD, allow_hyphen_values = true)]
        threshold: f64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A remedy to try when a fit strains against a test: writes a copy of CONFIG in which the
    /// experiment's readout is the channel's ROI prior (its lift term removed). Refit with it and
    /// run check-fit to see the effect.
    Anchor {
        /// Experiment id (from `list`): a read one-channel test with a spend change.
        #[arg(allow_hyphen_values = true)]
        id: i64,
        /// The model config to anchor.
        #[arg(long)]
        config: PathBuf,
        /// The anchored config to write (a new file; written atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Predicted vs measured for every read test, oldest readout first: coverage of the 90 %
    /// prediction intervals and mean |z|, so you see whether the model predicts experiments better.
    History {
        /// table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
        /// Output file (written atomically); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Export: JSON = the read-out calibration records (loadable by `fit`); CSV = every experiment.
    Export {
        /// csv or json.
        #[arg(long, default_value = "json")]
        format: String,
        /// Output file (written atomically); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(args: LedgerArgs) -> anyhow::Result<()> {
    let file = &args.file;
    match args.command {
        LedgerCommand::List => {
            let l = Ledger::open(file)?;
            print!("{}", ledger::format_list(&l.experiments()?, &l.fits()?));
        }
        LedgerCommand::Show { id } => {
            let l = Ledger::open(file)?;
            let e = l.experiment(id)?;
            print!("{}", ledger::format_experiment(&e, &l.predictions_for(id)?));
            // each prediction against the readout, labelled in- or out-of-sample
            if let Some(r) = &e.readout {
                for row in l.all_predictions()?.iter().filter(|p| p.prediction.experiment_id == id) {
                    let d = validate::discrepancy(
                        Some(id),
                        &r.record,
                        &row.prediction,
                        row.in_sample,
                        validate::Threshold::default(),
                    )?;
                    println!("fit {}: {}", row.prediction.fit_id, d.describe("KPI"));
                }
            }
        }
        LedgerCommand::Add { calibration } => {
            let mut l = Ledger::open_or_create(file)?;
            let ids = l.add_calibration_file(&calibration)?;
            let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            println!(
                "added {} from {} as {} {}",
                mmloop_data::human::count(ids.len(), "readout"),
                calibration.display(),
                if ids.len() == 1 { "experiment" } else { "experiments" },
                list.join(", ")
            );
            for id in &ids {
                if l.experiment(*id)?.channels.is_empty() {
                    eprintln!(
                        "warning: experiment {id} names no channel; a fit cannot calibrate on it (rerun `mmloop lift` with --channel)"
                    );
                }
            }
        }
        LedgerCommand::Discard { id, why } => {
            let mut l = Ledger::open(file)?;
            l.discard(id, &why)?;
            println!("experiment {id} discarded: {}", why.trim());
        }
        LedgerCommand::Evidence { as_of, time_unit, half_life } => {
            let unit = match time_unit.to_lowercase().as_str() {
                "weeks" | "week" => TimeUnit::Weeks,
                "days" | "day" => TimeUnit::Days,
                u => bail!("--time-unit must be weeks or days, got {u:?}"),
            };
            let mut h = HalfLives::default();
            for o in &half_life {
                let (c, w) = o.split_once('=').with_context(|| format!("--half-life {o:?}: expected CHANNEL=WEEKS"))?;
                let w: f64 =
                    w.trim().parse().with_context(|| format!("--half-life {o:?}: {w:?} is not a number of weeks"))?;
                h.set_channel(c.trim(), w)?;
            }
            let l = Ledger::open(file)?;
            print!("{}", ledger::format_evidence(&l.decayed_readouts(&as_of, unit, &h)?, &h, &as_of));
        }
        LedgerCommand::Check => {
            let l = Ledger::open(file)?;
            l.integrity_check()?;
            println!("{}: ok ({} experiments, {} fits)", file.display(), l.experiments()?.len(), l.fits()?.len());
        }
        LedgerCommand::Predict { fit, threshold } => {
            let threshold = validate::Threshold::new(threshold)?;
            let mut l = Ledger::open(file)?;
            let model =
                crate::optimize::load_fit(&fit).with_context(|| format!("loading the fit in {}", fit.display()))?;
            // price everything first: an experiment that cannot be priced leaves the ledger as it was
            let mut made = validate::pending_predictions(&l, &model)?;
            let (fit_id, new) = validate::register_fit(&mut l, &fit, &model)?;
            println!("fit {} {} as fit {fit_id}", fit.display(), if new { "recorded" } else { "already recorded" });
            validate::record_pending(&mut l, fit_id, &mut made)?;
            if made.is_empty() {
                println!("every read experiment already has a prediction; nothing to predict");
            }
            let kpi = &model.spec.data.kpi_column;
            for p in &made {
                let e = l.experiment(p.experiment_id)?;
                if let Some(r) = &e.readout {
                    let d = validate::discrepancy(Some(e.id), &r.record, &p.prediction, p.in_sample, threshold)?;
                    println!("{}", d.describe(kpi));
                }
            }
        }
        LedgerCommand::CheckFit { fit, threshold, json } => {
            let threshold = validate::Threshold::new(threshold)?;
            let l = Ledger::open(file)?;
            let model =
                crate::optimize::load_fit(&fit).with_context(|| format!("loading the fit in {}", fit.display()))?;
            let checks = validate::check_fit(&l, &model, threshold)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                print!("{}", validate::format_checks(&checks, &model.spec.data.kpi_column));
            }
        }
        LedgerCommand::Anchor { id, config, out } => {
            let l = Ledger::open(file)?;
            let e = l.experiment(id)?;
            let Some(r) = e.readout.as_ref().filter(|_| e.status == ledger::Status::Read) else {
                bail!("experiment {id} is {}: only a read experiment can anchor a prior", e.status);
            };
            if out.exists() {
                bail!("--out {}: exists; name a new file (the config it came from is left as it is)", out.display());
            }
            let mut spec = mmloop_mmm::config::load_config(&config)
                .with_context(|| format!("reading the config {}", config.display()))?;
            // the written config names the data by its absolute path, so it loads from anywhere
            if let Ok(p) = std::fs::canonicalize(&spec.data.path) {
                spec.data.path = p;
            }
            let anchored = validate::anchored_spec(&spec, Some(id), &r.record)?;
            let a = anchored.calibration.roi_priors.last().map(|a| (a.channel.clone(), a.mean, a.standard_error));
            mmloop_data::write_atomic(&out, mmloop_mmm::config::to_toml(&anchored).as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            if let Some((ch, m, se)) = a {
                println!(
                    "wrote {}: {ch}'s ROI prior is experiment {id}'s iROAS {m:.4} ± {se:.4} (its lift term removed); \
                     refit with it, then `mmloop ledger {} check-fit --fit DIR`",
                    out.display(),
                    file.display()
                );
            }
        }
        LedgerCommand::History { format, out } => {
            let l = Ledger::open(file)?;
            let h = validate::history(&l)?;
            let text = match format.to_lowercase().as_str() {
                "table" => validate::format_history(&h),
                "json" => serde_json::to_string_pretty(&h)? + "\n",
                "csv" => validate::history_csv(&h),
                f => bail!("--format must be table, json or csv, got {f:?}"),
            };
            emit(&text, out.as_deref(), file)?;
        }
        LedgerCommand::Export { format, out } => {
            let l = Ledger::open(file)?;
            let text = match format.to_lowercase().as_str() {
                "json" => serde_json::to_string_pretty(&l.readout_records()?)? + "\n",
                "csv" => ledger::to_csv(&l.experiments()?),
                f => bail!("--format must be csv or json, got {f:?}"),
            };
            emit(&text, out.as_deref(), file)?;
        }
    }
    Ok(())
}

/// Writes `text` to `out` atomically, or to standard output.
///
/// Never onto the ledger (or its `-wal`/`-shm` companions), and never over a file mmloop did not
/// write: an existing `out` is replaced only when it is an earlier output of the same kind (its
/// first line equals the new text's first line — the CSV or table header, and for JSON a file that
/// parses as JSON).
fn emit(text: &str, out: Option<&Path>, file: &Path) -> anyhow::Result<()> {
    let Some(p) = out else {
        print!("{text}");
        return Ok(());
    };
    let companions = [file.to_path_buf(), with_suffix(file, "-wal"), with_suffix(file, "-shm")];
    let inputs: Vec<&Path> = companions.iter().map(PathBuf::as_path).collect();
    if p.exists() && !same_kind_of_output(p, text) {
        bail!(
            "--out {}: the file exists and is not an earlier output of this command; name a new file \
             (mmloop replaces only what it wrote)",
            p.display()
        );
    }
    mmloop_data::write_atomic_for(p, text.as_bytes(), &inputs).with_context(|| format!("--out {}", p.display()))?;
    eprintln!("wrote {}", p.display());
    Ok(())
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Whether the existing file at `p` is an earlier output of the same export as `text`.
fn same_kind_of_output(p: &Path, text: &str) -> bool {
    let Ok(old) = std::fs::read_to_string(p) else { return false };
    let first = |t: &str| t.lines().next().unwrap_or("").trim_end().to_string();
    if first(&old) != first(text) {
        return false;
    }
    let is_json = text.trim_start().starts_with(['[', '{']);
    !is_json || serde_json::from_str::<serde_json::Value>(&old).is_ok()
}
