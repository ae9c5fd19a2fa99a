//! Power by simulation on history (GeoLift's `GeoLiftPower`, made fast).
//!
//! For a treated set, a test length `d` and an effect grid, the engine takes `W` rolling historical
//! windows: window `w` ends `w·step` periods before the end of the data and its test covers the `d`
//! periods before that end; every period before the window's test start is its pre-period, later
//! periods are dropped (nothing from the future is used). In every window the effect `e` is injected
//! multiplicatively into the treated geos' test-window KPI, `y ← (1 + e)·y` (GeoLift's convention), the
//! estimator is run with its inference, and the detection rate (`p < α`), the bias and the spread of
//! the estimated relative lift are recorded over the windows.
//!
//! # Why one fit per window serves every effect size
//! The point estimators (synthetic control, DiD) choose their weights from pre-period data only. The
//! injection touches only test-window values of the treated geos, so the weights, the counterfactual
//! ŷₜ and the pre-period fit are the same for every `e`: with O = Σ_post x₁ₜ (treated average) and
//! C = Σ_post ŷₜ, the estimated lift is ((1 + e)·O − C)/|C| and the ATT is ((1 + e)·O − C)/d, affine
//! in `e`. The normal test's standard error also uses pre-period residuals only. So under
//! [`DesignInference::Normal`] the whole power curve costs one weight fit per window, and every
//! extra effect size costs O(1). Conformal inference refits the weights on pre *and* test periods
//! under H₀ (Chernozhukov, Wüthrich & Zhu 2021), which does depend on `e`: one warm-started refit
//! plus `ns` permutation statistics per (window, effect) — still cheap, and the permutations are
//! drawn once per (duration, window) and shared by all candidates and effects (common random numbers).

use super::error::{DesignError, bad};
use crate::inference::derive_seed;
use crate::sc::fit_sc;
use crate::stats::t_cdf;
use ndarray::{Array2, ArrayView2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The estimator run in every simulated window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesignEstimator {
    /// Synthetic control with GeoLift's conventions ([`crate::SyntheticControl`]: treated average,
    /// simplex weights, series demeaned by their pre-period means when `demean`).
    Sc { demean: bool },
    /// 2×2 difference in differences ([`crate::DiD`]): uniform donor weights, i.e. synthetic control
    /// with weights fixed at 1/N₀.
    DiD,
}

/// The test run in every simulated window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesignInference {
    /// GeoLift's conformal p-value (Chernozhukov, Wüthrich & Zhu 2021, iid permutations, statistic
    /// Σ_post |uₜ|): the weights are refitted on all periods of the window under H₀: no effect, and p is
    /// the share of `permutations` random permutations of the residuals whose statistic is at least the
    /// observed one. Exact as GeoLift runs it; cost per (window, effect): one warm-started SC refit
    /// (O(N₀²·T)) plus `permutations × d` additions.
    Conformal { permutations: usize },
    /// A t test on the gap gₜ = x₁ₜ − Σⱼ wⱼ x₀ⱼₜ between the treated average and the weighted donors:
    /// with demeaning the estimate is τ̂ = mean_post g − mean_pre g, and if gₜ is iid
    /// Var τ̂ = σ²_g (1/d + 1/T₀), σ²_g estimated by the pre-period sample variance of g (T₀ − 1
    /// degrees of freedom), so τ̂/se is Student t under H₀ (without demeaning τ̂ = mean_post g,
    /// se² = mean_pre(g²)/d, T₀ degrees of freedom). **Exact for DiD** with iid noise (weights fixed,
    /// not fitted). For synthetic control it ignores the in-sample fit of the weights, which shrinks
    /// the pre-period residuals: an approximation that tends to be anti-conservative when the donor
    /// pool is large relative to T₀. Cost: O(1) per effect size once the window is fitted.
    Normal,
}

