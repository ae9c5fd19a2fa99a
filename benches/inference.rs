//! Inference benchmarks: NUTS (nuts-rs, diagonal metric) on a 10-d correlated Gaussian, 4 chains ×
//! (1000 warm-up + 1000 draws) in parallel; the same run's summary (R-hat, ESS, MCSE for every
//! parameter); and a Laplace fit (4 starts, 4000 draws).
//!
//! Run: `cargo bench --bench inference -- --warm-up-time 1 --measurement-time 5`.

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_inference::{LaplaceSettings, LogDensity, LogDensityError, NutsSettings, laplace, sample_nuts, summary};

/// N(0.5, Σ) with Σ_ij = s_i s_j 0.9^|i-j|, s_i = 0.5 + 0.25 i: evaluated through the precision
/// matrix (computed once by Gauss–Jordan elimination).
struct CorrelatedGaussian {
    mean: Vec<f64>,
    precision: Vec<Vec<f64>>,
}

impl CorrelatedGaussian {
    fn new(d: usize) -> Self {
        let s: Vec<f64> = (0..d).map(|i| 0.5 + 0.25 * i as f64).collect();
        let mut a: Vec<Vec<f64>> = (0..d)
            .map(|i| {
                let mut row: Vec<f64> =
                    (0..d).map(|j| s[i] * s[j] * 0.9f64.powi((i as i32 - j as i32).abs())).collect();
                row.extend((0..d).map(|j| if i == j { 1.0 } else { 0.0 }));
                row
            })
            .collect();
        for col in 0..d {
            let pivot = (col..d).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs())).unwrap();
            a.swap(col, pivot);
            let p = a[col][col];
            a[col].iter_mut().for_each(|v| *v /= p);
            for r in 0..d {
                if r != col {
                    let f = a[r][col];
                    let pivot_row = a[col].clone();
                    a[r].iter_mut().zip(&pivot_row).for_each(|(v, pv)| *v -= f * pv);
                }
            }
        }
        CorrelatedGaussian { mean: vec![0.5; d], precision: a.into_iter().map(|row| row[d..].to_vec()).collect() }
    }
}

impl LogDensity for CorrelatedGaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn logp_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        let diff: Vec<f64> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
        let mut lp = 0.0;
        for (i, row) in self.precision.iter().enumerate() {
            let pd: f64 = row.iter().zip(&diff).map(|(p, d)| p * d).sum();
            grad[i] = -pd;
            lp -= 0.5 * diff[i] * pd;
        }
        Ok(lp)
    }
}

fn bench_inference(c: &mut Criterion) {
    let density = CorrelatedGaussian::new(10);
    let settings = NutsSettings { quiet: true, seed: 1, ..NutsSettings::default() };
    let mut group = c.benchmark_group("inference");
    group.sample_size(20);
    group.bench_function("nuts_10d_correlated_gaussian_4x(1000+1000)", |b| {
        b.iter(|| sample_nuts(&density, &settings).unwrap())
    });
    let posterior = sample_nuts(&density, &settings).unwrap();
    let gradient_evaluations: u64 = posterior.sample_stats.iter().flatten().map(|s| s.n_steps).sum();
    eprintln!(
        "one run: {} kept draws, {gradient_evaluations} leapfrog steps after warm-up, {} divergences",
        posterior.n_chains() * posterior.n_draws(),
        posterior.divergences()
    );
    group.bench_function("summary_10_params_4x1000", |b| b.iter(|| summary(&posterior)));
    let laplace_settings = LaplaceSettings { seed: 1, ..LaplaceSettings::default() };
    group.bench_function("laplace_10d_correlated_gaussian_4_starts_4000_draws", |b| {
        b.iter(|| laplace(&density, &laplace_settings).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_inference);
criterion_main!(benches);
