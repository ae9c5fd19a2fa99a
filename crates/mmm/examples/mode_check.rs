//! Does the Laplace fit find the posterior's main mode? Runs the Laplace fit's mode search
//! ([`mmloop_mmm::fit::mode_search`], every start, the config's settings and seed) and scores each
//! start's end point, and every draw of a NUTS fit of the same config, in the model's own log
//! density. A mode of the main basin lies above every draw (a Gaussian's draws sit about dim/2 nats
//! below its mode); a mode below the best NUTS draw is a worse basin.
//!
//! Run: `cargo run --release -p mmloop-mmm --example mode_check -- CONFIG NUTS_FIT_DIR`
//! (`NUTS_FIT_DIR` from `mmloop fit --config CONFIG --method nuts --out NUTS_FIT_DIR`).

use mmloop_inference::LogDensity;
use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::model::MmmModel;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, nuts_dir] = args.as_slice() else {
        eprintln!("usage: mode_check CONFIG NUTS_FIT_DIR");
        std::process::exit(2);
    };
    let spec = load_config(PathBuf::from(config).as_path()).unwrap_or_else(|e| panic!("{config}: {e}"));
    let data = Dataset::load(&spec).unwrap_or_else(|e| panic!("{config}: {e}"));
    let model = MmmModel::new(&spec, &data).unwrap_or_else(|e| panic!("{config}: {e}"));
    let own_logp = |q: &[f64]| model.logp_grad(q, &mut vec![0.0; model.dim()]).unwrap_or(f64::NEG_INFINITY);

    let path = PathBuf::from(nuts_dir).join("posterior_unconstrained.parquet");
    let table = mmloop_data::Table::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let columns: Vec<Vec<f64>> = model
        .names()
        .iter()
        .map(|n| table.f64_column(n).unwrap_or_else(|e| panic!("{}: {e} (a NUTS fit of this config?)", path.display())))
        .collect();
    let mut draws: Vec<f64> =
        (0..table.n_rows()).map(|r| own_logp(&columns.iter().map(|c| c[r]).collect::<Vec<_>>())).collect();
    draws.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| draws[((draws.len() - 1) as f64 * p).round() as usize];
    let best = *draws.last().expect("draws");
    println!(
        "{config}: dim {}; NUTS draws' log density (model's own form): best {best:.2}, q95 {:.2}, median {:.2}, q05 {:.2} ({} draws)",
        model.dim(),
        q(0.95),
        q(0.5),
        q(0.05),
        draws.len()
    );

    let t0 = std::time::Instant::now();
    let target = mmloop_mmm::fit::laplace_model(&model);
    let settings = mmloop_mmm::fit::laplace_settings(&model, &spec);
    let search = mmloop_mmm::fit::mode_search(&model, &target, &settings).expect("mode search");
    println!(
        "Laplace mode search ({} starts, {:.1} s; the target form {} the model's):",
        search.starts.len(),
        t0.elapsed().as_secs_f64(),
        if target.centring() == model.centring() { "is" } else { "is not" }
    );
    for (i, st) in search.starts.iter().enumerate() {
        let own = st.end.as_deref().map(|e| own_logp(&model.convert_point(&target, e)));
        match own {
            Some(lp) => println!(
                "  start {i}: {:>10.2} in the model's form ({:+.2} against the best NUTS draw); {}",
                lp,
                lp - best,
                st.status
            ),
            None => println!("  start {i}: no end point; {}", st.status),
        }
    }
    let mode = own_logp(&model.convert_point(&target, &search.mode));
    println!("  chosen mode: {mode:.2} ({:+.2} against the best NUTS draw)", mode - best);
}
