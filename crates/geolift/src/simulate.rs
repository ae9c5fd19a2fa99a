//! Realistic regional panels from a factor model, seeded: the test bed on which the design's
//! predicted standard error is checked against the spread of real readouts (tests/design_se.rs),
//! and reusable by benches and other tests.
//!
//! Geo g in period t (all in KPI units):
//!
//! y_gt = s_g·μ·(1 + Σ_k λ_gk f_kt + γ_g·season(t + φ_g)) + s_g^κ·μ·ε_gt
//!
//! * **sizes** s_g: log-normal with log-sd `size_sigma`, rescaled to mean 1 (regional panels are
//!   dominated by a few big markets: GeoLift_PreTest's city totals span a factor ~20);
//! * **common trends** f_kt: `n_factors` random walks with innovation sd `factor_sd` (relative to the
//!   level), started at 0; factor 0 is the market-wide factor every geo loads on around 1
//!   (λ_g0 = 1 + `loading_sd`·z), the others are contrasts (λ_gk = `loading_sd`·z): geos share trends
//!   but not exactly, the situation synthetic control is built for (Abadie, Diamond & Hainmueller 2010,
//!   §2.3's factor model);
//! * **seasonality**: a sinusoid of period `season_period` with geo-specific amplitude
//!   γ_g = `season_amp`·(1 + 0.3 z) and phase φ_g = `season_phase_sd`·z periods;
//! * **noise** ε_gt: a stationary AR(1) with coefficient `ar` and marginal sd `noise_sd`, scaled by
//!   s_g^κ (κ = `noise_size_exponent`: ½ is Poisson-like counting noise, so big geos are relatively
//!   quieter; 1 means every geo has the same relative noise).
//!
//! A [`World`] holds the geo-level parameters (drawn once from `world_seed`); each
//! [`World::draw`] is an independent realisation of the trends and noise (seeded by
//! `derive_seed(world_seed, stream, index)`, so draws are reproducible and independent of the
//! thread that makes them).

use crate::inference::derive_seed;
use crate::panel::Panel;
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};

/// Settings of the factor model (see the module docs for the equation). `Default` is a daily panel
/// shaped like GeoLift_PreTest: 40 geos, 120 days, weekly seasonality.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSpec {
    pub n_geos: usize,
    pub n_periods: usize,
    /// Mean KPI per period of a geo of size 1.
    pub level: f64,
    /// Log-sd of the geo sizes.
    pub size_sigma: f64,
    pub n_factors: usize,
    /// Innovation sd of each random-walk factor, relative to the level.
    pub factor_sd: f64,
    /// Spread of the geos' loadings on the factors.
    pub loading_sd: f64,
    pub season_period: f64,
    /// Relative amplitude of the seasonal sinusoid.
    pub season_amp: f64,
    /// Sd of the geos' seasonal phase shifts (periods).
    pub season_phase_sd: f64,
    /// AR(1) coefficient of the idiosyncratic noise, in (−1, 1).
    pub ar: f64,
    /// Marginal sd of the idiosyncratic noise relative to the level, for a geo of size 1.
    pub noise_sd: f64,
    /// Noise scales as size^κ.
    pub noise_size_exponent: f64,
}

impl Default for PanelSpec {
    fn default() -> Self {
        Self {
            n_geos: 40,
            n_periods: 120,
            level: 1000.0,
            size_sigma: 0.8,
            n_factors: 2,
            factor_sd: 0.01,
            loading_sd: 0.2,
            season_period: 7.0,
            season_amp: 0.1,
            season_phase_sd: 0.3,
            ar: 0.5,
            noise_sd: 0.08,
            noise_size_exponent: 0.75,
        }
    }
}

/// The geo-level parameters of one simulated world.
#[derive(Debug, Clone)]
pub struct World {
    pub spec: PanelSpec,
    pub seed: u64,
    /// Size s_g (mean 1).
    pub sizes: Vec<f64>,
    /// Loadings λ_gk (geos × factors).
    pub loadings: Array2<f64>,
    pub season_amp: Vec<f64>,
    pub season_phase: Vec<f64>,
}

const WORLD_STREAM: u64 = 0x77_6f72_6c64; // "world"
const DRAW_STREAM: u64 = 0x6472_6177; // "draw"

fn z(rng: &mut Xoshiro256PlusPlus) -> f64 {
    StandardNormal.sample(rng)
}

