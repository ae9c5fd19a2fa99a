//! Convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021),
//! "Rank-normalization, folding, and localization: an improved R-hat for assessing convergence of
//! MCMC", Bayesian Analysis 16(2), computed exactly as the R package `posterior` computes them.
//!
//! Every function takes the draws of **one parameter** as `[chain][draw]` (anything that derefs to
//! a slice of chains, each a slice of draws; all chains must have the same length, or the function
//! panics). On the ArviZ/`posterior` reference set (tests/diagnostics_reference.rs: 48 parameters ×
//! 17 diagnostics) the largest absolute difference is 6e-11 (an ESS of ~1000, i.e. 1e-13 relative)
//! and R-hat agrees to 1e-14; the differences come from the FFT and the summation order.
//!
//! # Which `posterior`
//!
//! The oracle file says it was made with `posterior` 0.1.2, but its `ess_sd` and `mcse_sd` columns
//! are those of later releases (ArviZ regenerated the file): [`ess_sd`] is the split-chain ESS of
//! `(x - mean(x))²` and [`mcse_sd`] uses the Kenney–Keeping moments without assuming normality;
//! 0.1.2's `min(ess_mean(x), ess_mean(x²))` and Stirling-based `mcse_sd` differ from the oracle by
//! up to 700 and 7e-3 and are not implemented. The newest `posterior` source takes the ESS of
//! `|x - mean(x)|` for `ess_sd`; we follow the oracle. Everything else (split chains, rank
//! normalisation with Blom's fractional offset 3/8, the biased FFT autocovariance, Geyer's initial
//! positive and monotone sequences with the improved antithetic term, the `S·log10(S)` cap, quantile
//! MCSE with `floor`/`ceiling` order-statistic indices) is the same in every release since 2020.
//!
//! # Edge cases (all as in current `posterior`)
//!
//! * **NaN anywhere** in a parameter's draws: every diagnostic is NaN (`posterior` gives `NA`).
//!   ±∞ is an ordinary (extreme) value for the rank-normalised `rhat` and `ess_bulk` and makes the
//!   others NaN, as in `posterior`.
//! * **Constant draws** (max − min below machine epsilon after the transformation the diagnostic
//!   applies): R-hat and ESS are NaN (`posterior` ≥ 1.0 returns `NA`; 0.1.x returned 1 and S).
//!   Chains that are each constant but differ from one another are *not* constant overall: R-hat is
//!   then +∞ (zero within-chain variance).
//! * **Split chains** drop the middle draw when the draw count is odd (`x[1:floor(n/2)]` and
//!   `x[ceiling(n/2 + 1):n]`); a single draw is not split.
//! * **Short chains**: ESS needs at least 3 draws per (split) chain, so split-based ESS is NaN below
//!   6 draws per chain; R-hat needs 2 draws per (split) chain and, unsplit, 2 chains. With 3–5 draws
//!   per (split) chain Geyer's sum stops at lag 0 and `posterior`'s `sum(rho[1:max_t])` with
//!   `max_t = 0` sums `rho[1]` (R's `1:0` is `c(1, 0)`); this quirk is reproduced.
//! * The ESS cap `S·log10(S)` (`tau ≥ 1/log10(S)`) is applied silently (`posterior` warns).

mod fft;
pub mod special;

use fft::Fft;
pub use fft::autocovariance;

use special::{qbeta, qnorm};

/// Draws of one parameter, chain-major: `data[c * n_draws + i]` is draw `i` of chain `c`.
#[derive(Debug, Clone)]
struct Matrix {
    n_chains: usize,
    n_draws: usize,
    data: Vec<f64>,
}

impl Matrix {
    fn from_chains<C: AsRef<[f64]>>(chains: &[C]) -> Matrix {
        let n_draws = chains.first().map_or(0, |c| c.as_ref().len());
        let mut data = Vec::with_capacity(n_draws * chains.len());
        for (i, chain) in chains.iter().enumerate() {
            let chain = chain.as_ref();
            assert_eq!(chain.len(), n_draws, "chain {i} has {} draws but chain 0 has {n_draws}", chain.len());
            data.extend_from_slice(chain);
        }
        Matrix { n_chains: chains.len(), n_draws, data }
    }

    fn chain(&self, c: usize) -> &[f64] {
        &self.data[c * self.n_draws..(c + 1) * self.n_draws]
    }

