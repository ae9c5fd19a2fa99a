//! Simplex-constrained least squares, the synthetic-control weight problem:
//!
//! ```text
//! minimise ‖A w − b‖²   subject to  w ≥ 0,  Σ w = 1
//! ```
//!
//! Solved exactly (to rounding) by a primal active-set method (stage 2 below) from a warm start or
//! the best single donor; when that fails (a singular face) stage 1 runs first:
//! 1. accelerated projected gradient (FISTA, Beck & Teboulle 2009, with gradient restart,
//!    O'Donoghue & Candès 2015) on the Gram form ½wᵀGw − cᵀw, G = AᵀA, c = Aᵀb, projecting onto the
//!    simplex by the sort-based algorithm (Held, Wolfe & Crowder 1974; Duchi et al. 2008); this finds
//!    the support;
//! 2. a primal active-set method (Nocedal & Wright 2006, Alg. 16.3) started from that support, which
//!    solves the equality-constrained KKT system on the free set exactly and moves indices in or out
//!    of the active set until the KKT conditions hold: stationarity on the support, non-negative
//!    multipliers off it.
//!
//! Why not clarabel: an interior-point solution is accurate to its gap tolerance (~1e-8 relative)
//! and has every weight slightly positive; the active-set stage gives the exact vertex-face optimum,
//! exact zeros and a KKT certificate (`kkt_residual`), and is faster on these small dense problems
//! (tens of donors), which matters for conformal inference where the weights are refitted many times.

use ndarray::{Array2, ArrayView2};

/// The solution of a simplex-constrained least-squares problem.
#[derive(Debug, Clone)]
pub struct SimplexSolution {
    pub weights: Vec<f64>,
    /// ‖A w − b‖².
    pub sse: f64,
    /// Largest violation of the KKT conditions, relative to the problem's scale
    /// (0 up to rounding when the active-set stage certified the optimum).
    pub kkt_residual: f64,
    /// Whether the active-set stage certified the optimum (otherwise the FISTA point is returned).
    pub certified: bool,
}

/// Solves `min ‖A w − b‖², w ≥ 0, Σw = 1` with `A` given as its transpose `at` (n donors × m rows),
/// which is how panels are stored (donor rows, time columns). `w0` is an optional warm start.
pub fn simplex_ls(at: ArrayView2<f64>, b: &[f64], w0: Option<&[f64]>) -> SimplexSolution {
    let n = at.nrows();
    let m = at.ncols();
    assert_eq!(m, b.len(), "simplex_ls: A and b disagree");
    // Gram form
    let g: Array2<f64> = at.dot(&at.t());
    let c: Vec<f64> = (0..n).map(|i| (0..m).map(|t| at[[i, t]] * b[t]).sum()).collect();
    let s = simplex_gram(&g, &c, w0);
    SimplexSolution {
        sse: sse(at, b, &s.weights),
        weights: s.weights,
        kkt_residual: s.kkt_residual,
        certified: s.certified,
    }
}

/// The solution of the Gram form of the problem ([`simplex_gram`]).
#[derive(Debug, Clone)]
pub struct GramSolution {
    pub weights: Vec<f64>,
    /// As [`SimplexSolution::kkt_residual`].
    pub kkt_residual: f64,
    pub certified: bool,
}

