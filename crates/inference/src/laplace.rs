//! Laplace approximation: the mode (MAP in the unconstrained space) found by L-BFGS from several
//! starts, the Hessian there by central differences of the analytic gradient, and Gaussian draws.
//!
//! The pieces follow argmin's split: `ModeProblem` is the problem (`CostFunction` + `Gradient` on
//! −log p), [`argmin::solver::quasinewton::LBFGS`] with a Moré–Thuente line search is the solver,
//! and argmin's `Executor` drives it. argmin's line search aborts on a NaN or infinite cost, so
//! points where the density is not finite (or returns [`LogDensityError::Recoverable`]) get the
//! large finite cost [`NON_FINITE_COST`] and a zero gradient, which the line search rejects by
//! backtracking.

#![allow(clippy::needless_range_loop)] // dense matrix code reads best with explicit indices

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use faer::{Mat, Side};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nuts::{Init, check_start};
use crate::posterior::{LaplaceInfo, LaplaceStart, Method, Posterior};
use crate::sparsity::{CountedHessian, HessianSparsity, Scheme, fd_hessian, gradient_count};
use crate::{InferenceError, LogDensity, LogDensityError};

/// Cost (−log p) given to points where the log density is not finite or not defined.
pub const NON_FINITE_COST: f64 = 1e100;

/// Settings of a Laplace approximation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LaplaceSettings {
    /// Optimiser starts; the best mode is kept and the others are compared with it.
    pub starts: usize,
    /// Where starts are drawn: `Uniform` in every coordinate, or `Around` a point (the first start
    /// is then the point itself).
    pub init: Init,
    /// Attempts per start to find a point with finite log density and gradient.
    pub init_attempts: usize,
    /// Seed for the starts (stream k + 1 for start k) and the draws (stream 0).
    pub seed: u64,
    /// Gaussian draws to return (one "chain").
    pub draws: usize,
    /// L-BFGS iterations per start.
    pub max_iters: u64,
    /// A start has converged when the Euclidean norm of ∇log p is below this.
    pub grad_tol: f64,
    /// L-BFGS history length.
    pub lbfgs_memory: usize,
    /// Central-difference step for the Hessian, relative: h_j = step · max(|x_j|, 1). The default
    /// ε^(1/3) ≈ 6e-6 balances truncation (∝ h²) against rounding (∝ ε/h).
    pub hessian_step: f64,
    /// Newton iterations (with the finite-difference Hessian, damped where it is not negative
    /// definite) that polish the best L-BFGS point into the mode; 0 keeps the L-BFGS point.
    pub newton_iters: usize,
    /// Starts whose log density at their end is lower than the best by more than this many nats
    /// are reported as a different mode; smaller gaps are optimiser tolerance.
    pub disagree_nats: f64,
    /// L-BFGS iterations between Hessian preconditionings (see [`Preconditioner`]); 0 runs plain
    /// L-BFGS in the density's own coordinates.
    pub precondition_every: u64,
    /// Points to start from before the `init` starts: start k < `warm_starts.len()` begins at
    /// `warm_starts[k]` (e.g. the mode of the same model fitted to slightly less data), the rest
    /// are drawn from `init` as if the warm starts were not there (so the centre of `Init::Around`
    /// is still tried, as start `warm_starts.len()`). A warm start where the density or its
    /// gradient is not finite is replaced by a draw from `init`. `starts` counts both kinds.
    pub warm_starts: Vec<Vec<f64>>,
}

impl Default for LaplaceSettings {
    fn default() -> Self {
        LaplaceSettings {
            starts: 4,
            init: Init::Uniform { radius: 2.0 },
            init_attempts: 100,
            seed: 0,
            draws: 4000,
            max_iters: 2000,
            grad_tol: 1e-8,
            lbfgs_memory: 10,
            hessian_step: f64::EPSILON.cbrt(),
            newton_iters: 20,
            disagree_nats: 0.5,
            precondition_every: 100,
            warm_starts: Vec::new(),
        }
    }
}

/// A point, its cost and the gradient of the cost.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

/// What a [`ModeProblem`] remembers across evaluations; owned outside the problem so it survives an
/// optimiser error.
#[derive(Default)]
struct Tracker {
    /// The last evaluation (argmin asks for the cost and the gradient at a point separately).
    last: RefCell<Option<Evaluation>>,
    /// The best valid point seen: a start whose line search gives up close to the optimum still
    /// yields it.
    best: RefCell<Option<Evaluation>>,
    fatal: RefCell<Option<String>>,
    evaluations: RefCell<u64>,
}

/// An affine change of coordinates `x = x0 + R z` in which the optimiser runs: with
/// `−H(x0) = U diag(λ) Uᵀ` (the Hessian of log p at `x0` by forward differences of the gradient,
/// [`hessian_forward`]: dim + 1 gradients, relative error ~1e-8, ample for a preconditioner) and
/// `λ̃_i = max(|λ_i|, PRECONDITION_FLOOR, 1e-10·max_j |λ_j|)`, `R = U diag(λ̃^{-1/2})`, so the
/// curvature of −log p in `z` at `x0` is the identity where −H is positive definite (saddle
/// directions get their absolute curvature, as in saddle-free Newton). L-BFGS's convergence on
/// ill-conditioned posteriors depends on the condition number (geo models: geo intercepts pinned
/// by thousands of observations next to saturation parameters the data barely inform, condition
/// numbers of 1e6 and more); in `z` it is near 1 around `x0`, and the optimiser re-preconditions
/// at its best point every [`LaplaceSettings::precondition_every`] iterations as the curvature
/// changes. The gradient in `z` is `Rᵀ∇`, whose norm near the mode is the Newton step's length in
/// posterior standard deviations.
struct Preconditioner {
    x0: Vec<f64>,
    /// R, row-major d × d.
    r: Vec<f64>,
}

