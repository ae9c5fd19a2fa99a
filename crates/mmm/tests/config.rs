//! Config parsing: defaults, validation errors, unknown keys, overrides and round trips.

use mmloop_mmm::config::{FitOverrides, apply_overrides, load_config, parse_config, to_toml};
use mmloop_mmm::priors::Prior;
use mmloop_mmm::spec::{EffectPrior, FitMethod, GeoInterceptSd, Likelihood, Pooling, Trend};
use mmloop_mmm::transforms::{AdstockSpec, HillSlope, SaturationSpec, TransformOrder};
use std::path::Path;

const MINIMAL: &str = r#"
[data]
path = "sales.csv"
time = "date"
kpi = "sales"

[[channel]]
name = "tv"
"#;

fn parse(text: &str) -> Result<mmloop_mmm::ModelSpec, String> {
    parse_config(text, Path::new("/base")).map_err(|e| e.to_string())
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.data.path, Path::new("/base/sales.csv"));
    assert_eq!(s.data.geo_column, None);
    let ch = &s.channels[0];
    assert_eq!(ch.name, "tv");
    assert_eq!(ch.spend_column, "tv", "spend column defaults to the channel name");
    assert_eq!(ch.exposure_column, None);
    assert_eq!(
        ch.adstock,
        AdstockSpec::Geometric { max_lag: 8, alpha: Prior::Beta { alpha: 1.0, beta: 3.0 }, normalize: true }
    );
    assert_eq!(ch.saturation, SaturationSpec::Logistic { lam: Prior::Gamma { shape: 3.0, rate: 1.0 } });
    assert_eq!(ch.order, TransformOrder::AdstockFirst);
    assert_eq!(ch.effect, EffectPrior::Coefficient(Prior::HalfNormal { sigma: 2.0 }));
    assert_eq!(s.baseline.intercept, Prior::Normal { mu: 0.0, sigma: 2.0 });
    assert_eq!(s.baseline.trend, Trend::Linear { slope: Prior::Normal { mu: 0.0, sigma: 1.0 } });
    assert_eq!(s.baseline.seasonality.len(), 1);
    assert_eq!((s.baseline.seasonality[0].period, s.baseline.seasonality[0].order), (52.18, 2));
    assert_eq!(s.likelihood, Likelihood::Normal);
    assert_eq!(s.noise_prior, Prior::HalfNormal { sigma: 2.0 });
    assert_eq!(s.pooling, Pooling::Complete, "national data is completely pooled");
    assert_eq!(s.holdout, 0);
    let f = &s.fit;
    assert_eq!((f.method, f.seed, f.chains, f.tune, f.draws), (FitMethod::Nuts, 42, 4, 1000, 1000));
    assert_eq!((f.target_accept, f.laplace_starts), (0.8, 4));
    assert_eq!((f.min_tree_depth, f.metric), (4, mmloop_inference::MassMatrix::Diag));
    assert!(s.calibration.roi_priors.is_empty() && s.calibration.lift_tests.is_empty());
}

#[test]
fn geo_data_defaults_to_partial_pooling() {
    let s = parse(&MINIMAL.replace("kpi = \"sales\"", "kpi = \"sales\"\ngeo = \"region\"")).unwrap();
    assert_eq!(s.pooling, Pooling::Partial { tau: Prior::HalfNormal { sigma: 1.0 } });
}

