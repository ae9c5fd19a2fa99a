//! Fitting: the model's density handed to `mmloop-inference` (Laplace approximation or NUTS), and
//! the draws handed to the analysis.

use crate::analysis::{Analysis, ChannelSummary, analyse};
use crate::dataset::Dataset;
use crate::model::centring::Centring;
use crate::model::{MmmModel, ModelError};
use crate::output::Draws;
use crate::spec::{FitMethod, ModelSpec};
use rayon::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    Inference(String),
    #[error("{0}")]
    Unavailable(String),
    /// The fit would need more memory than the machine has; refused before the large allocations.
    #[error(
        "the fit needs about {} of memory ({}), more than the {} available ({limit_source}). {remedy}",
        bytes(*needed),
        parts.iter().map(|(what, b)| format!("{what} {}", bytes(*b))).collect::<Vec<_>>().join(", "),
        bytes(*limit)
    )]
    Memory { needed: u64, limit: u64, limit_source: String, parts: Vec<(String, u64)>, remedy: String },
    /// An analysis figure that is not a finite number; never written as `null`.
    #[error(
        "the analysis' {what} is {value}, not a finite number: the data's magnitudes overflow the model's \
         arithmetic. Check the KPI and media columns for extreme values, or rescale them (e.g. to thousands)"
    )]
    NonFinite { what: String, value: f64 },
}

/// Bytes as a short figure: `1.5 GB`, `320 MB`, `12 kB`.
fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

/// An estimate of a fit's peak memory, by part, made from the model's sizes before anything
/// large is allocated. Sizes count `f64`s (8 bytes) of the buffers the fit holds at once:
/// - held throughout: the data and its scaled copy, ~(C + K + 4)·G·T values; the posterior draws
///   (D draws × P coordinates) three times, as sampled, as handed to the analysis and constrained
///   ([`Draws::constrained`]);
/// - during inference, the larger of: Laplace's P×P matrices (the Hessian, its factor copy and the
///   covariance: 3·P²) or a NUTS chain's dense / low-rank metric (2·P² per chain); and the log
///   density's scratch per thread, ~(4P + G·T_fit·(1 + 5C));
/// - during the analysis: per draw the baseline and contributions, (C + 1)·T; one G·T sum of fitted
///   means per block of [`crate::analysis::PREDICTION_BLOCK`] draws, and two G·T work arrays per
///   thread.
///
/// Peak = held + max(inference, analysis). Small buffers (O(P) or O(T) per draw) are left out:
/// the estimate is for refusing fits off by orders of magnitude, not for accounting bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    pub peak: u64,
    /// The largest parts, named for the message: (what, bytes).
    pub parts: Vec<(String, u64)>,
}

/// See [`MemoryEstimate`]. Saturates at `u64::MAX` instead of overflowing (a `[fit] draws` of
/// 10^18 is an estimate of "too much", not a panic).
pub fn memory_estimate(model: &MmmModel, spec: &ModelSpec) -> MemoryEstimate {
    let f = &spec.fit;
    let mul = |a: u64, b: u64| a.saturating_mul(b);
    let p = model.params.len() as u64;
    let (g, t, tf) = (model.n_geos() as u64, model.n_times as u64, model.n_fit as u64);
    let c = model.channels.len() as u64;
    let k = model.baseline.control_idx.len() as u64;
    let d = mul(f.chains as u64, f.draws as u64).max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let data = mul(mul(c + k + 4, g), mul(t, 8));
    let draws = mul(mul(3, d), mul(p, 8));
    let scratch_one = mul(4, p).saturating_add(mul(mul(g, tf), 1 + 5 * c));
    let (matrix_what, matrix) = match (f.method, f.metric) {
        (FitMethod::Laplace, _) => ("Laplace's P×P Hessian and covariance", mul(3, mul(mul(p, p), 8))),
        (FitMethod::Nuts, mmloop_inference::MassMatrix::Diag) => ("NUTS metric", mul(mul(2, p), 8)),
        (FitMethod::Nuts, _) => ("NUTS dense/low-rank metric", mul(f.chains as u64, mul(2, mul(mul(p, p), 8)))),
    };
    let workers = match f.method {
        FitMethod::Laplace => threads,
        FitMethod::Nuts => threads.min(f.chains as u64).max(1),
    };
    let scratch = mul(workers, mul(scratch_one, 8));
    let blocks = d.div_ceil(crate::analysis::PREDICTION_BLOCK as u64);
    let analysis_draws =
        mul(d, mul(mul(c + 1, t), 8)).saturating_add(mul(blocks.saturating_add(2 * threads), mul(mul(g, t), 8)));
    let inference = matrix.saturating_add(scratch);
    let peak = data.saturating_add(draws).saturating_add(inference.max(analysis_draws));
    let mut parts = vec![
        (format!("posterior draws: {d} draws × {p} parameters"), draws),
        (matrix_what.to_string(), matrix),
        (format!("analysis of {d} draws × {g} geos × {t} periods"), analysis_draws),
        ("density scratch".to_string(), scratch),
        ("data".to_string(), data),
    ];
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    parts.truncate(3);
    MemoryEstimate { peak, parts }
}