impl World {
    /// Draws the geo-level parameters. Panics on a spec that cannot describe a panel (no geos or
    /// periods, |ar| ≥ 1, negative scales): the spec is written by code, not read from users.
    pub fn new(spec: PanelSpec, seed: u64) -> Self {
        assert!(spec.n_geos > 0 && spec.n_periods > 0, "a panel needs geos and periods");
        assert!(spec.ar.abs() < 1.0, "the AR(1) coefficient must be in (−1, 1) for a stationary noise");
        assert!(
            spec.size_sigma >= 0.0 && spec.factor_sd >= 0.0 && spec.noise_sd >= 0.0 && spec.loading_sd >= 0.0,
            "scales must be non-negative"
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(derive_seed(seed, WORLD_STREAM, 0));
        let n = spec.n_geos;
        let raw: Vec<f64> = (0..n).map(|_| (spec.size_sigma * z(&mut rng)).exp()).collect();
        let mean = raw.iter().sum::<f64>() / n as f64;
        let sizes: Vec<f64> = raw.iter().map(|s| s / mean).collect();
        let loadings = Array2::from_shape_fn((n, spec.n_factors), |(_, k)| {
            (if k == 0 { 1.0 } else { 0.0 }) + spec.loading_sd * z(&mut rng)
        });
        let season_amp: Vec<f64> = (0..n).map(|_| spec.season_amp * (1.0 + 0.3 * z(&mut rng))).collect();
        let season_phase: Vec<f64> = (0..n).map(|_| spec.season_phase_sd * z(&mut rng)).collect();
        Self { spec, seed, sizes, loadings, season_amp, season_phase }
    }

    /// Geo names `g00`, `g01`, ...
    pub fn geo_names(&self) -> Vec<String> {
        (0..self.spec.n_geos).map(|g| format!("g{g:02}")).collect()
    }

    /// Realisation `index`: a geos × periods KPI matrix (independent trends and noise per index).
    pub fn draw(&self, index: u64) -> Array2<f64> {
        let s = &self.spec;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(derive_seed(self.seed, DRAW_STREAM, index));
        let (n, t) = (s.n_geos, s.n_periods);
        let mut f = Array2::<f64>::zeros((s.n_factors, t));
        for k in 0..s.n_factors {
            for tt in 1..t {
                f[[k, tt]] = f[[k, tt - 1]] + s.factor_sd * z(&mut rng);
            }
        }
        let innov = s.noise_sd * (1.0 - s.ar * s.ar).sqrt();
        let mut y = Array2::<f64>::zeros((n, t));
        for g in 0..n {
            let mut e = s.noise_sd * z(&mut rng);
            let scale = self.sizes[g].powf(s.noise_size_exponent) * s.level;
            for tt in 0..t {
                if tt > 0 {
                    e = s.ar * e + innov * z(&mut rng);
                }
                let common: f64 = (0..s.n_factors).map(|k| self.loadings[[g, k]] * f[[k, tt]]).sum();
                let season = self.season_amp[g]
                    * (std::f64::consts::TAU * (tt as f64 + self.season_phase[g]) / s.season_period).sin();
                y[[g, tt]] = self.sizes[g] * s.level * (1.0 + common + season) + scale * e;
            }
        }
        y
    }

    /// Realisation `index` as a [`Panel`] (geo names from [`World::geo_names`], times `0..T`).
    pub fn panel(&self, index: u64) -> Panel {
        Panel::from_matrix(self.geo_names(), self.draw(index)).expect("simulated values are finite and moderate")
    }
}

/// Injects a relative effect into `treated` geos from period `start` on, y ← (1 + effect)·y (the
/// design's convention), and returns the true incremental KPI, effect·Σ y over those cells.
pub fn inject(y: &mut Array2<f64>, treated: &[usize], start: usize, effect: f64) -> f64 {
    let mut truth = 0.0;
    for &g in treated {
        for t in start..y.ncols() {
            truth += effect * y[[g, t]];
            y[[g, t]] *= 1.0 + effect;
        }
    }
    truth
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_independent() {
        let w = World::new(PanelSpec { n_geos: 5, n_periods: 30, ..Default::default() }, 7);
        assert_eq!(w.draw(3), w.draw(3));
        assert_ne!(w.draw(3), w.draw(4));
        let mean_size = w.sizes.iter().sum::<f64>() / 5.0;
        assert!((mean_size - 1.0).abs() < 1e-12);
    }

    #[test]
    fn noise_has_the_stated_ar1_autocorrelation() {
        // one geo, no trends or seasonality: the series is level·(1 + ε) with ε AR(1)(0.5), sd 0.1.
        let spec = PanelSpec {
            n_geos: 1,
            n_periods: 20_000,
            size_sigma: 0.0,
            factor_sd: 0.0,
            season_amp: 0.0,
            ar: 0.5,
            noise_sd: 0.1,
            ..Default::default()
        };
        let y = World::new(spec, 1).draw(0);
        let e: Vec<f64> = y.row(0).iter().map(|v| v / 1000.0 - 1.0).collect();
        let n = e.len() as f64;
        let var = e.iter().map(|v| v * v).sum::<f64>() / n;
        let r1 = e.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / n / var;
        // 20 000 AR(1) draws: the sd estimate's relative error ≈ √((1+ρ²)/(2n(1−ρ²))) ≈ 0.65 %,
        // the lag-1 autocorrelation's ≈ √((1−ρ²)/n) ≈ 0.006: both bounds are ≥ 4.5 of them
        assert!((var.sqrt() - 0.1).abs() < 0.1 * 0.03, "sd {}", var.sqrt());
        assert!((r1 - 0.5).abs() < 0.03, "lag-1 autocorrelation {r1}");
    }
}
