//! The analytic gradients of the test densities against central finite differences.

#![allow(clippy::neg_cmp_op_on_partial_ord)] // written so that NaN fails the check

mod common;

use common::{Blr, EightSchools, Gaussian, LinearRegression};
use mmloop_inference::LogDensity;
use proptest::prelude::*;

/// Largest relative disagreement between the analytic gradient and central differences.
fn gradient_error(density: &dyn LogDensity, x: &[f64]) -> f64 {
    let d = density.dim();
    let mut grad = vec![0.0; d];
    density.logp_grad(x, &mut grad).unwrap();
    let mut scratch = vec![0.0; d];
    let mut worst: f64 = 0.0;
    for j in 0..d {
        let h = 1e-5 * x[j].abs().max(1.0);
        let mut xp = x.to_vec();
        xp[j] += h;
        let fp = density.logp_grad(&xp, &mut scratch).unwrap();
        xp[j] -= 2.0 * h;
        let fm = density.logp_grad(&xp, &mut scratch).unwrap();
        let fd = (fp - fm) / (2.0 * h);
        worst = worst.max((fd - grad[j]).abs() / grad[j].abs().max(1.0));
    }
    worst
}

fn blr() -> Blr {
    // A small synthetic design (the posteriordb data are exercised by the sampler tests).
    let x: Vec<Vec<f64>> = (0..20).map(|i| (0..3).map(|j| ((i * 7 + j * 3) as f64 * 0.37).sin()).collect()).collect();
    let y = x.iter().map(|r| r.iter().sum::<f64>() + 0.1).collect();
    Blr { x, y }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn eight_schools_gradients(x in prop::collection::vec(-3.0f64..3.0, 10), centered in any::<bool>()) {
        let e = gradient_error(&EightSchools::new(centered), &x);
        prop_assert!(e < 1e-6, "relative gradient error {e}");
    }

    #[test]
    fn blr_gradients(x in prop::collection::vec(-2.0f64..2.0, 4)) {
        let e = gradient_error(&blr(), &x);
        prop_assert!(e < 1e-6, "relative gradient error {e}");
    }

    #[test]
    fn gaussian_and_regression_gradients(x in prop::collection::vec(-3.0f64..3.0, 4)) {
        let g = Gaussian::ar1(&[1.0, 2.0, 0.5, 3.0], 0.9);
        prop_assert!(gradient_error(&g, &x) < 1e-6);
        let r = LinearRegression::synthetic(30, 4);
        prop_assert!(gradient_error(&r, &x) < 1e-6);
    }
}
