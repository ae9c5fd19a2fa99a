//! Sparse finite-difference Hessians (`mmloop_inference::sparsity`): on a hierarchical density
//! whose per-group coordinates do not interact, the coloured Hessian equals the dense one to
//! finite-difference noise with (shared + largest block) perturbations; a missed interaction is
//! found by `sparsity_violation`; the Laplace approximation is unchanged by the declaration.

#![allow(clippy::needless_range_loop)] // matrix indices

use std::sync::atomic::{AtomicUsize, Ordering};

use mmloop_inference::laplace::{hessian, hessian_forward, hessian_forward_with, hessian_with};
use mmloop_inference::{
    HessianSparsity, Init, LaplaceSettings, LogDensity, LogDensityError, laplace, sparsity_violation,
};
use proptest::prelude::*;

/// A non-linear hierarchy: y_gi ~ N(μ + τ·u_g + tanh(b_g·x_gi), σ), u_g, b_g ~ N(0, 1),
/// μ ~ N(0, 5), ln τ, ln σ ~ N(0, 1), in coordinates [μ, u_0, b_0, ln τ, u_1, b_1, ln σ, u_2, b_2, …]
/// (shared coordinates between the blocks, to exercise the colouring's bookkeeping). With
/// `coupling` c ≠ 0 it adds −c·(u_0 − u_1)²/2, an interaction between blocks 0 and 1 that the
/// declared structure does not know.
struct Hier {
    x: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    coupling: f64,
    declare: bool,
    calls: AtomicUsize,
}

const SHARED: [usize; 3] = [0, 3, 6];

impl Hier {
    fn new(groups: usize, per: usize, coupling: f64) -> Self {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for g in 0..groups {
            let xs: Vec<f64> = (0..per).map(|i| ((g * 7 + i * 3) % 11) as f64 / 5.0 - 1.0).collect();
            let ys = xs
                .iter()
                .enumerate()
                .map(|(i, v)| 1.0 + 0.3 * g as f64 + (0.8 * v).tanh() + 0.1 * ((i % 3) as f64 - 1.0))
                .collect();
            x.push(xs);
            y.push(ys);
        }
        Hier { x, y, coupling, declare: true, calls: AtomicUsize::new(0) }
    }
    fn groups(&self) -> usize {
        self.x.len()
    }
    /// Indices of (u_g, b_g).
    fn block(&self, g: usize) -> (usize, usize) {
        // [μ, u0, b0, lnτ, u1, b1, lnσ, u2, b2, u3, b3, …]
        match g {
            0 => (1, 2),
            1 => (4, 5),
            _ => (7 + 2 * (g - 2), 8 + 2 * (g - 2)),
        }
    }
    fn calls(&self) -> usize {
        self.calls.swap(0, Ordering::SeqCst)
    }
}

impl LogDensity for Hier {
    fn dim(&self) -> usize {
        3 + 2 * self.groups()
    }

    fn logp_grad(&self, q: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        grad.fill(0.0);
        let (mu, ltau, lsig) = (q[0], q[3], q[6]);
        let (tau, sig) = (ltau.exp(), lsig.exp());
        let mut lp = -0.5 * (mu / 5.0).powi(2) - 0.5 * ltau * ltau - 0.5 * lsig * lsig;
        grad[0] = -mu / 25.0;
        grad[3] = -ltau;
        grad[6] = -lsig;
        for g in 0..self.groups() {
            let (iu, ib) = self.block(g);
            let (u, b) = (q[iu], q[ib]);
            lp -= 0.5 * (u * u + b * b);
            grad[iu] -= u;
            grad[ib] -= b;
            for (xv, yv) in self.x[g].iter().zip(&self.y[g]) {
                let t = (b * xv).tanh();
                let r = yv - mu - tau * u - t;
                lp += -0.5 * (r / sig).powi(2) - lsig;
                let a = r / (sig * sig); // ∂/∂mean
                grad[0] += a;
                grad[3] += a * tau * u;
                grad[iu] += a * tau;
                grad[ib] += a * (1.0 - t * t) * xv;
                grad[6] += (r / sig).powi(2) - 1.0;
            }
        }
        if self.coupling != 0.0 {
            let (i0, i1) = (self.block(0).0, self.block(1).0);
            let d = q[i0] - q[i1];
            lp -= 0.5 * self.coupling * d * d;
            grad[i0] -= self.coupling * d;
            grad[i1] += self.coupling * d;
        }
        Ok(lp)
    }

