//! Command-line options naming a long regional panel, shared by `mmloop lift` and `mmloop design`.
//! The defaults are GeoLift's column names.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct PanelArgs {
    /// Long panel (CSV or Parquet): one row per (time, geo).
    #[arg(long)]
    pub data: PathBuf,
    /// Time column (dates YYYY-MM-DD or numbers).
    #[arg(long, default_value = "date")]
    pub time: String,
    /// Geo column.
    #[arg(long, default_value = "location")]
    pub geo: String,
    /// KPI column.
    #[arg(long, default_value = "Y")]
    pub kpi: String,
}

/// Parses a count option (permutations, replications, periods): a whole number ≥ 0. Negative numbers
/// reach this parser (the options allow hyphen values) and get a message instead of clap's
/// "unexpected argument".
pub fn count(s: &str) -> Result<usize, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<usize>() {
        return Ok(v);
    }
    if t.starts_with('-') && t[1..].chars().all(|c| c.is_ascii_digit()) && t.len() > 1 {
        return Err(format!("{t} is negative: give a whole number of 0 or more"));
    }
    if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
        return Err(format!("{t} is larger than this machine can count ({})", usize::MAX));
    }
    Err(format!("{t:?} is not a whole number"))
}

/// Parses a real-valued option; negative values are accepted here and checked where the option is used.
pub fn real(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{s} is not a finite number"));
    }
    Ok(v)
}

/// A progress bar on stderr for long library work ([`mmloop_geolift::Progress`]). Drawn only when
/// stderr is a terminal, so piped output and tests stay clean.
pub struct Bar {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl Bar {
    pub fn new() -> Self {
        Self { bar: std::sync::Mutex::new(None) }
    }

    fn enabled() -> bool {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal()
    }

    /// A spinner with a message (one stage of unknown length); replaced by the next stage.
    pub fn stage(&self, msg: &str) {
        if !Self::enabled() {
            return;
        }
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message(msg.to_string());
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Ok(mut g) = self.bar.lock() {
            if let Some(old) = g.take() {
                old.finish_and_clear();
            }
            *g = Some(b);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut g) = self.bar.lock()
            && let Some(old) = g.take()
        {
            old.finish_and_clear();
        }
    }
}

impl mmloop_geolift::Progress for Bar {
    fn start(&self, stage: &str, total: u64) {
        if !Self::enabled() {
            return;
        }
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b.set_message(stage.to_string());
        if let Ok(mut g) = self.bar.lock() {
            if let Some(old) = g.take() {
                old.finish_and_clear();
            }
            *g = Some(b);
        }
    }
    fn inc(&self, n: u64) {
        if let Ok(g) = self.bar.lock()
            && let Some(b) = g.as_ref()
        {
            b.inc(n);
        }
    }
    fn finish(&self) {
        self.clear();
    }
    fn stage(&self, msg: &str) {
        Bar::stage(self, msg);
    }
}

/// Prints the outlier warnings (the first 10, then a count) to stderr.
pub fn print_outliers(context: &str, w: &[mmloop_geolift::OutlierWarning]) {
    for x in w.iter().take(10) {
        eprintln!("warning: {context}: suspicious value: {x}");
    }
    if w.len() > 10 {
        eprintln!(
            "warning: {context}: {} more suspicious values (all listed in the output's \"warnings\")",
            w.len() - 10
        );
    }
}