/// The memory a fit may use: `MMLOOP_MEMORY_LIMIT` (bytes, or with a K/M/G suffix) if set, else
/// three quarters of the kernel's `MemAvailable` (Linux) — the rest left to the system, to other
/// programs and to the small buffers the estimate leaves out — else no limit. Returns (bytes,
/// where the figure came from).
pub fn memory_limit() -> Option<(u64, String)> {
    if let Ok(v) = std::env::var("MMLOOP_MEMORY_LIMIT") {
        let t = v.trim();
        let (num, unit) = match t.char_indices().find(|(_, ch)| ch.is_ascii_alphabetic()) {
            Some((i, _)) => (&t[..i], t[i..].to_ascii_uppercase()),
            None => (t, String::new()),
        };
        let scale: u64 = match unit.trim_end_matches('B').trim_end_matches('I') {
            "" => 1,
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            "T" => 1 << 40,
            _ => return None,
        };
        return num.trim().parse::<u64>().ok().map(|n| (n.saturating_mul(scale), "MMLOOP_MEMORY_LIMIT".into()));
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb.saturating_mul(1024) / 4 * 3, "three quarters of the system's available memory".into()))
}

/// Refuses a fit whose [`memory_estimate`] exceeds `limit`, saying how much it needs, where it
/// goes, and what to change.
pub fn check_memory(model: &MmmModel, spec: &ModelSpec, limit: u64, limit_source: &str) -> Result<(), FitError> {
    let est = memory_estimate(model, spec);
    if est.peak <= limit {
        return Ok(());
    }
    let f = &spec.fit;
    let biggest = est.parts.first().map(|(w, _)| w.as_str()).unwrap_or("");
    let remedy = if biggest.starts_with("Laplace") {
        format!(
            "The model has {} parameters (one per geo and channel with partial pooling): use method = \"nuts\" \
             with metric = \"diag\" (no P×P matrix), complete pooling, or fewer geos (aggregate small geos, \
             or fit a national model)",
            model.params.len()
        )
    } else if biggest.starts_with("NUTS dense") {
        "Use [fit] metric = \"diag\", or fewer geos (aggregate small geos, or fit a national model)".to_string()
    } else {
        format!(
            "Keep fewer draws ([fit] chains × draws = {} × {}; e.g. draws = 250), or fewer geos (aggregate small \
             geos, or fit a national model)",
            f.chains, f.draws
        )
    };
    Err(FitError::Memory { needed: est.peak, limit, limit_source: limit_source.to_string(), parts: est.parts, remedy })
}

/// A fitted model: the model (scaled data, layout), its unconstrained draws, and diagnostics.
#[derive(Debug, Clone)]
pub struct FitResult {
    pub model: MmmModel,
    pub draws: Draws,
    pub method: FitMethod,
    pub diagnostics: crate::fitdir::Diagnostics,
    /// NUTS sampler statistics per chain and kept draw (empty for Laplace or a reloaded fit).
    pub sample_stats: Vec<Vec<mmloop_inference::DrawStats>>,
    /// A Laplace fit's mode, in the model's own sampling coordinates (`None` for NUTS or a
    /// reloaded fit): where a later fit of the same model may start ([`WarmStart`]).
    pub mode: Option<Vec<f64>>,
}

/// A fit's posterior mode as the first start of a later Laplace fit of the same model on more data
/// (the loop refits every cycle on one more quarter and a few more readouts; the mode moves little,
/// and L-BFGS from there converges in a fraction of a cold start's evaluations).
///
/// The point is kept in the non-centred model coordinates (unconstrained parameter values, geo
/// blocks as z = δ/s, no level or response shear), which mean the same numbers whatever the data,
/// so it can be placed into a model whose centring choice or level coordinate moved with the new
/// data ([`MmmModel::convert_point`], [`MmmModel::to_sampling_coords`]). A model with other
/// parameters (another spec) takes no warm start.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStart {
    names: Vec<String>,
    point: Vec<f64>,
}

impl WarmStart {
    /// The warm start of a Laplace fit made in this process (`None` for NUTS or a reloaded fit).
    pub fn from_fit(result: &FitResult) -> Option<WarmStart> {
        let q = result.mode.as_ref()?;
        let nc = result.model.non_centred();
        let mut point = vec![0.0; q.len()];
        nc.to_model_coords(&nc.convert_point(&result.model, q), &mut point);
        point.iter().all(|v| v.is_finite()).then(|| WarmStart { names: nc.names(), point })
    }

