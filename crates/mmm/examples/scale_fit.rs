//! One full fit of a simulated panel ([`mmloop_mmm::simulate::panel`]) for the scaling table of
//! `benches/mmm_scale.rs`: wall and CPU time, convergence, ESS per second, peak memory (this
//! process's VmHWM, so run one configuration per process) and ROI recovery against the truth.
//!
//! Run: `cargo run -p mmloop-mmm --example scale_fit -- GEOS WEEKS CHANNELS METHOD [TUNE DRAWS] [SEED]`
//! with METHOD `nuts` (4 chains × (TUNE + DRAWS), default 1000 + 1000) or `laplace` (the default
//! 4 starts and 1000 draws). Prints one line starting `scale_fit` with every figure; with
//! `SCALE_FIT_VERBOSE` set, each channel's true and fitted ROI; with `SCALE_FIT_PROGRESS` set and
//! stderr a terminal (e.g. under `script`), the NUTS progress bar.

use mmloop_inference::LogDensity;
use mmloop_mmm::fit::FitOptions;
use mmloop_mmm::fitdir::Diagnostics;
use mmloop_mmm::simulate::panel::{PanelOptions, simulate_panel};
use mmloop_mmm::spec::FitMethod;
use std::time::Instant;

/// User + system CPU seconds of this process (all threads), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command name (which ends with ')'): utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0 // USER_HZ is 100 on Linux
}

/// CPU time of this thread in seconds (user + system ticks of `/proc/thread-self/stat`, 10 ms each):
/// the gradient's cost without the time other processes on a shared machine take from it.
fn thread_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // the fields after the command name (which ends with ')'): utime and stime are fields 14 and 15
    let f: Vec<f64> =
        s.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().map(|v| v.parse().unwrap_or(f64::NAN)).collect();
    f.get(11).zip(f.get(12)).map_or(f64::NAN, |(u, s)| (u + s) / 100.0)
}

/// Peak resident memory of this process in MB (`VmHWM` of `/proc/self/status`).
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize| args.get(i).map_or(default, |v| v.parse().expect("a whole number"));
    let (geos, weeks, channels) = (num(0, 10), num(1, 104), num(2, 5));
    let method = args.get(3).map_or("laplace", String::as_str);
    let (tune, draws, seed) = (num(4, 1000), num(5, 1000), num(6, 1) as u64);
    let panel = simulate_panel(PanelOptions { geos, weeks, channels, seed }).expect("panel");
    let dir = std::env::temp_dir().join(format!("mmloop_scale_{geos}x{weeks}x{channels}_s{seed}"));
    let (mut spec, data) = panel.write(&dir).expect("panel loads");
    spec.fit.method = if method == "nuts" { FitMethod::Nuts } else { FitMethod::Laplace };
    if method == "nuts" {
        (spec.fit.chains, spec.fit.tune, spec.fit.draws) = (4, tune, draws);
    }
    // the cost of one log density + gradient at the model's initial point, for the fit's context
    let model = mmloop_mmm::model::MmmModel::new(&spec, &data).expect("model");
    let (q, mut g) = (model.initial_point(), vec![0.0; model.params.len()]);
    let t = thread_cpu();
    let n_grad = (40_000_000 / (geos * weeks * channels)).clamp(20, 20_000); // ~2 s
    for _ in 0..n_grad {
        model.logp_grad(std::hint::black_box(&q), &mut g).expect("finite");
    }
    let grad_us = (thread_cpu() - t) / n_grad as f64 * 1e6;
    eprintln!(
        "scale_fit {geos}x{weeks}x{channels}: dim {}, {grad_us:.0} µs CPU per gradient; fitting by {method}",
        model.params.len()
    );
    drop(model);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let fit = mmloop_mmm::fit::fit_with(
        &spec,
        &data,
        FitOptions { quiet: std::env::var("SCALE_FIT_PROGRESS").is_err(), ..Default::default() },
    )
    .expect("fits");
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let roi = mmloop_mmm::fit::analyse_channels_checked(&fit, &data).expect("finite figures");
    let truth = panel.true_roi();
    let covered = roi.iter().zip(&truth).filter(|(r, t)| r.roi.q05 <= **t && **t <= r.roi.q95).count();
    // relative error of the posterior mean ROI per channel: its mean over channels, and its median
    // (a weakly identified channel's heavy upper tail can put one mean far off)
    let mut rel: Vec<f64> = roi.iter().zip(&truth).map(|(r, t)| (r.roi.mean / t - 1.0).abs()).collect();
    let mare = rel.iter().sum::<f64>() / rel.len() as f64;
    rel.sort_by(f64::total_cmp);
    let medare = rel[rel.len() / 2];
    let conv = match &fit.diagnostics {
        Diagnostics::Nuts(d) => {
            let steps = d.mean_n_steps.iter().sum::<f64>() / d.mean_n_steps.len().max(1) as f64;
            format!(
                "4x({tune}+{draws}) max_rhat {:.4} ({}) div {} min_ess_bulk {:.0} ({}) min_ess_tail {:.0} \
                 ess_bulk/s {:.2} treedepth_hits {} mean_steps {steps:.1}",
                d.max_rhat,
                d.max_rhat_param.as_deref().unwrap_or("-"),
                d.divergences,
                d.min_ess_bulk,
                d.min_ess_bulk_param.as_deref().unwrap_or("-"),
                d.min_ess_tail,
                d.min_ess_bulk / wall,
                d.max_tree_depth_hits
            )
        }
        Diagnostics::Laplace(l) => format!("warnings {}", l.warnings.len()),
    };
    println!(
        "scale_fit {geos}x{weeks}x{channels} {method} dim {} grad {grad_us:.0}us_cpu wall {wall:.1}s cpu {cpu:.1}s peak {:.0}MB \
         roi_cover90 {covered}/{} roi_mare {:.3} roi_medare {medare:.3} media_share {:.2} {conv}",
        fit.model.params.len(),
        peak_mb(),
        truth.len(),
        mare,
        panel.media_share
    );
    if std::env::var("SCALE_FIT_VERBOSE").is_ok() {
        for (r, t) in roi.iter().zip(&truth) {
            println!("  {} true {t:.3} mean {:.3} [{:.3}, {:.3}]", r.name, r.roi.mean, r.roi.q05, r.roi.q95);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
