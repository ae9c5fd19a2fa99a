//! Sparse finite-difference Hessians: which coordinates of a log density interact, and the column
//! colouring that gets the whole Hessian from a few gradient differences.
//!
//! A finite-difference Hessian perturbs one coordinate per gradient evaluation (dim evaluations
//! forward, 2·dim central). When log p is a sum of per-block terms plus shared ones,
//! log p(x) = f₀(s) + Σ_b f_b(s, x_b) with s the shared coordinates and x_b the coordinates of
//! block b (a geo's intercept and effects), coordinates of different blocks do not interact:
//! ∂²log p/∂x_i∂x_j = 0, and more strongly ∂log p/∂x_i does not depend on x_j at all. The
//! Hessian is then block-arrow: dense rows and columns for the shared coordinates, dense diagonal
//! blocks, zero elsewhere. Curtis, Powell & Reid (1974, "On the estimation of sparse Jacobian
//! matrices", J. Inst. Math. Appl. 13) perturb together columns that share no non-zero row;
//! Powell & Toint (1979, "On the estimation of sparse Hessian matrices", SIAM J. Numer. Anal. 16)
//! use the symmetry H_ij = H_ji so that an entry needs to be clean in only one of its two
//! columns (Nocedal & Wright, *Numerical Optimization*, 2nd ed., §8.1, "Approximating the
//! Hessian" and "Sparse Hessians"). For a block-arrow Hessian:
//!
//! - each shared coordinate is perturbed alone, which gives its whole column (and, by symmetry,
//!   its row);
//! - the k-th coordinate of every block is perturbed at once (colour k): the gradient change in a
//!   coordinate i of block b comes only from block b's k-th coordinate j, so it is column j's
//!   entry in row i; the rows of shared coordinates are polluted by every block, but those
//!   entries were read off the shared columns.
//!
//! So the Hessian costs (shared + largest block) perturbations instead of dim: for a geo model,
//! independent of the number of geos. Each entry comes from the same gradient differences as in
//! the dense scheme (exactly the same changes in the coordinates it depends on), so the result
//! equals the dense finite-difference Hessian up to rounding; the one difference is that an entry
//! between a shared and a block coordinate is read once (from the shared column) where the dense
//! scheme averages its two estimates.

#![allow(clippy::needless_range_loop)] // dense matrix code reads best with explicit indices

use crate::{InferenceError, LogDensity, LogDensityError};

/// A Hessian (rows) with the gradient evaluations it took.
pub type CountedHessian = (Vec<Vec<f64>>, u64);

/// Which coordinates of a log density interact: every coordinate is either shared (it may
/// interact with every other) or belongs to a block, and coordinates of different blocks do not
/// interact — ∂log p/∂x_i does not depend on x_j for i, j in different blocks (see the module
/// doc). A density declares it through [`LogDensity::hessian_sparsity`]; a wrong declaration
/// gives a wrong Hessian, so declare only what the density's formula guarantees, and check it with
/// [`sparsity_violation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HessianSparsity {
    /// Per coordinate: `None` shared, `Some(b)` in block b.
    block: Vec<Option<usize>>,
}

impl HessianSparsity {
    /// The structure with coordinate i in block `block[i]` (`None`: shared).
    pub fn new(block: Vec<Option<usize>>) -> Self {
        HessianSparsity { block }
    }

    /// Number of coordinates.
    pub fn dim(&self) -> usize {
        self.block.len()
    }

    /// Coordinate i's block (`None`: shared).
    pub fn block(&self, i: usize) -> Option<usize> {
        self.block[i]
    }