    /// The point in `target`'s sampling coordinates, `None` when `target` has other parameters.
    pub fn point_for(&self, target: &MmmModel) -> Option<Vec<f64>> {
        let nc = target.non_centred();
        if nc.names() != self.names {
            return None;
        }
        let q = target.convert_point(&nc, &nc.to_sampling_coords(&self.point));
        q.iter().all(|v| v.is_finite()).then_some(q)
    }
}

/// Run-time options that do not change the result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FitOptions {
    /// Never draw a progress bar (one is drawn on a terminal otherwise).
    pub quiet: bool,
    /// Refuse fits whose [`memory_estimate`] exceeds this many bytes; `None`: [`memory_limit`].
    pub memory_limit: Option<u64>,
}

/// Builds the model and fits it with the spec's method and settings.
pub fn fit(spec: &ModelSpec, data: &Dataset) -> Result<FitResult, FitError> {
    fit_with(spec, data, FitOptions::default())
}

/// [`fit`] with run-time options (progress bar).
pub fn fit_with(spec: &ModelSpec, data: &Dataset, options: FitOptions) -> Result<FitResult, FitError> {
    fit_from(spec, data, options, None)
}

/// [`fit_with`], a Laplace fit starting its mode search at `warm` (an earlier fit's mode, see
/// [`WarmStart`]) as well as at the spec's `laplace_starts` starts. The warm start is one more start,
/// not a replacement: the data-driven starts still run, and the best mode is kept. NUTS fits and
/// models with other parameters ignore it.
pub fn fit_from(
    spec: &ModelSpec,
    data: &Dataset,
    options: FitOptions,
    warm: Option<&WarmStart>,
) -> Result<FitResult, FitError> {
    let model = MmmModel::new(spec, data)?;
    let limit = match options.memory_limit {
        Some(b) => Some((b, "the memory limit given".to_string())),
        None => memory_limit(),
    };
    if let Some((bytes, source)) = limit {
        check_memory(&model, spec, bytes, &source)?;
    }
    let (draws, mut diagnostics, sample_stats, mode) = match spec.fit.method {
        FitMethod::Laplace => {
            let (d, v, mode) = laplace(&model, spec, warm)?;
            (d, v, Vec::new(), Some(mode))
        }
        FitMethod::Nuts => {
            let (d, v, stats) = nuts(&model, spec, options)?;
            (d, v, stats, None)
        }
    };
    // hierarchies the data cannot inform are reported with the fit's own warnings, judged at each
    // channel's fitted pooling scale (its posterior median)
    let tau_hat: Vec<Option<f64>> = model
        .channels
        .iter()
        .map(|ch| {
            let i = ch.tau_idx?;
            let tau: Vec<f64> = draws.constrained.iter().map(|x| x[i]).collect();
            Some(mmloop_inference::diagnostics::quantile(&tau, 0.5)).filter(|t| t.is_finite())
        })
        .collect();
    let prior_dominated = crate::model::centring::prior_dominated_warnings(&model, spec, &tau_hat);
    match &mut diagnostics {
        crate::fitdir::Diagnostics::Nuts(n) => n.warnings.extend(prior_dominated),
        crate::fitdir::Diagnostics::Laplace(l) => l.warnings.extend(prior_dominated),
    }
    Ok(FitResult { model, draws, method: spec.fit.method, diagnostics, sample_stats, mode })
}

/// The analysis of a fit against its data.
pub fn analyse_fit(result: &FitResult, data: &Dataset) -> Analysis {
    let actual: Vec<f64> = data.kpi.iter().copied().collect(); // [g, t] row-major = g·T + t
    analyse(&result.model, &result.draws, &data.times.labels, &actual)
}

/// [`analyse_fit`], failing on the first figure that is not a finite number (which `summary.json`
/// would otherwise show as `null`): channel ROI, marginal ROI, contribution and share, parameter
/// summaries, per-period fitted values, baseline and contributions, response curves, lift checks.
/// Left out, as they are undefined for legitimate data rather than overflowed: the cost per KPI
/// (a channel with zero contribution) and the fit metrics (R² of a constant holdout, MAPE of a
/// KPI that is zero everywhere).
pub fn analyse_checked(result: &FitResult, data: &Dataset) -> Result<Analysis, FitError> {
    let a = analyse_fit(result, data);
    let stat = check_stat;
    let value = |what: String, v: f64| -> Result<(), FitError> {
        if v.is_finite() { Ok(()) } else { Err(FitError::NonFinite { what, value: v }) }
    };
    check_channels(&a.channels)?;
    for p in &a.params {
        stat(format!("parameter {}", p.name), &p.stat)?;
    }
    for r in &a.periods {
        value(format!("fitted value at {}", r.time), r.fitted)?;
        value(format!("fitted value's 5 % quantile at {}", r.time), r.fitted_q05)?;
        value(format!("fitted value's 95 % quantile at {}", r.time), r.fitted_q95)?;
        value(format!("baseline at {}", r.time), r.baseline)?;
        for (c, v) in r.contributions.iter().chain(&r.contributions_q05).chain(&r.contributions_q95).enumerate() {
            let name = a.channels.get(c % a.channels.len().max(1)).map_or("", |ch| ch.name.as_str());
            value(format!("contribution of {name:?} at {}", r.time), *v)?;
        }
    }
    for curve in &a.response_curves {
        for pt in &curve.points {
            stat(format!("response curve of {:?} at {}× spend", curve.channel, pt.multiplier), &pt.response)?;
        }
    }
    for l in &a.lift_tests {
        stat(format!("implied lift of lift test {}", l.index), &l.implied)?;
    }
    Ok(a)
}

