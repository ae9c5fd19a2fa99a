//! Loading and validation: bad panels are errors that name what and where.

use mmloop_geolift::*;
use std::io::Write;

fn csv(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("panel.csv");
    std::fs::File::create(&p).unwrap().write_all(text.as_bytes()).unwrap();
    (dir, p)
}

fn cols() -> Columns {
    Columns { time: "t".into(), geo: "g".into(), kpi: "y".into(), spend: None, treatment: None }
}

const GOOD: &str = "t,g,y\n1,a,1\n1,b,2\n1,c,3\n2,a,2\n2,b,3\n2,c,4\n3,a,5\n3,b,4\n3,c,5\n4,a,6\n4,b,5\n4,c,7\n";

#[test]
fn balanced_numeric_panel_loads_and_end_drops_later_periods() {
    let (_d, p) = csv(GOOD);
    let panel = Panel::read(&p, &cols()).unwrap();
    assert_eq!(panel.geos, vec!["a", "b", "c"]);
    assert_eq!(panel.times, vec![1.0, 2.0, 3.0, 4.0]);
    let d = panel.design(&Design::new(&["B"], "3", Some("3"))).unwrap();
    assert_eq!((d.t0, d.n_periods(), d.treated.clone(), d.controls.clone()), (2, 3, vec![1], vec![0, 2]));
}

#[test]
fn rows_in_any_order_give_the_same_panel() {
    let (_d, p) = csv("t,g,y\n2,b,3\n1,a,1\n2,a,2\n1,b,2\n");
    let panel = Panel::read(&p, &cols()).unwrap();
    // geos keep their order of first appearance, times are sorted
    assert_eq!(panel.geos, vec!["b", "a"]);
    assert_eq!(panel.kpi, ndarray::array![[2.0, 3.0], [1.0, 2.0]]);
}

#[test]
fn duplicate_row_is_an_error_naming_geo_time_and_rows() {
    let (_d, p) = csv("t,g,y\n1,a,1\n1,b,2\n2,a,2\n2,b,3\n2,a,9\n");
    let e = Panel::read(&p, &cols()).unwrap_err().to_string();
    assert!(e.contains("\"a\"") && e.contains("time 2") && e.contains("rows 3 and 5"), "{e}");
}

#[test]
fn missing_row_is_an_error_naming_geo_and_time() {
    let (_d, p) = csv("t,g,y\n1,a,1\n1,b,2\n2,a,2\n");
    let e = Panel::read(&p, &cols()).unwrap_err().to_string();
    assert!(e.contains("unbalanced") && e.contains("\"b\"") && e.contains("time 2"), "{e}");
}

#[test]
fn non_finite_kpi_is_an_error_naming_the_row() {
    let (_d, p) = csv("t,g,y\n1,a,1\n1,b,NaN\n2,a,2\n2,b,3\n");
    let e = Panel::read(&p, &cols()).unwrap_err().to_string();
    assert!(e.contains("row 2") && e.contains("\"y\""), "{e}");
    let (_d, p) = csv("t,g,y\n1,a,1\n1,b,\n2,a,2\n2,b,3\n");
    let e = Panel::read(&p, &cols()).unwrap_err().to_string();
    assert!(e.contains("row 2") && e.contains("empty"), "{e}");
}

#[test]
fn unknown_treated_geo_suggests_the_closest_name() {
    let (_d, p) = csv(GOOD);
    let panel = Panel::read(&p, &cols()).unwrap();
    let e = panel.design(&Design::new(&["aa"], "3", None)).unwrap_err().to_string();
    assert!(e.contains("\"aa\"") && e.contains("did you mean \"a\""), "{e}");
}

#[test]
fn too_short_pre_period_is_an_error_per_estimator() {
    let (_d, p) = csv(GOOD);
    let panel = Panel::read(&p, &cols()).unwrap();
    let e = panel.design(&Design::new(&["a"], "1", None)).unwrap_err().to_string();
    assert!(e.contains("pre-period has 0 periods"), "{e}");
    let d = panel.design(&Design::new(&["a"], "2", None)).unwrap();
    let e = SyntheticControl::default().estimate(&d).unwrap_err().to_string();
    assert!(e.contains("sc") && e.contains("1 periods") && e.contains("at least 2"), "{e}");
    let e = Tbr::default().estimate(&d).unwrap_err().to_string();
    assert!(e.contains("tbr"), "{e}");
}

