use super::*;
use proptest::prelude::*;

fn names(n: usize) -> Vec<String> {
    (0..n).map(|c| format!("ch{c}")).collect()
}

fn bounds(n: usize, lo: f64, hi: f64) -> Bounds {
    Bounds { names: names(n), lower: vec![lo; n], upper: vec![hi; n] }
}

/// Posterior-like Michaelis–Menten curves: β_{c,d} = β_c·(1 + 0.3 z), k_{c,d} = k_c·(1 + 0.2 z').
fn mm_curves(beta: &[f64], k: &[f64], n_draws: usize) -> SaturatingCurves {
    SaturatingCurves::new(beta.len(), n_draws, |c, d| {
        let z = ((d * 7919 + c * 104729) % 1000) as f64 / 1000.0 - 0.5;
        let z2 = ((d * 6007 + c * 15485863) % 1000) as f64 / 1000.0 - 0.5;
        let jitter = if n_draws == 1 { 0.0 } else { 1.0 };
        (
            beta[c] * (1.0 + 0.6 * z * jitter),
            Saturation::MichaelisMenten { k: k[c] * (1.0 + 0.4 * z2 * jitter) },
            vec![(1.0, 1.0)],
        )
    })
}

fn mean_outcome(curves: &SaturatingCurves, s: &[f64], risk: Risk) -> f64 {
    let nd = curves.n_draws();
    let mut o = vec![0.0; nd];
    let mut v = vec![0.0; nd];
    for (c, &sc) in s.iter().enumerate() {
        curves.value(c, sc, &mut v);
        o.iter_mut().zip(&v).for_each(|(a, b)| *a += b);
    }
    risk.value(&o, &vec![1.0 / nd as f64; nd])
}

#[test]
fn recovers_the_analytic_equal_marginal_returns_optimum() {
    // R_c(s) = β_c s/(k_c + s): R'_c = β_c k_c/(k_c + s)² = λ ⇒ s_c = √(β_c k_c/λ) − k_c.
    let beta: [f64; 4] = [3.0, 1.0, 2.0, 5.0];
    let k = [1.0, 0.5, 2.0, 4.0];
    let budget = 12.0;
    // Σ_c (√(β_c k_c/λ) − k_c) = B ⇒ 1/√λ = (B + Σk)/Σ√(β k)
    let root: f64 = beta.iter().zip(&k).map(|(b, kk)| (b * kk).sqrt()).sum();
    let inv_sqrt_lambda = (budget + k.iter().sum::<f64>()) / root;
    let truth: Vec<f64> = beta.iter().zip(&k).map(|(b, kk)| (b * kk).sqrt() * inv_sqrt_lambda - kk).collect();
    assert!(truth.iter().all(|&s| s > 0.0), "test case must have an interior optimum");
    let curves = mm_curves(&beta, &k, 1);
    let a = optimize(&curves, None, Risk::Mean, &bounds(4, 0.0, 100.0), Goal::Budget(budget), None, Default::default())
        .unwrap();
    for (c, t) in truth.iter().enumerate() {
        assert!((a.spend[c] - t).abs() < 1e-9, "channel {c}: {} vs {t}", a.spend[c]);
    }
    let lambda = inv_sqrt_lambda.powi(-2);
    assert!((a.lambda - lambda).abs() < 1e-9 * lambda);
    assert!(a.kkt_residual < 1e-9, "KKT residual {}", a.kkt_residual);
}

#[test]
fn respects_bounds_and_keeps_kkt_signs_at_active_bounds() {
    let curves = mm_curves(&[10.0, 1.0, 1.0], &[1.0, 1.0, 1.0], 200);
    let b = Bounds { names: names(3), lower: vec![0.0, 2.0, 0.0], upper: vec![3.0, 10.0, 10.0] };
    let a = optimize(&curves, None, Risk::Mean, &b, Goal::Budget(8.0), None, Default::default()).unwrap();
    assert!((a.spend[0] - 3.0).abs() < 1e-12, "the strong channel should hit its cap: {:?}", a.spend);
    assert!((a.spend.iter().sum::<f64>() - 8.0).abs() < 1e-9);
    assert!(a.kkt_residual < 1e-8, "KKT residual {}", a.kkt_residual);
    assert!(a.marginal[0] >= a.lambda, "a channel at its upper bound has marginal return ≥ λ");
}