    /// Whether ∂²log p/∂x_i∂x_j may be non-zero: either is shared, or both are in one block.
    pub fn interacts(&self, i: usize, j: usize) -> bool {
        match (self.block[i], self.block[j]) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// The groups of coordinates perturbed together, in a fixed order: each shared coordinate
    /// alone (in index order), then colour k = the k-th coordinate (in index order) of every block
    /// that has one. Their number is (shared coordinates) + (largest block).
    pub fn colours(&self) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = Vec::new();
        let mut position: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
        let mut colours: Vec<Vec<usize>> = Vec::new();
        for (i, b) in self.block.iter().enumerate() {
            match b {
                None => out.push(vec![i]),
                Some(b) => {
                    let k = position.entry(*b).or_insert(0);
                    if colours.len() <= *k {
                        colours.push(Vec::new());
                    }
                    colours[*k].push(i);
                    *k += 1;
                }
            }
        }
        out.extend(colours);
        out
    }
}

/// The finite-difference scheme of a Hessian from gradients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scheme {
    /// Central differences, h_j = step · max(|x_j|, 1): truncation ∝ h², rounding ∝ ε/h.
    Central { step: f64 },
    /// Forward differences, h_j = √ε · max(|x_j|, 1), rounded so that x_j + h_j − x_j = h_j
    /// exactly: truncation ∝ h, rounding ∝ ε/h.
    Forward,
}

/// The Hessian of log p at `x` by finite differences of the analytic gradient in `scheme`,
/// symmetrised, perturbing the columns of `sparsity`'s colours together (every column alone
/// without one). One formula for every Hessian of this crate:
///
/// column group C, Δ_C = Σ_{j∈C} h_j e_j, gradient difference
/// d_C = ∇log p(x + Δ_C) − ∇log p(x − Δ_C) (central) or ∇log p(x + Δ_C) − ∇log p(x) (forward),
/// and H_ij = d_C,i / (2h_j) (central) or d_C,i / h_j (forward) for every j ∈ C and every row i
/// whose gradient only column j of C moves (any row when C = {j}; the rows of j's block
/// otherwise). Entries between a shared and a block coordinate are read off the shared column;
/// entries of different blocks are 0. Then H ← (H + Hᵀ)/2 (Powell & Toint 1979; see the module
/// doc).
///
/// Gradient evaluations: 2·(number of groups) central, groups + 1 forward. Fails if the density
/// is not finite at a probe point (or at `x`, forward).
pub(crate) fn fd_hessian<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    scheme: Scheme,
    sparsity: Option<&HessianSparsity>,
) -> Result<Vec<Vec<f64>>, InferenceError> {
    let d = x.len();
    if let Some(s) = sparsity
        && s.dim() != d
    {
        return Err(InferenceError::InvalidModel(format!(
            "hessian_sparsity() describes {} coordinates, the model has {d}",
            s.dim()
        )));
    }
    let not_finite = || match scheme {
        Scheme::Central { step } => InferenceError::Optimization(format!(
            "the log density is not finite within {step:e} (relative) of the mode, so the Hessian cannot be \
             computed; the mode may lie on a boundary of the support"
        )),
        Scheme::Forward => InferenceError::Optimization("the log density is not finite next to the point".into()),
    };
    let eval = |p: &[f64], g: &mut [f64]| match density.logp_grad(p, g) {
        Ok(lp) if lp.is_finite() && g.iter().all(|v| v.is_finite()) => Ok(()),
        Ok(_) | Err(LogDensityError::Recoverable(_)) => Err(not_finite()),
        Err(LogDensityError::Fatal(message)) => Err(InferenceError::FatalDensity { chain: 0, iteration: 0, message }),
    };
    let groups: Vec<Vec<usize>> = match sparsity {
        Some(s) => s.colours(),
        None => (0..d).map(|j| vec![j]).collect(),
    };
    // the step of each column, and the divisor of its differences
    let (steps, divisor): (Vec<f64>, Vec<f64>) = (0..d)
        .map(|j| match scheme {
            Scheme::Central { step } => {
                let h = step * x[j].abs().max(1.0);
                (h, 2.0 * h)
            }
            Scheme::Forward => {
                let h = f64::EPSILON.sqrt() * x[j].abs().max(1.0);
                let h = (x[j] + h) - x[j];
                (h, h)
            }
        })
        .unzip();
    let mut g0 = vec![0.0; d];
    if scheme == Scheme::Forward {
        eval(x, &mut g0)?;
    }
    let mut h = vec![vec![0.0; d]; d];
    let mut probe = x.to_vec();
    let (mut gp, mut gm) = (vec![0.0; d], vec![0.0; d]);
    for group in &groups {
        for &j in group {
            probe[j] = x[j] + steps[j];
        }
        eval(&probe, &mut gp)?;
        let base = match scheme {
            Scheme::Central { .. } => {
                for &j in group {
                    probe[j] = x[j] - steps[j];
                }
                eval(&probe, &mut gm)?;
                &gm
            }
            Scheme::Forward => &g0,
        };
        for &j in group {
            probe[j] = x[j];
        }
        match sparsity {
            // a group of block coordinates: row i of a block is moved only by that block's j
            Some(s) if group.len() > 1 => {
                for &j in group {
                    for i in 0..d {
                        if s.block(i).is_some() && s.block(i) == s.block(j) {
                            h[i][j] = (gp[i] - base[i]) / divisor[j];
                        }
                    }
                }
            }
            // one column alone: all of it
            _ => {
                for &j in group {
                    for i in 0..d {
                        h[i][j] = (gp[i] - base[i]) / divisor[j];
                    }
                }
            }
        }
    }
    if let Some(s) = sparsity {
        // shared row i, block column j: read off the shared column i (symmetry)
        for i in 0..d {
            if s.block(i).is_none() {
                for j in 0..d {
                    if s.block(j).is_some() {
                        h[i][j] = h[j][i];
                    }
                }
            }
        }
    }
    symmetrise(&mut h);
    Ok(h)
}

