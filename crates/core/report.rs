//! `mmloop report DIR [--out FILE]`: one self-contained HTML page of an output directory.

use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The output directory of an mmloop command (fit, lift, design, optimize, scenario, rank, a loop
    /// directory or one of its cycle-N, simulate), or an experiment ledger — a ledger file, or a
    /// directory holding ledger.sqlite — for the loop's whole history from it (experiments, readouts
    /// against the model's predictions, ROI over fits, evidence age and decay).
    pub dir: PathBuf,
    /// Where to write the HTML (default: DIR.html beside the directory). An existing file is replaced
    /// only when it is an earlier mmloop report.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let report = mmloop_report::render(&args.dir)?;
    let out = args.out.clone().unwrap_or_else(|| mmloop_report::default_path(&args.dir));
    // never onto the directory or ledger it shows (nor the ledger's SQLite companions)
    let companions: Vec<PathBuf> = ["-wal", "-shm"]
        .iter()
        .map(|s| {
            let mut p = args.dir.clone().into_os_string();
            p.push(s);
            PathBuf::from(p)
        })
        .collect();
    let inputs: Vec<&std::path::Path> =
        std::iter::once(args.dir.as_path()).chain(companions.iter().map(PathBuf::as_path)).collect();
    mmloop_report::write(&report, &out, &inputs).with_context(|| format!("--out {}", out.display()))?;
    eprintln!("wrote {} ({} report, {} charts)", out.display(), report.kind, report.charts.len());
    Ok(())
}