#[test]
fn start_after_the_data_and_end_before_start_are_errors() {
    let (_d, p) = csv(GOOD);
    let panel = Panel::read(&p, &cols()).unwrap();
    let e = panel.design(&Design::new(&["a"], "9", None)).unwrap_err().to_string();
    assert!(e.contains("--start") && e.contains("after the last period"), "{e}");
    let e = panel.design(&Design::new(&["a"], "3", Some("2"))).unwrap_err().to_string();
    assert!(e.contains("--end"), "{e}");
    let e = panel.design(&Design::new(&["a"], "2021-01-01", None)).unwrap_err().to_string();
    assert!(e.contains("not a number"), "{e}");
}

#[test]
fn dates_and_treatment_column_define_the_design() {
    let (_d, p) = csv(
        "date,geo,y,D\n2021-01-01,a,1,0\n2021-01-01,b,2,0\n2021-01-02,a,2,0\n2021-01-02,b,3,0\n2021-01-03,a,2,0\n2021-01-03,b,5,1\n",
    );
    let c =
        Columns { time: "date".into(), geo: "geo".into(), kpi: "y".into(), spend: None, treatment: Some("D".into()) };
    let panel = Panel::read(&p, &c).unwrap();
    let design = panel.design_from_treatment().unwrap();
    assert_eq!((design.treated.clone(), design.start.clone()), (vec!["b".to_string()], "2021-01-03".to_string()));
    let d = panel.design(&design).unwrap();
    assert_eq!(d.t0, 2);
    // a non-0/1 treatment value is an error naming geo and time
    let (_d2, p2) = csv("date,geo,y,D\n2021-01-01,a,1,0\n2021-01-01,b,2,2\n");
    let e = Panel::read(&p2, &c).unwrap_err().to_string();
    assert!(e.contains("\"b\"") && e.contains("2021-01-01") && e.contains("0 or 1"), "{e}");
}

#[test]
fn every_geo_treated_is_an_error() {
    let (_d, p) = csv(GOOD);
    let panel = Panel::read(&p, &cols()).unwrap();
    let e = panel.design(&Design::new(&["a", "b", "c"], "3", None)).unwrap_err().to_string();
    assert!(e.contains("no control geos"), "{e}");
}

#[test]
fn staggered_treatment_column_is_an_error_naming_both_geos() {
    let (_d, p) = csv("t,g,y,D\n1,a,1,0\n1,b,2,0\n1,c,2,0\n2,a,2,1\n2,b,3,0\n2,c,3,0\n3,a,2,1\n3,b,5,1\n3,c,5,0\n");
    let c = Columns { time: "t".into(), geo: "g".into(), kpi: "y".into(), spend: None, treatment: Some("D".into()) };
    let panel = Panel::read(&p, &c).unwrap();
    let e = panel.design_from_treatment().unwrap_err().to_string();
    assert!(
        e.contains("staggered") && e.contains("\"a\" is treated from 2 to 3") && e.contains("\"b\" from 3 to 3"),
        "{e}"
    );
}

#[test]
fn periods_cuts_every_matrix_and_label_alike_and_refuses_an_empty_or_overlong_range() {
    let kpi = ndarray::Array2::from_shape_fn((3, 6), |(g, t)| (10 * g + t) as f64);
    let mut p = Panel::from_matrix(vec!["a".into(), "b".into(), "c".into()], kpi.clone()).unwrap();
    p.spend = Some(kpi.mapv(|v| 2.0 * v));
    let w = p.periods(2, 5).unwrap();
    assert_eq!(w.time_labels, ["2", "3", "4"]);
    assert_eq!(w.times, [2.0, 3.0, 4.0]);
    assert_eq!(w.kpi, kpi.slice(ndarray::s![.., 2..5]));
    assert_eq!(w.spend.unwrap(), kpi.slice(ndarray::s![.., 2..5]).mapv(|v| 2.0 * v));
    assert_eq!(w.geos, p.geos);
    assert!(p.periods(3, 3).is_err() && p.periods(4, 7).is_err());
}