/// The channels' figures of a fit alone ([`crate::analysis::analyse_channels`]: ROI, marginal ROI,
/// contributions), failing like [`analyse_checked`] on the first that is not finite. For callers
/// that fit many models and read only these (the loop's simulator).
pub fn analyse_channels_checked(result: &FitResult, data: &Dataset) -> Result<Vec<ChannelSummary>, FitError> {
    let actual: Vec<f64> = data.kpi.iter().copied().collect();
    let channels = crate::analysis::analyse_channels(&result.model, &result.draws, &actual);
    check_channels(&channels)?;
    Ok(channels)
}

fn check_stat(what: String, s: &crate::analysis::Stat) -> Result<(), FitError> {
    for (part, v) in [("mean", s.mean), ("sd", s.sd), ("q05", s.q05), ("q95", s.q95)] {
        if !v.is_finite() {
            return Err(FitError::NonFinite { what: format!("{what} ({part})"), value: v });
        }
    }
    Ok(())
}

fn check_channels(channels: &[ChannelSummary]) -> Result<(), FitError> {
    for c in channels {
        check_stat(format!("ROI of {:?}", c.name), &c.roi)?;
        check_stat(format!("marginal ROI of {:?}", c.name), &c.mroi)?;
        check_stat(format!("contribution of {:?}", c.name), &c.contribution)?;
        check_stat(format!("contribution share of {:?}", c.name), &c.contribution_share)?;
    }
    Ok(())
}

/// A short description of the fit for `summary.json`.
pub fn model_info(spec: &ModelSpec, data: &Dataset, result: &FitResult) -> crate::fitdir::ModelInfo {
    crate::fitdir::ModelInfo {
        data: data.source.display().to_string(),
        method: format!("{:?}", result.method).to_lowercase(),
        seed: spec.fit.seed,
        geos: data.n_geos(),
        periods: data.n_times(),
        holdout: spec.holdout,
        channels: data.channels.clone(),
        parameters: result.model.names(),
        draws: result.draws.values.len(),
    }
}

/// The Laplace settings of a fit: `laplace_starts` starts around [`MmmModel::data_initial_point`]
/// (start 0 at it, the others jittered by 1 in every unconstrained coordinate from the seed's
/// stream k + 1, so the starts are deterministic under the seed), chains × draws Gaussian draws (so a Laplace fit has as many
/// draws as the NUTS fit it stands in for).
pub fn laplace_settings(model: &MmmModel, spec: &ModelSpec) -> mmloop_inference::LaplaceSettings {
    let f = &spec.fit;
    mmloop_inference::LaplaceSettings {
        starts: f.laplace_starts.max(1),
        init: mmloop_inference::Init::Around { center: model.data_initial_point(), radius: 1.0 },
        seed: f.seed,
        draws: f.chains.saturating_mul(f.draws).max(1),
        // |∇log p| < 1e-5 puts the mode within ~|∇|/√λ_min(H) ≈ 1e-5 posterior sd of the optimum
        // (λ_min ≳ 1 in the scaled units, where every prior has scale ≲ 2): far below the Monte Carlo
        // error of the draws, and it halves the L-BFGS iterations of the default 1e-8. The Newton
        // polish then finishes the job where L-BFGS stalls on a curved ridge.
        grad_tol: 1e-5,
        ..Default::default()
    }
}

/// The model in the centring the data call for (`model.centring_choice`, see
/// [`crate::model::centring`]): where the Laplace approximation is taken.
pub fn laplace_model(model: &MmmModel) -> MmmModel {
    let mut m = model.clone();
    m.set_centring(&model.centring_choice.centred());
    m
}