/// Gradient evaluations [`fd_hessian`] makes in `scheme` on `d` coordinates with `sparsity`.
pub(crate) fn gradient_count(sparsity: Option<&HessianSparsity>, d: usize, scheme: Scheme) -> u64 {
    let groups = sparsity.map_or(d, |s| s.colours().len()) as u64;
    match scheme {
        Scheme::Central { .. } => 2 * groups,
        Scheme::Forward => groups + 1,
    }
}

/// Replaces a finite-difference Hessian by its symmetric part, (H + Hᵀ)/2.
pub(crate) fn symmetrise(h: &mut [Vec<f64>]) {
    for i in 0..h.len() {
        for j in 0..i {
            let s = 0.5 * (h[i][j] + h[j][i]);
            h[i][j] = s;
            h[j][i] = s;
        }
    }
}

/// The entry of the dense central-difference Hessian at `x` (step as [`crate::laplace::hessian`])
/// outside `sparsity`'s pattern that is largest relative to its diagonal, |H_ij|/√(|H_ii|·|H_jj|),
/// as (i, j, that ratio); `None` when every pair interacts. A correct declaration gives ratios at
/// the level of finite-difference noise (~1e-8 for the default step); a wrong one, the size of
/// the interaction it missed. Costs 2·dim gradient evaluations.
pub fn sparsity_violation<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    step: f64,
    sparsity: &HessianSparsity,
) -> Result<Option<(usize, usize, f64)>, InferenceError> {
    let h = fd_hessian(density, x, Scheme::Central { step }, None)?;
    let d = x.len();
    let mut worst: Option<(usize, usize, f64)> = None;
    for i in 0..d {
        for j in 0..i {
            if sparsity.interacts(i, j) {
                continue;
            }
            let scale = (h[i][i].abs() * h[j][j].abs()).sqrt().max(f64::MIN_POSITIVE);
            let r = h[i][j].abs() / scale;
            if worst.is_none_or(|w| r > w.2) {
                worst = Some((i, j, r));
            }
        }
    }
    Ok(worst)
}