/// Smallest curvature the preconditioner assumes in any direction (unconstrained units): a flat or
/// nearly flat direction is scaled as if its posterior sd were 100, so a unit step in `z` cannot
/// throw the optimiser arbitrarily far.
pub const PRECONDITION_FLOOR: f64 = 1e-4;

impl Preconditioner {
    /// The preconditioner at `x0`, or `None` where the Hessian cannot be computed (the density is
    /// not finite within a step of `x0`) or its eigen-decomposition fails.
    /// The preconditioner and the gradient evaluations its Hessian took
    /// ([`LogDensity::preconditioner_hessian`] where the density has a route of its own, else
    /// [`hessian_forward`]).
    fn at<D: LogDensity + ?Sized>(density: &D, x0: &[f64]) -> Result<(Option<Self>, u64), InferenceError> {
        let (h, evaluations) = match density.preconditioner_hessian(x0) {
            Some(h) => h,
            None => hessian_forward_counted(density, x0, density.hessian_sparsity().as_ref()),
        }
        .map_or_else(|e| (Err(e), 0), |(h, n)| (Ok(h), n));
        Ok((Self::from_hessian(h, x0)?, evaluations))
    }

    fn from_hessian(h: Result<Vec<Vec<f64>>, InferenceError>, x0: &[f64]) -> Result<Option<Self>, InferenceError> {
        let h = match h {
            Ok(h) => h,
            Err(InferenceError::FatalDensity { chain, iteration, message }) => {
                return Err(InferenceError::FatalDensity { chain, iteration, message });
            }
            Err(_) => return Ok(None),
        };
        let d = x0.len();
        let m = Mat::from_fn(d, d, |i, j| -h[i][j]);
        let Ok(eig) = m.self_adjoint_eigen(Side::Lower) else { return Ok(None) };
        let (u, sv) = (eig.U(), eig.S());
        let largest = (0..d).fold(0.0f64, |a, i| a.max(sv[i].abs()));
        if !largest.is_finite() {
            return Ok(None);
        }
        let floor = PRECONDITION_FLOOR.max(1e-10 * largest);
        let scale: Vec<f64> = (0..d).map(|k| 1.0 / sv[k].abs().max(floor).sqrt()).collect();
        let mut r = vec![0.0; d * d];
        for i in 0..d {
            for k in 0..d {
                r[i * d + k] = u[(i, k)] * scale[k];
            }
        }
        Ok(Some(Preconditioner { x0: x0.to_vec(), r }))
    }

    fn to_x(&self, z: &[f64]) -> Vec<f64> {
        let d = z.len();
        (0..d).map(|i| self.x0[i] + dot(&self.r[i * d..(i + 1) * d], z)).collect()
    }

    /// Rᵀ g.
    fn grad_to_z(&self, g: &[f64]) -> Vec<f64> {
        let d = g.len();
        let mut out = vec![0.0; d];
        for i in 0..d {
            let gi = g[i];
            if gi != 0.0 {
                for (o, r) in out.iter_mut().zip(&self.r[i * d..(i + 1) * d]) {
                    *o += r * gi;
                }
            }
        }
        out
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// −log p as an argmin problem (`CostFunction` + `Gradient`), in the coordinates of an optional
/// [`Preconditioner`] (the density's own coordinates without one).
struct ModeProblem<'a, D: ?Sized> {
    density: &'a D,
    tracker: &'a Tracker,
    pre: Option<&'a Preconditioner>,
}

impl<D: LogDensity + ?Sized> ModeProblem<'_, D> {
    /// (cost, gradient of the cost) at `z` (the optimiser's coordinates); non-finite or recoverable
    /// points get [`NON_FINITE_COST`] and a zero gradient; a fatal error stops the optimiser. The
    /// tracker's best point is kept in the density's coordinates.
    fn evaluate(&self, z: &[f64]) -> Result<(f64, Vec<f64>), argmin::core::Error> {
        let t = self.tracker;
        if let Some((lz, cost, grad)) = t.last.borrow().as_ref()
            && lz.as_slice() == z
        {
            return Ok((*cost, grad.clone()));
        }
        *t.evaluations.borrow_mut() += 1;
        let x = match self.pre {
            Some(p) => p.to_x(z),
            None => z.to_vec(),
        };
        let mut grad = vec![0.0; x.len()];
        let (cost, grad) = match self.density.logp_grad(&x, &mut grad) {
            Ok(lp) if lp.is_finite() && grad.iter().all(|g| g.is_finite()) => {
                let cost = -lp;
                grad.iter_mut().for_each(|g| *g = -*g);
                let mut best = t.best.borrow_mut();
                if best.as_ref().is_none_or(|(_, c, _)| cost < *c) {
                    *best = Some((x.clone(), cost, grad.clone()));
                }
                let grad = match self.pre {
                    Some(p) => p.grad_to_z(&grad),
                    None => grad,
                };
                (cost, grad)
            }
            Ok(_) | Err(LogDensityError::Recoverable(_)) => (NON_FINITE_COST, vec![0.0; x.len()]),
            Err(LogDensityError::Fatal(message)) => {
                *t.fatal.borrow_mut() = Some(message.clone());
                return Err(argmin::core::Error::msg(message));
            }
        };
        *t.last.borrow_mut() = Some((z.to_vec(), cost, grad.clone()));
        Ok((cost, grad))
    }
}