/// The mode search of the Laplace fit and of the NUTS starting point, in the coordinates of
/// `target` (a [`laplace_model`] of the model, or the model itself): preconditioned L-BFGS
/// ([`mmloop_inference::search_modes`]) from `settings.starts` starts around `target`'s
/// [`MmmModel::data_initial_point`], in `target`'s own form. A start whose centred block scale
/// collapsed (below a fifth of its starting value: the spike of a centred density at zero scale,
/// not a mode) is dropped as failed; when every start fails so, or the search finds no finite point
/// at all, the search runs in the model's own form and its points are mapped into `target`'s
/// coordinates.
///
/// Why `target`'s form: a block is centred where the data pin each geo's deviation (κ ≫ 1). There
/// the non-centred form's mode puts the block's scale at its prior's scale — with the deviations
/// δ = s·u pinned, log p = ln p(s) + ln s − Σδ²/(2s²) + const grows with s until the prior stops
/// it — while the centred form's is at the deviations' spread, s² ≈ Σδ²/(G − 1). The first is a
/// poor point for a Gaussian and tens of nats below the second once scored in the centred density
/// (worlds 0 and 2 of `WorldDistribution::default()` with a readout, seed 1: every own-form start
/// 28–38 nats below every centred start, which all agreed to 1e-10 nats). Before preconditioning,
/// the search split its starts between both forms because L-BFGS stalled in both (12-geo ×
/// 4-channel Hill world, tests/geo_laplace_mode.rs: |∇log p| ≈ 40–70 after 2000 iterations).
pub fn mode_search(
    model: &MmmModel,
    target: &MmmModel,
    settings: &mmloop_inference::LaplaceSettings,
) -> Result<mmloop_inference::ModeSearch, mmloop_inference::InferenceError> {
    let to_target = |q: &[f64]| target.convert_point(model, q);
    let own_search = || -> Result<mmloop_inference::ModeSearch, mmloop_inference::InferenceError> {
        // warm starts come in `target`'s coordinates
        let own = mmloop_inference::LaplaceSettings {
            warm_starts: settings.warm_starts.iter().map(|w| model.convert_point(target, w)).collect(),
            ..settings.clone()
        };
        let mut search = mmloop_inference::search_modes(model, &own)?;
        if target.centring() != model.centring() {
            search.mode = to_target(&search.mode);
            for st in &mut search.starts {
                st.start = to_target(&st.start);
                st.end = st.end.as_deref().map(to_target);
            }
        }
        Ok(search)
    };
    if target.centring() == model.centring() {
        return own_search();
    }
    let start = target.data_initial_point();
    let radius = match &settings.init {
        mmloop_inference::Init::Around { radius, .. } => *radius,
        mmloop_inference::Init::Uniform { radius } => *radius,
    };
    let s = mmloop_inference::LaplaceSettings {
        init: mmloop_inference::Init::Around { center: start.clone(), radius },
        ..settings.clone()
    };
    let Ok(centred) = mmloop_inference::search_modes(target, &s) else { return own_search() };
    let before = centred_scales(target, &start);
    let mut starts = centred.starts;
    for st in &mut starts {
        let collapsed = st
            .end
            .as_ref()
            .is_some_and(|e| centred_scales(target, e).iter().zip(&before).any(|(now, was)| *now < 0.2 * was));
        if collapsed {
            st.status = format!("{} (a centred pooling scale collapsed towards 0: dropped)", st.status);
            st.end = None;
            st.logp = None;
        }
    }
    match starts.iter().filter_map(|st| Some((st.end.clone()?, st.logp?))).max_by(|a, b| a.1.total_cmp(&b.1)) {
        Some((mode, logp)) => Ok(mmloop_inference::ModeSearch { mode, logp, starts }),
        None => own_search(),
    }
}

/// Constrained scale of every centred block at `q`.
fn centred_scales(model: &MmmModel, q: &[f64]) -> Vec<f64> {
    let x = model.constrain(q);
    let mut out = Vec::new();
    if model.baseline.geo_centred
        && let Some((si, _)) = model.baseline.pooled_intercepts()
    {
        out.push(x[si]);
    }
    for ch in model.channels.iter().filter(|c| c.geo_centred) {
        if let Some(ti) = ch.tau_idx {
            out.push(x[ti]);
        }
    }
    out
}