/// Settings of a power simulation.
#[derive(Debug, Clone, Serialize)]
pub struct PowerConfig {
    pub estimator: DesignEstimator,
    pub inference: DesignInference,
    /// Significance level; an effect is detected when p < α (GeoLift's default 0.1).
    pub alpha: f64,
    /// Number of rolling historical windows (GeoLift's `lookback_window`).
    pub windows: usize,
    /// Periods between consecutive window ends.
    pub step: usize,
    /// Smallest pre-period any window may have.
    pub min_pre: usize,
    /// Master seed; per-window permutation seeds are `derive_seed(seed, stream, window key)`.
    pub seed: u64,
    /// Effect sizes (relative: 0.1 = +10 %; negative = go-dark), each > −1.
    pub effects: Vec<f64>,
    /// The standard error's placebo windows (see [`PowerCurve::se_lift`]): every window, ⌈d/8⌉ apart,
    /// whose pre-period holds at least this share of the longest one (and at least `min_pre`
    /// periods). In (0, 1]; 1 keeps only the latest window.
    pub se_min_pre_share: f64,
}

impl Default for PowerConfig {
    fn default() -> Self {
        Self {
            estimator: DesignEstimator::Sc { demean: true },
            inference: DesignInference::Conformal { permutations: 1000 },
            alpha: 0.1,
            windows: 10,
            step: 1,
            min_pre: 20,
            seed: 20_210_401,
            effects: vec![0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3],
            se_min_pre_share: 0.5,
        }
    }
}

impl PowerConfig {
    /// Checks the settings; errors name the option.
    pub fn validate(&self) -> Result<(), DesignError> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(bad("--alpha", format!("{} is not in (0, 1)", self.alpha)));
        }
        if self.windows == 0 {
            return Err(bad("--windows", "need at least one historical window"));
        }
        if self.step == 0 {
            return Err(bad("--step", "windows must be at least one period apart"));
        }
        if self.min_pre < 3 {
            return Err(bad("--min-pre", "the pre-period needs at least 3 periods to estimate a standard error"));
        }
        if !(self.se_min_pre_share > 0.0 && self.se_min_pre_share <= 1.0) {
            return Err(bad("--se-min-pre-share", format!("{} is not in (0, 1]", self.se_min_pre_share)));
        }
        if self.effects.is_empty() {
            return Err(bad("--effects", "the effect grid is empty"));
        }
        if let Some(e) = self.effects.iter().find(|e| !e.is_finite() || **e <= -1.0) {
            return Err(bad("--effects", format!("effect {e} is not a finite relative change above −1 (−100 %)")));
        }
        if let DesignInference::Conformal { permutations } = self.inference {
            let need = (2.0 / self.alpha).ceil() as usize;
            if permutations < need {
                return Err(bad(
                    "--permutations",
                    format!("{permutations} permutations cannot resolve p < {}: use at least {need}", self.alpha),
                ));
            }
        }
        Ok(())
    }

    /// Human-readable method description for records.
    pub fn method(&self) -> String {
        let est = match self.estimator {
            DesignEstimator::Sc { demean: true } => {
                "synthetic control (GeoLift: demeaned, simplex weights)".to_string()
            }
            DesignEstimator::Sc { demean: false } => "synthetic control (not demeaned, simplex weights)".to_string(),
            DesignEstimator::DiD => "difference in differences".to_string(),
        };
        let inf = match self.inference {
            DesignInference::Conformal { permutations } => format!("conformal p-value ({permutations} permutations)"),
            DesignInference::Normal => "t test on the pre-period gap variance".to_string(),
        };
        format!(
            "{est}; {inf}; α = {}; effect injected multiplicatively into the treated geos over {} rolling windows (step {}); standard error = root mean square of the placebo-in-time errors over windows ⌈duration/8⌉ apart whose pre-period is at least {} of the longest",
            self.alpha, self.windows, self.step, self.se_min_pre_share
        )
    }
}

/// One point of a power curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerPoint {
    /// Injected relative effect.
    pub effect: f64,
    /// Share of windows with p < α.
    pub power: f64,
    /// Mean estimated relative lift over the windows.
    pub mean_estimate: f64,
    /// `mean_estimate − effect`.
    pub bias: f64,
    /// Sample standard deviation of the estimated relative lift over the windows (0 with one window).
    /// The windows overlap, so this understates the readout's standard error several-fold: that is
    /// [`PowerCurve::se_lift`].
    pub sd: f64,
    pub mean_p_value: f64,
}

/// Minimum detectable effects on each side of zero (relative; `negative` is ≤ 0).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Mde {
    pub positive: Option<f64>,
    pub negative: Option<f64>,
}