impl<D: LogDensity + ?Sized> CostFunction for ModeProblem<'_, D> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.evaluate(x)?.0)
    }
}

impl<D: LogDensity + ?Sized> Gradient for ModeProblem<'_, D> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.evaluate(x)?.1)
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|g| g * g).sum::<f64>().sqrt()
}

/// The result of one optimiser start.
struct StartResult {
    report: LaplaceStart,
    /// Best valid point, its log density and the norm of ∇log p there.
    best: Option<(Vec<f64>, f64, f64)>,
}

/// A starting point with finite log density and gradient for start `k`.
fn starting_point<D: LogDensity + ?Sized>(
    density: &D,
    settings: &LaplaceSettings,
    k: usize,
) -> Result<Vec<f64>, InferenceError> {
    let dim = density.dim();
    let mut grad = vec![0.0; dim];
    if let Some(w) = settings.warm_starts.get(k)
        && check_start(density, w, &mut grad, k)?.is_none()
    {
        return Ok(w.clone());
    }
    // the init starts are numbered after the warm ones (the same points with or without them); a
    // warm start that failed its check draws from a stream of its own past every init start's
    let n_warm = settings.warm_starts.len();
    let k_init = if k < n_warm { settings.starts + k } else { k - n_warm };
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    rng.set_stream(k_init as u64 + 1);
    let mut x = vec![0.0; dim];
    let mut last = String::from("no attempt made");
    for attempt in 0..settings.init_attempts {
        // Start 0 tries the centre of `Init::Around` itself first; the others scatter around it.
        settings.init.candidate(&mut rng, k_init == 0 && attempt == 0, &mut x);
        match check_start(density, &x, &mut grad, k)? {
            None => return Ok(x),
            Some(reason) => last = reason,
        }
    }
    Err(InferenceError::Initialization { chain: k, attempts: settings.init_attempts, last })
}

/// How one L-BFGS run ended: iterations, a description, whether it converged.
struct RunEnd {
    iterations: u64,
    status: String,
    converged: bool,
}

/// One L-BFGS run on `problem` from `z0` for at most `max_iters` iterations.
fn run_lbfgs<D: LogDensity + ?Sized>(
    problem: ModeProblem<'_, D>,
    settings: &LaplaceSettings,
    z0: Vec<f64>,
    max_iters: u64,
) -> Result<RunEnd, InferenceError> {
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), settings.lbfgs_memory)
        .with_tolerance_grad(settings.grad_tol)
        .and_then(|s| s.with_tolerance_cost(0.0))
        .map_err(|e| InferenceError::InvalidSettings(e.to_string()))?;
    let outcome = Executor::new(problem, solver).configure(|state| state.param(z0).max_iters(max_iters)).run();
    Ok(match &outcome {
        Ok(result) => {
            let state = result.state();
            let (status, converged) = match state.get_termination_reason() {
                Some(TerminationReason::SolverConverged) => ("converged".to_string(), true),
                Some(TerminationReason::MaxItersReached) => (format!("stopped at max_iters = {max_iters}"), false),
                // Near the optimum the line search runs out of floating-point resolution; whether the
                // point is good enough is judged from the gradient (and, for the best start, from the
                // Newton step).
                Some(TerminationReason::SolverExit(msg)) if msg.contains("Line search") => {
                    ("stopped when the line search could make no further progress".to_string(), false)
                }
                Some(other) => (other.to_string(), false),
                None => ("unknown".to_string(), false),
            };
            RunEnd { iterations: state.get_iter(), status, converged }
        }
        Err(e) => RunEnd { iterations: 0, status: format!("optimiser stopped: {e}"), converged: false },
    })
}