/// Laplace approximation through `mmloop-inference`: [`mode_search`], then the best point
/// Newton-polished into the mode, the Hessian there and the draws ([`mmloop_inference::laplace_at`]),
/// in the centring the data call for ([`laplace_model`]), the draws mapped into the model's own
/// coordinates ([`MmmModel::convert_point`], exact). A Gaussian describes a block the data pin
/// only in its centred form: non-centred, the block is a curved ridge (scale × deviation fixed),
/// and Gaussian draws off the ridge put the geo levels wrong (12-geo world, seed 1: in-sample R² of
/// the draws 0.991 non-centred, 0.998 centred, NUTS 0.998). The reported mode and log densities are
/// those of the density the Gaussian was taken in (with a centred block, the model's own density
/// plus Σ G·ln s over the centred blocks, not the density NUTS reports). Where the centred
/// approximation fails (a scale collapsing to 0, or a Hessian not negative definite) it is taken in
/// the model's own form.
/// Returns the draws, the diagnostics and the mode in the model's own sampling coordinates.
fn laplace(
    model: &MmmModel,
    spec: &ModelSpec,
    warm: Option<&WarmStart>,
) -> Result<(Draws, crate::fitdir::Diagnostics, Vec<f64>), FitError> {
    let mut settings = laplace_settings(model, spec);
    let err = |e: mmloop_inference::InferenceError| FitError::Inference(e.to_string());
    let target = laplace_model(model);
    if let Some(w) = warm.and_then(|w| w.point_for(&target)) {
        settings.warm_starts = vec![w];
        settings.starts += 1;
    }
    let own_mode = |post: &mmloop_inference::Posterior, from: &MmmModel| {
        let mode = &post.laplace.as_ref().expect("a Laplace posterior").mode;
        if from.centring() == model.centring() { mode.clone() } else { model.convert_point(from, mode) }
    };
    let search = mode_search(model, &target, &settings).map_err(err)?;
    if target.centring() != model.centring() {
        let before = centred_scales(&target, &search.mode);
        if let Ok(mut post) = mmloop_inference::laplace_at(&target, &settings, search.clone()) {
            let info = post.laplace.as_ref().expect("a Laplace posterior");
            let collapsed = centred_scales(&target, &info.mode).iter().zip(&before).any(|(now, was)| *now < 0.2 * was);
            if !collapsed {
                // each draw into the model's coordinates, its constrained values from the same
                // conversion (see `MmmModel::convert_point_constrained`)
                let mut constrained = Vec::with_capacity(post.draws.len());
                for chain in &mut post.draws {
                    let (q, x): (Vec<_>, Vec<_>) =
                        chain.par_iter().map(|q| model.convert_point_constrained(&target, q)).unzip();
                    *chain = q;
                    constrained.push(x);
                }
                post.param_names = model.names();
                let mode = own_mode(&post, &target);
                let (draws, diagnostics) = from_posterior_constrained(model, &post, constrained);
                return Ok((draws, diagnostics, mode));
            }
        }
        let own = mmloop_inference::ModeSearch {
            mode: model.convert_point(&target, &search.mode),
            logp: search.logp,
            starts: search
                .starts
                .into_iter()
                .map(|mut st| {
                    st.start = model.convert_point(&target, &st.start);
                    st.end = st.end.as_deref().map(|e| model.convert_point(&target, e));
                    st
                })
                .collect(),
        };
        let post = mmloop_inference::laplace_at(model, &settings, own).map_err(err)?;
        let (draws, diagnostics) = from_posterior(model, &post);
        return Ok((draws, diagnostics, own_mode(&post, model)));
    }
    let post = mmloop_inference::laplace_at(model, &settings, search).map_err(err)?;
    let (draws, diagnostics) = from_posterior(model, &post);
    Ok((draws, diagnostics, own_mode(&post, model)))
}

/// Where NUTS chains start: the posterior mode found by a short L-BFGS run from the data-driven
/// point (the same start as the Laplace fit's first, [`mode_search`] in the model's own form), jittered per
/// chain by [`NUTS_INIT_RADIUS`] in every unconstrained coordinate with the chain's own seeded
/// stream, so the start is deterministic under the seed. Falls back to the priors' central values
/// when the optimiser finds no finite point.
///
/// Starting near the bulk lets warm-up spend its iterations adapting the step size and metric
/// rather than travelling from the prior centre through badly scaled regions (where the first
/// metric windows are learned from transient draws).
pub fn nuts_init_center(model: &MmmModel, seed: u64) -> Vec<f64> {
    let settings = mmloop_inference::LaplaceSettings {
        starts: 1,
        init: mmloop_inference::Init::Around { center: model.data_initial_point(), radius: 1.0 },
        seed,
        // The mode only has to be within a fraction of a posterior sd: |∇log p| < 1e-3 is
        // ~1e-3 sd away where the curvature is ≳ 1 (scaled units), far inside the jitter.
        grad_tol: 1e-3,
        max_iters: 500,
        ..Default::default()
    };
    // sampled with the intercepts integrated out: the mode of that (marginal) density, the
    // intercepts at their conditional means
    if let Some(c) = collapsed(model) {
        let s = mmloop_inference::LaplaceSettings {
            init: mmloop_inference::Init::Around { center: c.reduce(&model.data_initial_point()), radius: 1.0 },
            ..settings
        };
        return match mmloop_inference::search_modes(&c, &s) {
            Ok(search) => c.expand(&search.mode, None),
            Err(_) => model.initial_point(),
        };
    }
    // the model's own (sampled) form: the centred form's mode, mapped, sits at a smaller pooling
    // scale (its density carries −G·ln s more), a worse start for the non-centred chains (12-geo
    // world, 2 × 300 + 200: max R-hat 1.33–2.27 and 0–207 divergences from there, 1.12–1.18 and
    // 0–8 from the model's own mode)
    match mode_search(model, model, &settings) {
        Ok(search) => search.mode,
        Err(_) => model.initial_point(),
    }
}

/// The intercepts-integrated-out density NUTS samples `model` by, when it does
/// ([`MmmModel::collapse_intercepts`] and a model whose intercepts can be, see
/// [`crate::model::collapsed`]).
pub fn collapsed(model: &MmmModel) -> Option<crate::model::collapsed::CollapsedIntercepts> {
    model.collapse_intercepts.then(|| crate::model::collapsed::CollapsedIntercepts::new(model)).flatten()
}

