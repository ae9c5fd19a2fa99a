//! One test per bad input of issue 2 (and a few more): each error names the file, the column, the
//! row where one applies, and the remedy.

use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use std::fmt::Write as _;
use std::path::PathBuf;

/// A clean weekly national table: 30 weeks from 2021-01-04, channels tv and search, control price.
fn national_rows() -> Vec<Vec<String>> {
    (0..30)
        .map(|w| {
            let date = mmloop_data::format_date(18631.0 + 7.0 * w as f64); // 2021-01-04
            let tv = if w % 5 < 2 { 0.0 } else { 1000.0 + 37.0 * w as f64 };
            let search = 200.0 + 11.0 * (w % 7) as f64;
            let sales = 5000.0 + 0.8 * tv + 2.0 * search + 13.0 * (w % 3) as f64;
            vec![date, format!("{sales}"), format!("{tv}"), format!("{search}"), format!("{}", 1.0 + 0.01 * w as f64)]
        })
        .collect()
}

const NATIONAL_HEADER: &str = "date,sales,tv_spend,search_spend,price";

const NATIONAL_CONFIG: &str = r#"
[data]
path = "sales.csv"
time = "date"
kpi = "sales"

[media]
adstock = { kind = "geometric", max_lag = 2 }

[[channel]]
name = "tv"
spend = "tv_spend"

[[channel]]
name = "search"
spend = "search_spend"

[[control]]
column = "price"

[baseline]
seasonality = []
"#;

struct Case {
    _dir: tempfile::TempDir,
    config: PathBuf,
}

fn write_case(header: &str, rows: &[Vec<String>], config: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = format!("{header}\n");
    for r in rows {
        writeln!(csv, "{}", r.join(",")).unwrap();
    }
    std::fs::write(dir.path().join("sales.csv"), csv).unwrap();
    let config_path = dir.path().join("model.toml");
    std::fs::write(&config_path, config).unwrap();
    Case { _dir: dir, config: config_path }
}

/// Parses the config and loads the data; returns the error message (panics if both succeed).
fn load_err(header: &str, rows: &[Vec<String>], config: &str) -> String {
    let case = write_case(header, rows, config);
    let msg = match load_config(&case.config) {
        Err(e) => e.to_string(),
        Ok(spec) => match Dataset::load(&spec) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("bad input was accepted"),
        },
    };
    eprintln!("{msg}");
    msg
}

fn national_err(edit: impl FnOnce(&mut Vec<Vec<String>>)) -> String {
    let mut rows = national_rows();
    edit(&mut rows);
    load_err(NATIONAL_HEADER, &rows, NATIONAL_CONFIG)
}

fn has_all(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error message lacks {p:?}:\n{msg}");
    }
}

#[test]
fn clean_national_data_loads() {
    let case = write_case(NATIONAL_HEADER, &national_rows(), NATIONAL_CONFIG);
    let d = Dataset::load(&load_config(&case.config).unwrap()).unwrap();
    assert_eq!((d.n_geos(), d.n_times(), d.n_channels()), (1, 30, 2));
}

#[test]
fn missing_column_names_file_option_and_closest_column() {
    let cfg = NATIONAL_CONFIG.replace("spend = \"tv_spend\"", "spend = \"tv_spnd\"");
    let e = load_err(NATIONAL_HEADER, &national_rows(), &cfg);
    has_all(&e, &["sales.csv", "no column named \"tv_spnd\"", "did you mean \"tv_spend\"", "[[channel]] \"tv\" spend"]);
    has_all(&e, &["Fix", "rename the column"]);
}

#[test]
fn misspelt_kpi_column_suggests_the_right_one() {
    let cfg = NATIONAL_CONFIG.replace("kpi = \"sales\"", "kpi = \"Sale\"");
    let e = load_err(NATIONAL_HEADER, &national_rows(), &cfg);
    has_all(&e, &["sales.csv", "\"Sale\"", "did you mean \"sales\"", "[data] kpi"]);
}

#[test]
fn empty_cell_names_column_and_row() {
    let e = national_err(|r| r[4][2] = String::new());
    has_all(&e, &["sales.csv", "column \"tv_spend\", row 5", "empty", "Fill in the amount spent"]);
}