/// L-BFGS in a preconditioned problem's coordinates `z` (where the curvature is near the identity)
/// from `z0` for at most `max_iters` iterations: the two-loop recursion over the last
/// `lbfgs_memory` pairs (s, y) with initial scaling sᵀy/yᵀy, pairs with sᵀy ≤ 1e-10·|s||y| skipped;
/// the step capped at a trust length Δ (initially 1, so the first step moves at most one posterior
/// sd as measured at the preconditioning point; afterwards Δ = max(2·last accepted step, 1e-3))
/// and cut back by halving until the Armijo condition f(z + αd) ≤ f(z) + 1e-4·α·∇fᵀd holds at a
/// finite point (at most 60 halvings). Converged when |∇_z| < `grad_tol`. Unlike Moré–Thuente, the
/// backtracking needs no derivative at rejected points, so a probe where the density is not finite
/// only shortens the step.
fn lbfgs_preconditioned<D: LogDensity + ?Sized>(
    problem: &ModeProblem<'_, D>,
    settings: &LaplaceSettings,
    z0: Vec<f64>,
    max_iters: u64,
) -> Result<RunEnd, InferenceError> {
    let fatal = |e: argmin::core::Error| InferenceError::Optimization(e.to_string());
    let finite = |c: f64| c < NON_FINITE_COST;
    let mut z = z0;
    let (mut f, mut g) = problem.evaluate(&z).map_err(fatal)?;
    if !finite(f) {
        return Ok(RunEnd { iterations: 0, status: "the start is not a finite point".into(), converged: false });
    }
    let m = settings.lbfgs_memory.max(1);
    let mut pairs: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = std::collections::VecDeque::new();
    let mut trust = 1.0f64;
    for it in 0..max_iters {
        if norm(&g) < settings.grad_tol {
            return Ok(RunEnd { iterations: it, status: "converged".into(), converged: true });
        }
        // two-loop recursion: d = −H g
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(pairs.len());
        for (s, y, rho) in pairs.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        let gamma = pairs.back().map_or(1.0, |(s, y, _)| dot(s, y) / dot(y, y));
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope.is_nan() || slope >= 0.0 || d.iter().any(|v| !v.is_finite()) {
            pairs.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let len = norm(&d);
        if len > trust {
            let k = trust / len;
            d.iter_mut().for_each(|v| *v *= k);
            slope *= k;
        }
        let mut alpha = 1.0;
        let mut accepted = None;
        for _ in 0..60 {
            let probe: Vec<f64> = z.iter().zip(&d).map(|(a, b)| a + alpha * b).collect();
            let (fp, gp) = problem.evaluate(&probe).map_err(fatal)?;
            if finite(fp) && fp <= f + 1e-4 * alpha * slope {
                accepted = Some((probe, fp, gp));
                break;
            }
            alpha *= 0.5;
        }
        let Some((zn, fn_, gn)) = accepted else {
            return Ok(RunEnd {
                iterations: it,
                status: "stopped when the line search could make no further progress".into(),
                converged: false,
            });
        };
        let s_vec: Vec<f64> = zn.iter().zip(&z).map(|(a, b)| a - b).collect();
        let y_vec: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s_vec, &y_vec);
        let step = norm(&s_vec);
        if sy > 1e-10 * step * norm(&y_vec) {
            if pairs.len() == m {
                pairs.pop_front();
            }
            pairs.push_back((s_vec, y_vec, 1.0 / sy));
        }
        trust = (2.0 * step).max(1e-3);
        z = zn;
        f = fn_;
        g = gn;
    }
    let converged = norm(&g) < settings.grad_tol;
    Ok(RunEnd {
        iterations: max_iters,
        status: if converged { "converged".into() } else { format!("stopped at max_iters = {max_iters}") },
        converged,
    })
}

/// L-BFGS from `start`: in the density's own coordinates with `precondition_every` = 0, otherwise
/// in rounds of at most `precondition_every` iterations, each in the coordinates of a
/// [`Preconditioner`] taken at the best point so far (dim + 1 gradient evaluations each, fewer with
/// a [`LogDensity::hessian_sparsity`]), until a
/// round converges, `max_iters` iterations are spent or a round makes no progress.
fn optimise<D: LogDensity + ?Sized>(
    density: &D,
    settings: &LaplaceSettings,
    start: Vec<f64>,
) -> Result<StartResult, InferenceError> {
    let tracker = Tracker::default();
    let mut iterations = 0;
    let mut rounds = 0;
    let mut end;
    if settings.precondition_every == 0 {
        end = run_lbfgs(
            ModeProblem { density, tracker: &tracker, pre: None },
            settings,
            start.clone(),
            settings.max_iters,
        )?;
        iterations = end.iterations;
    } else {
        let mut x = start.clone();
        loop {
            let (pre, evaluations) = Preconditioner::at(density, &x)?;
            *tracker.evaluations.borrow_mut() += evaluations;
            *tracker.last.borrow_mut() = None;
            let before = tracker.best.borrow().as_ref().map(|b| b.1);
            let budget = settings.precondition_every.min(settings.max_iters - iterations);
            let z0 = match &pre {
                Some(_) => vec![0.0; x.len()],
                None => x.clone(),
            };
            let problem = ModeProblem { density, tracker: &tracker, pre: pre.as_ref() };
            end = lbfgs_preconditioned(&problem, settings, z0, budget)?;
            iterations += end.iterations;
            rounds += 1;
            if tracker.fatal.borrow().is_some() {
                break;
            }
            let best = tracker.best.borrow().as_ref().map(|b| (b.0.clone(), b.1));
            let Some((bx, bcost)) = best else { break };
            let progressed = before.is_none_or(|c| bcost < c);
            if end.converged || iterations >= settings.max_iters || !progressed {
                break;
            }
            x = bx;
        }
        if iterations >= settings.max_iters && !end.converged {
            end.status = format!("stopped at max_iters = {}", settings.max_iters);
        }
    }
    if let Some(message) = tracker.fatal.borrow_mut().take() {
        return Err(InferenceError::FatalDensity { chain: 0, iteration: *tracker.evaluations.borrow(), message });
    }
    let status = if rounds > 1 { format!("{} ({rounds} preconditioned rounds)", end.status) } else { end.status };
    let best = tracker.best.borrow().as_ref().map(|(x, cost, grad)| (x.clone(), -cost, norm(grad)));
    let report = LaplaceStart {
        start,
        end: best.as_ref().map(|b| b.0.clone()),
        logp: best.as_ref().map(|b| b.1),
        iterations,
        status: match &best {
            Some((_, _, g)) => {
                format!("{status}; |∇log p| = {g:.1e} after {} evaluations", tracker.evaluations.borrow())
            }
            None => status,
        },
    };
    Ok(StartResult { report, best })
}