/// NUTS on `model` with `settings` (whose initial centre is a point of `model`): on the joint
/// density, or with the geo intercepts integrated out ([`collapsed`]) and drawn per draw from their
/// conditional (seeded by `settings.seed`), so the posterior has `model`'s coordinates either way.
pub fn sample_nuts_model(
    model: &MmmModel,
    settings: &mmloop_inference::NutsSettings,
) -> Result<mmloop_inference::Posterior, mmloop_inference::InferenceError> {
    let Some(c) = collapsed(model) else { return mmloop_inference::sample_nuts(model, settings) };
    let mut s = settings.clone();
    if let mmloop_inference::Init::Around { center, radius } = &settings.init {
        s.init = mmloop_inference::Init::Around { center: c.reduce(center), radius: *radius };
    }
    let post = mmloop_inference::sample_nuts(&c, &s)?;
    Ok(c.expand_posterior(&post, settings.seed))
}

/// Jitter (uniform half-width, unconstrained units) of each chain's start around the mode.
pub const NUTS_INIT_RADIUS: f64 = 0.1;

/// The NUTS settings of a fit: the spec's chains, warm-up, draws, target acceptance, minimum tree
/// depth, metric and seed; chains start around the mode ([`nuts_init_center`]).
pub fn nuts_settings(model: &MmmModel, spec: &ModelSpec) -> mmloop_inference::NutsSettings {
    let f = &spec.fit;
    mmloop_inference::NutsSettings {
        chains: f.chains,
        tune: f.tune as u64,
        draws: f.draws as u64,
        target_accept: f.target_accept,
        min_tree_depth: f.min_tree_depth,
        mass_matrix: f.metric,
        seed: f.seed,
        init: mmloop_inference::Init::Around { center: nuts_init_center(model, f.seed), radius: NUTS_INIT_RADIUS },
        ..Default::default()
    }
}

/// NUTS through `mmloop-inference` with [`nuts_settings`]; also returns the sampler statistics.
#[allow(clippy::type_complexity)]
fn nuts(
    model: &MmmModel,
    spec: &ModelSpec,
    options: FitOptions,
) -> Result<(Draws, crate::fitdir::Diagnostics, Vec<Vec<mmloop_inference::DrawStats>>), FitError> {
    let mut settings = nuts_settings(model, spec);
    settings.quiet = options.quiet;
    let post = sample_nuts_model(model, &settings).map_err(|e| FitError::Inference(e.to_string()))?;
    let (draws, diag) = from_posterior(model, &post);
    Ok((draws, diag, post.sample_stats))
}

/// Flattens a posterior into draws, with their constrained values ([`Draws::constrained`], each
/// draw's [`MmmModel::constrain`], in parallel: the same values for any thread count);
/// diagnostics: NUTS convergence (R-hat, ESS, divergences) on the constrained parameters, or the
/// Laplace optimisation's report.
pub fn from_posterior(model: &MmmModel, post: &mmloop_inference::Posterior) -> (Draws, crate::fitdir::Diagnostics) {
    let constrained = post.draws.iter().map(|chain| chain.par_iter().map(|q| model.constrain(q)).collect()).collect();
    from_posterior_constrained(model, post, constrained)
}