#[test]
fn nan_cell_names_column_and_row() {
    let e = national_err(|r| r[6][1] = "NaN".into());
    has_all(&e, &["sales.csv", "column \"sales\", row 7", "NaN", "Fill in the KPI"]);
}

#[test]
fn non_numeric_cell_names_column_and_row() {
    let e = national_err(|r| r[2][4] = "1,05".into());
    // "1,05" splits into two CSV fields: the file no longer parses, and the error says where
    assert!(e.contains("sales.csv"), "{e}");
    let e = national_err(|r| r[2][4] = "n/a".into());
    has_all(&e, &["sales.csv", "column \"price\"", "row 3", "\"n/a\" is not a number"]);
}

#[test]
fn negative_spend_names_column_row_and_remedy() {
    let e = national_err(|r| r[2][3] = "-10".into());
    has_all(&e, &["sales.csv", "column \"search_spend\", row 3", "negative (-10)", "Spend must be 0 or more"]);
}

#[test]
fn negative_exposure_is_rejected() {
    let mut rows = national_rows();
    for (i, r) in rows.iter_mut().enumerate() {
        r.push(if i == 8 { "-5".into() } else { format!("{}", 100 * i) });
    }
    let cfg = NATIONAL_CONFIG.replace("spend = \"tv_spend\"", "spend = \"tv_spend\"\nexposure = \"tv_grp\"");
    let e = load_err(&format!("{NATIONAL_HEADER},tv_grp"), &rows, &cfg);
    has_all(&e, &["column \"tv_grp\", row 9", "exposure of channel \"tv\" is negative", "must be 0 or more"]);
}

#[test]
fn duplicate_date_in_national_data() {
    let e = national_err(|r| {
        let dup = r[3].clone();
        r.insert(10, dup);
    });
    has_all(&e, &["sales.csv", "rows 4 and 11", "date \"2021-01-25\"", "column", "remove or merge the duplicate row"]);
    has_all(&e, &["set [data] geo"]);
}

fn geo_rows() -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for (w, base) in national_rows().into_iter().enumerate() {
        for geo in ["north", "south"] {
            let mut r = base.clone();
            r.insert(1, geo.to_string());
            r.push(if geo == "north" { "1000".into() } else { "2500".into() });
            if geo == "south" {
                r[3] = format!("{}", 0.5 * r[3].parse::<f64>().unwrap() + w as f64);
            }
            rows.push(r);
        }
    }
    rows
}

const GEO_HEADER: &str = "date,geo,sales,tv_spend,search_spend,price,population";

fn geo_config() -> String {
    NATIONAL_CONFIG.replace("kpi = \"sales\"", "kpi = \"sales\"\ngeo = \"geo\"\npopulation = \"population\"")
}

#[test]
fn clean_geo_data_loads_in_first_appearance_order() {
    let mut rows = geo_rows();
    rows.rotate_left(7); // starts with a south row, out of date order
    let case = write_case(GEO_HEADER, &rows, &geo_config());
    let d = Dataset::load(&load_config(&case.config).unwrap()).unwrap();
    assert_eq!(d.geos, ["south", "north"]);
    assert_eq!(d.n_times(), 30);
    assert_eq!(d.times.labels[0], "2021-01-04", "periods are sorted");
    assert_eq!(d.population.unwrap().to_vec(), vec![2500.0, 1000.0]);
}

#[test]
fn duplicate_date_geo_rows_name_both_rows() {
    let mut rows = geo_rows();
    let dup = rows[5].clone(); // 2021-01-18, south
    rows.insert(20, dup);
    let e = load_err(GEO_HEADER, &rows, &geo_config());
    has_all(&e, &["sales.csv", "rows 6 and 21", "\"2021-01-18\"", "geo \"south\"", "\"date\", \"geo\""]);
    has_all(&e, &["may appear once", "remove or merge"]);
}

#[test]
fn geo_missing_a_date_is_an_error() {
    let mut rows = geo_rows();
    rows.remove(9); // 2021-02-01, south
    let e = load_err(GEO_HEADER, &rows, &geo_config());
    has_all(
        &e,
        &["sales.csv", "column \"geo\"", "geo \"south\"", "1 of the 30 periods", "2021-02-01", "add the missing rows"],
    );
}