/// The best mode found by L-BFGS from `settings.starts` starts (chosen as for [`laplace`]): the
/// point and its log density, without the Hessian. Used to start NUTS chains near the posterior
/// bulk, so warm-up spends its iterations adapting rather than travelling.
///
/// Errors: invalid settings, no valid start, a fatal density error, or no start reaching a point
/// with a finite log density.
pub fn find_mode<D: LogDensity + ?Sized>(
    density: &D,
    settings: &LaplaceSettings,
) -> Result<(Vec<f64>, f64), InferenceError> {
    if settings.starts == 0 || settings.init_attempts == 0 || settings.lbfgs_memory == 0 {
        return Err(InferenceError::InvalidSettings(
            "starts, init_attempts and lbfgs_memory must be at least 1".into(),
        ));
    }
    check_warm_starts(density.dim(), settings)?;
    run_starts(density, settings)?
        .into_iter()
        .filter_map(|r| r.best.map(|(x, lp, _)| (x, lp)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| InferenceError::Optimization("no optimiser start reached a finite log density".into()))
}

/// Every start's L-BFGS run, in start order (the starts run in parallel; the result does not depend
/// on the thread count).
fn run_starts<D: LogDensity + ?Sized>(
    density: &D,
    settings: &LaplaceSettings,
) -> Result<Vec<StartResult>, InferenceError> {
    (0..settings.starts)
        .into_par_iter()
        .map(|k| optimise(density, settings, starting_point(density, settings, k)?))
        .collect()
}

/// The outcome of the multi-start mode search: the best point and every start's report.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeSearch {
    pub mode: Vec<f64>,
    pub logp: f64,
    pub starts: Vec<LaplaceStart>,
}

/// L-BFGS from `settings.starts` starts (start k from the seed's stream k + 1; with `Init::Around`
/// start 0 is the centre itself), the best end point kept. The first half of [`laplace`]: a caller
/// can search in one parametrisation and finish ([`laplace_at`]) in another.
pub fn search_modes<D: LogDensity + ?Sized>(
    density: &D,
    settings: &LaplaceSettings,
) -> Result<ModeSearch, InferenceError> {
    check_settings(density, settings)?;
    let results = run_starts(density, settings)?;
    let best = results
        .iter()
        .filter_map(|r| r.best.as_ref().map(|b| (b.0.clone(), b.1)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| {
            InferenceError::Optimization(format!(
                "no optimiser start reached a point with a finite log density: {}",
                results.iter().map(|r| r.report.status.as_str()).collect::<Vec<_>>().join("; ")
            ))
        })?;
    Ok(ModeSearch { mode: best.0, logp: best.1, starts: results.into_iter().map(|r| r.report).collect() })
}

/// log p and ∇log p at `x`, or `None` where the density is not finite or not defined.
fn eval_finite<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    grad: &mut [f64],
) -> Result<Option<f64>, InferenceError> {
    match density.logp_grad(x, grad) {
        Ok(lp) if lp.is_finite() && grad.iter().all(|g| g.is_finite()) => Ok(Some(lp)),
        Ok(_) | Err(LogDensityError::Recoverable(_)) => Ok(None),
        Err(LogDensityError::Fatal(message)) => Err(InferenceError::FatalDensity { chain: 0, iteration: 0, message }),
    }
}

/// A polished mode: the point, its log density, the negative Hessian there, Newton steps taken.
type Polished = (Vec<f64>, f64, Vec<Vec<f64>>, usize);