    fn map(&self, f: impl Fn(f64) -> f64) -> Matrix {
        Matrix { data: self.data.iter().map(|&v| f(v)).collect(), ..*self }
    }

    /// `posterior`'s `.split_chains`: each chain becomes its first `floor(n/2)` and its last
    /// `floor(n/2)` draws (the middle draw of an odd-length chain is dropped); `n = 1` is unsplit.
    fn split(&self) -> Matrix {
        let n = self.n_draws;
        if n < 2 {
            return self.clone();
        }
        let half = n / 2;
        let mut data = Vec::with_capacity(2 * half * self.n_chains);
        for c in 0..self.n_chains {
            data.extend_from_slice(&self.chain(c)[..half]);
        }
        for c in 0..self.n_chains {
            data.extend_from_slice(&self.chain(c)[n - half..]);
        }
        Matrix { n_chains: 2 * self.n_chains, n_draws: half, data }
    }

    /// `posterior`'s `should_return_NA`: non-finite values, or constant to machine epsilon.
    fn should_return_na(&self) -> bool {
        if self.data.is_empty() || self.data.iter().any(|v| !v.is_finite()) {
            return true;
        }
        let (lo, hi) = self.data.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        (hi - lo).abs() < f64::EPSILON
    }
}

/// NaN-propagating maximum and minimum (R's `max`/`min` return `NA` if any argument is `NA`).
fn max_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}
fn min_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample variance (denominator n - 1), NaN for fewer than two values (R's `var`).
fn var(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64
}

/// Sorted copy (NaN last).
fn sorted(x: &[f64]) -> Vec<f64> {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// Sample quantile, R's default `quantile(x, prob, type = 7)`: NaN if `x` is empty or has a NaN.
pub fn quantile(x: &[f64], prob: f64) -> f64 {
    if x.is_empty() || x.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    quantile_sorted(&sorted(x), prob)
}

/// Type-7 quantile of already sorted values, with R's arithmetic: index `1 + (n-1)p`, and
/// `(1-h)·x[lo] + h·x[hi]` only where `x[hi] != x[lo]`.
pub(crate) fn quantile_sorted(s: &[f64], prob: f64) -> f64 {
    let n = s.len();
    if n == 0 || prob.is_nan() {
        return f64::NAN;
    }
    let index = (n - 1) as f64 * prob; // 0-based
    let lo = index.floor() as usize;
    let hi = (index.ceil() as usize).min(n - 1);
    let qs = s[lo];
    if index > lo as f64 && s[hi] != qs {
        let h = index - lo as f64;
        (1.0 - h) * qs + h * s[hi]
    } else {
        qs
    }
}

/// Median over all draws (R's `median`: mean of the two middle values for even counts).
fn median(x: &[f64]) -> f64 {
    if x.is_empty() || x.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut v = x.to_vec();
    let n = v.len();
    let (_, &mut upper, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        upper
    } else {
        // The lower middle value is the largest of the lower half.
        let lower = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

/// Ranks with ties averaged (R's `rank(x, ties.method = "average")`), 1-based.
fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<(f64, usize)> = x.iter().copied().zip(0..).collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut ranks = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && order[end].0 == order[start].0 {
            end += 1;
        }
        // Positions start..end (0-based) share the average 1-based rank.
        let avg = (start + end + 1) as f64 / 2.0;
        for &(_, i) in &order[start..end] {
            ranks[i] = avg;
        }
        start = end;
    }
    ranks
}

/// Rank normalisation, `posterior::z_scale` with Blom's offset c = 3/8:
/// `qnorm((rank - 3/8) / (S - 2·3/8 + 1))` over all draws of all chains; NaN stays NaN.
fn z_scale(x: &Matrix) -> Matrix {
    const C: f64 = 3.0 / 8.0;
    let s = x.data.len() as f64;
    let ranks = average_ranks(&x.data);
    let data = x
        .data
        .iter()
        .zip(ranks)
        .map(|(&v, r)| if v.is_nan() { f64::NAN } else { qnorm((r - C) / (s - 2.0 * C + 1.0)) })
        .collect();
    Matrix { data, ..*x }
}

/// Draws folded around their median, `abs(x - median(x))`.
fn fold(x: &Matrix) -> Matrix {
    let med = median(&x.data);
    x.map(|v| (v - med).abs())
}

/// `posterior`'s `.rhat`: the classic potential scale reduction factor of the given chains.
fn rhat_core(x: &Matrix) -> f64 {
    if x.should_return_na() {
        return f64::NAN;
    }
    let n = x.n_draws as f64;
    let chain_means: Vec<f64> = (0..x.n_chains).map(|c| mean(x.chain(c))).collect();
    let chain_vars: Vec<f64> = (0..x.n_chains).map(|c| var(x.chain(c))).collect();
    let var_between = n * var(&chain_means);
    let var_within = mean(&chain_vars);
    ((var_between / var_within + n - 1.0) / n).sqrt()
}

/// Autocovariances averaged over chains, computed lag by lag on demand (Geyer's truncation usually
/// stops after a few lags) and all at once by FFT if more than [`AcovMeans::DIRECT_LAGS`] lags are
/// needed. The two agree to ~1e-13 relative, far inside the 1e-8 the oracle asks for.
struct AcovMeans<'a> {
    x: &'a Matrix,
    chain_means: Vec<f64>,
    direct: Vec<f64>,
    all: Option<Vec<f64>>,
}

impl<'a> AcovMeans<'a> {
    /// Beyond this many lags one FFT per chain is cheaper than more direct sums.
    const DIRECT_LAGS: usize = 64;

    fn new(x: &'a Matrix) -> Self {
        let chain_means = (0..x.n_chains).map(|c| mean(x.chain(c))).collect();
        AcovMeans { x, chain_means, direct: Vec::new(), all: None }
    }

    /// Mean over chains of `(1/N) Σ_{i < N-t} (x_i - x̄)(x_{i+t} - x̄)`.
    fn at(&mut self, t: usize) -> f64 {
        if let Some(all) = &self.all {
            return all[t];
        }
        let (m, n) = (self.x.n_chains, self.x.n_draws);
        if t >= Self::DIRECT_LAGS {
            let fft = Fft::for_autocovariance(n);
            let mut all = vec![0.0; n];
            for c in 0..m {
                for (acc, a) in all.iter_mut().zip(fft.autocovariance(self.x.chain(c))) {
                    *acc += a / m as f64;
                }
            }
            let value = all[t];
            self.all = Some(all);
            return value;
        }
        while self.direct.len() <= t {
            let lag = self.direct.len();
            let mut total = 0.0;
            for (c, &mu) in self.chain_means.iter().enumerate() {
                let chain = self.x.chain(c);
                let s: f64 = chain[..n - lag].iter().zip(&chain[lag..]).map(|(a, b)| (a - mu) * (b - mu)).sum();
                total += s / n as f64;
            }
            self.direct.push(total / m as f64);
        }
        self.direct[t]
    }
}

/// `posterior`'s `.ess`: effective sample size of the given chains (Geyer's initial positive and
/// monotone sequences on the multi-chain autocorrelation, with the improved antithetic term).
fn ess_core(x: &Matrix) -> f64 {
    let (m, n) = (x.n_chains, x.n_draws);
    if n < 3 || x.should_return_na() {
        return f64::NAN;
    }
    let mut acov = AcovMeans::new(x);
    let nf = n as f64;
    let mean_var = acov.at(0) * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        var_plus += var(&acov.chain_means);
    }

    // Geyer's initial positive sequence (0-based translation of posterior's 1-based loop).
    let mut rho = vec![0.0; n];
    rho[0] = 1.0;
    let mut rho_even = 1.0;
    let mut rho_odd = 1.0 - (mean_var - acov.at(1)) / var_plus;
    rho[1] = rho_odd;
    let mut t = 0usize;
    while t + 5 < n && !(rho_even + rho_odd).is_nan() && rho_even + rho_odd > 0.0 {
        t += 2;
        rho_even = 1.0 - (mean_var - acov.at(t)) / var_plus;
        rho_odd = 1.0 - (mean_var - acov.at(t + 1)) / var_plus;
        if rho_even + rho_odd >= 0.0 {
            rho[t] = rho_even;
            rho[t + 1] = rho_odd;
        }
    }
    let max_t = t;
    // Used in the improved estimate.
    if rho_even > 0.0 {
        rho[max_t] = rho_even;
    }
    // Geyer's initial monotone sequence.
    let mut t = 0usize;
    while t + 4 <= max_t {
        t += 2;
        if rho[t] + rho[t + 1] > rho[t - 2] + rho[t - 1] {
            rho[t] = (rho[t - 2] + rho[t - 1]) / 2.0;
            rho[t + 1] = rho[t];
        }
    }
    let draws = (m * n) as f64;
    // R's `sum(rho_hat_t[1:max_t])`; for max_t = 0, `1:0` is c(1, 0) and selects rho[1] (1-based).
    let head: f64 = if max_t == 0 { rho[0] } else { rho[..max_t].iter().sum() };
    // Improved estimate reduces variance in the antithetic case.
    let tau_hat = -1.0 + 2.0 * head + rho[max_t];
    // Safety check for negative values, and ESS at most S·log10(S).
    let tau_hat = max_nan(tau_hat, 1.0 / draws.log10());
    draws / tau_hat
}