/// The same problem in Gram form, `min ½ wᵀG w − cᵀw, w ≥ 0, Σw = 1` with G = AᵀA and c = Aᵀb
/// (‖Aw − b‖² = 2·(½wᵀGw − cᵀw) + ‖b‖²): for callers that solve many problems with the same A and
/// different b, such as per-period conformal inference, which forms G once and moves c linearly.
pub fn simplex_gram(g: &Array2<f64>, c: &[f64], w0: Option<&[f64]>) -> GramSolution {
    let n = c.len();
    assert_eq!(g.dim(), (n, n), "simplex_gram: G and c disagree");
    if n == 1 {
        return GramSolution { weights: vec![1.0], kkt_residual: 0.0, certified: true };
    }
    let scale = g.diag().iter().fold(0.0f64, |a, &x| a.max(x.abs())).max(c.iter().fold(0.0f64, |a, &x| a.max(x.abs())));
    let scale = if scale > 0.0 { scale } else { 1.0 };

    // The active-set method started from the warm start (or from the best single donor) usually
    // finishes in a few pivots. If it cannot (singular face, iteration limit), FISTA runs to a tight
    // tolerance and the active-set stage is retried from its support.
    let start: Vec<f64> = match w0 {
        Some(w) if w.len() == n && w.iter().all(|v| v.is_finite()) => {
            let mut w = w.to_vec();
            project_simplex(&mut w);
            w
        }
        _ => {
            let j = (0..n).min_by(|&a, &b| (0.5 * g[[a, a]] - c[a]).total_cmp(&(0.5 * g[[b, b]] - c[b]))).unwrap_or(0);
            let mut w = vec![0.0; n];
            w[j] = 1.0;
            w
        }
    };
    let (w, certified) = match active_set(g, c, &start, scale) {
        Some(w) => (w, true),
        None => {
            let w_fista = fista(g, c, Some(&start), scale, 1e-13, 20_000);
            match active_set(g, c, &w_fista, scale) {
                Some(w) if obj(g, c, &w) <= obj(g, c, &w_fista) + 1e-12 * scale => (w, true),
                _ => (w_fista, false),
            }
        }
    };
    let kkt = kkt_residual(g, c, &w) / scale;
    GramSolution { weights: w, kkt_residual: kkt, certified }
}

fn sse(at: ArrayView2<f64>, b: &[f64], w: &[f64]) -> f64 {
    (0..b.len()).map(|t| ((0..w.len()).map(|i| at[[i, t]] * w[i]).sum::<f64>() - b[t]).powi(2)).sum()
}

fn obj(g: &Array2<f64>, c: &[f64], w: &[f64]) -> f64 {
    let n = w.len();
    let mut v = 0.0;
    for i in 0..n {
        let gi: f64 = (0..n).map(|j| g[[i, j]] * w[j]).sum();
        v += w[i] * (0.5 * gi - c[i]);
    }
    v
}

fn grad(g: &Array2<f64>, c: &[f64], w: &[f64]) -> Vec<f64> {
    let n = w.len();
    (0..n).map(|i| (0..n).map(|j| g[[i, j]] * w[j]).sum::<f64>() - c[i]).collect()
}

/// KKT violation: with ν chosen as −min over the support of the gradient, stationarity on the support
/// (gradient + ν = 0) and dual feasibility off it (gradient + ν ≥ 0).
fn kkt_residual(g: &Array2<f64>, c: &[f64], w: &[f64]) -> f64 {
    let gr = grad(g, c, w);
    let support: Vec<usize> = (0..w.len()).filter(|&i| w[i] > 0.0).collect();
    if support.is_empty() {
        return f64::INFINITY;
    }
    let nu = -support.iter().map(|&i| gr[i]).sum::<f64>() / support.len() as f64;
    let mut r = 0.0f64;
    for i in 0..w.len() {
        let mu = gr[i] + nu;
        if w[i] > 0.0 {
            r = r.max(mu.abs());
        } else {
            r = r.max((-mu).max(0.0));
        }
    }
    r
}

/// Euclidean projection onto the probability simplex.
pub fn project_simplex(v: &mut [f64]) {
    let mut u: Vec<f64> = v.to_vec();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut css = 0.0;
    let mut theta = 0.0;
    for (k, &x) in u.iter().enumerate() {
        css += x;
        let t = (css - 1.0) / (k + 1) as f64;
        if x - t > 0.0 {
            theta = t;
        }
    }
    for x in v.iter_mut() {
        *x = (*x - theta).max(0.0);
    }
}