/// Newton's method from `x` with the finite-difference Hessian H: the step solves (−H + λI) s = ∇log p
/// with λ = 0 where −H is positive definite and λ = 1.1·|λ_min(−H)| + 1e-8·λ_max otherwise
/// (Levenberg–Marquardt damping, so a saddle or a non-concave stretch of a curved ridge is climbed
/// instead of stepped into), halved until log p does not decrease. L-BFGS stops on curved ridges
/// (non-centred hierarchies) with |∇log p| small but the point visibly short of the mode; a few
/// Newton steps converge there quadratically. Returns the polished point, its log density, the
/// negative Hessian there and the number of Newton steps taken.
fn newton_polish<D: LogDensity + ?Sized>(
    density: &D,
    settings: &LaplaceSettings,
    mut x: Vec<f64>,
) -> Result<Polished, InferenceError> {
    let d = x.len();
    let mut grad = vec![0.0; d];
    let mut lp = eval_finite(density, &x, &mut grad)?.ok_or_else(|| {
        InferenceError::Optimization("the log density is not finite at the optimiser's best point".into())
    })?;
    let neg =
        |h: Vec<Vec<f64>>| -> Vec<Vec<f64>> { h.into_iter().map(|r| r.into_iter().map(|v| -v).collect()).collect() };
    let mut neg_h = neg(hessian(density, &x, settings.hessian_step)?);
    let mut steps = 0;
    let mut probe_grad = vec![0.0; d];
    for _ in 0..settings.newton_iters {
        let m = Mat::from_fn(d, d, |i, j| neg_h[i][j]);
        let eig = m.self_adjoint_eigen(Side::Lower).map_err(|e| InferenceError::Optimization(format!("{e:?}")))?;
        let (u, sv) = (eig.U(), eig.S());
        let largest = (0..d).fold(0.0f64, |a, i| a.max(sv[i].abs()));
        let smallest = sv[0];
        let zero = EIGEN_RELATIVE_ZERO * largest.max(f64::MIN_POSITIVE);
        let lambda = if smallest > zero { 0.0 } else { 1.1 * smallest.abs() + 1e-8 * largest.max(1.0) };
        // s = U diag(1/(s_i + λ)) Uᵀ ∇log p
        let ug: Vec<f64> =
            (0..d).map(|k| (0..d).map(|i| u[(i, k)] * grad[i]).sum::<f64>() / (sv[k] + lambda)).collect();
        let step: Vec<f64> = (0..d).map(|i| (0..d).map(|k| u[(i, k)] * ug[k]).sum()).collect();
        // converged: the step is below MODE_TOLERANCE_SD posterior sd in every coordinate (sd from the
        // diagonal of the inverse, Σ_k U_ik²/s_k) and −H is positive definite
        let converged = lambda == 0.0
            && (0..d).all(|i| {
                let var: f64 = (0..d).map(|k| u[(i, k)] * u[(i, k)] / sv[k]).sum();
                step[i].abs() <= 0.1 * MODE_TOLERANCE_SD * var.sqrt()
            });
        if converged {
            break;
        }
        let mut alpha = 1.0;
        let mut accepted = None;
        for _ in 0..30 {
            let probe: Vec<f64> = x.iter().zip(&step).map(|(a, s)| a + alpha * s).collect();
            if let Some(lp_new) = eval_finite(density, &probe, &mut probe_grad)?
                && lp_new >= lp - 1e-12 * lp.abs().max(1.0)
            {
                accepted = Some((probe, lp_new));
                break;
            }
            alpha *= 0.5;
        }
        let Some((probe, lp_new)) = accepted else { break };
        x = probe;
        lp = lp_new;
        grad.copy_from_slice(&probe_grad);
        neg_h = neg(hessian(density, &x, settings.hessian_step)?);
        steps += 1;
    }
    Ok((x, lp, neg_h, steps))
}

fn check_settings<D: LogDensity + ?Sized>(density: &D, settings: &LaplaceSettings) -> Result<(), InferenceError> {
    let dim = density.dim();
    if dim == 0 {
        return Err(InferenceError::InvalidModel("the model has no parameters".into()));
    }
    if density.param_names().len() != dim {
        return Err(InferenceError::InvalidModel(format!(
            "param_names() gives {} names for {dim} parameters",
            density.param_names().len()
        )));
    }
    if settings.starts == 0 || settings.init_attempts == 0 || settings.lbfgs_memory == 0 {
        return Err(InferenceError::InvalidSettings(
            "starts, init_attempts and lbfgs_memory must be at least 1".into(),
        ));
    }
    if !(settings.grad_tol >= 0.0 && settings.hessian_step > 0.0 && settings.hessian_step < 0.1) {
        return Err(InferenceError::InvalidSettings(format!(
            "grad_tol must be >= 0 and hessian_step in (0, 0.1), got {} and {}",
            settings.grad_tol, settings.hessian_step
        )));
    }
    if let Init::Around { center, .. } = &settings.init
        && center.len() != dim
    {
        return Err(InferenceError::InvalidModel(format!(
            "init center has {} coordinates, the model has {dim}",
            center.len()
        )));
    }
    check_warm_starts(dim, settings)
}

fn check_warm_starts(dim: usize, settings: &LaplaceSettings) -> Result<(), InferenceError> {
    match settings.warm_starts.iter().position(|w| w.len() != dim) {
        Some(k) => Err(InferenceError::InvalidModel(format!(
            "warm start {k} has {} coordinates, the model has {dim}",
            settings.warm_starts[k].len()
        ))),
        None => Ok(()),
    }
}

/// Hessian of log p at `x` by central differences of the analytic gradient, symmetrised:
/// column j is `(∇log p(x + h_j e_j) − ∇log p(x − h_j e_j)) / (2 h_j)` with
/// `h_j = step · max(|x_j|, 1)`, the columns of the density's [`LogDensity::hessian_sparsity`]
/// perturbed together where it declares one ([`crate::sparsity`]: 2·(shared + largest block)
/// gradients instead of 2·dim). Fails if the density is not finite at a probe point.
pub fn hessian<D: LogDensity + ?Sized>(density: &D, x: &[f64], step: f64) -> Result<Vec<Vec<f64>>, InferenceError> {
    hessian_with(density, x, step, density.hessian_sparsity().as_ref())
}