/// The indicator `x <= quantile(x, prob)` as 0/1 draws (`posterior`'s `.ess_quantile` input).
fn quantile_indicator(x: &Matrix, sorted_draws: &[f64], prob: f64) -> Matrix {
    let q = quantile_sorted(sorted_draws, prob);
    x.map(|v| if v <= q { 1.0 } else { 0.0 })
}

/// ESS of the `prob` quantile; `sorted_draws` are all draws of `x`, sorted.
fn ess_quantile_m(x: &Matrix, sorted_draws: &[f64], prob: f64) -> f64 {
    if x.should_return_na() {
        return f64::NAN;
    }
    let prob = if prob == 1.0 {
        let len = x.data.len() as f64;
        (len - 0.5) / len
    } else {
        prob
    };
    ess_core(&quantile_indicator(x, sorted_draws, prob).split())
}

/// MCSE of the `prob` quantile given its ESS and the sorted draws.
fn mcse_quantile_m(sorted_draws: &[f64], prob: f64, ess: f64) -> f64 {
    if ess.is_nan() {
        return f64::NAN;
    }
    let a1 = qbeta(0.158_655_3, ess * prob + 1.0, ess * (1.0 - prob) + 1.0);
    let a2 = qbeta(0.841_344_7, ess * prob + 1.0, ess * (1.0 - prob) + 1.0);
    let n = sorted_draws.len() as f64;
    let lo = (a1 * n).floor().max(1.0) as usize;
    let hi = (a2 * n).ceil().min(n) as usize;
    (sorted_draws[hi - 1] - sorted_draws[lo - 1]) / 2.0
}

