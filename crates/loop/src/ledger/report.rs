//! Text views of the ledger: the terminal table, one experiment in full, and CSV.

use super::{Experiment, FitEntry};
use mmloop_data::human::{amount as num, count};
use std::fmt::Write as _;

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn geos_of(e: &Experiment) -> Vec<&str> {
    e.cells.iter().flat_map(|c| c.geos.iter().map(String::as_str)).collect()
}

/// The terminal table of `ledger list`: one line per experiment, then the fits.
pub fn format_list(experiments: &[Experiment], fits: &[FitEntry]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>5}  {:<9}  {:<16}  {:<22}  {:<23}  {:>12}  {:>10}  {:>8}  {:<27}  est.",
        "id", "status", "channels", "geos", "window", "incremental", "SE", "iROAS", "iROAS 90% interval"
    );
    for e in experiments {
        let geos = geos_of(e);
        let geo_text =
            if geos.is_empty() { "(national)".to_string() } else { format!("{} {}", geos.len(), geos.join(",")) };
        let (inc, se, iroas, int, est) = match &e.readout {
            Some(r) => (
                num(r.record.incremental_kpi),
                num(r.record.standard_error),
                r.iroas.map(num).unwrap_or_else(|| "-".into()),
                r.iroas_interval.map(|(a, b)| format!("[{}, {}]", num(a), num(b))).unwrap_or_else(|| "-".into()),
                r.record.estimator.clone(),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
        };
        let chans = if e.channels.is_empty() { "(none)".to_string() } else { e.channels.join(",") };
        let _ = writeln!(
            s,
            "{:>5}  {:<9}  {:<16}  {:<22}  {:<23}  {:>12}  {:>10}  {:>8}  {:<27}  {}",
            e.id,
            e.status.as_str(),
            short(&chans, 16),
            short(&geo_text, 22),
            short(&format!("{}..{}", e.start, e.end), 23),
            inc,
            se,
            iroas,
            short(&int, 27),
            short(&est, 6)
        );
    }
    let n_read = experiments.iter().filter(|e| e.status == super::Status::Read).count();
    let n_disc = experiments.iter().filter(|e| e.status == super::Status::Discarded).count();
    let _ = writeln!(
        s,
        "{}: {} read, {} discarded, {} planned or running",
        count(experiments.len(), "experiment"),
        n_read,
        n_disc,
        experiments.len() - n_read - n_disc
    );
    if !fits.is_empty() {
        let _ = writeln!(
            s,
            "\n{:>5}  {:<8}  {:<14}  {:<14}  {:<24}  fit directory",
            "fit", "method", "config", "data", "created"
        );
        for f in fits {
            let _ = writeln!(
                s,
                "{:>5}  {:<8}  {:<14}  {:<14}  {:<24}  {}",
                f.id,
                short(&f.fit.method, 8),
                short(&f.fit.config_hash, 14),
                short(&f.fit.data_hash, 14),
                f.created_at,
                f.fit.fit_dir.as_deref().unwrap_or("-")
            );
        }
    }
    s
}

/// Every field of one experiment, one per line (`ledger show ID`).
pub fn format_experiment(e: &Experiment, predictions: &[super::Prediction]) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(s, "{k:<20} {v}");
    };
    line("experiment", e.id.to_string());
    line("status", e.status.as_str().into());
    if let Some(r) = &e.discard_reason {
        line("discarded because", r.clone());
        line("discarded while", e.discarded_from.map(|s| s.as_str()).unwrap_or("-").into());
    }
    line("channels", if e.channels.is_empty() { "(none)".into() } else { e.channels.join(", ") });
    for c in &e.cells {
        line(&format!("cell {}", c.name), if c.geos.is_empty() { "(national)".into() } else { c.geos.join(", ") });
    }
    line("window", format!("{} .. {}", e.start, e.end));
    if let Some(d) = &e.design {
        line("design", d.to_string());
    }
    if let Some(r) = &e.readout {
        let rec = &r.record;
        line("incremental KPI", num(rec.incremental_kpi));
        line("standard error", num(rec.standard_error));
        line("90% interval", format!("[{}, {}]", num(r.kpi_interval.0), num(r.kpi_interval.1)));
        line("spend change", num(rec.spend_change));
        if let Some(p) = &rec.spend_path {
            line("spend path", format!("{} entries", p.len()));
        }
        line("iROAS", r.iroas.map(num).unwrap_or_else(|| "- (no spend change)".into()));
        if let Some((a, b)) = r.iroas_interval {
            line("iROAS 90% interval", format!("[{}, {}]", num(a), num(b)));
        }
        line("estimator", rec.estimator.clone());
        line("source", rec.source.clone());
        line("source file", r.source_file.clone().unwrap_or_else(|| "-".into()));
        line("source sha256", r.source_hash.clone().unwrap_or_else(|| "-".into()));
        line("record sha256", r.record_hash.clone());
        line("read out", r.read_out_at.clone());
    }
    line("created", e.created_at.clone());
    line("updated", e.updated_at.clone());
    for p in predictions {
        line(
            &format!("predicted by fit {}", p.fit_id),
            format!("mean {} sd {} 90% [{}, {}]", num(p.mean), num(p.sd), num(p.q05), num(p.q95)),
        );
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:?}")).unwrap_or_default()
}

