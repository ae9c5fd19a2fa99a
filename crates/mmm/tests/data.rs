//! Dataset::load on good input: layouts, time notations, file formats and derived arrays.

use mmloop_data::TimeKind;
use mmloop_mmm::Dataset;
use mmloop_mmm::config::parse_config;
use std::path::Path;

fn load(dir: &Path, csv_name: &str, csv: &str, config_tail: &str) -> Result<Dataset, String> {
    std::fs::write(dir.join(csv_name), csv).unwrap();
    let cfg = format!(
        "[data]\npath = \"{csv_name}\"\ntime = \"t\"\nkpi = \"y\"\n[media]\nadstock = {{ kind = \"geometric\", max_lag = 1 }}\n\
         [[channel]]\nname = \"a\"\n[baseline]\nseasonality = []\n{config_tail}"
    );
    let spec = parse_config(&cfg, dir).map_err(|e| e.to_string())?;
    Dataset::load(&spec).map_err(|e| e.to_string())
}

fn table(times: &[String], extra: impl Fn(usize) -> String) -> String {
    let mut s = String::from("t,y,a,extra\n");
    for (i, t) in times.iter().enumerate() {
        s.push_str(&format!("{t},{},{},{}\n", 10.0 + i as f64, (i % 3) as f64, extra(i)));
    }
    s
}

#[test]
fn numeric_time_columns_are_accepted_when_evenly_spaced() {
    let dir = tempfile::tempdir().unwrap();
    let times: Vec<String> = (0..8).map(|i| format!("{}", 2000.0 + 0.25 * i as f64)).collect();
    let d = load(dir.path(), "q.csv", &table(&times, |_| "0".into()), "").unwrap();
    assert_eq!(d.times.kind, TimeKind::Numeric);
    assert_eq!(d.times.values[1] - d.times.values[0], 0.25);
    let mut gappy = times.clone();
    gappy.remove(4);
    let e = load(dir.path(), "q.csv", &table(&gappy, |_| "0".into()), "").unwrap_err();
    assert!(e.contains("between 2000.75 (row 4) and 2001.25 (row 5)") && e.contains("the step there is 0.5"), "{e}");
}

#[test]
fn monthly_dates_with_uneven_day_counts_are_regular() {
    let dir = tempfile::tempdir().unwrap();
    let times: Vec<String> = (0..14).map(|m| format!("{}-{:02}-01", 2021 + m / 12, m % 12 + 1)).collect();
    let d = load(dir.path(), "m.csv", &table(&times, |_| "0".into()), "").unwrap();
    assert_eq!(d.n_times(), 14);
    // a missing month is a gap
    let mut gappy = times.clone();
    gappy.remove(5);
    let e = load(dir.path(), "m.csv", &table(&gappy, |_| "0".into()), "").unwrap_err();
    assert!(
        e.contains("between 2021-05-01 (row 5) and 2021-07-01 (row 6)") && e.contains("1 month (28-31 days)"),
        "{e}"
    );
}

#[test]
fn monthly_dates_reject_the_weekly_yearly_default() {
    let dir = tempfile::tempdir().unwrap();
    let times: Vec<String> = (0..36).map(|m| format!("{}-{:02}-01", 2021 + m / 12, m % 12 + 1)).collect();
    std::fs::write(dir.path().join("m.csv"), table(&times, |_| "0".into())).unwrap();
    let cfg = "[data]\npath = \"m.csv\"\ntime = \"t\"\nkpi = \"y\"\n[media]\nadstock = { kind = \"geometric\", max_lag = 1 }\n\
               [[channel]]\nname = \"a\"\n";
    let spec = parse_config(cfg, dir.path()).unwrap();
    let e = Dataset::load(&spec).unwrap_err().to_string();
    assert!(e.contains("52.18") && e.contains("period = 12.00"), "{e}");
}

