//! A fit in memory is plannable: `FittedModel::from_fit` builds what `FittedModel::load` rebuilds
//! from the fit directory, so budget optimisation and test pricing need no round trip through disk.

use mmloop_mmm::Dataset;
use mmloop_mmm::config::{load_config, to_toml};
use mmloop_mmm::optimize::*;
use mmloop_mmm::pricing::{HypotheticalTest, PricingError, SpendChange, price_test};
use mmloop_mmm::spec::FitMethod;
use std::path::Path;

#[test]
fn from_fit_and_write_then_load_give_identical_plans_and_prices() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut spec = load_config(root.join("data/demo_national.toml")).unwrap();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.laplace_starts = 1;
    spec.fit.chains = 1;
    spec.fit.draws = 200;
    spec.data.path = std::fs::canonicalize(&spec.data.path).unwrap();
    let data = Dataset::load(&spec).unwrap();
    let result = mmloop_mmm::fit::fit(&spec, &data).unwrap();

    // to disk the way `mmloop fit` writes it, and back
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fit");
    let analysis = mmloop_mmm::fit::analyse_fit(&result, &data);
    let info = mmloop_mmm::fit::model_info(&spec, &data, &result);
    mmloop_mmm::output::write_outputs(
        &dir,
        &result.model,
        &analysis,
        &result.draws,
        &result.diagnostics,
        &result.sample_stats,
        &info,
        &to_toml(&spec),
        &mmloop_mmm::output::FitInputs {
            config: mmloop_data::FileHash::of(root.join("data/demo_national.toml")).unwrap(),
            data: mmloop_data::FileHash::of(&spec.data.path).unwrap(),
            others: Vec::new(),
        },
    )
    .unwrap();
    let loaded = FittedModel::load(&dir).unwrap();
    let memory = FittedModel::from_fit(&spec, &data, &result).unwrap();
    assert_eq!(memory.draws.len(), 200);
    // Parquet stores f64 exactly, so the draws are the same numbers
    assert_eq!(memory.draws, loaded.draws);

    let plan = |fit: &FittedModel| {
        let basis = PlanningBasis::new(fit, 13, OutcomeUnit::Kpi).unwrap();
        let curves = basis.curves(fit, false).unwrap();
        let bounds = relative_bounds(&basis, 0.3, &[]).unwrap();
        let budget = basis.current.iter().sum();
        optimize_plan(&basis, &curves, Risk::Mean, &bounds, PlanGoal::Budget(budget)).unwrap()
    };
    let (a, b) = (plan(&memory), plan(&loaded));
    for (x, y) in a.channels.iter().zip(&b.channels) {
        assert_eq!(x.optimal_spend, y.optimal_spend, "{}", x.channel);
    }
    assert_eq!(a.draws, b.draws);
    assert!(a.gain.mean >= -1e-9 * a.current_outcome.mean.abs());

    let n = memory.model.n_times;
    let test = HypotheticalTest::new(&["search"], &[], n + 2, n + 6, SpendChange::Multiplier(0.0));
    let (p, q) = (price_test(&memory, &test).unwrap(), price_test(&loaded, &test).unwrap());
    assert_eq!(p, q);
    assert!(p.mean < 0.0, "going dark on search loses sales: {}", p.mean);
}

#[test]
fn from_fit_refuses_draws_of_another_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = load_config(root.join("data/demo_national.toml")).unwrap();
    let data = Dataset::load(&spec).unwrap();
    let model = mmloop_mmm::model::MmmModel::new(&spec, &data).unwrap();
    let q = model.initial_point();
    let x = model.constrain(&q);
    let draws = mmloop_mmm::output::Draws {
        values: vec![q.clone(), q[1..].to_vec()],
        constrained: vec![x.clone(), x[1..].to_vec()],
        chain: vec![0, 0],
        draw: vec![0, 1],
    };
    let result = mmloop_mmm::fit::FitResult {
        model,
        draws,
        method: FitMethod::Laplace,
        diagnostics: mmloop_mmm::fitdir::Diagnostics::Laplace(mmloop_mmm::fitdir::LaplaceReport {
            draws: 2,
            logp_at_mode: f64::NAN,
            starts_converged: "0/0".into(),
            start_logps: Vec::new(),
            warnings: Vec::new(),
        }),
        sample_stats: Vec::new(),
        mode: None,
    };
    let e = FittedModel::from_fit(&spec, &data, &result).unwrap_err();
    assert!(matches!(e, PricingError::FitMismatch { draw: 1, .. }), "{e}");
}