/// Improved R-hat from the rank-normalised split draws (shared with bulk-ESS) and the raw draws.
fn rhat_m(x: &Matrix, z_split: &Matrix) -> f64 {
    let tail = rhat_core(&z_scale(&fold(x).split()));
    max_nan(rhat_core(z_split), tail)
}

/// `mcse_sd` of the draws (see [`mcse_sd`]).
fn mcse_sd_m(x: &Matrix) -> f64 {
    let m = mean(&x.data);
    let c2 = x.map(|v| (v - m) * (v - m));
    let ess = ess_core(&c2.split());
    let e_var = mean(&c2.data);
    let var_var = (c2.data.iter().map(|v| v * v).sum::<f64>() / c2.data.len() as f64 - e_var * e_var) / ess;
    (var_var / e_var / 4.0).sqrt()
}

fn check_prob(prob: f64) {
    assert!((0.0..=1.0).contains(&prob), "probability {prob} is not in [0, 1]");
}

/// Improved R-hat: the maximum of rank-normalised split-R-hat and rank-normalised folded
/// split-R-hat (`posterior::rhat`). Values above 1.01 indicate that the chains have not mixed.
pub fn rhat<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    let x = Matrix::from_chains(chains);
    rhat_m(&x, &z_scale(&x.split()))
}

/// Classic R-hat (Gelman et al. 2013) on the raw draws, split or not (`posterior::rhat_basic`).
pub fn rhat_basic<C: AsRef<[f64]>>(chains: &[C], split: bool) -> f64 {
    let x = Matrix::from_chains(chains);
    if split { rhat_core(&x.split()) } else { rhat_core(&x) }
}

/// ESS of the raw draws, split or not (`posterior::ess_basic`).
pub fn ess_basic<C: AsRef<[f64]>>(chains: &[C], split: bool) -> f64 {
    let x = Matrix::from_chains(chains);
    if split { ess_core(&x.split()) } else { ess_core(&x) }
}

/// Bulk-ESS: ESS of the rank-normalised split chains (`posterior::ess_bulk`).
pub fn ess_bulk<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    ess_core(&z_scale(&Matrix::from_chains(chains).split()))
}