#[test]
fn parquet_files_load_like_csv() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let times: Vec<String> = (0..6).map(|w| mmloop_data::format_date(18631.0 + 7.0 * w as f64)).collect();
    let csv = table(&times, |i| format!("{}", i * 2));
    let from_csv = load(dir.path(), "w.csv", &csv, "[[control]]\ncolumn = \"extra\"\n").unwrap();
    let mut df = df!(
        "t" => times.clone(),
        "y" => (0..6).map(|i| 10.0 + i as f64).collect::<Vec<_>>(),
        "a" => (0..6).map(|i| (i % 3) as f64).collect::<Vec<_>>(),
        "extra" => (0..6).map(|i| (i * 2) as i64).collect::<Vec<_>>(),
    )
    .unwrap();
    let f = std::fs::File::create(dir.path().join("w.parquet")).unwrap();
    ParquetWriter::new(f).finish(&mut df).unwrap();
    let cfg = "[data]\npath = \"w.parquet\"\ntime = \"t\"\nkpi = \"y\"\n[media]\nadstock = { kind = \"geometric\", max_lag = 1 }\n\
               [[channel]]\nname = \"a\"\n[[control]]\ncolumn = \"extra\"\n[baseline]\nseasonality = []\n";
    let from_parquet = Dataset::load(&parse_config(cfg, dir.path()).unwrap()).unwrap();
    assert_eq!(from_parquet.kpi, from_csv.kpi);
    assert_eq!(from_parquet.spend, from_csv.spend);
    assert_eq!(from_parquet.control_values, from_csv.control_values);
    assert_eq!(from_parquet.times, from_csv.times);
}

#[test]
fn exposure_drives_media_and_revenue_per_kpi_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let times: Vec<String> = (0..6).map(|w| mmloop_data::format_date(18631.0 + 7.0 * w as f64)).collect();
    let csv = table(&times, |i| format!("{}", 1000 * (i + 1)));
    let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
    lines[0].push_str(",rpk");
    for (i, l) in lines.iter_mut().enumerate().skip(1) {
        l.push_str(&format!(",{}", 0.5 + i as f64 / 10.0));
    }
    std::fs::write(dir.path().join("e.csv"), lines.join("\n") + "\n").unwrap();
    let cfg = "[data]\npath = \"e.csv\"\ntime = \"t\"\nkpi = \"y\"\nrevenue_per_kpi = \"rpk\"\n\
               [media]\nadstock = { kind = \"geometric\", max_lag = 1 }\n\
               [[channel]]\nname = \"a\"\nexposure = \"extra\"\n[baseline]\nseasonality = []\n";
    let d = Dataset::load(&parse_config(cfg, dir.path()).unwrap()).unwrap();
    assert_eq!(d.spend[[0, 1, 0]], 1.0);
    assert_eq!(d.media[[0, 1, 0]], 2000.0);
    assert_eq!(d.revenue_per_kpi.unwrap()[[0, 2]], 0.8);
    assert_eq!(d.population, None);
}

#[test]
fn geo_columns_with_numeric_ids_become_text_geos() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("t,region,y,a\n");
    for w in 0..6 {
        for g in [13, 7] {
            csv.push_str(&format!("{},{g},{},{}\n", mmloop_data::format_date(18631.0 + 7.0 * w as f64), w + g, w % 2));
        }
    }
    std::fs::write(dir.path().join("g.csv"), csv).unwrap();
    let cfg = "[data]\npath = \"g.csv\"\ntime = \"t\"\nkpi = \"y\"\ngeo = \"region\"\n\
               [media]\nadstock = { kind = \"geometric\", max_lag = 1 }\n[[channel]]\nname = \"a\"\n[baseline]\nseasonality = []\n";
    let d = Dataset::load(&parse_config(cfg, dir.path()).unwrap()).unwrap();
    assert_eq!(d.geos, ["13", "7"]);
    assert_eq!(d.kpi[[1, 2]], 9.0, "geo 7, week 2");
}