/// The simulated power curve of one design (treated set × duration).
#[derive(Debug, Clone, Serialize)]
pub struct PowerCurve {
    /// Indices of the treated geos in the panel.
    pub treated: Vec<usize>,
    pub duration: usize,
    pub windows: usize,
    pub points: Vec<PowerPoint>,
    /// Mean estimated lift with nothing injected (placebo in time: the estimator's bias on history;
    /// GeoLift's `abs_lift_in_zero` is its absolute value).
    pub lift_at_zero: f64,
    /// Predicted standard error (root mean squared error) of the relative lift the readout will report: the root mean square,
    /// about zero, of the placebo-in-time errors (the estimate with nothing injected) over
    /// [`PowerEngine::se_windows`] windows — test windows ⌈d/8⌉ periods apart whose pre-period is at least
    /// [`PowerConfig::se_min_pre_share`] of the longest. See [`PowerEngine::se_windows`] for why
    /// this and not the spread over the power windows.
    pub se_lift: f64,
    /// The model-based standard error of the relative lift (the normal test's se/|C|·d), averaged over
    /// windows. A diagnostic only: it assumes iid gaps and ignores the weights' fit, and was 0.35–0.45
    /// of the actual spread on simulated panels (see [`PowerEngine::se_windows`]).
    pub se_lift_model: f64,
    /// Mean over windows of the counterfactual KPI summed over the treated geos and the test window:
    /// what a relative lift is a share of (incremental KPI = lift × `baseline_kpi`).
    pub baseline_kpi: f64,
    /// Mean over windows of the pre-period fit, scaled L2 imbalance (1 = as good as uniform weights).
    pub scaled_l2: f64,
}

impl PowerCurve {
    /// MDE at `target` power: on each side of zero, the smallest |effect| on the grid whose power
    /// reaches `target`, linearly interpolated between it and the next smaller |effect| on that side
    /// (including 0 when on the grid). `None` when no grid point on that side reaches `target`.
    pub fn mde(&self, target: f64) -> Mde {
        let side = |sign: f64| -> Option<f64> {
            let mut pts: Vec<(f64, f64)> =
                self.points.iter().filter(|p| p.effect * sign >= 0.0).map(|p| (p.effect * sign, p.power)).collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let i = pts.iter().position(|&(e, p)| e > 0.0 && p >= target)?;
            let (e1, p1) = pts[i];
            let m = if i == 0 || pts[i - 1].1 >= target {
                e1
            } else {
                let (e0, p0) = pts[i - 1];
                e0 + (target - p0) / (p1 - p0) * (e1 - e0)
            };
            Some(sign * m)
        };
        Mde { positive: side(1.0), negative: side(-1.0) }
    }

    /// Standard error of the incremental KPI (treated geos, whole test): `se_lift × baseline_kpi`.
    pub fn se_incremental(&self) -> f64 {
        self.se_lift * self.baseline_kpi
    }

    /// Standard error of the iROAS for a spend change `budget` over the test: `se_incremental / |budget|`.
    pub fn se_iroas(&self, budget: f64) -> f64 {
        self.se_incremental() / budget.abs()
    }
}

/// The permutations of one window: the test-window positions of each, flat: `[perm * d + i]`.
pub type WindowPerms = Vec<u16>;

/// The power simulation on a geos × periods KPI matrix.
pub struct PowerEngine<'a> {
    y: ArrayView2<'a, f64>,
    cfg: &'a PowerConfig,
}

struct WindowOut {
    /// Estimated relative lift per effect, and at zero.
    est: Vec<f64>,
    est0: f64,
    p: Vec<f64>,
    se_rel: f64,
    baseline: f64,
    scaled_l2: f64,
    /// The fitted donor weights (empty for DiD).
    weights: Vec<f64>,
}

const PERM_STREAM: u64 = 0x6465_7369_676e; // "design"

impl<'a> PowerEngine<'a> {
    /// An engine over `y` (geos × periods, oldest period first). Validates the configuration.
    pub fn new(y: ArrayView2<'a, f64>, cfg: &'a PowerConfig) -> Result<Self, DesignError> {
        cfg.validate()?;
        if y.ncols() > u16::MAX as usize {
            return Err(bad("--data", format!("{} periods is more than the {} supported", y.ncols(), u16::MAX)));
        }
        Ok(Self { y, cfg })
    }