#[test]
fn partial_transform_tables_are_filled_from_media_then_defaults() {
    let s = parse(
        r#"
[data]
path = "/abs/x.parquet"
time = "t"
kpi = "y"
[media]
adstock = { kind = "geometric", max_lag = 4, alpha = { dist = "beta", alpha = 2, beta = 2 } }
saturation = { kind = "hill" }
effect = "roi"
[[channel]]
name = "a"
adstock = { kind = "geometric", max_lag = 6 }
[[channel]]
name = "b"
adstock = { kind = "binomial" }
saturation = { kind = "hill", slope = { dist = "gamma", shape = 2, rate = 2 } }
coefficient = { dist = "half_normal", sigma = 0.5 }
[[channel]]
name = "c"
spend = "c_spend"
exposure = "c_impressions"
order = "saturation_first"
"#,
    )
    .unwrap();
    assert_eq!(s.data.path, Path::new("/abs/x.parquet"), "absolute paths are kept");
    let [a, b, c] = &s.channels[..] else { panic!("three channels") };
    assert_eq!(
        a.adstock,
        AdstockSpec::Geometric { max_lag: 6, alpha: Prior::Beta { alpha: 2.0, beta: 2.0 }, normalize: true },
        "own max_lag, [media]'s alpha"
    );
    assert_eq!(b.adstock, AdstockSpec::Binomial { max_lag: 8, alpha: Prior::Uniform { lower: 0.0, upper: 1.0 } });
    let hill_ec = Prior::TruncatedNormal { mu: 0.8, sigma: 0.8, lower: 0.1, upper: 10.0 };
    assert_eq!(
        a.saturation,
        SaturationSpec::Hill {
            ec: hill_ec,
            slope: HillSlope::Prior(Prior::LogNormal { mu: 0.0, sigma: 0.5 }),
            ec_floor_quantile: None
        }
    );
    assert_eq!(
        b.saturation,
        SaturationSpec::Hill {
            ec: hill_ec,
            slope: HillSlope::Prior(Prior::Gamma { shape: 2.0, rate: 2.0 }),
            ec_floor_quantile: None
        }
    );
    assert_eq!(a.effect, EffectPrior::Roi(Prior::LogNormal { mu: 0.2, sigma: 0.9 }));
    assert_eq!(b.effect, EffectPrior::Coefficient(Prior::HalfNormal { sigma: 0.5 }));
    assert_eq!(c.order, TransformOrder::SaturationFirst);
    assert_eq!((c.spend_column.as_str(), c.exposure_column.as_deref()), ("c_spend", Some("c_impressions")));
}