/// Brute force over a fine grid of the 3-channel simplex {s ≥ 0, Σs = B}.
fn grid_best(curves: &SaturatingCurves, budget: f64, risk: Risk, n: usize) -> (f64, Vec<f64>) {
    let mut best = (f64::NEG_INFINITY, vec![]);
    for i in 0..=n {
        for j in 0..=(n - i) {
            let s = vec![
                budget * i as f64 / n as f64,
                budget * j as f64 / n as f64,
                budget * (n - i - j) as f64 / n as f64,
            ];
            let v = mean_outcome(curves, &s, risk);
            if v > best.0 {
                best = (v, s);
            }
        }
    }
    best
}

#[test]
fn matches_brute_force_on_a_fine_grid_for_mean_and_cvar() {
    let curves = mm_curves(&[2.0, 1.5, 1.0], &[1.0, 0.6, 0.3], 300);
    for risk in [Risk::Mean, Risk::Cvar { alpha: 0.1 }, Risk::MeanMinusSd { k: 1.0 }] {
        let a =
            optimize(&curves, None, risk, &bounds(3, 0.0, 5.0), Goal::Budget(5.0), None, Default::default()).unwrap();
        let (gv, gs) = grid_best(&curves, 5.0, risk, 400);
        // the optimiser may not lose to the grid beyond float noise, and the grid (spacing
        // 5/400) may come within O(spacing²·|Φ''|) ≈ 1e-3 of the optimum, never above it
        assert!(a.objective >= gv - 1e-9, "{risk:?}: optimiser {} < grid {}", a.objective, gv);
        assert!(a.objective - gv < 2e-3, "{risk:?}: grid {gv} implausibly far below {}", a.objective);
        for (c, g) in gs.iter().enumerate() {
            assert!((a.spend[c] - g).abs() < 0.1, "{risk:?} channel {c}: {} vs grid {g}", a.spend[c]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Moving money from the optimum along any feasible direction never improves the objective.
    #[test]
    fn no_feasible_direction_improves_the_optimum(
        beta in proptest::collection::vec(0.5f64..5.0, 4),
        k in proptest::collection::vec(0.2f64..3.0, 4),
        budget in 1.0f64..20.0,
        from in 0usize..4, to in 0usize..4, frac in 1e-4f64..0.5,
        cvar in proptest::bool::ANY,
    ) {
        prop_assume!(from != to);
        let curves = mm_curves(&beta, &k, 64);
        let risk = if cvar { Risk::Cvar { alpha: 0.2 } } else { Risk::Mean };
        let b = bounds(4, 0.0, f64::INFINITY);
        let a = optimize(&curves, None, risk, &b, Goal::Budget(budget), None, Default::default()).unwrap();
        let amount = a.spend[from] * frac;
        let mut s = a.spend.clone();
        s[from] -= amount;
        s[to] += amount;
        let moved = mean_outcome(&curves, &s, risk);
        // relative 1e-12: the objective is a sum of O(1) terms, evaluated in double precision
        prop_assert!(moved <= a.objective + 1e-12 * a.objective.abs().max(1.0),
            "moving {amount} from {from} to {to} improved {} to {moved}", a.objective);
    }
}

#[test]
fn infeasible_constraints_say_which_and_by_how_much() {
    let curves = mm_curves(&[1.0, 1.0], &[1.0, 1.0], 1);
    let b = Bounds { names: vec!["tv".into(), "search".into()], lower: vec![3.0, 4.0], upper: vec![10.0, 10.0] };
    let e = optimize(&curves, None, Risk::Mean, &b, Goal::Budget(5.0), None, Default::default()).unwrap_err();
    assert_eq!(e, OptimizeError::BudgetBelowLowerBounds { sum: 7.0, budget: 5.0, excess: 2.0 });
    assert!(e.to_string().contains("above the budget 5.000000 by 2.000000"), "{e}");
    let e = optimize(&curves, None, Risk::Mean, &b, Goal::Budget(25.0), None, Default::default()).unwrap_err();
    assert!(e.to_string().contains("below the budget 25.000000 by 5.000000"), "{e}");
    let crossed = Bounds { names: vec!["tv".into(), "search".into()], lower: vec![3.0, 4.0], upper: vec![2.0, 10.0] };
    let e = optimize(&curves, None, Risk::Mean, &crossed, Goal::Budget(5.0), None, Default::default()).unwrap_err();
    assert!(e.to_string().contains("\"tv\": lower bound 3 is above upper bound 2"), "{e}");
}

#[test]
fn smallest_budget_for_a_target_reaches_it_and_no_smaller_budget_does() {
    let curves = mm_curves(&[3.0, 2.0, 1.0], &[1.0, 1.0, 1.0], 100);
    let b = bounds(3, 0.0, 50.0);
    let target = 3.5;
    let a = min_budget_for_target(&curves, None, Risk::Mean, &b, target, Default::default()).unwrap();
    let spent: f64 = a.spend.iter().sum();
    assert!((a.objective - target).abs() < 1e-6, "reached {} for target {target}", a.objective);
    let less = optimize(&curves, None, Risk::Mean, &b, Goal::Budget(spent * 0.999), None, Default::default()).unwrap();
    assert!(less.objective < target);
    let e = min_budget_for_target(&curves, None, Risk::Mean, &b, 100.0, Default::default()).unwrap_err();
    assert!(matches!(e, OptimizeError::TargetUnreachable { .. }) && e.to_string().contains("short by"), "{e}");
}

#[test]
fn marginal_return_target_stops_each_channel_where_its_marginal_return_equals_the_target() {
    // single draw: s_c = √(β_c k_c / r) − k_c
    let beta: [f64; 2] = [4.0, 2.0];
    let k = [1.0, 2.0];
    let r = 0.25;
    let curves = mm_curves(&beta, &k, 1);
    let a =
        optimize(&curves, None, Risk::Mean, &bounds(2, 0.0, 1e6), Goal::MarginalReturn(r), None, Default::default())
            .unwrap();
    for c in 0..2 {
        let truth = (beta[c] * k[c] / r).sqrt() - k[c];
        assert!((a.spend[c] - truth).abs() < 1e-8, "channel {c}: {} vs {truth}", a.spend[c]);
    }
}

#[test]
fn draw_weights_act_like_repeated_draws() {
    // weight 2 on a draw must give the same optimum as that draw appearing twice
    let base = mm_curves(&[2.0, 1.0, 1.5], &[1.0, 0.5, 2.0], 10);
    let doubled = SaturatingCurves::new(3, 11, |c, d| {
        let beta = [2.0, 1.0, 1.5][c];
        let k = [1.0, 0.5, 2.0][c];
        let dd = if d == 10 { 3 } else { d };
        let z = ((dd * 7919 + c * 104729) % 1000) as f64 / 1000.0 - 0.5;
        let z2 = ((dd * 6007 + c * 15485863) % 1000) as f64 / 1000.0 - 0.5;
        (beta * (1.0 + 0.6 * z), Saturation::MichaelisMenten { k: k * (1.0 + 0.4 * z2) }, vec![(1.0, 1.0)])
    });
    let mut w = vec![1.0; 10];
    w[3] = 2.0;
    let b = bounds(3, 0.0, 10.0);
    let a = optimize(&base, Some(&w), Risk::Mean, &b, Goal::Budget(6.0), None, Default::default()).unwrap();
    let d = optimize(&doubled, None, Risk::Mean, &b, Goal::Budget(6.0), None, Default::default()).unwrap();
    for c in 0..3 {
        assert!((a.spend[c] - d.spend[c]).abs() < 1e-9);
    }
}

#[test]
fn scaling_every_response_leaves_the_allocation_unchanged() {
    let curves = mm_curves(&[2.0, 1.0, 1.5], &[1.0, 0.5, 2.0], 50);
    let scaled = mm_curves(&[20.0, 10.0, 15.0], &[1.0, 0.5, 2.0], 50);
    let b = bounds(3, 0.0, 10.0);
    for risk in [Risk::Mean, Risk::Cvar { alpha: 0.1 }] {
        let a = optimize(&curves, None, risk, &b, Goal::Budget(6.0), None, Default::default()).unwrap();
        let s = optimize(&scaled, None, risk, &b, Goal::Budget(6.0), None, Default::default()).unwrap();
        for c in 0..3 {
            assert!((a.spend[c] - s.spend[c]).abs() < 1e-6, "{risk:?}: {:?} vs {:?}", a.spend, s.spend);
        }
        assert!((s.objective - 10.0 * a.objective).abs() < 1e-8 * s.objective.abs());
    }
}

#[test]
fn fixed_channels_stay_fixed() {
    let curves = mm_curves(&[5.0, 1.0, 1.0], &[1.0, 1.0, 1.0], 20);
    let b = Bounds { names: names(3), lower: vec![1.0, 0.0, 0.0], upper: vec![1.0, 10.0, 10.0] };
    let a = optimize(&curves, None, Risk::Mean, &b, Goal::Budget(5.0), None, Default::default()).unwrap();
    assert_eq!(a.spend[0], 1.0);
    assert!((a.spend[1] + a.spend[2] - 4.0).abs() < 1e-9);
}

#[test]
fn infeasible_budget_messages_print_extreme_amounts_readably() {
    let curves = mm_curves(&[1.0, 2.0], &[1.0, 1.0], 5);
    let b = bounds(2, 1.0, 10.0);
    let e = optimize(&curves, None, Risk::Mean, &b, Goal::Budget(1e15), None, SolverSettings::default()).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("below the budget 1.000000e15") && !m.contains("000000000000"), "{m}");
    let e = optimize(&curves, None, Risk::Mean, &b, Goal::Budget(1e-300), None, SolverSettings::default()).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("above the budget 1.000000e-300") && m.contains("sum to 2.000000"), "{m}");
}

#[test]
fn cvar_of_the_gain_over_a_reference_moves_only_where_the_bad_draws_also_gain() {
    // channel 0 is known (the same curve in every draw); channel 1 is better on average but in a
    // fifth of the draws it returns almost nothing
    let nd = 50;
    let curves = SaturatingCurves::new(2, nd, |c, d| {
        let beta = if c == 0 {
            1.0
        } else if d % 5 == 0 {
            0.05
        } else {
            1.6
        };
        (beta, Saturation::MichaelisMenten { k: 1.0 }, vec![(1.0, 1.0)])
    });
    let b = bounds(2, 0.0, 2.0);
    let reference = [1.0, 1.0];
    let solve = |risk: Risk, against: Option<&[f64]>| {
        match against {
            Some(r) => {
                optimize(&GainOver::new(&curves, r), None, risk, &b, Goal::Budget(2.0), None, SolverSettings::default())
            }
            None => optimize(&curves, None, risk, &b, Goal::Budget(2.0), None, SolverSettings::default()),
        }
        .unwrap()
        .spend
    };
    let cvar = Risk::Cvar { alpha: 0.1 };
    // the mean is the same problem either way
    let mean = solve(Risk::Mean, None);
    let mean_against = solve(Risk::Mean, Some(&reference));
    assert!((mean[1] - mean_against[1]).abs() < 1e-6, "{mean:?} {mean_against:?}");
    assert!(mean[1] > 1.05, "the mean moves money into the better channel: {mean:?}");
    // CVaR of the outcome moves money out of the uncertain channel, below the reference, though
    // it is better in 80 % of the draws
    let outcome = solve(cvar, None);
    assert!(outcome[1] < 0.9, "{outcome:?}");
    // CVaR of the gain over the reference: in the worst tenth of the draws (channel 1 nearly
    // worthless) any move into channel 1 loses and any move out of it gains less than it costs
    // elsewhere, so it moves towards the known channel only as far as that pays in those draws,
    // never past the mean's move, and never as far as the outcome's CVaR does
    let gain = solve(cvar, Some(&reference));
    let value = |s: &[f64]| {
        let g = GainOver::new(&curves, &reference);
        let o = outcome_draws(&g, s);
        cvar.value(&o, &vec![1.0 / nd as f64; nd])
    };
    assert!(value(&gain) >= -1e-9, "staying put has CVaR 0; the optimum cannot be worse: {gain:?}");
    assert!(gain[1] > outcome[1] + 0.05, "{gain:?} against the outcome's {outcome:?}");
    assert!(gain[1] < mean[1] - 0.05, "{gain:?} against the mean's {mean:?}");
}