/// Tail-ESS: the smaller of the ESS of the 5% and 95% quantiles (`posterior::ess_tail`).
pub fn ess_tail<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    let x = Matrix::from_chains(chains);
    let s = sorted(&x.data);
    min_nan(ess_quantile_m(&x, &s, 0.05), ess_quantile_m(&x, &s, 0.95))
}

/// ESS of the `prob` quantile: ESS of the split indicator `x <= quantile(x, prob)`
/// (`posterior::ess_quantile`). Panics if `prob` is outside [0, 1].
pub fn ess_quantile<C: AsRef<[f64]>>(chains: &[C], prob: f64) -> f64 {
    check_prob(prob);
    let x = Matrix::from_chains(chains);
    ess_quantile_m(&x, &sorted(&x.data), prob)
}

/// ESS of the median (`posterior::ess_median`).
pub fn ess_median<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    ess_quantile(chains, 0.5)
}

/// ESS of the mean: split-chain ESS of the raw draws (`posterior::ess_mean`).
pub fn ess_mean<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    ess_basic(chains, true)
}

/// ESS of the standard deviation: split-chain ESS of `|x - mean(x)|` (`posterior::ess_sd`).
pub fn ess_sd<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    let x = Matrix::from_chains(chains);
    let m = mean(&x.data);
    ess_core(&x.map(|v| (v - m) * (v - m)).split())
}

/// Monte Carlo standard error of the mean, `sd(x) / sqrt(ess_mean(x))` (`posterior::mcse_mean`).
pub fn mcse_mean<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    let x = Matrix::from_chains(chains);
    var(&x.data).sqrt() / ess_core(&x.split()).sqrt()
}

/// Monte Carlo standard error of the standard deviation (`posterior::mcse_sd`), without assuming
/// normality: with `c = x - mean(x)`, `ess = ess_mean(c²)`, `Var[c²] ≈ (mean(c⁴) - mean(c²)²) / ess`
/// (Kenney and Keeping 1951, p. 141), and the first-order Taylor step from variance to sd,
/// `Var[sd] ≈ Var[var] / (4 var)`.
pub fn mcse_sd<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    mcse_sd_m(&Matrix::from_chains(chains))
}

/// Monte Carlo standard error of the `prob` quantile (`posterior::mcse_quantile`): half the distance
/// between the order statistics at the ±1 sd points (probabilities 0.1586553 and 0.8413447) of
/// Beta(ess·p + 1, ess·(1-p) + 1), with `ess = ess_quantile(x, prob)`; the lower index is
/// `max(floor(a₁·S), 1)` and the upper `min(ceiling(a₂·S), S)` (1-based).
pub fn mcse_quantile<C: AsRef<[f64]>>(chains: &[C], prob: f64) -> f64 {
    check_prob(prob);
    let x = Matrix::from_chains(chains);
    let s = sorted(&x.data);
    mcse_quantile_m(&s, prob, ess_quantile_m(&x, &s, prob))
}

/// Monte Carlo standard error of the median (`posterior::mcse_median`).
pub fn mcse_median<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    mcse_quantile(chains, 0.5)
}

/// The diagnostics a posterior summary reports for one parameter, computed with shared
/// intermediate results (one sort, one rank normalisation of the split chains, one ESS per tail
/// quantile); each field is bit-for-bit what the function of the same name returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diagnostics {
    pub rhat: f64,
    pub ess_bulk: f64,
    pub ess_tail: f64,
    pub mcse_mean: f64,
    pub mcse_sd: f64,
    /// MCSE of the 5% and 95% quantiles.
    pub mcse_q05: f64,
    pub mcse_q95: f64,
}

/// [`rhat`], [`ess_bulk`], [`ess_tail`], [`mcse_mean`], [`mcse_sd`] and the MCSE of the 5% and 95%
/// quantiles of one parameter, about twice as fast as calling them one by one.
pub fn diagnose<C: AsRef<[f64]>>(chains: &[C]) -> Diagnostics {
    let x = Matrix::from_chains(chains);
    let s = sorted(&x.data);
    let z_split = z_scale(&x.split());
    let ess_q05 = ess_quantile_m(&x, &s, 0.05);
    let ess_q95 = ess_quantile_m(&x, &s, 0.95);
    Diagnostics {
        rhat: rhat_m(&x, &z_split),
        ess_bulk: ess_core(&z_split),
        ess_tail: min_nan(ess_q05, ess_q95),
        mcse_mean: var(&x.data).sqrt() / ess_core(&x.split()).sqrt(),
        mcse_sd: mcse_sd_m(&x),
        mcse_q05: mcse_quantile_m(&s, 0.05, ess_q05),
        mcse_q95: mcse_quantile_m(&s, 0.95, ess_q95),
    }
}