    fn hessian_sparsity(&self) -> Option<HessianSparsity> {
        self.declare.then(|| {
            let mut block = vec![None; self.dim()];
            for g in 0..self.groups() {
                let (iu, ib) = self.block(g);
                block[iu] = Some(g);
                block[ib] = Some(g);
            }
            for s in SHARED {
                assert!(block[s].is_none());
            }
            HessianSparsity::new(block)
        })
    }
}

fn max_abs(h: &[Vec<f64>]) -> f64 {
    h.iter().flatten().fold(0.0, |a, v| a.max(v.abs()))
}

fn max_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter().flatten().zip(b.iter().flatten()).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

const STEP: f64 = 6.055454452393343e-6; // ε^(1/3), the Laplace default

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// At random points, the coloured central-difference Hessian equals the dense one within
    /// 1e-7 of the largest entry (central differences carry relative errors ~1e-10 at this step;
    /// the coloured scheme reads the same gradient differences), and the forward-difference one
    /// within 1e-5 (forward differences: ~1e-8 relative each).
    #[test]
    fn coloured_hessian_equals_dense_at_random_points(
        point in proptest::collection::vec(-1.5f64..1.5, 13),
    ) {
        let d = Hier::new(5, 6, 0.0);
        let s = d.hessian_sparsity().unwrap();
        let dense = hessian_with(&d, &point, STEP, None).unwrap();
        let coloured = hessian(&d, &point, STEP).unwrap();
        let scale = max_abs(&dense);
        prop_assert!(max_diff(&dense, &coloured) <= 1e-7 * scale, "central: {} of {scale}", max_diff(&dense, &coloured));
        let dense_f = hessian_forward_with(&d, &point, None).unwrap();
        let coloured_f = hessian_forward(&d, &point).unwrap();
        prop_assert!(max_diff(&dense_f, &coloured_f) <= 1e-5 * scale, "forward: {}", max_diff(&dense_f, &coloured_f));
        // entries between blocks are exactly zero in the coloured Hessian
        for i in 0..13 {
            for j in 0..13 {
                if !s.interacts(i, j) {
                    prop_assert_eq!(coloured[i][j], 0.0);
                }
            }
        }
    }
}

/// The colours: every shared coordinate alone, then the k-th coordinate of every block; a Hessian
/// costs 2·(3 shared + 2 per block) = 10 gradients central and 3 + 2 + 1 = 6 forward, whatever the
/// number of groups, against 2·dim and dim + 1 dense.
#[test]
fn coloured_hessian_costs_shared_plus_largest_block_gradients() {
    let s = Hier::new(4, 3, 0.0).hessian_sparsity().unwrap();
    assert_eq!(s.colours(), vec![vec![0], vec![3], vec![6], vec![1, 4, 7, 9], vec![2, 5, 8, 10]]);
    for groups in [2, 10, 40] {
        let d = Hier::new(groups, 3, 0.0);
        let x = vec![0.1; d.dim()];
        d.calls();
        hessian(&d, &x, STEP).unwrap();
        assert_eq!(d.calls(), 10, "{groups} groups, central");
        hessian_forward(&d, &x).unwrap();
        assert_eq!(d.calls(), 6, "{groups} groups, forward");
        hessian_with(&d, &x, STEP, None).unwrap();
        assert_eq!(d.calls(), 2 * d.dim(), "{groups} groups, dense");
    }
}

