//! Data simulated from the model itself, with known parameters: the ground truth for recovery
//! tests, gradient tests and benchmarks.
//!
//! The KPI is generated in KPI units as y(g,t) = K·r_g·(μ̃(g,t) + σ·ε), with μ̃ the model's scaled
//! mean at the true parameters, K = 1000 and r_g the geo's relative population (a population
//! column is included so the refit scales geos the same way). The true ROI of channel c is
//! Σ_{g,t} K·r_g·β(g,c)·f_c(g,t) / Σ spend over the fitted period — in KPI units, so it is the same
//! whatever internal scale a refit chooses.

// Index loops mirror the sums of the math (over g, t, l) and address several arrays at once.
#![allow(clippy::needless_range_loop)]

use super::{MmmModel, ModelError};
use crate::dataset::Dataset;
use crate::priors::Prior;
use crate::spec::*;
use crate::transforms::{AdstockSpec, SaturationSpec, TransformOrder};
use mmloop_data::{TimeColumn, TimeKind};
use ndarray::{Array1, Array2, Array3};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub n_geos: usize,
    pub n_times: usize,
    pub seed: u64,
    /// Noise sd in scaled units.
    pub sigma: f64,
    /// True per-channel (adstock α, logistic λ, β_c), geometric adstock + logistic saturation.
    pub channels: Vec<(f64, f64, f64)>,
    /// Partial-pooling sd τ of log β across geos (0 = identical).
    pub tau: f64,
    pub max_lag: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            n_geos: 1,
            n_times: 104,
            seed: 1,
            sigma: 0.05,
            channels: vec![(0.5, 1.5, 0.25), (0.2, 3.0, 0.15)],
            tau: 0.0,
            max_lag: 6,
        }
    }
}

/// A simulated dataset with its spec and the truth.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub spec: ModelSpec,
    pub data: Dataset,
    /// True ROI per channel (KPI per unit of spend, fitted period).
    pub true_roi: Vec<f64>,
    /// True constrained parameter values, by name (scaled units of the simulation).
    pub truth: Vec<(String, f64)>,
    /// The true unconstrained vector, in the layout of the simulation's own model (whose KPI
    /// scale is 1/K of the data's).
    pub q_true: Vec<f64>,
    /// The data before the KPI was filled in (placeholder KPI of 1), the base of that model.
    template: Dataset,
}

/// KPI units per scaled unit in the simulation (times the geo's relative population).
pub const KPI_FACTOR: f64 = 1000.0;

impl Simulation {
    /// The true incremental KPI of a lift test: the model's implied lift (see
    /// [`crate::calibration`]) at the true parameters, in KPI units.
    pub fn true_lift(&self, record: &mmloop_data::LiftTestRecord) -> Result<f64, ModelError> {
        let mut spec = self.spec.clone();
        spec.calibration.lift_tests = vec![record.clone()];
        let model = MmmModel::new(&spec, &self.template)?;
        let p = model.unpack(&self.q_true);
        Ok(KPI_FACTOR * crate::calibration::implied_lift(&model, &p, &model.lift[0]))
    }
}

