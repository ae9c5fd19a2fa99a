//! Fixtures shared by the integration tests of `mmloop-mmm`.

use mmloop_data::{LiftTestRecord, SpendDelta};

/// The two lift tests the gradient and Hessian tests calibrate on, over weeks of the simulated
/// panel: channel 0 raised by 400 in weeks 10–13 (in `first_geo` alone, or in every geo when
/// `None`), read as +500 ± 150; and channels 0 and 1 cut together in `geos[0]` in weeks 20–21 along a
/// spend path, read as −300 ± 100.
pub fn two_lift_tests(geos: &[String], first_geo: Option<&str>) -> Vec<LiftTestRecord> {
    vec![
        LiftTestRecord {
            channels: vec!["ch0".into()],
            geos: first_geo.map(|g| vec![g.to_string()]).unwrap_or_default(),
            start: "10".into(),
            end: "13".into(),
            spend_change: 400.0,
            spend_path: None,
            incremental_kpi: 500.0,
            standard_error: 150.0,
            estimator: String::new(),
            source: String::new(),
        },
        LiftTestRecord {
            channels: vec!["ch0".into(), "ch1".into()],
            geos: vec![],
            start: "20".into(),
            end: "21".into(),
            spend_change: 0.0,
            spend_path: Some(vec![
                SpendDelta { time: "20".into(), geo: geos[0].clone(), delta: -150.0 },
                SpendDelta { time: "21".into(), geo: geos[0].clone(), delta: -90.0 },
            ]),
            incremental_kpi: -300.0,
            standard_error: 100.0,
            estimator: String::new(),
            source: String::new(),
        },
    ]
}
