//! The planning layer on a model built from the bundled demo data: response curves agree with a
//! direct simulation of the same plan, the optimum beats the current allocation, bounds hold.

use mmloop_mmm::Dataset;
use mmloop_mmm::config::parse_config;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::optimize::*;
use std::path::Path;

/// A "fitted" model whose draws are points scattered around the prior centre: enough to exercise
/// the planning arithmetic, which does not care how the draws were obtained.
fn demo_fit() -> FittedModel {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cfg = format!(
        r#"
[data]
path = "{}"
time = "date"
kpi = "sales"
[[channel]]
name = "tv"
spend = "tv_spend"
adstock = {{ kind = "geometric", max_lag = 6 }}
saturation = {{ kind = "hill" }}
[[channel]]
name = "search"
spend = "search_spend"
adstock = {{ kind = "geometric", max_lag = 2 }}
saturation = {{ kind = "logistic" }}
[[channel]]
name = "social"
spend = "social_spend"
exposure = "social_impressions"
adstock = {{ kind = "geometric", max_lag = 3 }}
saturation = {{ kind = "michaelis_menten" }}
[[control]]
column = "price_index"
"#,
        root.join("data/demo_national.csv").display()
    );
    let spec = parse_config(&cfg, &root).expect("demo config parses");
    let data = Dataset::load(&spec).expect("demo data loads");
    let model = MmmModel::new(&spec, &data).expect("model builds");
    let q0 = model.initial_point();
    let draws = (0..40)
        .map(|d| {
            let q: Vec<f64> =
                q0.iter().enumerate().map(|(i, x)| x + 0.3 * (((d * 31 + i * 17) % 23) as f64 / 23.0 - 0.5)).collect();
            model.unpack(&q)
        })
        .collect();
    FittedModel { spec, data, model, draws }
}

#[test]
fn horizon_curves_equal_a_direct_simulation_of_the_flat_plan() {
    let fit = demo_fit();
    let basis = PlanningBasis::new(&fit, 13, OutcomeUnit::Kpi).unwrap();
    let curves = basis.curves(&fit, false).unwrap();
    let spend = [120_000.0, 50_000.0, 40_000.0];
    let plan = SpendPlan {
        periods: (1..=13).map(|i| i.to_string()).collect(),
        channels: basis.channels.clone(),
        spend: (0..13).map(|_| spend.iter().map(|s| s / 13.0).collect()).collect(),
    };
    let sim = evaluate_plan(&fit, &basis, &plan).unwrap();
    let nd = fit.draws.len();
    let mut v = vec![0.0; nd];
    for (c, &s) in spend.iter().enumerate() {
        curves.value(c, s, &mut v);
        let mean = v.iter().sum::<f64>() / nd as f64;
        let direct = sim.channels[c].outcome.mean;
        // two exact computations of the same sum in different orders: rounding only
        assert!((mean - direct).abs() <= 1e-9 * direct.abs().max(1.0), "channel {c}: curves {mean} vs direct {direct}");
    }
}

#[test]
fn optimum_beats_current_allocation_within_bounds() {
    let fit = demo_fit();
    let basis = PlanningBasis::new(&fit, 13, OutcomeUnit::Kpi).unwrap();
    let curves = basis.curves(&fit, false).unwrap();
    let bounds = relative_bounds(&basis, 0.3, &[]).unwrap();
    let budget: f64 = basis.current.iter().sum();
    let r = optimize_plan(&basis, &curves, Risk::Mean, &bounds, PlanGoal::Budget(budget)).unwrap();
    assert!((r.budget - budget).abs() < 1e-6 * budget);
    assert!(r.optimal_outcome.mean >= r.current_outcome.mean - 1e-9 * r.current_outcome.mean.abs());
    for ch in &r.channels {
        assert!(ch.optimal_spend >= ch.lower - 1e-9 && ch.optimal_spend <= ch.upper + 1e-9, "{ch:?}");
    }
    assert!(r.kkt_residual < 1e-6, "KKT residual {}", r.kkt_residual);
}

#[test]
fn bad_plan_files_and_options_are_explained() {
    let fit = demo_fit();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plan.csv");
    std::fs::write(&p, "period,tv,serach\n1,100,50\n").unwrap();
    let e = SpendPlan::read(&p, &fit.channel_names()).unwrap_err().to_string();
    assert!(e.contains("\"serach\" is not a channel") && e.contains("did you mean \"search\""), "{e}");
    std::fs::write(&p, "period,tv\n1,-5\n").unwrap();
    let e = SpendPlan::read(&p, &fit.channel_names()).unwrap_err().to_string();
    assert!(e.contains("row 1") && e.contains("negative"), "{e}");
    let e = PlanningBasis::new(&fit, 0, OutcomeUnit::Kpi).unwrap_err().to_string();
    assert!(e.contains("--horizon"), "{e}");
    let basis = PlanningBasis::new(&fit, 13, OutcomeUnit::Kpi).unwrap();
    let e = relative_bounds(&basis, 0.3, &[("radio".into(), 0.0, 1.0)]).unwrap_err().to_string();
    assert!(e.contains("\"radio\"") && e.contains("tv, search, social"), "{e}");
}

#[test]
fn missing_fit_directory_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = FittedModel::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a fit directory") && e.contains("mmloop fit"), "{e}");
}

#[test]
fn plans_without_channel_columns_or_with_repeated_periods_are_refused() {
    let fit = demo_fit();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plan.csv");
    std::fs::write(&p, "period\n1\n2\n").unwrap();
    let e = SpendPlan::read(&p, &fit.channel_names()).unwrap_err().to_string();
    assert!(e.contains("no column names a channel") && e.contains("tv, search, social"), "{e}");
    std::fs::write(&p, "period,tv\n2024-01,10\n2024-02,20\n2024-01,30\n").unwrap();
    let e = SpendPlan::read(&p, &fit.channel_names()).unwrap_err().to_string();
    assert!(e.contains("period \"2024-01\" appears twice (rows 1 and 3)"), "{e}");
    std::fs::write(&p, "period,tv\n1,1e300\n").unwrap();
    let e = SpendPlan::read(&p, &fit.channel_names()).unwrap_err().to_string();
    assert!(e.contains("row 1") && e.contains("beyond 2^53"), "{e}");
}

#[test]
fn a_missing_plan_file_is_named_once() {
    let fit = demo_fit();
    let p = std::path::Path::new("/nonexistent/my_plan.csv");
    let e = SpendPlan::read(p, &fit.channel_names()).unwrap_err().to_string();
    assert_eq!(e.matches("my_plan.csv").count(), 1, "{e}");
    assert!(e.contains("cannot read"), "{e}");
}
