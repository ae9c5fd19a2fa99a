//! Ranking candidate tests by EVOI (issue 12's benchmark): 100 candidate tests on 4000 posterior
//! draws of a 5-channel model, each EVOI a preposterior analysis that re-optimises the budget on
//! every readout of the default single-test quadrature (a shifted trapezoid grid over the readout
//! at spacing σ: ~20 readouts per test), with the curves tabulated once ([`SeparableBudget`], timed
//! inside the ranking) and the separable allocation solved by equal marginal returns.
//!
//! The posterior is synthetic (log-normal response scales, Michaelis–Menten saturation, the
//! optimiser's real problem: 5 channels, a fixed budget, bounds); the candidates are heavy-ups of
//! each channel at 20 increments × precisions, with implied lifts per draw computed from the curves.
//! The EIG of all 100 is also timed (closed form, negligible).
//!
//! Run: `cargo bench --bench value -- --warm-up-time 1 --measurement-time 3`; single-thread:
//! `RAYON_NUM_THREADS=1 cargo bench --bench value -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_loop::value::{
    BudgetDecision, DEFAULT_NODES, EvoiSettings, PriorOptimum, SeparableBudget, TestSignal, ValueUnit, eig_joint, evoi,
    rng,
};
use mmloop_mmm::optimize::{Bounds, SaturatingCurves, Saturation, SolverSettings};
use std::hint::black_box;

const DRAWS: usize = 4000;

struct Setup {
    curves: SaturatingCurves,
    beta: Vec<Vec<f64>>,
    tests: Vec<TestSignal>,
}

fn setup() -> Setup {
    let beta0 = [300.0, 220.0, 180.0, 260.0, 150.0];
    let half = [40.0, 25.0, 60.0, 80.0, 30.0];
    let rel_sd = [0.4, 0.3, 0.5, 0.2, 0.35];
    let beta: Vec<Vec<f64>> = (0..5)
        .map(|c| (0..DRAWS).map(|d| beta0[c] * (rel_sd[c] * rng::normal(17, 100 + c as u64, d as u64)).exp()).collect())
        .collect();
    let b = beta.clone();
    let curves = SaturatingCurves::new(5, DRAWS, |c, d| {
        (b[c][d], Saturation::MichaelisMenten { k: 1.0 }, vec![(1.0 / half[c], 1.0)])
    });
    let mut tests = Vec::new();
    for i in 0..100u64 {
        let c = (i % 5) as usize;
        let extra = 10.0 + 5.0 * ((i / 5) % 10) as f64;
        let sigma = if i < 50 { 2.0 } else { 6.0 };
        let h = |s: f64| s / (half[c] + s);
        let lifts = beta[c].iter().map(|b| 0.2 * b * (h(40.0 + extra) - h(40.0))).collect();
        tests.push(TestSignal::new(i, format!("ch{c}+{extra}/σ{sigma}"), lifts, sigma));
    }
    Setup { curves, beta, tests }
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let bounds =
        Bounds { names: (0..5).map(|c| format!("ch{c}")).collect(), lower: vec![0.0; 5], upper: vec![200.0; 5] };
    // the gain is second order in the allocation's error: 1e-9 relative steps are ample
    let settings = SolverSettings { step_tol: 1e-9, ..SolverSettings::default() };
    let problem =
        BudgetDecision { curves: &s.curves, bounds, budget: 200.0, unit: ValueUnit::Money { per_kpi: 2.5 }, settings };
    let prior = PriorOptimum::new(&problem).unwrap();
    let ev = EvoiSettings::default();
    let mut g = c.benchmark_group("value");
    g.sample_size(10);
    g.bench_function("rank_100_candidates_evoi_4000_draws_5_channels", |b| {
        b.iter(|| {
            // the tabulation is part of the ranking's cost
            let fast = SeparableBudget::new(&problem, DEFAULT_NODES).unwrap();
            assert!(fast.is_fast());
            let r: Vec<f64> = s.tests.iter().map(|t| evoi(&fast, &prior, &[t], &ev).unwrap().evoi).collect();
            black_box(r)
        })
    });
    // S-shaped curves (Hill, slope 2, half-saturation at 1.5× the plan's spend: the inflection, at 0.58 of it, inside the bounds) within ±30 % guardrails
    // around a plan of 40 a channel, as the simulator's worlds: every readout's allocation is the
    // grid dynamic programme plus refinement, not equal marginal returns
    let s_curves = SaturatingCurves::new(5, DRAWS, |c, d| {
        (s.beta[c][d], Saturation::Hill { ec: 60.0, slope: 2.0 }, vec![(1.0, 1.0)])
    });
    let guard =
        Bounds { names: (0..5).map(|c| format!("ch{c}")).collect(), lower: vec![28.0; 5], upper: vec![52.0; 5] };
    let s_problem = BudgetDecision {
        curves: &s_curves,
        bounds: guard,
        budget: 200.0,
        unit: ValueUnit::Money { per_kpi: 2.5 },
        settings: SolverSettings { step_tol: 1e-9, ..SolverSettings::default() },
    };
    let s_prior = PriorOptimum::new(&s_problem).unwrap();
    g.bench_function("rank_100_candidates_evoi_4000_draws_5_s_shaped_channels", |b| {
        b.iter(|| {
            let fast = SeparableBudget::new(&s_problem, DEFAULT_NODES).unwrap();
            assert!(fast.is_fast() && !fast.is_concave());
            let r: Vec<f64> = s.tests.iter().map(|t| evoi(&fast, &s_prior, &[t], &ev).unwrap().evoi).collect();
            black_box(r)
        })
    });
    g.bench_function("eig_100_candidates_4000_draws", |b| {
        b.iter(|| {
            let r: Vec<f64> = s.tests.iter().map(|t| eig_joint(&[t]).unwrap()).collect();
            black_box(r)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
