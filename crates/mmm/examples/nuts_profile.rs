//! Profiling NUTS on the MMM examples: prints per-chain tree depth, steps, step size, worst-ESS
//! parameters and wall time for several sampler set-ups (`MMLOOP_PROFILE_RUNS`, comma-separated:
//! default, lowrank, prior, lowrank90, lowrank95, dense, accept90, mindepth0, mindepth4, mindepth5, dense_md4, dense_md5,
//! tune500, tune300, lowrank500, seedN, long, plainlong, form_levels / form_nc / form_cint / form_auto /
//! form_autolevels / form_collapse / form_joint / form_cbMASK (channel c centred where MASK's c-th
//! digit is 1) with an optional @seed).
//! Run: `cargo run --release -p mmloop-mmm --example nuts_profile`
//! with `MMLOOP_PROFILE_CONFIG=path/to/config.toml` (default: the PyMC example).

use mmloop_inference::{Init, MassMatrix, NutsSettings};
use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::centring::Centring;
use std::time::Instant;

fn report(model: &MmmModel, label: &str, settings: &NutsSettings) {
    let t0 = Instant::now();
    let post = match mmloop_mmm::fit::sample_nuts_model(model, settings) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{label}: {e}");
            return;
        }
    };
    let wall = t0.elapsed().as_secs_f64();
    let constrained = post.map_draws(model.names(), |q| model.constrain(q));
    let s = mmloop_inference::summary(&constrained);
    let d = &s.diagnostics;
    eprintln!(
        "== {label}: wall {wall:.2}s  max_rhat {:.4} ({:?})  min_ess_bulk {:.0} ({:?})  min_ess_tail {:.0} ({:?})  ess_bulk/s {:.0}  div {}  maxdepth {}",
        d.max_rhat,
        d.max_rhat_param,
        d.min_ess_bulk,
        d.min_ess_bulk_param,
        d.min_ess_tail,
        d.min_ess_tail_param,
        d.min_ess_bulk / wall,
        d.divergences,
        d.max_tree_depth_hits
    );
    for (c, (st, w)) in post.sample_stats.iter().zip(&post.warmup).enumerate() {
        let n = st.len() as f64;
        let mean_steps = st.iter().map(|s| s.n_steps as f64).sum::<f64>() / n;
        let mut hist = [0usize; 11];
        for s in st {
            hist[(s.tree_depth as usize).min(10)] += 1;
        }
        eprintln!(
            "   chain {c}: step {:.4}  mean n_steps {mean_steps:.1}  depth hist {:?}  warmup {:.2}s sampling {:.2}s  warmup div {}",
            w.step_size, hist, w.warmup_seconds, w.sampling_seconds, w.divergences
        );
    }
    if d.divergences > 0 {
        // where the divergent transitions end (the kept point after each): per sampling
        // coordinate, the divergent draws' mean and sd in units of the posterior sd; a funnel or a
        // ridge shows as a shifted mean or a shrunken sd in the coordinates that carry it
        let all: Vec<&Vec<f64>> = post.draws.iter().flatten().collect();
        let div: Vec<&Vec<f64>> = post
            .draws
            .iter()
            .zip(&post.sample_stats)
            .flat_map(|(ch, st)| ch.iter().zip(st).filter(|(_, s)| s.divergent).map(|(q, _)| q))
            .collect();
        let (n, nd) = (all.len() as f64, div.len() as f64);
        let mut shifts: Vec<(f64, f64, usize)> = (0..model.params.len())
            .map(|j| {
                let m = all.iter().map(|q| q[j]).sum::<f64>() / n;
                let sd = (all.iter().map(|q| (q[j] - m).powi(2)).sum::<f64>() / n).sqrt().max(1e-300);
                let md = div.iter().map(|q| q[j]).sum::<f64>() / nd;
                let sdd = (div.iter().map(|q| (q[j] - md).powi(2)).sum::<f64>() / nd).sqrt();
                ((md - m) / sd, sdd / sd, j)
            })
            .collect();
        shifts.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
        // with the intercepts integrated out, their coordinates are drawn after the fact, not sampled
        let sampled = |j: usize| {
            !(mmloop_mmm::fit::collapsed(model).is_some() && model.params[j].name.starts_with("intercept_geo_"))
        };
        for (z, r, j) in shifts.iter().filter(|s| sampled(s.2)).take(10) {
            eprintln!("   divergent at {:30} mean shift {z:+.2} sd, sd ratio {r:.2}", model.params[*j].name);
        }
        let per_chain: Vec<usize> =
            post.sample_stats.iter().map(|st| st.iter().filter(|s| s.divergent).count()).collect();
        eprintln!("   divergences per chain {per_chain:?}");
    }
    if std::env::var("MMLOOP_PROFILE_CORR").is_ok() {
        // strongest posterior correlations between sampling coordinates (what a diagonal metric
        // cannot follow)
        let all: Vec<&Vec<f64>> = post.draws.iter().flatten().collect();
        let (n, d) = (all.len() as f64, model.params.len());
        let mean: Vec<f64> = (0..d).map(|j| all.iter().map(|q| q[j]).sum::<f64>() / n).collect();
        let sd: Vec<f64> =
            (0..d).map(|j| (all.iter().map(|q| (q[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt()).collect();
        let mut pairs = Vec::new();
        for i in 0..d {
            for j in 0..i {
                let r = all.iter().map(|q| (q[i] - mean[i]) * (q[j] - mean[j])).sum::<f64>() / n / (sd[i] * sd[j]);
                pairs.push((r, i, j));
            }
        }
        pairs.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
        for (r, i, j) in pairs.iter().take(12) {
            eprintln!("   corr {:+.3}  {} ~ {}", r, model.params[*i].name, model.params[*j].name);
        }
    }
    if let Ok(prefix) = std::env::var("MMLOOP_PROFILE_SHOW") {
        // every parameter whose name starts with the given prefix
        for p in s.params.iter().filter(|p| p.name.starts_with(&prefix)) {
            eprintln!(
                "   {:30} mean {:9.4} sd {:8.4} q05 {:9.4} q95 {:9.4} rhat {:.4} ess_bulk {:6.0} ess_tail {:6.0}",
                p.name, p.mean, p.sd, p.q05, p.q95, p.rhat, p.ess_bulk, p.ess_tail
            );
        }
    }
    let mut ps = s.params.clone();
    ps.sort_by(|a, b| a.ess_bulk.total_cmp(&b.ess_bulk));
    for p in ps.iter().take(5) {
        eprintln!(
            "   {:30} mean {:9.4} sd {:8.4} rhat {:.4} ess_bulk {:6.0} ess_tail {:6.0}",
            p.name, p.mean, p.sd, p.rhat, p.ess_bulk, p.ess_tail
        );
    }
}

fn main() {
    let path = std::env::var("MMLOOP_PROFILE_CONFIG")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/pymc_mmm_example.toml").into());
    let spec = load_config(&path).expect("config");
    let data = Dataset::load(&spec).expect("data");
    let model = MmmModel::new(&spec, &data).expect("model");
    eprintln!("information ratios κ: {:?}", model.centring_choice);
    let base = mmloop_mmm::fit::nuts_settings(&model, &spec);
    let which = std::env::var("MMLOOP_PROFILE_RUNS").unwrap_or_else(|_| "default,lowrank,prior".into());
    let mut plain = model.clone();
    plain.set_centring(&Centring { intercept_levels: false, ..model.centring() });
    plain.response_coords.clear();
    plain.level_coord = false;
    for run in which.split(',') {
        let mut s = base.clone();
        s.quiet = true;
        if let Some(seed) = run.strip_prefix("seed") {
            // the same set-up on another seed, with and without the response coordinates
            s.seed = seed.parse().expect("seedN");
            s.init = Init::Around { center: mmloop_mmm::fit::nuts_init_center(&model, s.seed), radius: 0.1 };
            report(&model, run, &s);
            s.init = Init::Around { center: mmloop_mmm::fit::nuts_init_center(&plain, s.seed), radius: 0.1 };
            report(&plain, &format!("{run} without response coordinates"), &s);
            continue;
        }
        if run == "long" {
            (s.tune, s.draws, s.target_accept) = (2000, 5000, 0.95);
            report(&model, run, &s);
            continue;
        }
        if run == "plainlong" {
            // the model in its own coordinates, long and careful: a reference for the reparametrised runs
            (s.tune, s.draws, s.target_accept) = (2000, 5000, 0.95);
            s.init = Init::Around { center: mmloop_mmm::fit::nuts_init_center(&plain, s.seed), radius: 0.1 };
            report(&plain, run, &s);
            continue;
        }
        if let Some(form) = run.strip_prefix("form_") {
            // `form_X@N`: on seed N; `+aNN` (target_accept 0.NN), `+dense`, `+lowrank` (metric),
            // `+mdN` (min_tree_depth N) after it
            let mut mods = form.split('+');
            let form = mods.next().unwrap_or("");
            for m in mods {
                match m {
                    a if a.starts_with('a') && a[1..].parse::<u32>().is_ok() => {
                        s.target_accept = a[1..].parse::<f64>().expect("+aNN") / 100.0
                    }
                    "dense" => s.mass_matrix = MassMatrix::Dense,
                    "lowrank" => s.mass_matrix = MassMatrix::low_rank(),
                    md if md.starts_with("md") => s.min_tree_depth = md[2..].parse().expect("+mdN"),
                    other => eprintln!("unknown modifier {other}"),
                }
            }
            let (form, seed) = form.split_once('@').map_or((form, None), |(f, n)| (f, Some(n)));
            if let Some(n) = seed {
                s.seed = n.parse().expect("form_X@N");
            }
            // the model in another form of its hierarchy blocks: "levels" (geo intercepts by their
            // fitted levels), "nc" (every block non-centred), "cint" (intercepts centred), "auto"
            // (the κ rule's choice)
            let mut m = model.clone();
            let c = match form {
                // the geo intercepts integrated out (NUTS on the marginal), or sampled jointly
                // intercepts integrated out, each channel's geo effects centred where κ_c > 1
                "collapseauto" => {
                    m.collapse_intercepts = true;
                    Centring { beta: m.centring_choice.centred().beta, ..m.centring() }
                }
                "collapse" | "joint" => {
                    m.collapse_intercepts = form == "collapse";
                    m.centring()
                }
                // `cbMASK`: intercepts integrated out, channel c's geo effects centred where the
                // c-th character of MASK is 1 (e.g. cb00111)
                cb if cb.starts_with("cb") => {
                    m.collapse_intercepts = true;
                    Centring { beta: cb[2..].chars().map(|ch| ch == '1').collect(), ..m.centring() }
                }
                "levels" => Centring { intercept_levels: true, ..m.centring() },
                "nc" => Centring::default(),
                "cint" => Centring { intercept: true, intercept_levels: false, ..m.centring() },
                "auto" => m.centring_choice.centred(),
                "autolevels" => Centring { intercept_levels: true, ..m.centring_choice.centred() },
                // `pcNN`: intercepts partially centred with w = NN/100
                pc if pc.starts_with("pc") => Centring {
                    intercept_levels: false,
                    intercept_power: Some(pc[2..].parse::<f64>().expect("form_pcNN") / 100.0),
                    ..m.centring()
                },
                other => {
                    eprintln!("unknown form {other}");
                    continue;
                }
            };
            m.set_centring(&c);
            s.init = Init::Around { center: mmloop_mmm::fit::nuts_init_center(&m, s.seed), radius: 0.1 };
            report(&m, run, &s);
            continue;
        }
        match run {
            "default" => {}
            "lowrank" => s.mass_matrix = MassMatrix::low_rank(),
            "prior" => s.init = Init::Around { center: model.initial_point(), radius: 0.5 },
            "lowrank90" => {
                s.mass_matrix = MassMatrix::low_rank();
                s.target_accept = 0.9
            }
            "lowrank95" => {
                s.mass_matrix = MassMatrix::low_rank();
                s.target_accept = 0.95
            }
            "dense" => s.mass_matrix = MassMatrix::Dense,
            "accept90" => s.target_accept = 0.9,
            "accept95" => s.target_accept = 0.95,
            "mindepth0" => s.min_tree_depth = 0,
            "mindepth4" => s.min_tree_depth = 4,
            "mindepth5" => s.min_tree_depth = 5,
            "dense_md4" => {
                s.mass_matrix = MassMatrix::Dense;
                s.min_tree_depth = 4
            }
            "dense_md5" => {
                s.mass_matrix = MassMatrix::Dense;
                s.min_tree_depth = 5
            }
            "tune500" => s.tune = 500,
            "tune300" => s.tune = 300,
            "lowrank500" => {
                s.mass_matrix = MassMatrix::low_rank();
                s.tune = 500
            }
            other => {
                eprintln!("unknown run {other}");
                continue;
            }
        }
        report(&model, run, &s);
    }
}