    pub fn config(&self) -> &PowerConfig {
        self.cfg
    }

    /// Test start of window `w` for duration `d` (window 0 ends at the last period).
    fn start(&self, d: usize, w: usize) -> usize {
        self.y.ncols() - w * self.cfg.step - d
    }

    /// Checks that `d` periods fit `windows` times into the history with `min_pre` pre-periods
    /// (saturating arithmetic: absurd option values give this error, never an overflow), and that
    /// the conformal permutations of `d` fit in memory.
    pub fn check_duration(&self, d: usize) -> Result<(), DesignError> {
        let c = self.cfg;
        if d == 0 {
            return Err(bad("--duration", "a test needs at least one period"));
        }
        let needed = d.saturating_add(c.windows.saturating_sub(1).saturating_mul(c.step)).saturating_add(c.min_pre);
        if needed > self.y.ncols() {
            return Err(DesignError::DurationTooLong {
                duration: d,
                windows: c.windows,
                step: c.step,
                min_pre: c.min_pre,
                needed,
                periods: self.y.ncols(),
            });
        }
        self.check_memory(&[d])
    }

    /// Refuses when the permutations for `durations` (stored together during a search:
    /// Σ_d windows × permutations × d × 2 bytes) would exceed [`crate::error::MEMORY_LIMIT_BYTES`].
    pub fn check_memory(&self, durations: &[usize]) -> Result<(), DesignError> {
        let DesignInference::Conformal { permutations: ns } = self.cfg.inference else {
            return Ok(());
        };
        let per_perm: f64 = durations.iter().map(|&d| 2.0 * d as f64 * self.cfg.windows as f64).sum();
        crate::error::check_memory(
            "--permutations",
            ns,
            ns as f64,
            per_perm,
            &format!("storing {ns} permutations for {} windows and durations {durations:?}", self.cfg.windows),
        )?;
        Ok(())
    }

    /// The permutations for every window of duration `d` (empty under normal inference). Each window's
    /// set is drawn from its own generator, seeded by `derive_seed(seed, stream, d·2³² + w)`: only the
    /// `d` positions a permutation sends into the test window matter for the statistic, so each
    /// permutation is stored as those positions (a partial Fisher–Yates shuffle, uniformly distributed).
    pub fn permutations(&self, d: usize) -> Vec<WindowPerms> {
        let DesignInference::Conformal { permutations: ns } = self.cfg.inference else {
            return vec![];
        };
        (0..self.cfg.windows)
            .into_par_iter()
            .map(|w| {
                let tt = self.start(d, w) + d;
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(derive_seed(
                    self.cfg.seed,
                    PERM_STREAM,
                    ((d as u64) << 32) | w as u64,
                ));
                let mut idx: Vec<u16> = (0..tt as u16).collect();
                let mut out = Vec::with_capacity(ns * d);
                for _ in 0..ns {
                    for i in 0..d {
                        let j = rng.random_range(i..tt);
                        idx.swap(i, j);
                    }
                    out.extend_from_slice(&idx[..d]);
                }
                out
            })
            .collect()
    }

    /// The power curve of treating `treated` for `d` periods with `donors` as the control pool.
    pub fn power_curve(&self, treated: &[usize], donors: &[usize], d: usize) -> Result<PowerCurve, DesignError> {
        self.check_duration(d)?;
        let perms = self.permutations(d);
        self.power_curve_with(treated, donors, d, &perms)
    }

