//! On a conjugate Gaussian linear model — no media, Normal priors on the intercept, trend,
//! seasonality and control coefficients, the noise scale pinned by a very tight prior — the Laplace
//! approximation of the MMM density is exact: its mode and covariance equal the closed-form
//! posterior N(P⁻¹(S₀⁻¹m₀ + Xᵀy/σ²), P⁻¹), P = S₀⁻¹ + XᵀX/σ².

use mmloop_inference::{Init, LaplaceSettings, laplace};
use mmloop_mmm::Prior;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::simulate::{SimOptions, simulate};

/// Solves A x = b by Gaussian elimination with partial pivoting (A small, well conditioned).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for k in 0..n {
        let p = (k..n).max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs())).unwrap();
        a.swap(k, p);
        b.swap(k, p);
        let (top, rest) = a.split_at_mut(k + 1);
        let pivot = &top[k];
        for (i, row) in rest.iter_mut().enumerate() {
            let f = row[k] / pivot[k];
            for (x, p) in row[k..].iter_mut().zip(&pivot[k..]) {
                *x -= f * p;
            }
            b[k + 1 + i] -= f * b[k];
        }
    }
    let mut x = vec![0.0; n];
    for k in (0..n).rev() {
        x[k] = (b[k] - (k + 1..n).map(|j| a[k][j] * x[j]).sum::<f64>()) / a[k][k];
    }
    x
}

#[test]
fn laplace_equals_the_closed_form_on_a_conjugate_gaussian_model() {
    let sim = simulate(&SimOptions { channels: vec![], n_times: 60, sigma: 0.1, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    let sigma0: f64 = 0.1;
    // log σ ~ N(ln σ0, 1e-4): σ is fixed to a relative 1e-4·O(1); its coupling to the coefficients
    // changes their posterior covariance by a relative ~1e-8 (Schur complement), their mode by less.
    spec.noise_prior = Prior::LogNormal { mu: sigma0.ln(), sigma: 1e-4 };
    let model = MmmModel::new(&spec, &sim.data).unwrap();
    let names = model.names();
    assert_eq!(names.last().map(String::as_str), Some("sigma"));
    let k = names.len() - 1; // coefficients: intercept, trend, Fourier, control
    // design matrix in the model's order, over the fitted period
    let bl = &model.baseline;
    let pd = bl.design_idx.len();
    let kc = bl.control_idx.len();
    assert_eq!(1 + pd + kc, k);
    let t_n = model.n_times;
    let rows: Vec<Vec<f64>> = (0..model.n_fit)
        .map(|t| {
            let mut r = vec![1.0];
            r.extend_from_slice(&bl.design[t * pd..(t + 1) * pd]);
            r.extend_from_slice(&bl.controls[t * kc..(t + 1) * kc]);
            r
        })
        .collect();
    let y = &model.y[..t_n];
    let (mut m0, mut s0) = (vec![0.0; k], vec![0.0; k]);
    for (i, p) in model.params[..k].iter().enumerate() {
        let Some(Prior::Normal { mu, sigma }) = p.prior else { panic!("{} is not Normal", p.name) };
        (m0[i], s0[i]) = (mu, sigma);
    }
    let s2 = sigma0 * sigma0;
    let mut prec = vec![vec![0.0; k]; k];
    let mut rhs = vec![0.0; k];
    for i in 0..k {
        prec[i][i] = 1.0 / (s0[i] * s0[i]);
        rhs[i] = m0[i] / (s0[i] * s0[i]);
    }
    for (r, yt) in rows.iter().zip(y) {
        for i in 0..k {
            rhs[i] += r[i] * yt / s2;
            for j in 0..k {
                prec[i][j] += r[i] * r[j] / s2;
            }
        }
    }
    let mean_model = solve(prec.clone(), rhs);
    let cov_model: Vec<Vec<f64>> =
        (0..k).map(|j| solve(prec.clone(), (0..k).map(|i| if i == j { 1.0 } else { 0.0 }).collect())).collect(); // column j of P⁻¹ (symmetric)

    // The sampler's intercept coordinate is the mean fitted level ℓ = μ + h(rest), linear here
    // (no media): map the closed form through it, mean by the map itself and covariance by its
    // Jacobian J (columns by unit differences, exact for a linear map up to rounding).
    let mut full = mean_model.clone();
    full.push(sigma0.ln());
    let to_s = |x: &[f64]| model.to_sampling_coords(x);
    let mean = to_s(&full)[..k].to_vec();
    let j: Vec<Vec<f64>> = (0..k)
        .map(|c| {
            let mut x = full.clone();
            x[c] += 1.0;
            let (a, b) = (to_s(&x), to_s(&full));
            (0..k).map(|r| a[r] - b[r]).collect()
        })
        .collect(); // j[c][r] = ∂s_r/∂x_c
    let cov: Vec<Vec<f64>> = (0..k)
        .map(|r1| {
            (0..k)
                .map(|r2| (0..k).map(|a| (0..k).map(|b| j[a][r1] * cov_model[a][b] * j[b][r2]).sum::<f64>()).sum())
                .collect()
        })
        .collect();

    let settings = LaplaceSettings {
        starts: 2,
        init: Init::Around { center: model.initial_point(), radius: 0.5 },
        seed: 1,
        draws: 10,
        ..Default::default()
    };
    let post = laplace(&model, &settings).expect("laplace");
    let info = post.laplace.as_ref().expect("laplace info");
    for i in 0..k {
        let sd = cov[i][i].sqrt();
        // mode: L-BFGS stops at |∇| < 1e-8, i.e. ≤ 1e-8/λ_min(P) from the optimum ≪ 1e-6·sd
        assert!((info.mode[i] - mean[i]).abs() < 1e-6 * sd, "{}: {} vs {}", names[i], info.mode[i], mean[i]);
        for j in 0..k {
            // FD Hessian of a quadratic: exact up to rounding (~1e-8 relative) plus the σ coupling
            let tol = 1e-5 * (cov[i][i] * cov[j][j]).sqrt();
            assert!(
                (info.covariance[i][j] - cov[i][j]).abs() < tol,
                "cov[{},{}]: {} vs {}",
                names[i],
                names[j],
                info.covariance[i][j],
                cov[i][j]
            );
        }
    }
}