#[test]
fn gap_in_dates_reports_the_first_gap() {
    let e = national_err(|r| {
        r.remove(9);
    });
    has_all(&e, &["sales.csv", "column \"date\"", "between 2021-03-01 (row 9) and 2021-03-15 (row 10)"]);
    has_all(&e, &["14 days", "step is 7 days", "Add the missing periods"]);
}

#[test]
fn unsorted_dates_are_sorted_not_rejected() {
    let mut rows = national_rows();
    rows.reverse();
    rows.swap(3, 17);
    let case = write_case(NATIONAL_HEADER, &rows, NATIONAL_CONFIG);
    let d = Dataset::load(&load_config(&case.config).unwrap()).unwrap();
    assert!(d.times.values.windows(2).all(|w| w[1] - w[0] == 7.0));
    let sorted = national_rows();
    for (t, r) in sorted.iter().enumerate() {
        assert_eq!(d.kpi[[0, t]], r[1].parse::<f64>().unwrap(), "row of {} lost its KPI", r[0]);
        assert_eq!(d.spend[[0, t, 1]], r[3].parse::<f64>().unwrap());
    }
}

#[test]
fn always_zero_channel_is_rejected() {
    let e = national_err(|r| r.iter_mut().for_each(|r| r[2] = "0".into()));
    has_all(&e, &["sales.csv", "channel \"tv\"", "column \"tv_spend\"", "zero in every row", "remove its [[channel]]"]);
}

#[test]
fn channel_active_only_in_the_holdout_is_rejected() {
    let mut rows = national_rows();
    for (i, r) in rows.iter_mut().enumerate() {
        r[2] = if i >= 26 { "500".into() } else { "0".into() };
    }
    let cfg = format!("{NATIONAL_CONFIG}\n[fit]\nholdout = 4\n");
    let e = load_err(NATIONAL_HEADER, &rows, &cfg);
    has_all(&e, &["channel \"tv\"", "zero in every fitted period", "Lower [fit] holdout"]);
}

#[test]
fn too_few_rows_for_the_adstock_lags() {
    let rows: Vec<_> = national_rows().into_iter().take(12).collect();
    let cfg = NATIONAL_CONFIG.replace("max_lag = 2", "max_lag = 8");
    let e = load_err(NATIONAL_HEADER, &rows, &cfg);
    has_all(&e, &["sales.csv", "adstock.max_lag = 8", "12 fitted periods", "at least 18", "shorten max_lag"]);
}

#[test]
fn too_few_rows_for_the_fourier_terms() {
    let rows: Vec<_> = national_rows().into_iter().take(20).collect();
    let cfg = NATIONAL_CONFIG.replace("seasonality = []", "seasonality = [{ period = 52.18, order = 8 }]");
    let e = load_err(NATIONAL_HEADER, &rows, &cfg);
    has_all(&e, &["sales.csv", "seasonality", "20 fitted periods", "Fourier terms 16", "at least 22"]);
    has_all(&e, &["lower the seasonality order"]);
}

#[test]
fn holdout_counts_against_the_fitted_periods() {
    let cfg = format!("{NATIONAL_CONFIG}\n[fit]\nholdout = 25\n");
    let e = load_err(NATIONAL_HEADER, &national_rows(), &cfg);
    has_all(&e, &["5 fitted periods (30 periods minus a holdout of 25)", "lower the holdout"]);
    let cfg = format!("{NATIONAL_CONFIG}\n[fit]\nholdout = 30\n");
    let e = load_err(NATIONAL_HEADER, &national_rows(), &cfg);
    has_all(&e, &["[fit] holdout", "leaves none of the 30 periods"]);
}

#[test]
fn unknown_config_key_names_file_key_table_and_closest_key() {
    let cfg = NATIONAL_CONFIG.replace("spend = \"search_spend\"", "spend = \"search_spend\"\nexposrue = \"clicks\"");
    let e = load_err(NATIONAL_HEADER, &national_rows(), &cfg);
    has_all(&e, &["model.toml", "line 17", "unknown key `exposrue`", "[[channel]] #2", "did you mean `exposure`"]);
    has_all(&e, &["Remove the key or fix its spelling"]);
}