    /// As [`PowerEngine::power_curve`] with precomputed [`PowerEngine::permutations`] for `d`.
    pub fn power_curve_with(
        &self,
        treated: &[usize],
        donors: &[usize],
        d: usize,
        perms: &[WindowPerms],
    ) -> Result<PowerCurve, DesignError> {
        self.check_duration(d)?;
        let n = self.y.nrows();
        if treated.is_empty() || treated.iter().chain(donors).any(|&g| g >= n) {
            return Err(bad("treated", "treated and donor indices must be non-empty and inside the panel"));
        }
        if donors.is_empty() || donors.iter().any(|g| treated.contains(g)) {
            return Err(bad("treated", "need at least one donor geo, disjoint from the treated geos"));
        }
        let wins: Vec<WindowOut> =
            (0..self.cfg.windows).into_par_iter().map(|w| self.window(treated, donors, d, w, perms.get(w))).collect();
        // placebo-in-time errors for the standard error: the power windows' where they coincide
        // (the window starting j periods before the latest is power window j/step), one extra fit
        // (warm-started from the latest window's weights) for every other
        let step = self.cfg.step;
        let se_errors: Vec<f64> = (0..self.se_windows(d))
            .into_par_iter()
            .map(|i| {
                let j = i * se_stride(d);
                if j.is_multiple_of(step) && j / step < wins.len() {
                    wins[j / step].est0
                } else {
                    self.placebo_error(treated, donors, d, self.y.ncols() - j - d, &wins[0].weights)
                }
            })
            .collect();
        let se_lift = (se_errors.iter().map(|e| e * e).sum::<f64>() / se_errors.len() as f64).sqrt();
        let nw = wins.len() as f64;
        let mean = |f: &dyn Fn(&WindowOut) -> f64| wins.iter().map(f).sum::<f64>() / nw;
        let sd = |f: &dyn Fn(&WindowOut) -> f64| {
            if wins.len() < 2 {
                return 0.0;
            }
            let m = mean(f);
            (wins.iter().map(|o| (f(o) - m).powi(2)).sum::<f64>() / (nw - 1.0)).sqrt()
        };
        let points = self
            .cfg
            .effects
            .iter()
            .enumerate()
            .map(|(i, &e)| {
                let m = mean(&|o| o.est[i]);
                PowerPoint {
                    effect: e,
                    power: mean(&|o| if o.p[i] < self.cfg.alpha { 1.0 } else { 0.0 }),
                    mean_estimate: m,
                    bias: m - e,
                    sd: sd(&|o| o.est[i]),
                    mean_p_value: mean(&|o| o.p[i]),
                }
            })
            .collect();
        Ok(PowerCurve {
            treated: treated.to_vec(),
            duration: d,
            windows: self.cfg.windows,
            points,
            lift_at_zero: mean(&|o| o.est0),
            se_lift,
            se_lift_model: mean(&|o| o.se_rel),
            baseline_kpi: mean(&|o| o.baseline),
            scaled_l2: mean(&|o| o.scaled_l2),
        })
    }

    /// Number of placebo-in-time windows behind the standard error for duration `d`: test starts
    /// s = T − d − j·⌈d/8⌉ for j = 0, 1, ... while the pre-period s is at least
    /// max(`min_pre`, ⌈`se_min_pre_share`·(T − d)⌉) — at least one once [`Self::check_duration`] passed.
    ///
    /// # Why the root mean square over these windows
    /// σ_exp (the readout's standard error in KPI units) is what experiment ranking prices, so it has
    /// to be right on average and not too noisy for one design. Measured on simulated factor-model
    /// panels (`crate::simulate`, tests/design_se.rs: 40 geos, 90 days of history, random-walk
    /// trends, AR(1) noise; 2 and 5 treated geos; 14 and 28 days), against the spread of real
    /// readouts of tests run with the design:
    ///
    /// * the former predictor, the sample sd of the estimate over the 10 power windows at step 1, was
    ///   0.3–0.4 of the actual spread. Those windows overlap almost entirely, so their errors are
    ///   strongly correlated and the sd about their own mean removes most of the variance
    ///   (E s² = σ²(1 − ρ̄) for an average correlation ρ̄ between windows);
    /// * the normal test's model SE (`se_lift_model`: iid gap, in-sample residuals) and an analytic
    ///   AR(1) variance of the pre-period residual process with a degrees-of-freedom correction for the
    ///   fitted weights were 0.35–0.45 and 0.55–0.7: in-sample residuals hide the drift of the donors'
    ///   trend mismatch that the weights absorbed in the pre-period but cannot follow afterwards;
    /// * the mean square about **zero** of placebo-in-time errors is unbiased for the readout's mean
    ///   squared error whatever the correlation between windows (each term is), and it contains
    ///   every error source the readout has — the weights' fit noise, autocorrelation, trend drift,
    ///   the estimator's bias on history — without a model of them (the placebo-in-time idea of
    ///   Abadie, Diamond & Hainmueller 2015, AJPS 59(2), §"placebo studies"). Its catch is that
    ///   a placebo window has a shorter pre-period than the real test, and synthetic control overfits
    ///   short pre-periods (Abadie 2021, JEL 59(2), §7: the fit's bias bound grows as T₀ shrinks):
    ///   windows down to a 20-period pre-period overstated the SE by 10–40 % (120 replications).
    ///   Keeping windows whose pre-period is at least half the longest gives predicted / actual
    ///   1.00–1.04 over 400 full readouts per design (0.86–1.10 on two other simulated worlds: AR(0.8)
    ///   noise; white noise with very unequal geo sizes and 60 days of history), with a per-design
    ///   coefficient of variation of 0.35–0.55 — one design's σ_exp rests on a few non-overlapping
    ///   test lengths of history and is that noisy; the latest 10 windows alone gave 0.85–0.9 with
    ///   0.6 (fewer correlated windows: noisier and, by Jensen, lower on average). In the same runs
    ///   the readout's own SE (conformal interval half-width / z, iid permutations) was 0.60–0.78 of
    ///   the actual spread. The extra windows need one weight fit each (no inference), every
    ///   ⌈d/8⌉ periods.
    pub fn se_windows(&self, d: usize) -> usize {
        let span = self.y.ncols().saturating_sub(d);
        let lo = self.cfg.min_pre.max((self.cfg.se_min_pre_share * span as f64).ceil() as usize).min(span);
        (span - lo) / se_stride(d) + 1
    }