fn fista(g: &Array2<f64>, c: &[f64], w0: Option<&[f64]>, scale: f64, rel_tol: f64, max_iter: usize) -> Vec<f64> {
    let n = c.len();
    // Lipschitz constant: largest eigenvalue of G by power iteration, with a 1% margin; the
    // Frobenius norm is a safe upper bound if the iteration has not settled.
    let mut v = vec![1.0 / (n as f64).sqrt(); n];
    let mut lam = 0.0;
    for _ in 0..100 {
        let gv: Vec<f64> = (0..n).map(|i| (0..n).map(|j| g[[i, j]] * v[j]).sum()).collect();
        let nrm = gv.iter().map(|x| x * x).sum::<f64>().sqrt();
        if nrm == 0.0 {
            break;
        }
        let new_lam = nrm;
        v = gv.iter().map(|x| x / nrm).collect();
        if (new_lam - lam).abs() <= 1e-9 * new_lam {
            lam = new_lam;
            break;
        }
        lam = new_lam;
    }
    let frob = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let l = (lam * 1.01).min(frob).max(1e-300);
    let mut x: Vec<f64> = match w0 {
        Some(w) if w.len() == n => {
            let mut w = w.to_vec();
            project_simplex(&mut w);
            w
        }
        _ => vec![1.0 / n as f64; n],
    };
    let mut y = x.clone();
    let mut tk = 1.0f64;
    let tol = rel_tol * scale;
    for _ in 0..max_iter {
        let gy = grad(g, c, &y);
        let mut xn: Vec<f64> = (0..n).map(|i| y[i] - gy[i] / l).collect();
        project_simplex(&mut xn);
        let tn = 0.5 * (1.0 + (1.0 + 4.0 * tk * tk).sqrt());
        // gradient-based adaptive restart
        let restart: f64 = (0..n).map(|i| (y[i] - xn[i]) * (xn[i] - x[i])).sum();
        let step: f64 = (0..n).map(|i| (xn[i] - x[i]).abs()).fold(0.0, f64::max);
        if restart > 0.0 {
            y = xn.clone();
            tk = 1.0;
        } else {
            let beta = (tk - 1.0) / tn;
            y = (0..n).map(|i| xn[i] + beta * (xn[i] - x[i])).collect();
            tk = tn;
        }
        x = xn;
        if step * l < tol {
            break;
        }
    }
    x
}