/// A spec for simulated data: geometric adstock (Beta(1,3) α), logistic saturation (Gamma(3,1) λ),
/// HalfNormal(2) coefficients, yearly Fourier order 2, one control.
pub fn sim_spec(opts: &SimOptions) -> ModelSpec {
    let channels = (0..opts.channels.len())
        .map(|c| ChannelSpec {
            name: format!("ch{c}"),
            spend_column: format!("spend_ch{c}"),
            exposure_column: None,
            adstock: AdstockSpec::Geometric {
                max_lag: opts.max_lag,
                alpha: Prior::Beta { alpha: 1.0, beta: 3.0 },
                normalize: true,
            },
            saturation: SaturationSpec::Logistic { lam: Prior::Gamma { shape: 3.0, rate: 1.0 } },
            order: TransformOrder::AdstockFirst,
            effect: EffectPrior::Coefficient(Prior::HalfNormal { sigma: 2.0 }),
        })
        .collect();
    ModelSpec {
        data: DataSpec {
            path: "simulated.csv".into(),
            time_column: "week".into(),
            geo_column: (opts.n_geos > 1).then(|| "geo".into()),
            kpi_column: "kpi".into(),
            population_column: Some("population".into()),
            revenue_per_kpi_column: None,
        },
        channels,
        controls: vec![ControlSpec { column: "promo".into(), prior: Prior::Normal { mu: 0.0, sigma: 2.0 } }],
        baseline: BaselineSpec {
            intercept: Prior::Normal { mu: 0.0, sigma: 2.0 },
            intercept_geo_sd: GeoInterceptSd::Prior(Prior::HalfNormal { sigma: 1.0 }),
            trend: Trend::Linear { slope: Prior::Normal { mu: 0.0, sigma: 1.0 } },
            seasonality: vec![Fourier { period: 52.0, order: 2, prior: Prior::Normal { mu: 0.0, sigma: 1.0 } }],
        },
        likelihood: Likelihood::Normal,
        noise_prior: Prior::HalfNormal { sigma: 2.0 },
        pooling: if opts.n_geos > 1 {
            Pooling::Partial { tau: Prior::HalfNormal { sigma: 0.5 } }
        } else {
            Pooling::Complete
        },
        holdout: 0,
        // the simulated data hold no test: lift-test records on them are what-ifs
        calibration: Calibration { tests_in_data: false, ..Calibration::default() },
        fit: FitSettings {
            method: FitMethod::Laplace,
            seed: opts.seed,
            chains: 4,
            tune: 1000,
            draws: 1000,
            target_accept: 0.8,
            min_tree_depth: crate::spec::DEFAULT_MIN_TREE_DEPTH,
            metric: mmloop_inference::MassMatrix::Diag,
            laplace_starts: 4,
        },
    }
}