    /// The relative placebo error of the test window starting at `s` (nothing injected): one weight
    /// fit on the periods before `s`, warm-started from `w0`.
    fn placebo_error(&self, treated: &[usize], donors: &[usize], d: usize, s: usize, w0: &[f64]) -> f64 {
        let y = self.y;
        let tt = s + d;
        let k = treated.len() as f64;
        let x1: Vec<f64> = (0..tt).map(|t| treated.iter().map(|&g| y[[g, t]]).sum::<f64>() / k).collect();
        let x0 = Array2::from_shape_fn((donors.len(), tt), |(j, t)| y[[donors[j], t]]);
        let cf = match self.cfg.estimator {
            DesignEstimator::Sc { demean } => fit_sc(&x1, x0.view(), s, demean, Some(w0)).counterfactual,
            DesignEstimator::DiD => uniform_counterfactual(&x1, &x0, s),
        };
        let o: f64 = x1[s..].iter().sum();
        let c: f64 = cf[s..].iter().sum();
        (o - c) / c.abs()
    }

    fn window(&self, treated: &[usize], donors: &[usize], d: usize, w: usize, perms: Option<&Vec<u16>>) -> WindowOut {
        let y = self.y;
        let s = self.start(d, w);
        let tt = s + d;
        let k = treated.len() as f64;
        let x1: Vec<f64> = (0..tt).map(|t| treated.iter().map(|&g| y[[g, t]]).sum::<f64>() / k).collect();
        let x0 = Array2::from_shape_fn((donors.len(), tt), |(j, t)| y[[donors[j], t]]);
        let demean = !matches!(self.cfg.estimator, DesignEstimator::Sc { demean: false });
        let (w_fit, cf, scaled_l2) = match self.cfg.estimator {
            DesignEstimator::Sc { demean } => {
                let f = fit_sc(&x1, x0.view(), s, demean, None);
                (f.weights, f.counterfactual, f.scaled_l2)
            }
            DesignEstimator::DiD => (vec![], uniform_counterfactual(&x1, &x0, s), 1.0),
        };
        let o: f64 = x1[s..].iter().sum();
        let c: f64 = cf[s..].iter().sum();
        // Gap variance on the pre-period and the normal test's standard error of the ATT.
        let g: Vec<f64> = (0..s).map(|t| x1[t] - cf[t]).collect();
        let (se_att, df) = if demean {
            let gm = g.iter().sum::<f64>() / s as f64;
            let var = g.iter().map(|v| (v - gm).powi(2)).sum::<f64>() / (s - 1) as f64;
            ((var * (1.0 / d as f64 + 1.0 / s as f64)).sqrt(), (s - 1) as f64)
        } else {
            ((g.iter().map(|v| v * v).sum::<f64>() / s as f64 / d as f64).sqrt(), s as f64)
        };
        let rel = |e: f64| ((1.0 + e) * o - c) / c.abs();
        let est: Vec<f64> = self.cfg.effects.iter().map(|&e| rel(e)).collect();
        let p: Vec<f64> = match self.cfg.inference {
            DesignInference::Normal => self
                .cfg
                .effects
                .iter()
                .map(|&e| {
                    let att = ((1.0 + e) * o - c) / d as f64;
                    if se_att > 0.0 {
                        2.0 * (1.0 - t_cdf((att / se_att).abs(), df))
                    } else if att == 0.0 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect(),
            DesignInference::Conformal { permutations: ns } => {
                let perms = perms.map(|p| p.as_slice()).unwrap_or(&[]);
                self.cfg
                    .effects
                    .iter()
                    .map(|&e| {
                        let adj: Vec<f64> = (0..tt).map(|t| if t >= s { (1.0 + e) * x1[t] } else { x1[t] }).collect();
                        let cf_all = match self.cfg.estimator {
                            DesignEstimator::Sc { demean } => {
                                fit_sc(&adj, x0.view(), tt, demean, Some(&w_fit)).counterfactual
                            }
                            DesignEstimator::DiD => uniform_counterfactual(&adj, &x0, tt),
                        };
                        let u: Vec<f64> = (0..tt).map(|t| (adj[t] - cf_all[t]).abs()).collect();
                        conformal_p(&u, s, d, ns, perms)
                    })
                    .collect()
            }
        };
        let se_rel = se_att * d as f64 / c.abs();
        WindowOut { est, est0: rel(0.0), p, se_rel, baseline: c * k, scaled_l2, weights: w_fit }
    }
}

/// Periods between the standard error's placebo windows for a `d`-period test: ⌈d/8⌉. Windows one
/// period apart share d − 1 of their d periods, so their errors are nearly the same number; spacing
/// them by d/8 keeps eight windows per test length of history (the mean square's precision is
/// set by the number of non-overlapping test lengths, not by the window count) at a fraction of the
/// fits: on the simulated panels of tests/design_se.rs the ratio to the actual spread and the
/// per-design scatter were unchanged within Monte Carlo error.
fn se_stride(d: usize) -> usize {
    d.div_ceil(8)
}

/// DiD counterfactual: donor average shifted by the mean gap over the first `fit` periods.
fn uniform_counterfactual(x1: &[f64], x0: &Array2<f64>, fit: usize) -> Vec<f64> {
    let n0 = x0.nrows() as f64;
    let avg: Vec<f64> = (0..x1.len()).map(|t| x0.column(t).sum() / n0).collect();
    let shift = (0..fit).map(|t| x1[t] - avg[t]).sum::<f64>() / fit as f64;
    avg.iter().map(|a| a + shift).collect()
}

/// Conformal permutation p-value with statistic Σ_post |uₜ| (`abs_u` holds |uₜ|): the share of the
/// `ns` permutations (each given by the `d` positions it sends to the test window) whose statistic is
/// at least the observed one, with a relative tolerance so that reorderings count as ties.
fn conformal_p(abs_u: &[f64], s: usize, d: usize, ns: usize, perms: &[u16]) -> f64 {
    let obs: f64 = abs_u[s..].iter().sum();
    let tol = 1e-10 * abs_u.iter().sum::<f64>();
    let hits = perms.chunks_exact(d).filter(|p| p.iter().map(|&i| abs_u[i as usize]).sum::<f64>() >= obs - tol).count();
    hits as f64 / ns as f64
}

/// Two-sided Student t critical value t_{1−α/2, df} (bisection on [`t_cdf`], exact to ~1e-12): the
/// threshold the normal test compares |τ̂|/se with.
pub fn t_critical(alpha: f64, df: f64) -> f64 {
    let target = 1.0 - alpha / 2.0;
    let (mut lo, mut hi) = (0.0, 1e3);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}