#[test]
fn population_must_be_positive_and_constant_within_a_geo() {
    let mut rows = geo_rows();
    rows[14][6] = "1001".into(); // north, 8th week
    let e = load_err(GEO_HEADER, &rows, &geo_config());
    has_all(
        &e,
        &["column \"population\", row 15", "geo \"north\" is 1001 here but 1000 at row 1", "one value per geo"],
    );
    let mut rows = geo_rows();
    rows[3][6] = "0".into();
    let e = load_err(GEO_HEADER, &rows, &geo_config());
    has_all(&e, &["column \"population\", row 4", "population is 0", "must be positive"]);
}

#[test]
fn yearly_default_seasonality_on_daily_data_is_rejected() {
    let rows: Vec<_> = national_rows()
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r[0] = mmloop_data::format_date(18631.0 + i as f64);
            r
        })
        .collect();
    let cfg = NATIONAL_CONFIG.replace("seasonality = []\n", "");
    let e = load_err(NATIONAL_HEADER, &rows, &cfg);
    has_all(&e, &["seasonality #1 period = 52.18", "1.00 days apart", "period = 365.25"]);
}

#[test]
fn indicator_control_value_must_occur() {
    let mut rows = national_rows();
    for (i, r) in rows.iter_mut().enumerate() {
        r.push(if i == 3 { "launch".into() } else { "na".into() });
    }
    let cfg = format!("{NATIONAL_CONFIG}\n[[control]]\ncolumn = \"events\"\nequals = \"lunch\"\n")
        .replace("[baseline]\nseasonality = []\n", "")
        + "[baseline]\nseasonality = []\n";
    let e = load_err(&format!("{NATIONAL_HEADER},events"), &rows, &cfg);
    has_all(&e, &["[[control]] #2 equals", "never holds the value \"lunch\"", "did you mean \"launch\""]);
}