/// [`hessian`] with the sparsity structure given (`None`: every column alone, the dense scheme).
pub fn hessian_with<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    step: f64,
    sparsity: Option<&HessianSparsity>,
) -> Result<Vec<Vec<f64>>, InferenceError> {
    fd_hessian(density, x, Scheme::Central { step }, sparsity)
}

/// Hessian of log p at `x` by forward differences of the analytic gradient, symmetrised: column j
/// is `(∇log p(x + h_j e_j) − ∇log p(x)) / h_j` with `h_j = √ε · max(|x_j|, 1)` (truncation error
/// ∝ h, rounding ∝ ε/h: relative error ~1e-8), the columns of the density's
/// [`LogDensity::hessian_sparsity`] perturbed together where it declares one. Half the cost of
/// [`hessian`]'s central differences, for uses that need the curvature's shape rather than its
/// last digits (preconditioning). Fails if the density is not finite at `x` or a probe point.
pub fn hessian_forward<D: LogDensity + ?Sized>(density: &D, x: &[f64]) -> Result<Vec<Vec<f64>>, InferenceError> {
    hessian_forward_with(density, x, density.hessian_sparsity().as_ref())
}

/// [`hessian_forward`] with the sparsity structure given (`None`: every column alone).
pub fn hessian_forward_with<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    sparsity: Option<&HessianSparsity>,
) -> Result<Vec<Vec<f64>>, InferenceError> {
    fd_hessian(density, x, Scheme::Forward, sparsity)
}

/// [`hessian_forward_with`] and the gradient evaluations it took.
pub fn hessian_forward_counted<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    sparsity: Option<&HessianSparsity>,
) -> Result<CountedHessian, InferenceError> {
    let h = hessian_forward_with(density, x, sparsity)?;
    Ok((h, gradient_count(sparsity, x.len(), Scheme::Forward)))
}

/// The mode counts as found when a Newton step from it would move no coordinate by more than this
/// many posterior standard deviations.
pub const MODE_TOLERANCE_SD: f64 = 1e-3;

/// Relative size below which an eigenvalue of the negative Hessian counts as zero: the central
/// differences carry relative errors around 1e-10, so smaller curvature cannot be told from none.
const EIGEN_RELATIVE_ZERO: f64 = 1e-10;

/// Cholesky factor L (lower, row-major) of the negative Hessian `a`, or the error naming the worst
/// direction when it is not (numerically) positive definite.
fn cholesky_or_explain(a: &[Vec<f64>], names: &[String]) -> Result<Vec<Vec<f64>>, InferenceError> {
    let d = a.len();
    let m = Mat::from_fn(d, d, |i, j| a[i][j]);
    let eig = m.self_adjoint_eigen(Side::Lower).map_err(|e| InferenceError::Optimization(format!("{e:?}")))?;
    let values: Vec<f64> = (0..d).map(|i| eig.S()[i]).collect();
    let largest = values.iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
    let zero = EIGEN_RELATIVE_ZERO * largest.max(f64::MIN_POSITIVE);
    let llt = if values[0] > zero { m.llt(Side::Lower).ok() } else { None };
    match llt {
        Some(llt) => {
            let l = llt.L();
            Ok((0..d).map(|i| (0..d).map(|j| if j <= i { l[(i, j)] } else { 0.0 }).collect()).collect())
        }
        None => {
            // Eigenvalues are sorted ascending: column 0 of U is the worst direction.
            let u = eig.U();
            let direction: Vec<f64> = (0..d).map(|i| u[(i, 0)]).collect();
            let worst = (0..d).max_by(|&i, &j| direction[i].abs().total_cmp(&direction[j].abs())).unwrap_or(0);
            Err(InferenceError::NotPositiveDefinite {
                worst_param: names[worst].clone(),
                worst_eigenvalue: values[0],
                worst_direction: direction,
                n_nonpositive: values.iter().filter(|v| **v <= zero).count(),
                dim: d,
            })
        }
    }
}

/// Solve `L' y = z` (back substitution with the transpose of lower-triangular `l`).
fn solve_lt(l: &[Vec<f64>], z: &[f64]) -> Vec<f64> {
    let d = z.len();
    let mut y = vec![0.0; d];
    for i in (0..d).rev() {
        let s: f64 = (i + 1..d).map(|k| l[k][i] * y[k]).sum();
        y[i] = (z[i] - s) / l[i][i];
    }
    y
}

/// Solve `L y = z` (forward substitution).
fn solve_l(l: &[Vec<f64>], z: &[f64]) -> Vec<f64> {
    let d = z.len();
    let mut y = vec![0.0; d];
    for i in 0..d {
        let s: f64 = (0..i).map(|k| l[i][k] * y[k]).sum();
        y[i] = (z[i] - s) / l[i][i];
    }
    y
}