/// Energy Bayesian fraction of missing information of one chain (Betancourt 2016):
/// `Σ (E_t - E_{t-1})² / Σ (E_t - Ē)²` — the same number as Stan's and ArviZ's conventions, which
/// differ only in a common n vs n - 1 factor. Below 0.3 the momentum resampling explores the
/// energy distribution poorly (heavy tails, funnels). NaN with fewer than 2 draws or a NaN energy.
pub fn e_bfmi(energy: &[f64]) -> f64 {
    if energy.len() < 2 {
        return f64::NAN;
    }
    let m = mean(energy);
    let num: f64 = energy.windows(2).map(|w| (w[1] - w[0]) * (w[1] - w[0])).sum();
    let den: f64 = energy.iter().map(|e| (e - m) * (e - m)).sum();
    num / den
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(average_ranks(&[0.0, -0.0]), vec![1.5, 1.5]);
    }

    #[test]
    fn quantile_matches_r_type7() {
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        // R: quantile(c(3,1,4,1,5,9,2,6), c(0, .05, .5, .9, 1)) = 1, 1, 3.5, 6.9, 9
        assert_eq!(quantile(&x, 0.0), 1.0);
        assert_eq!(quantile(&x, 0.05), 1.0);
        assert_eq!(quantile(&x, 0.5), 3.5);
        assert!((quantile(&x, 0.9) - 6.9).abs() < 1e-15);
        assert_eq!(quantile(&x, 1.0), 9.0);
        assert!(quantile(&[], 0.5).is_nan());
        assert!(quantile(&[1.0, f64::NAN], 0.5).is_nan());
    }

    #[test]
    fn split_drops_middle_draw_of_odd_chains() {
        let x = Matrix::from_chains(&[vec![1.0, 2.0, 3.0, 4.0, 5.0], vec![6.0, 7.0, 8.0, 9.0, 10.0]]);
        let s = x.split();
        assert_eq!((s.n_chains, s.n_draws), (4, 2));
        assert_eq!(s.data, vec![1.0, 2.0, 6.0, 7.0, 4.0, 5.0, 9.0, 10.0]);
        let one = Matrix::from_chains(&[vec![1.0]]).split();
        assert_eq!((one.n_chains, one.n_draws), (1, 1));
    }

    fn pseudo_normal(n: usize, seed: u64) -> Vec<f64> {
        // Deterministic draws via the normal quantile of a low-discrepancy-ish sequence.
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                qnorm(((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64)
            })
            .collect()
    }

    #[test]
    fn constant_draws_give_nan() {
        let c = vec![vec![1.5; 100]; 4];
        assert!(rhat(&c).is_nan());
        assert!(rhat_basic(&c, true).is_nan());
        assert!(ess_bulk(&c).is_nan());
        assert!(ess_tail(&c).is_nan());
        assert!(ess_mean(&c).is_nan());
        assert!(mcse_mean(&c).is_nan());
        assert!(mcse_quantile(&c, 0.1).is_nan());
    }

    #[test]
    fn chains_constant_within_but_not_between_give_infinite_rhat() {
        let c = vec![vec![1.0; 50], vec![2.0; 50]];
        assert_eq!(rhat_basic(&c, false), f64::INFINITY);
    }

    #[test]
    fn nan_poisons_every_diagnostic() {
        let mut c = vec![pseudo_normal(100, 1), pseudo_normal(100, 2)];
        c[1][17] = f64::NAN;
        for v in [
            rhat(&c),
            ess_bulk(&c),
            ess_tail(&c),
            ess_mean(&c),
            ess_sd(&c),
            mcse_mean(&c),
            mcse_sd(&c),
            mcse_median(&c),
        ] {
            assert!(v.is_nan());
        }
    }

    #[test]
    fn infinity_is_an_extreme_rank() {
        let mut c = vec![pseudo_normal(200, 3), pseudo_normal(200, 4)];
        c[0][5] = f64::INFINITY;
        assert!(rhat(&c).is_finite());
        assert!(ess_bulk(&c).is_finite());
        assert!(ess_tail(&c).is_nan());
        assert!(ess_mean(&c).is_nan());
    }

    #[test]
    fn short_chains() {
        // 5 draws per chain split into 2+2: too short for ESS, fine for R-hat.
        let c = vec![pseudo_normal(5, 5), pseudo_normal(5, 6)];
        assert!(ess_bulk(&c).is_nan());
        assert!(rhat(&c).is_finite());
        // 6 draws: split chains of 3, Geyer stops at lag 0, tau = 2 (posterior's 1:0 quirk):
        // ess = 4 chains * 3 draws / 2 unless capped by S log10 S.
        let c = vec![pseudo_normal(6, 7), pseudo_normal(6, 8)];
        let e = ess_basic(&c, true);
        assert!((e - 6.0).abs() < 1e-12, "{e}");
        // A single chain of one draw: R-hat of one split chain needs two chains.
        assert!(rhat_basic(&[vec![1.0]], false).is_nan());
        // Empty input.
        assert!(rhat(&Vec::<Vec<f64>>::new()).is_nan());
        assert!(ess_bulk(&[Vec::<f64>::new()]).is_nan());
    }

    #[test]
    fn iid_draws_have_ess_near_draw_count() {
        let c: Vec<Vec<f64>> = (0..4).map(|k| pseudo_normal(1000, 10 + k)).collect();
        let e = ess_bulk(&c);
        assert!(e > 3000.0 && e < 5000.0, "{e}");
        assert!(rhat(&c) < 1.01);
    }

    #[test]
    fn diagnose_equals_the_individual_functions() {
        let mut c: Vec<Vec<f64>> = (0..3).map(|k| pseudo_normal(301, 20 + k)).collect();
        for (i, v) in c[1].iter_mut().enumerate() {
            *v += 0.2 + 0.001 * i as f64; // a little disagreement and drift
        }
        let d = diagnose(&c);
        assert_eq!(d.rhat.to_bits(), rhat(&c).to_bits());
        assert_eq!(d.ess_bulk.to_bits(), ess_bulk(&c).to_bits());
        assert_eq!(d.ess_tail.to_bits(), ess_tail(&c).to_bits());
        assert_eq!(d.mcse_mean.to_bits(), mcse_mean(&c).to_bits());
        assert_eq!(d.mcse_sd.to_bits(), mcse_sd(&c).to_bits());
        assert_eq!(d.mcse_q05.to_bits(), mcse_quantile(&c, 0.05).to_bits());
        assert_eq!(d.mcse_q95.to_bits(), mcse_quantile(&c, 0.95).to_bits());
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[1.0, f64::NAN]).is_nan());
    }

    #[test]
    fn direct_and_fft_autocovariances_agree_in_ess() {
        // A slowly mixing AR(1) chain needs more than DIRECT_LAGS lags, so the FFT path is used.
        let noise = pseudo_normal(4000, 99);
        let mut ar = vec![0.0; 4000];
        for i in 1..4000 {
            ar[i] = 0.995 * ar[i - 1] + noise[i];
        }
        let x = Matrix::from_chains(&[ar.clone()]);
        let mut acov = AcovMeans::new(&x);
        let direct: Vec<f64> = (0..10).map(|t| acov.at(t)).collect();
        let fft = autocovariance(&ar);
        for t in 0..10 {
            assert!((direct[t] - fft[t]).abs() < 1e-10 * fft[0], "lag {t}");
        }
        assert!(acov.at(AcovMeans::DIRECT_LAGS + 5).is_finite() && acov.all.is_some());
        let e = ess_basic(&[ar], false);
        assert!(e > 1.0 && e < 100.0, "{e}");
    }

    #[test]
    fn e_bfmi_of_iid_and_sticky_energies() {
        let iid = pseudo_normal(2000, 42);
        // Var of differences of iid = 2 var, so E-BFMI ~ 2.
        assert!((e_bfmi(&iid) - 2.0).abs() < 0.2);
        let mut sticky = vec![0.0; 2000];
        for i in 1..2000 {
            sticky[i] = 0.99 * sticky[i - 1] + 0.1 * iid[i];
        }
        assert!(e_bfmi(&sticky) < 0.3);
        assert!(e_bfmi(&[1.0]).is_nan());
    }
}