#[test]
fn lift_test_outside_the_data_is_rejected() {
    let cfg = format!(
        "{NATIONAL_CONFIG}
[[calibration.lift_test]]
channels = [\"tv\"]
start = \"2020-06-01\"
end = \"2020-06-29\"
spend_change = 1000
incremental_kpi = 800
standard_error = 200
source = \"exp-7\"
"
    );
    let e = load_err(NATIONAL_HEADER, &national_rows(), &cfg);
    has_all(&e, &["lift test #1", "\"exp-7\"", "start 2020-06-01 is outside the data (2021-01-04 to 2021-07-26)"]);
}

#[test]
fn lift_test_geo_not_in_the_data_is_rejected() {
    let cfg = format!(
        "{}
[[calibration.lift_test]]
channels = [\"search\"]
geos = [\"nort\"]
start = \"2021-02-01\"
end = \"2021-02-22\"
spend_change = 1000
incremental_kpi = 800
standard_error = 200
",
        geo_config()
    );
    let e = load_err(GEO_HEADER, &geo_rows(), &cfg);
    has_all(&e, &["geo \"nort\" is not in the data", "did you mean \"north\""]);
}

#[test]
fn column_used_in_two_roles_is_rejected() {
    let cfg = NATIONAL_CONFIG.replace("column = \"price\"", "column = \"tv_spend\"");
    let e = load_err(NATIONAL_HEADER, &national_rows(), &cfg);
    has_all(&e, &["column \"tv_spend\" is also used as [[channel]] \"tv\" spend", "its own column"]);
}

#[test]
fn missing_data_file_names_the_path() {
    let case = write_case(NATIONAL_HEADER, &national_rows(), &NATIONAL_CONFIG.replace("sales.csv", "nope.csv"));
    let e = Dataset::load(&load_config(&case.config).unwrap()).unwrap_err().to_string();
    has_all(&e, &["nope.csv", "no such file"]);
}

#[test]
fn constant_kpi_is_refused_saying_so() {
    let e = national_err(|r| r.iter_mut().for_each(|row| row[1] = "5000".into()));
    has_all(&e, &["sales.csv", "column \"sales\"", "is 5000 in every fitted period (rows 1 to 30)", "no variation"]);
    // per geo: constant within every geo (different levels) is as empty
    let mut rows = geo_rows();
    rows.iter_mut().for_each(|row| row[2] = if row[1] == "north" { "100".into() } else { "300".into() });
    let e = load_err(GEO_HEADER, &rows, &geo_config());
    has_all(&e, &["sales.csv", "column \"sales\"", "constant over the fitted periods within every geo"]);
}

#[test]
fn zero_or_negative_kpi_names_file_column_and_geo() {
    let e = national_err(|r| r.iter_mut().for_each(|row| row[1] = "0".into()));
    has_all(&e, &["sales.csv", "column \"sales\" ([data] kpi)", "mean over the fitted periods is 0, not positive"]);
    let e = national_err(|r| r.iter_mut().enumerate().for_each(|(i, row)| row[1] = format!("-{}", 10 + i)));
    has_all(&e, &["sales.csv", "column \"sales\"", "not positive"]);
    // without a population column each geo is scaled by its own mean: the geo is named
    let mut rows = geo_rows();
    rows.iter_mut().filter(|row| row[1] == "south").for_each(|row| row[2] = "0".into());
    let cfg = NATIONAL_CONFIG.replace("kpi = \"sales\"", "kpi = \"sales\"\ngeo = \"geo\"");
    let e = load_err(GEO_HEADER, &rows, &cfg);
    has_all(&e, &["sales.csv", "column \"sales\"", "of geo \"south\" is 0", "drop the geo"]);
}

#[test]
fn absurd_magnitudes_are_refused_naming_the_cell() {
    let e = national_err(|r| r[8][1] = "1e305".into());
    has_all(&e, &["sales.csv", "column \"sales\", row 9", "beyond ±2^53", "typo"]);
    let e = national_err(|r| r[2][2] = "-2e20".into());
    has_all(&e, &["sales.csv", "column \"tv_spend\", row 3", "beyond ±2^53"]);
    // 2^53 itself is accepted (the limit is inclusive), one step beyond is not
    let ok = national_rows();
    let mut rows = ok.clone();
    rows[4][1] = "9007199254740992".into();
    let case = write_case(NATIONAL_HEADER, &rows, NATIONAL_CONFIG);
    assert!(Dataset::load(&load_config(&case.config).unwrap()).is_ok());
    let e = national_err(|r| r[4][1] = "9007199254740994".into());
    has_all(&e, &["row 5", "beyond"]);
}

#[test]
fn a_row_id_given_as_the_geo_column_fails_without_a_rows_squared_grid() {
    // 30 rows, each its own "geo": 30 geos × 30 periods would be 900 cells for 30 rows
    let rows: Vec<Vec<String>> = national_rows()
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.push(format!("id{i}"));
            r
        })
        .collect();
    let cfg = NATIONAL_CONFIG.replace("kpi = \"sales\"", "kpi = \"sales\"\ngeo = \"id\"");
    let e = load_err(&format!("{NATIONAL_HEADER},id"), &rows, &cfg);
    has_all(&e, &["sales.csv", "column \"id\"", "has no row for 29 of the 30 periods"]);
}

#[test]
fn counts_up_to_usize_max_in_the_config_are_too_few_periods_not_an_overflow() {
    let cfg = NATIONAL_CONFIG.replace("max_lag = 2", "max_lag = 18446744073709551615");
    let e = load_err(NATIONAL_HEADER, &national_rows(), &cfg);
    has_all(&e, &["adstock.max_lag = 18446744073709551615", "at least 18446744073709551615"]);
    let cfg = NATIONAL_CONFIG.replace(
        "seasonality = []",
        "seasonality = []\ntrend = { kind = \"piecewise\", changepoints = 18446744073709551615 }",
    );
    let e = load_err(NATIONAL_HEADER, &national_rows(), &cfg);
    has_all(&e, &["[baseline] seasonality / trend", "at least 18446744073709551615"]);
}

#[test]
fn a_constant_control_is_refused_naming_it() {
    let e = national_err(|r| r.iter_mut().for_each(|row| row[4] = "0".into()));
    has_all(&e, &["sales.csv", "[[control]] #1 column = \"price\"", "is 0 in every fitted period", "intercept"]);
    let e = national_err(|r| r.iter_mut().for_each(|row| row[4] = "1.25".into()));
    has_all(&e, &["is 1.25 in every fitted period", "Remove the [[control]]"]);
}