/// Simulates a dataset from the model at known parameters (see the module doc).
pub fn simulate(opts: &SimOptions) -> Result<Simulation, ModelError> {
    let spec = sim_spec(opts);
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let (g_n, t_n, c_n) = (opts.n_geos, opts.n_times, opts.channels.len());
    let geos: Vec<String> =
        if g_n == 1 { vec!["national".into()] } else { (0..g_n).map(|g| format!("geo{g}")).collect() };
    let population: Vec<f64> = (0..g_n).map(|_| rng.random_range(0.5..2.0)).collect();
    let mut spend = Array3::<f64>::zeros((g_n, t_n, c_n));
    for c in 0..c_n {
        for g in 0..g_n {
            let mut on = true;
            for t in 0..t_n {
                // bursty flighting: switch on/off with probability 0.15 per period
                if rng.random::<f64>() < 0.15 {
                    on = !on;
                }
                let level = if on { rng.random_range(0.5..1.5) } else { rng.random_range(0.0..0.2) };
                spend[[g, t, c]] = 100.0 * population[g] * level * (1.0 + c as f64);
            }
        }
    }
    let promo = Array3::from_shape_fn((g_n, t_n, 1), |_| if rng.random::<f64>() < 0.1 { 1.0 } else { 0.0 });
    let times = TimeColumn {
        kind: TimeKind::Numeric,
        values: (0..t_n).map(|t| t as f64).collect(),
        labels: (0..t_n).map(|t| t.to_string()).collect(),
    };
    let mut data = Dataset {
        source: "simulated.csv".into(),
        geos,
        times,
        channels: (0..c_n).map(|c| format!("ch{c}")).collect(),
        controls: vec!["promo".into()],
        kpi: Array2::from_elem((g_n, t_n), 1.0),
        spend: spend.clone(),
        media: spend,
        control_values: promo,
        population: Some(Array1::from(population.clone())),
        revenue_per_kpi: None,
    };
    let model = MmmModel::new(&spec, &data)?;
    // the true parameter vector (constrained values, then unconstrained)
    let mut truth: Vec<(String, f64)> = Vec::new();
    let mut q = vec![0.0; model.params.len()];
    let normal = Normal::new(0.0, 1.0).expect("valid normal");
    for (i, p) in model.params.iter().enumerate() {
        let v = {
            let n = p.name.as_str();
            let ch = |pre: &str| -> Option<usize> {
                n.strip_prefix(pre).and_then(|r| r.trim_end_matches(']').trim_start_matches("ch").parse().ok())
            };
            if let Some(c) = ch("adstock_alpha[") {
                opts.channels[c].0
            } else if let Some(c) = ch("sat_lam[") {
                opts.channels[c].1
            } else if let Some(c) = ch("beta[") {
                opts.channels[c].2
            } else if n.starts_with("beta_geo_sd[") {
                opts.tau.max(1e-3)
            } else if ["beta_geo_z[", "intercept_geo_z[", "beta_geo_dev[", "intercept_geo_dev[", "intercept_geo_pc["]
                .iter()
                .any(|pre| n.starts_with(pre))
            {
                // a standard normal; scaled to the deviation below for centred blocks
                normal.sample(&mut rng)
            } else if n == "intercept" {
                1.0
            } else if n == "intercept_geo_sd" || n == "trend_slope" || n.starts_with("season_sin[52,1]") {
                0.1
            } else if n.starts_with("season_cos[52,1]") {
                -0.05
            } else if n.starts_with("season") {
                0.02
            } else if n.starts_with("gamma[") {
                0.2
            } else if n == "sigma" {
                opts.sigma
            } else {
                return Err(ModelError::Invalid(format!("simulation has no true value for {n}")));
            }
        };
        truth.push((p.name.clone(), v));
        q[i] = p.transform.unconstrain(v);
    }
    // model coordinates of a block with power w hold u = d/s^w ~ N(0, s^(1−w)) (the deviations
    // themselves when centred, or by levels): scale the standard normals by s^(1−w)
    let mut blocks = Vec::new();
    // (a held σ_a's block is non-centred, w = 1: nothing to scale)
    if let Some((si, us)) = model.baseline.pooled_intercepts() {
        blocks.push((si, us, model.intercept_power()));
    }
    for ch in model.channels.iter().filter(|c| c.geo_centred) {
        if let (Some(ti), Some(zs)) = (ch.tau_idx, ch.z_start) {
            blocks.push((ti, zs, 0.0));
        }
    }
    for (scale, start, w) in blocks {
        let f = truth[scale].1.powf(1.0 - w);
        for i in start..start + g_n {
            truth[i].1 *= f;
            q[i] *= f;
        }
    }
    let q = model.to_sampling_coords(&q);
    let pv = model.unpack(&q);
    let base = model.baseline_scaled(&pv);
    let k = KPI_FACTOR;
    let template = data.clone();
    let mut true_contrib = vec![0.0; c_n];
    let mut mean = base.clone();
    let mut f = vec![0.0; t_n];
    for c in 0..c_n {
        for g in 0..g_n {
            model.channel_feature(c, &pv.theta[c], &pv.phi[c], &model.channels[c].x[g * t_n..(g + 1) * t_n], &mut f);
            for t in 0..t_n {
                let v = pv.beta_geo[c][g] * f[t];
                mean[g * t_n + t] += v * pv.obs_factor[c];
                true_contrib[c] += k * model.geo_size[g] * v;
            }
        }
    }
    for g in 0..g_n {
        for t in 0..t_n {
            let eps = normal.sample(&mut rng);
            data.kpi[[g, t]] = k * model.geo_size[g] * (mean[g * t_n + t] + opts.sigma * eps);
        }
    }
    let true_roi = (0..c_n).map(|c| true_contrib[c] / model.channels[c].spend_fit).collect();
    Ok(Simulation { spec, data, true_roi, truth, q_true: q, template })
}