/// All experiments as CSV, one row each, discarded ones included (with their reason). Lists
/// (channels, geos) are joined with `;`; numbers are written with full precision.
pub fn to_csv(experiments: &[Experiment]) -> String {
    let mut s = String::from(
        "id,status,discard_reason,discarded_from,channels,geos,start,end,spend_change,incremental_kpi,standard_error,\
         kpi_lower_90,kpi_upper_90,iroas,iroas_lower_90,iroas_upper_90,estimator,source,source_file,source_sha256,\
         record_sha256,read_out_at,created_at\n",
    );
    for e in experiments {
        let r = e.readout.as_ref();
        let fields = [
            e.id.to_string(),
            e.status.as_str().to_string(),
            e.discard_reason.clone().unwrap_or_default(),
            e.discarded_from.map(|s| s.as_str().to_string()).unwrap_or_default(),
            e.channels.join(";"),
            geos_of(e).join(";"),
            e.start.clone(),
            e.end.clone(),
            opt(r.map(|r| r.record.spend_change)),
            opt(r.map(|r| r.record.incremental_kpi)),
            opt(r.map(|r| r.record.standard_error)),
            opt(r.map(|r| r.kpi_interval.0)),
            opt(r.map(|r| r.kpi_interval.1)),
            opt(r.and_then(|r| r.iroas)),
            opt(r.and_then(|r| r.iroas_interval.map(|i| i.0))),
            opt(r.and_then(|r| r.iroas_interval.map(|i| i.1))),
            r.map(|r| r.record.estimator.clone()).unwrap_or_default(),
            r.map(|r| r.record.source.clone()).unwrap_or_default(),
            r.and_then(|r| r.source_file.clone()).unwrap_or_default(),
            r.and_then(|r| r.source_hash.clone()).unwrap_or_default(),
            r.map(|r| r.record_hash.clone()).unwrap_or_default(),
            r.map(|r| r.read_out_at.clone()).unwrap_or_default(),
            e.created_at.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

/// The evidence table of `ledger evidence --as-of`: every read experiment's age, half-life and
/// decayed standard error, then per channel the newest readout's age and the number of readouts.
pub fn format_evidence(
    decayed: &[(i64, crate::decay::DecayedReadout)],
    half_lives: &crate::decay::HalfLives,
    as_of: &str,
) -> String {
    use crate::decay::HalfLifeSource;
    use std::collections::BTreeMap;
    let mut s = String::new();
    let _ = writeln!(s, "evidence as of {as_of}: SE_eff = SE * exp(ln2 * age / (2 * half-life))");
    let _ = writeln!(
        s,
        "{:>5}  {:<16}  {:<10}  {:>9}  {:>10}  {:>11}  {:>10}  {:>10}",
        "id", "channels", "ends", "age (wk)", "half-life", "variance x", "SE", "SE_eff"
    );
    let mut newest: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for (id, d) in decayed {
        let r = &d.record;
        let _ = writeln!(
            s,
            "{:>5}  {:<16}  {:<10}  {:>9.1}  {:>10.1}  {:>11}  {:>10}  {:>10}",
            id,
            short(&r.channels.join(","), 16),
            short(&r.end, 10),
            d.age.in_weeks(),
            d.half_life.in_weeks(),
            num(d.variance_inflation),
            num(d.original_se),
            if d.informative() { num(r.standard_error) } else { "inf (no weight)".into() }
        );
        for c in &r.channels {
            let e = newest.entry(c.as_str()).or_insert((f64::INFINITY, 0));
            e.0 = e.0.min(d.age.in_weeks());
            e.1 += 1;
        }
    }
    let _ = writeln!(
        s,
        "\n{:<16}  {:>9}  {:>22}  {:>16}",
        "channel", "readouts", "newest readout age (wk)", "half-life (wk)"
    );
    for (c, (age, n)) in newest {
        let (h, src) = half_lives.for_channel(c);
        let src = match src {
            HalfLifeSource::Channel => "set".to_string(),
            HalfLifeSource::Class(k) => k.name().to_string(),
        };
        let _ = writeln!(
            s,
            "{:<16}  {:>9}  {:>22.1}  {:>16}",
            short(c, 16),
            n,
            age,
            format!("{:.0} ({src})", h.in_weeks())
        );
    }
    s
}