/// `sparsity_violation` finds an interaction the declaration misses (blocks 0 and 1 coupled by
/// −(u_0 − u_1)²/2: the ratio |H_ij|/√(H_ii H_jj) is of order 0.1), and reports only
/// finite-difference noise (< 1e-6) when the declaration is right; the coloured Hessian of the
/// mis-declared density is wrong there, which is why a density must declare only what its
/// formula guarantees.
#[test]
fn sparsity_violation_finds_a_missed_interaction() {
    let x: Vec<f64> = (0..13).map(|i| 0.1 * i as f64 - 0.5).collect();
    let right = Hier::new(5, 6, 0.0);
    let s = right.hessian_sparsity().unwrap();
    let (_, _, noise) = sparsity_violation(&right, &x, STEP, &s).unwrap().unwrap();
    assert!(noise < 1e-6, "{noise}");
    let wrong = Hier::new(5, 6, 1.0);
    let (i, j, ratio) = sparsity_violation(&wrong, &x, STEP, &s).unwrap().unwrap();
    assert_eq!((i.max(j), i.min(j)), (4, 1), "u_1 and u_0");
    assert!(ratio > 0.05, "{ratio}");
    let coloured = hessian(&wrong, &x, STEP).unwrap();
    let dense = hessian_with(&wrong, &x, STEP, None).unwrap();
    assert!((coloured[1][4] - dense[1][4]).abs() > 0.5, "{} vs {}", coloured[1][4], dense[1][4]);
}

/// A structure of the wrong length is refused, naming the method.
#[test]
fn sparsity_of_the_wrong_dimension_is_refused() {
    let d = Hier::new(3, 4, 0.0);
    let s = HessianSparsity::new(vec![None; 4]);
    let e = hessian_with(&d, &[0.0; 9], STEP, Some(&s)).unwrap_err();
    assert!(e.to_string().contains("hessian_sparsity()"), "{e}");
}

/// The Laplace approximation with the declared structure (coloured preconditioner and Newton
/// Hessians) against the same density declaring none: the same mode (log density within 1e-8
/// relative, every coordinate within 1e-4 posterior sd) and covariance (within 1e-5 of the
/// largest entry); and bit-identical on a re-run.
#[test]
fn laplace_is_unchanged_by_declared_sparsity() {
    let sparse = Hier::new(8, 6, 0.0);
    let mut dense = Hier::new(8, 6, 0.0);
    dense.declare = false;
    let settings =
        LaplaceSettings { seed: 3, draws: 200, init: Init::Uniform { radius: 1.0 }, ..LaplaceSettings::default() };
    let a = laplace(&sparse, &settings).unwrap();
    let b = laplace(&dense, &settings).unwrap();
    let (ia, ib) = (a.laplace.as_ref().unwrap(), b.laplace.as_ref().unwrap());
    assert!(ia.warnings.is_empty() && ib.warnings.is_empty(), "{:?} {:?}", ia.warnings, ib.warnings);
    assert!(
        (ia.logp_at_mode - ib.logp_at_mode).abs() <= 1e-8 * ib.logp_at_mode.abs(),
        "{} vs {}",
        ia.logp_at_mode,
        ib.logp_at_mode
    );
    for j in 0..sparse.dim() {
        let sd = ib.covariance[j][j].sqrt();
        assert!((ia.mode[j] - ib.mode[j]).abs() < 1e-4 * sd, "mode {j}: {} vs {}", ia.mode[j], ib.mode[j]);
    }
    let scale = max_abs(&ib.covariance);
    assert!(max_diff(&ia.covariance, &ib.covariance) < 1e-5 * scale, "{}", max_diff(&ia.covariance, &ib.covariance));
    let again = laplace(&sparse, &settings).unwrap();
    assert_eq!(again.draws, a.draws);
    assert_eq!(again.laplace, a.laplace);
}