/// Laplace approximation of the posterior: a Gaussian at the best mode with covariance the inverse
/// negative Hessian, and `settings.draws` independent draws from it as a one-chain [`Posterior`]
/// (same type as NUTS output). Starts run in parallel on the current rayon pool; the result does
/// not depend on the thread count.
///
/// Starts that end at a different mode from the best (more than 0.05 posterior sd away in some
/// coordinate, or with log density lower by more than 1e-6) or fail are reported in
/// `LaplaceInfo::warnings`.
///
/// Errors: no start finds a valid point or every start fails; a fatal density error; the negative
/// Hessian not positive definite ([`InferenceError::NotPositiveDefinite`] names the parameter that
/// dominates the flat or upward-curving direction).
pub fn laplace<D: LogDensity + ?Sized>(density: &D, settings: &LaplaceSettings) -> Result<Posterior, InferenceError> {
    let search = search_modes(density, settings)?;
    laplace_at(density, settings, search)
}

/// The second half of [`laplace`]: Newton-polishes `search.mode` (see `newton_polish`), takes the
/// Hessian there and draws. `search.starts` (their `end` points in this density's coordinates) are
/// compared with the polished mode: a start whose end has log density lower by more than
/// `settings.disagree_nats`, or lies more than 0.05 posterior sd away with a log density within
/// that gap, is reported in `LaplaceInfo::warnings` (the first kind as a different mode).
pub fn laplace_at<D: LogDensity + ?Sized>(
    density: &D,
    settings: &LaplaceSettings,
    search: ModeSearch,
) -> Result<Posterior, InferenceError> {
    check_settings(density, settings)?;
    let dim = density.dim();
    let names = density.param_names();
    if search.mode.len() != dim {
        return Err(InferenceError::InvalidModel(format!(
            "the mode has {} coordinates, the model has {dim}",
            search.mode.len()
        )));
    }
    let (mode, logp_at_mode, neg_hessian, newton_steps) = newton_polish(density, settings, search.mode)?;
    let l = cholesky_or_explain(&neg_hessian, &names)?;
    // Covariance = (L L')⁻¹: column j solves L L' c = e_j.
    let mut covariance = vec![vec![0.0; dim]; dim];
    for j in 0..dim {
        let mut e = vec![0.0; dim];
        e[j] = 1.0;
        let c = solve_lt(&l, &solve_l(&l, &e));
        for i in 0..dim {
            covariance[i][j] = c[i];
        }
    }
    let sds: Vec<f64> = (0..dim).map(|j| covariance[j][j].sqrt()).collect();

    let mut warnings = Vec::new();
    // How far the mode is from the true maximum, in posterior sds: the Newton step Σ ∇log p.
    let mut grad = vec![0.0; dim];
    density.logp_grad(&mode, &mut grad).map_err(|e| InferenceError::Optimization(e.to_string()))?;
    let newton: Vec<f64> = (0..dim).map(|i| (0..dim).map(|j| covariance[i][j] * grad[j]).sum()).collect();
    let (worst, newton_sd) =
        (0..dim).map(|j| (j, newton[j].abs() / sds[j])).max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((0, 0.0));
    if newton_sd > MODE_TOLERANCE_SD {
        warnings.push(format!(
            "the optimiser stopped short of the mode: a Newton step would still move `{}` by {newton_sd:.2e} posterior \
             sd after {newton_steps} Newton steps. The Laplace mean is off by about that much; raise max_iters or \
             newton_iters.",
            names[worst]
        ));
    }
    let mut starts = search.starts;
    let mut scratch = vec![0.0; dim];
    let mut different = 0;
    for (k, r) in starts.iter_mut().enumerate() {
        let Some(x) = r.end.as_ref() else {
            warnings.push(format!("start {k} failed: {}", r.status));
            continue;
        };
        // the start's log density in this density's coordinates (the search may have run in another
        // parametrisation of the same model)
        let lp = eval_finite(density, x, &mut scratch)?;
        r.logp = lp;
        let Some(lp) = lp else { continue };
        let (j, dist) = (0..dim)
            .map(|j| (j, (x[j] - mode[j]).abs() / sds[j]))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let gap = logp_at_mode - lp;
        if gap > settings.disagree_nats {
            different += 1;
            warnings.push(format!(
                "start {k} ended at a different point with log density lower by {gap:.2} ({dist:.2} posterior sd away \
                 in `{}`; {}): the posterior may be multimodal or that start stopped early; the Laplace \
                 approximation describes the best mode",
                names[j], r.status
            ));
        } else if dist > 0.05 && gap > 1e-6 {
            warnings.push(format!(
                "start {k} stopped {dist:.2} posterior sd from the mode in `{}` (log density lower by {gap:.2e}; {})",
                names[j], r.status
            ));
        }
    }
    if different > 0 && 2 * different >= starts.len() {
        warnings.push(format!(
            "{different} of {} starts did not reach the best mode: with more starts ([fit] laplace_starts) a still \
             better mode may exist",
            starts.len()
        ));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    rng.set_stream(0);
    let draws: Vec<Vec<f64>> = (0..settings.draws)
        .map(|_| {
            let z: Vec<f64> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
            solve_lt(&l, &z).iter().zip(&mode).map(|(dx, m)| m + dx).collect()
        })
        .collect();

    Ok(Posterior {
        method: Method::Laplace,
        param_names: names,
        draws: vec![draws],
        sample_stats: Vec::new(),
        warmup: Vec::new(),
        laplace: Some(LaplaceInfo { mode, logp_at_mode, covariance, starts, warnings }),
    })
}