/// [`from_posterior`] given every draw's constrained values, `constrained[chain][draw]`.
fn from_posterior_constrained(
    model: &MmmModel,
    post: &mmloop_inference::Posterior,
    constrained: Vec<Vec<Vec<f64>>>,
) -> (Draws, crate::fitdir::Diagnostics) {
    use crate::fitdir::{Diagnostics, LaplaceReport, NutsDiagnostics};
    let mut draws = Draws { values: Vec::new(), constrained: Vec::new(), chain: Vec::new(), draw: Vec::new() };
    for (c, (chain, xs)) in post.draws.iter().zip(constrained).enumerate() {
        for (d, (q, x)) in chain.iter().zip(xs).enumerate() {
            draws.values.push(q.clone());
            draws.constrained.push(x);
            draws.chain.push(c);
            draws.draw.push(d);
        }
    }
    if let Some(info) = &post.laplace {
        // independent Gaussian draws: R-hat and ESS say nothing; report the optimisation instead
        let ok = info.starts.iter().filter(|s| s.logp.is_some()).count();
        let report = LaplaceReport {
            draws: draws.values.len(),
            logp_at_mode: info.logp_at_mode,
            starts_converged: format!("{ok}/{}", info.starts.len()),
            start_logps: info.starts.iter().map(|s| s.logp).collect(),
            warnings: info.warnings.clone(),
        };
        return (draws, Diagnostics::Laplace(report));
    }
    // the constrained draws in the posterior's chains (`draws.constrained` is them, chain after chain)
    let mut flat = draws.constrained.iter();
    let constrained = post.map_draws(model.names(), |_| flat.next().expect("a constrained value per draw").clone());
    let d = mmloop_inference::summary(&constrained).diagnostics;
    // Per-chain sampler figures next to the convergence checks: the adapted step size, the mean
    // tree depth and leapfrog steps per draw (the cost of a draw), warm-up divergences and timings.
    let per_chain = |f: &dyn Fn(usize) -> f64| (0..post.n_chains()).map(f).collect::<Vec<f64>>();
    let mean_of = |c: usize, g: fn(&mmloop_inference::DrawStats) -> f64| {
        let s = &post.sample_stats[c];
        if s.is_empty() { f64::NAN } else { s.iter().map(g).sum::<f64>() / s.len() as f64 }
    };
    let nuts = NutsDiagnostics {
        chains: d.chains,
        draws_per_chain: d.draws_per_chain,
        max_rhat: d.max_rhat,
        max_rhat_param: d.max_rhat_param,
        min_ess_bulk: d.min_ess_bulk,
        min_ess_bulk_param: d.min_ess_bulk_param,
        min_ess_tail: d.min_ess_tail,
        min_ess_tail_param: d.min_ess_tail_param,
        divergences: d.divergences,
        max_tree_depth_hits: d.max_tree_depth_hits,
        e_bfmi: d.e_bfmi,
        warnings: d.warnings,
        step_size: per_chain(&|c| post.warmup[c].step_size),
        mean_tree_depth: per_chain(&|c| mean_of(c, |s| s.tree_depth as f64)),
        mean_n_steps: per_chain(&|c| mean_of(c, |s| s.n_steps as f64)),
        mean_accept_stat: per_chain(&|c| mean_of(c, |s| s.accept_stat)),
        warmup_divergences: post.warmup.iter().map(|w| w.divergences).collect(),
        warmup_seconds: per_chain(&|c| post.warmup[c].warmup_seconds),
        sampling_seconds: per_chain(&|c| post.warmup[c].sampling_seconds),
    };
    (draws, Diagnostics::Nuts(Box::new(nuts)))
}

/// Errors reloading a saved fit.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(Box<crate::config::ConfigError>),
    #[error(transparent)]
    Data(#[from] mmloop_data::DataError),
    /// The fit's data file no longer loads (the message names the file).
    #[error(transparent)]
    Dataset(#[from] Box<crate::data::MmmDataError>),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {message}")]
    Mismatch { path: std::path::PathBuf, message: String },
    /// `summary.json` (which records the fit's method and diagnostics) is missing or unreadable.
    #[error(transparent)]
    FitDir(#[from] crate::fitdir::FitDirError),
}

/// Reloads a fit written by `mmloop fit` (its `config.toml`, the data it names and
/// `posterior_unconstrained.parquet`) without refitting: the same model and draws.
pub fn load_fit(dir: impl AsRef<std::path::Path>) -> Result<(ModelSpec, Dataset, FitResult), LoadError> {
    let dir = dir.as_ref();
    let spec = crate::config::load_config(dir.join("config.toml")).map_err(|e| LoadError::Config(Box::new(e)))?;
    let data = Dataset::load(&spec).map_err(Box::new)?;
    let mut model = MmmModel::new(&spec, &data)?;
    let path = dir.join("posterior_unconstrained.parquet");
    let table = mmloop_data::Table::read(&path)?;
    // A fit written before a block's default form changed names the parameters of its own form
    // (two-geo intercepts were sampled non-centred, `intercept_geo_z`, until they became partially
    // centred, `intercept_geo_pc`): load it in the form its columns name. The draws and the model
    // then share coordinates, and every figure derived from them is the same.
    if !model.names().iter().all(|n| table.has_column(n)) {
        let mut old = model.clone();
        old.set_centring(&Centring { intercept_power: None, ..model.centring() });
        if old.names().iter().all(|n| table.has_column(n)) {
            model = old;
        }
    }
    let cols: Vec<Vec<f64>> = model.names().iter().map(|n| table.f64_column(n)).collect::<Result<_, _>>()?;
    let n = table.n_rows();
    let chain = table.f64_column("chain")?;
    let draw = table.f64_column("draw")?;
    if table.columns().len() != cols.len() + 2 {
        return Err(LoadError::Mismatch {
            path,
            message: format!(
                "{} columns, the model has {} parameters + chain, draw",
                table.columns().len(),
                cols.len()
            ),
        });
    }
    let draws = Draws::new(
        &model,
        (0..n).map(|i| cols.iter().map(|c| c[i]).collect()).collect(),
        chain.iter().map(|&c| c as usize).collect(),
        draw.iter().map(|&d| d as usize).collect(),
    );
    let diagnostics = crate::fitdir::FitDir::open(dir)?.diagnostics()?;
    let method = diagnostics.method();
    Ok((spec, data, FitResult { model, draws, method, diagnostics, sample_stats: Vec::new(), mode: None }))
}