/// Primal active-set method from the support of `start`. Returns `None` if a KKT system is singular
/// or the iteration limit is hit (the caller then keeps the FISTA point).
fn active_set(g: &Array2<f64>, c: &[f64], start: &[f64], scale: f64) -> Option<Vec<f64>> {
    let n = c.len();
    // work on the objective divided by `scale`, so the KKT matrix's G block and its constraint
    // border of ones are of the same order (otherwise the LU pivot test misreads the border as singular)
    let g = &(g / scale);
    let c: &Vec<f64> = &c.iter().map(|v| v / scale).collect();
    let scale = 1.0;
    let mx = start.iter().cloned().fold(0.0, f64::max);
    let mut w: Vec<f64> = start.iter().map(|&x| if x > 1e-9 * mx { x } else { 0.0 }).collect();
    let s: f64 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= s);
    let mut free: Vec<bool> = w.iter().map(|&x| x > 0.0).collect();
    let tol = 1e-11 * scale;
    for _ in 0..(10 * n + 50) {
        let f: Vec<usize> = (0..n).filter(|&i| free[i]).collect();
        let k = f.len();
        // KKT system [G_FF 1; 1ᵀ 0][z; ν] = [c_F; 1]
        let mut a = vec![0.0; (k + 1) * (k + 1)];
        let mut rhs = vec![0.0; k + 1];
        for (r, &i) in f.iter().enumerate() {
            for (cc, &j) in f.iter().enumerate() {
                a[r * (k + 1) + cc] = g[[i, j]];
            }
            a[r * (k + 1) + k] = 1.0;
            a[k * (k + 1) + r] = 1.0;
            rhs[r] = c[i];
        }
        rhs[k] = 1.0;
        let sol = lu_solve(&mut a, &mut rhs, k + 1)?;
        let z = &sol[..k];
        if z.iter().all(|&v| v >= 0.0) {
            for (r, &i) in f.iter().enumerate() {
                w[i] = z[r];
            }
            for i in 0..n {
                if !free[i] {
                    w[i] = 0.0;
                }
            }
            let gr = grad(g, c, &w);
            let nu = -f.iter().map(|&i| gr[i]).sum::<f64>() / k as f64;
            let worst = (0..n).filter(|&i| !free[i]).map(|i| (i, gr[i] + nu)).min_by(|a, b| a.1.total_cmp(&b.1));
            match worst {
                Some((i, mu)) if mu < -tol => free[i] = true,
                _ => return Some(w),
            }
        } else {
            // step towards z until the first free weight hits zero
            let mut alpha = 1.0;
            let mut block = None;
            for (r, &i) in f.iter().enumerate() {
                if z[r] < w[i] {
                    let a = w[i] / (w[i] - z[r]);
                    if a < alpha {
                        alpha = a;
                        block = Some(i);
                    }
                }
            }
            for (r, &i) in f.iter().enumerate() {
                w[i] += alpha * (z[r] - w[i]);
            }
            if let Some(j) = block {
                w[j] = 0.0;
                free[j] = false;
            }
            for i in 0..n {
                if free[i] && w[i] < 0.0 {
                    w[i] = 0.0;
                }
            }
        }
    }
    None
}

/// The same problem solved by the clarabel interior-point QP solver (tolerances 1e-12), in the
/// residual form `min ½‖r‖²` s.t. `r = A w − b`, `Σw = 1`, `w ≥ 0`. Used as an independent
/// cross-check of [`simplex_ls`] in tests. Returns `None` if clarabel does not report success.
pub fn simplex_ls_clarabel(at: ArrayView2<f64>, b: &[f64]) -> Option<Vec<f64>> {
    use clarabel::algebra::CscMatrix;
    use clarabel::solver::{
        DefaultSettingsBuilder, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus, ZeroConeT,
    };
    let (n, m) = at.dim();
    let nv = n + m; // variables: w (n), r (m)
    // P = diag(0_n, I_m)
    let mut colptr = vec![0usize];
    let mut rowval = Vec::new();
    let mut nzval = Vec::new();
    for j in 0..nv {
        if j >= n {
            rowval.push(j);
            nzval.push(1.0);
        }
        colptr.push(rowval.len());
    }
    let p = CscMatrix::new(nv, nv, colptr, rowval, nzval);
    let q = vec![0.0; nv];
    // rows: m equalities A w − r = b; 1 equality Σw = 1; n inequalities −w + s = 0, s ≥ 0
    let nrows = m + 1 + n;
    let mut colptr = vec![0usize];
    let mut rowval = Vec::new();
    let mut nzval = Vec::new();
    for j in 0..nv {
        if j < n {
            for t in 0..m {
                if at[[j, t]] != 0.0 {
                    rowval.push(t);
                    nzval.push(at[[j, t]]);
                }
            }
            rowval.push(m);
            nzval.push(1.0);
            rowval.push(m + 1 + j);
            nzval.push(-1.0);
        } else {
            rowval.push(j - n);
            nzval.push(-1.0);
        }
        colptr.push(rowval.len());
    }
    let a = CscMatrix::new(nrows, nv, colptr, rowval, nzval);
    let mut rhs = b.to_vec();
    rhs.push(1.0);
    rhs.extend(std::iter::repeat_n(0.0, n));
    let cones = [ZeroConeT(m + 1), NonnegativeConeT(n)];
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .tol_gap_abs(1e-12)
        .tol_gap_rel(1e-12)
        .tol_feas(1e-12)
        .max_iter(500)
        .build()
        .ok()?;
    let mut solver = DefaultSolver::new(&p, &q, &a, &rhs, &cones, settings).ok()?;
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => Some(solver.solution.x[..n].to_vec()),
        _ => None,
    }
}