#[test]
fn baseline_likelihood_and_fit_options_parse() {
    let s = parse(&format!(
        "{MINIMAL}
[[control]]
column = \"price\"
[[control]]
column = \"events\"
equals = \"event1\"
prior = {{ dist = \"normal\", mu = 0, sigma = 0.5 }}
[baseline]
trend = {{ kind = \"piecewise\", changepoints = 5 }}
seasonality = [{{ period = 52.18, order = 3 }}, {{ period = 4, order = 1 }}]
[likelihood]
kind = \"student_t\"
[fit]
method = \"laplace\"
seed = 7
holdout = 12
target_accept = 0.9
"
    ))
    .unwrap();
    assert_eq!(s.controls[0].column, "price");
    assert_eq!(s.controls[0].prior, Prior::Normal { mu: 0.0, sigma: 2.0 });
    assert_eq!(s.controls[1].column, "events=event1", "a text indicator is stored as column=value");
    assert!(matches!(s.baseline.trend, Trend::Piecewise { changepoints: 5, .. }));
    assert_eq!(s.baseline.seasonality[1].order, 1);
    assert_eq!(s.likelihood, Likelihood::StudentT { nu: 5.0 });
    assert_eq!((s.fit.method, s.fit.seed, s.holdout, s.fit.target_accept), (FitMethod::Laplace, 7, 12, 0.9));
    let s = parse(&format!("{MINIMAL}\n[baseline]\ntrend = \"none\"\nseasonality = []\n")).unwrap();
    assert_eq!(s.baseline.trend, Trend::None);
    assert!(s.baseline.seasonality.is_empty());
}

#[test]
fn sampler_metric_and_min_tree_depth_are_validated() {
    let with = |extra: &str| parse(&format!("{MINIMAL}\n[fit]\n{extra}\n"));
    let s = with("metric = \"dense\"\nmin_tree_depth = 0").unwrap();
    assert_eq!((s.fit.metric, s.fit.min_tree_depth), (mmloop_inference::MassMatrix::Dense, 0));
    assert_eq!(with("metric = \"low_rank\"").unwrap().fit.metric, mmloop_inference::MassMatrix::low_rank());
    let e = with("metric = \"dens\"").unwrap_err();
    assert!(e.contains("[fit] metric") && e.contains("did you mean \"dense\"?"), "{e}");
    let e = with("min_tree_depth = 11").unwrap_err();
    assert!(e.contains("[fit] min_tree_depth") && e.contains("exceeds the maximum tree depth 10"), "{e}");
    let e = with("metric = \"dense\"\ntune = 20").unwrap_err();
    assert!(e.contains("tune = 20") && e.contains("at least 50"), "{e}");
}

#[test]
fn unknown_key_names_key_table_and_closest_valid_key() {
    let e = parse(&MINIMAL.replace("kpi = \"sales\"", "kpi = \"sales\"\npopulaton = \"pop\"")).unwrap_err();
    assert!(e.contains("unknown key `populaton`") && e.contains("[data]"), "{e}");
    assert!(e.contains("did you mean `population`"), "{e}");
    assert!(e.contains("line 6"), "{e}");

    let e = parse(&format!("{MINIMAL}adstock = {{ kind = \"geometric\", max_lg = 4 }}\n")).unwrap_err();
    assert!(e.contains("`max_lg`") && e.contains("[[channel]] #1 `adstock`"), "{e}");
    assert!(e.contains("did you mean `max_lag`"), "{e}");

    let e = parse(&format!("{MINIMAL}[fit]\ndraw = 10\n")).unwrap_err();
    assert!(e.contains("`draw`") && e.contains("[fit]") && e.contains("did you mean `draws`"), "{e}");

    let e =
        parse(&format!("{MINIMAL}[baseline]\nintercept = {{ dist = \"normal\", mu = 0, sigam = 1 }}\n")).unwrap_err();
    assert!(e.contains("`sigam`") && e.contains("`intercept`") && e.contains("did you mean `sigma`"), "{e}");

    let e = parse(&format!("{MINIMAL}[modle]\nx = 1\n")).unwrap_err();
    assert!(e.contains("`modle`") && e.contains("top level"), "{e}");
}

#[test]
fn unknown_kind_suggests_the_closest_value() {
    let e = parse(&format!("{MINIMAL}saturation = {{ kind = \"logistc\" }}\n")).unwrap_err();
    assert!(e.contains("logistc") && e.contains("did you mean `logistic`"), "{e}");
    let e = parse(&format!("{MINIMAL}[fit]\nmethod = \"lapalce\"\n")).unwrap_err();
    assert!(e.contains("[fit] method") && e.contains("did you mean \"laplace\""), "{e}");
}

#[test]
fn missing_required_key_and_bad_types_are_reported_with_line() {
    let e = parse("[data]\npath = \"x.csv\"\ntime = \"date\"\n[[channel]]\nname = \"tv\"\n").unwrap_err();
    assert!(e.contains("missing field `kpi`") && e.contains("[data]"), "{e}");
    let e =
        parse(&MINIMAL.replace("name = \"tv\"", "name = \"tv\"\nadstock = { kind = \"geometric\", max_lag = \"8\" }"))
            .unwrap_err();
    assert!(e.contains("line 9") && e.contains("max_lag must be a whole number ≥ 0, got \"8\""), "{e}");
}

#[test]
fn run_counts_in_the_thousands_are_refused() {
    let e = parse(&format!("{MINIMAL}[fit]\nlaplace_starts = 18446744073709551615\n")).unwrap_err();
    assert!(e.contains("[fit] laplace_starts") && e.contains("more than 1000"), "{e}");
    let e = parse(&format!("{MINIMAL}[fit]\nchains = 5000\n")).unwrap_err();
    assert!(e.contains("[fit] chains: 5000 is more than 1000"), "{e}");
    assert!(parse(&format!("{MINIMAL}[fit]\nchains = 1000\nlaplace_starts = 1000\n")).is_ok());
}

#[test]
fn type_errors_say_which_key_and_what_it_must_be() {
    let e = parse(&format!("{MINIMAL}[fit]\ndraws = 1.5\n")).unwrap_err();
    assert!(e.contains("[fit] draws must be a whole number ≥ 1, got 1.5"), "{e}");
    assert!(!e.contains("usize"), "serde's type names are not for users: {e}");
    let e = parse(&format!("{MINIMAL}[fit]\nchains = -2\n")).unwrap_err();
    assert!(e.contains("[fit] chains must be a whole number ≥ 1, got -2"), "{e}");
    let e = parse(&format!("{MINIMAL}[fit]\ntarget_accept = \"high\"\n")).unwrap_err();
    assert!(e.contains("[fit] target_accept must be a number, got \"high\""), "{e}");
    let e = parse(&format!("{MINIMAL}[fit]\nseed = 1e3\n")).unwrap_err();
    assert!(e.contains("[fit] seed must be a whole number from 0 to"), "{e}");
    let e = parse(&MINIMAL.replace("kpi = \"sales\"", "kpi = 3")).unwrap_err();
    assert!(e.contains("[data] kpi must be text in quotes, got 3"), "{e}");
}

#[test]
fn invalid_values_name_the_option_and_the_remedy() {
    let cases: &[(&str, &str)] = &[
        ("[fit]\ntarget_accept = 1.0\n", "[fit] target_accept"),
        ("[fit]\nchains = 0\n", "[fit] chains"),
        ("[[channel]]\nname = \"tv\"\n", "used twice"),
        ("adstock = { kind = \"geometric\", alpha = { dist = \"normal\", mu = 0, sigma = 1 } }\n", "adstock.alpha"),
        ("adstock = { kind = \"geometric\", max_lag = 0 }\n", "adstock.max_lag"),
        ("saturation = { kind = \"logistic\", lam = { dist = \"gamma\", shape = -1, rate = 1 } }\n", "saturation.lam"),
        ("saturation = { kind = \"hill\", slope = 0 }\n", "saturation.slope: a fixed slope must be a positive number"),
        (
            "saturation = { kind = \"hill\", slope = -1.5 }\n",
            "saturation.slope: a fixed slope must be a positive number",
        ),
        (
            "saturation = { kind = \"hill\", ec_floor_quantile = 1 }\n",
            "saturation.ec_floor_quantile: must be a probability",
        ),
        (
            "saturation = { kind = \"hill\", ec_floor_quantile = 0 }\n",
            "saturation.ec_floor_quantile: must be a probability",
        ),
        (
            "saturation = { kind = \"hill\", ec_floor_quantile = 0.1, ec = { dist = \"lognormal\", mu = 0, sigma = 1 } }\n",
            "cannot take a floor: only a truncated_normal or uniform prior",
        ),
        (
            "coefficient = { dist = \"half_normal\", sigma = 1 }\nroi = { dist = \"lognormal\", mu = 0, sigma = 1 }\n",
            "not both",
        ),
        ("[baseline]\nseasonality = [{ period = 52.18, order = 30 }]\n", "period/2"),
        ("[baseline]\ntrend = { kind = \"linear\", changepoints = 3 }\n", "piecewise"),
        ("[likelihood]\nnu = 3\n", "[likelihood] nu"),
        ("[pooling]\nkind = \"partial\"\n", "needs geo data"),
        ("[[calibration.roi_prior]]\nchannel = \"TV\"\nmean = 2\nstandard_error = 0.5\n", "did you mean \"tv\""),
        ("[[calibration.roi_prior]]\nchannel = \"tv\"\nmean = 2\nstandard_error = 0\n", "standard error"),
    ];
    for (extra, want) in cases {
        let e = parse(&format!("{MINIMAL}{extra}")).unwrap_err();
        assert!(e.contains(want), "config tail {extra:?}: error {e:?} lacks {want:?}");
        assert!(e.starts_with("config: ") || e.starts_with("config, line"), "{e}");
    }
}

/// `slope = n` fixes the Hill slope (Meridian's `slope_m = Deterministic(1.0)`): the channel samples
/// its ec only and φ = (ec, n); a prior table samples it; a mistyped prior key inside the table is
/// still named.
#[test]
fn hill_slope_is_fixed_by_a_number_and_sampled_by_a_prior_table() {
    let hill = |slope: &str| {
        parse(&format!("{MINIMAL}saturation = {{ kind = \"hill\"{slope} }}\n"))
            .map(|s| s.channels[0].saturation.clone())
    };
    let ec = Prior::TruncatedNormal { mu: 0.8, sigma: 0.8, lower: 0.1, upper: 10.0 };
    let fixed = hill(", slope = 1").unwrap();
    assert_eq!(fixed, SaturationSpec::Hill { ec, slope: HillSlope::Fixed(1.0), ec_floor_quantile: None });
    assert_eq!(fixed.params().iter().map(|p| p.0).collect::<Vec<_>>(), ["ec"], "a fixed slope is not sampled");
    assert_eq!(fixed.fixed(), [1.0]);
    assert_eq!(
        hill(", slope = 0.7").unwrap(),
        SaturationSpec::Hill { ec, slope: HillSlope::Fixed(0.7), ec_floor_quantile: None }
    );
    let sampled = hill(", slope = { dist = \"gamma\", shape = 2, rate = 2 }").unwrap();
    assert_eq!(
        sampled,
        SaturationSpec::Hill {
            ec,
            slope: HillSlope::Prior(Prior::Gamma { shape: 2.0, rate: 2.0 }),
            ec_floor_quantile: None
        }
    );
    assert_eq!(sampled.params().len(), 2);
    assert!(sampled.fixed().is_empty());
    let default = hill("").unwrap();
    assert_eq!(
        default,
        SaturationSpec::Hill {
            ec,
            slope: HillSlope::Prior(Prior::LogNormal { mu: 0.0, sigma: 0.5 }),
            ec_floor_quantile: None
        }
    );
    let e = hill(", slope = { dist = \"gamma\", shape = 2, rte = 2 }").unwrap_err();
    assert!(e.contains("rte"), "{e}");
    let e = hill(", slope = \"one\"").unwrap_err();
    assert!(e.contains("a number (a fixed value) or a prior table"), "{e}");
}

/// `[baseline] intercept_geo_sd = s` holds the geo intercepts' sd (independent intercepts, as
/// Meridian's `tau_g_excl_baseline`); a prior table samples it (partial pooling, the default), and
/// both are written back as given.
#[test]
fn intercept_geo_sd_is_held_by_a_number_and_sampled_by_a_prior_table() {
    let sd = |text: &str| parse(&format!("{MINIMAL}[baseline]\n{text}")).map(|s| s.baseline.intercept_geo_sd);
    assert_eq!(sd("intercept_geo_sd = 1\n").unwrap(), GeoInterceptSd::Fixed(1.0));
    assert_eq!(sd("intercept_geo_sd = 0.25\n").unwrap(), GeoInterceptSd::Fixed(0.25));
    assert_eq!(
        sd("intercept_geo_sd = { dist = \"half_normal\", sigma = 0.3 }\n").unwrap(),
        GeoInterceptSd::Prior(Prior::HalfNormal { sigma: 0.3 })
    );
    assert_eq!(sd("").unwrap(), GeoInterceptSd::Prior(Prior::HalfNormal { sigma: 1.0 }));
    for bad in ["0", "-1"] {
        let e = sd(&format!("intercept_geo_sd = {bad}\n")).unwrap_err();
        assert!(e.contains("[baseline] intercept_geo_sd: a fixed sd must be a positive number"), "{e}");
    }
    let e = sd("intercept_geo_sd = { dist = \"normal\", mu = 0, sigma = 1 }\n").unwrap_err();
    assert!(e.contains("intercept_geo_sd"), "{e}");
    for text in ["intercept_geo_sd = 1\n", "intercept_geo_sd = { dist = \"half_normal\", sigma = 0.3 }\n"] {
        let s = parse(&format!("{MINIMAL}[baseline]\n{text}")).unwrap();
        assert_eq!(parse_config(&to_toml(&s), Path::new("/")).unwrap(), s, "{text}");
    }
}

#[test]
fn config_without_channels_is_rejected() {
    let e = parse("[data]\npath = \"x.csv\"\ntime = \"d\"\nkpi = \"y\"\n").unwrap_err();
    assert!(e.contains("[[channel]]") && e.contains("Add at least one"), "{e}");
}

#[test]
fn calibration_records_inline_and_from_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lift.json"),
        r#"[{"channels":["tv"],"start":"2021-04-05","end":"2021-04-26","spend_change":5000,
            "incremental_kpi":9000,"standard_error":2500,"estimator":"sc"}]"#,
    )
    .unwrap();
    let cfg = format!(
        "{MINIMAL}
[calibration]
lift_tests = \"lift.json\"
[[calibration.roi_prior]]
channel = \"tv\"
mean = 1.8
standard_error = 0.4
[[calibration.lift_test]]
channels = [\"tv\"]
start = \"2021-06-07\"
end = \"2021-06-28\"
spend_change = -4000
incremental_kpi = -6000
standard_error = 2000
"
    );
    let p = dir.path().join("model.toml");
    std::fs::write(&p, &cfg).unwrap();
    let s = load_config(&p).unwrap();
    assert_eq!(s.data.path, dir.path().join("sales.csv"), "data path is relative to the config's folder");
    assert_eq!(s.calibration.roi_priors.len(), 1);
    assert_eq!(s.calibration.roi_priors[0].mean, 1.8);
    assert_eq!(s.calibration.lift_tests.len(), 2);
    assert_eq!(s.calibration.lift_tests[0].estimator, "sc");
    assert_eq!(s.calibration.lift_tests[1].spend_change, -4000.0);

    // a record without a channel, and a record naming an unknown channel
    std::fs::write(
        dir.path().join("lift.json"),
        r#"{"start":"2021-04-05","end":"2021-04-26","spend_change":5000,"incremental_kpi":9000,"standard_error":2500}"#,
    )
    .unwrap();
    let e = load_config(&p).unwrap_err().to_string();
    assert!(e.contains("model.toml") && e.contains("names no channel") && e.contains("channels = [...]"), "{e}");
    std::fs::write(
        dir.path().join("model.toml"),
        cfg.replace("lift_tests = \"lift.json\"", "lift_tests = \"nope.json\""),
    )
    .unwrap();
    let e = load_config(&p).unwrap_err().to_string();
    assert!(e.contains("nope.json") && e.contains("lift_tests"), "{e}");
}

#[test]
fn observational_bias_sd_defaults_to_none_round_trips_and_refuses_negatives() {
    assert_eq!(parse(MINIMAL).unwrap().calibration.observational_bias_sd, 0.0, "off unless asked for");
    let s = parse(&format!("{MINIMAL}[calibration]\nobservational_bias_sd = 0.5\n")).unwrap();
    assert_eq!(s.calibration.observational_bias_sd, 0.5);
    let again = parse(&to_toml(&s)).unwrap();
    assert_eq!(again.calibration.observational_bias_sd, 0.5, "the saved config keeps it");
    let e = parse(&format!("{MINIMAL}[calibration]\nobservational_bias_sd = -0.1\n")).unwrap_err();
    assert!(e.contains("[calibration] observational_bias_sd") && e.contains("e.g. 0.5"), "{e}");
}

#[test]
fn overrides_win_over_the_config() {
    let mut s = parse(&format!("{MINIMAL}[fit]\nmethod = \"nuts\"\nseed = 1\n")).unwrap();
    apply_overrides(&mut s, &FitOverrides { method: Some("laplace".parse().unwrap()), seed: Some(99) });
    assert_eq!((s.fit.method, s.fit.seed), (FitMethod::Laplace, 99));
    apply_overrides(&mut s, &FitOverrides::default());
    assert_eq!((s.fit.method, s.fit.seed), (FitMethod::Laplace, 99), "absent overrides change nothing");
    assert!("Nuts".parse::<FitMethod>().is_ok() && "hmc".parse::<FitMethod>().is_err());
}

#[test]
fn to_toml_round_trips_every_option() {
    let text = r#"
[data]
path = "d.csv"
time = "date"
kpi = "sales"
geo = "geo"
population = "pop"
revenue_per_kpi = "rpk"
[[channel]]
name = "tv"
spend = "tv_s"
exposure = "tv_i"
adstock = { kind = "weibull_pdf", max_lag = 6 }
saturation = { kind = "michaelis_menten" }
roi = { dist = "lognormal", mu = 0.1, sigma = 0.5 }
[[channel]]
name = "search"
adstock = { kind = "weibull_cdf" }
saturation = { kind = "hill", slope = 1, ec_floor_quantile = 0.1 }
order = "saturation_first"
[[channel]]
name = "social"
saturation = { kind = "hill" }
[[control]]
column = "events"
equals = "event2"
[baseline]
trend = "piecewise"
seasonality = [{ period = 52.18, order = 2 }, { period = 13, order = 1, prior = { dist = "truncated_normal", mu = 0, sigma = 1, lower = -2, upper = 2 } }]
[likelihood]
kind = "student_t"
nu = 4
[[calibration.roi_prior]]
channel = "tv"
mean = 2.0
standard_error = 0.3
[[calibration.lift_test]]
channels = ["tv", "search"]
geos = ["g1"]
start = "2021-01-04"
end = "2021-01-25"
spend_change = 100
incremental_kpi = 50
standard_error = 10
spend_path = [{ time = "2021-01-04", geo = "g1", delta = 100 }]
[fit]
method = "laplace"
holdout = 8
"#;
    let s = parse(text).unwrap();
    let written = to_toml(&s);
    let back = parse_config(&written, Path::new("/elsewhere")).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert_eq!(back, s, "{written}");
    // and the minimal config, with all its defaults spelt out
    let s = parse(MINIMAL).unwrap();
    assert_eq!(parse_config(&to_toml(&s), Path::new("/")).unwrap(), s);
}

#[test]
fn national_model_warns_that_a_readouts_geos_are_ignored() {
    let record = "
[[calibration.lift_test]]
channels = [\"tv\"]
geos = [\"chicago\", \"portland\"]
start = \"2021-06-07\"
end = \"2021-06-28\"
spend_change = 4000
incremental_kpi = 6000
standard_error = 2000
";
    let national = parse(&format!("{MINIMAL}{record}")).unwrap();
    let w = mmloop_mmm::config::national_geo_warnings(&national);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("chicago, portland") && w[0].contains("ignored") && w[0].contains("national"), "{}", w[0]);

    // a geo model uses the geos; a national record without geos has nothing to ignore
    let geo =
        parse(&format!("{}{record}", MINIMAL.replace("kpi = \"sales\"", "kpi = \"sales\"\ngeo = \"g\""))).unwrap();
    assert!(mmloop_mmm::config::national_geo_warnings(&geo).is_empty());
    let no_geos = parse(&format!("{MINIMAL}{}", record.replace("geos = [\"chicago\", \"portland\"]\n", ""))).unwrap();
    assert!(mmloop_mmm::config::national_geo_warnings(&no_geos).is_empty());
}