/// Solves a small dense system by LU with partial pivoting; `None` if (numerically) singular.
pub(crate) fn lu_solve(a: &mut [f64], b: &mut [f64], n: usize) -> Option<Vec<f64>> {
    let amax = a.iter().fold(0.0f64, |m, &x| m.max(x.abs()));
    for col in 0..n {
        let p = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[p * n + col].abs() <= 1e-13 * amax.max(1e-300) {
            return None;
        }
        if p != col {
            for j in 0..n {
                a.swap(p * n + j, col * n + j);
            }
            b.swap(p, col);
        }
        let d = a[col * n + col];
        for r in col + 1..n {
            let f = a[r * n + col] / d;
            if f != 0.0 {
                for j in col..n {
                    a[r * n + j] -= f * a[col * n + j];
                }
                b[r] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|j| a[r * n + j] * x[j]).sum();
        x[r] = (b[r] - s) / a[r * n + r];
    }
    Some(x)
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn projection_lands_on_the_simplex() {
        let mut v = vec![0.5, 2.0, -1.0, 0.3];
        project_simplex(&mut v);
        assert!((v.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(v.iter().all(|&x| x >= 0.0));
        assert_eq!(v, vec![0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn exact_interior_solution_is_recovered() {
        // b is an exact convex combination 0.3 a1 + 0.7 a2 of well-separated donors
        let at = array![[1.0, 0.0, 2.0, 5.0], [0.0, 1.0, -1.0, 3.0], [4.0, 4.0, 4.0, -4.0]];
        let w_true = [0.3, 0.7, 0.0];
        let b: Vec<f64> = (0..4).map(|t| (0..3).map(|i| at[[i, t]] * w_true[i]).sum()).collect();
        let s = simplex_ls(at.view(), &b, None);
        assert!(s.certified);
        for i in 0..3 {
            assert!((s.weights[i] - w_true[i]).abs() < 1e-12, "{:?}", s.weights);
        }
        assert!(s.sse < 1e-20);
    }

    #[test]
    fn active_set_agrees_with_clarabel() {
        let mut state = 777u64;
        let mut r = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let at = Array2::from_shape_fn((20, 15), |_| r());
        let b: Vec<f64> = (0..15).map(|_| r()).collect();
        let s = simplex_ls(at.view(), &b, None);
        let c = simplex_ls_clarabel(at.view(), &b).unwrap();
        // clarabel stops at gap 1e-12: its weights agree to ~1e-6 (interior-point accuracy ~ sqrt(gap))
        for i in 0..20 {
            assert!((s.weights[i] - c[i]).abs() < 1e-5, "{i}: {} vs {}", s.weights[i], c[i]);
        }
        assert!(s.sse <= sse(at.view(), &b, &c) + 1e-12);
    }

    #[test]
    fn kkt_conditions_hold_on_a_random_problem() {
        // deterministic pseudo-random problem, 12 donors, 30 rows
        let mut state = 12345u64;
        let mut r = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let at = Array2::from_shape_fn((12, 30), |_| r());
        let b: Vec<f64> = (0..30).map(|_| r()).collect();
        let s = simplex_ls(at.view(), &b, None);
        assert!(s.certified && s.kkt_residual < 1e-10, "{s:?}");
        // no feasible perturbation does better
        for i in 0..12 {
            for j in 0..12 {
                if i != j && s.weights[i] > 1e-3 {
                    let mut w = s.weights.clone();
                    w[i] -= 1e-3;
                    w[j] += 1e-3;
                    assert!(sse(at.view(), &b, &w) >= s.sse - 1e-15);
                }
            }
        }
    }
}
