//! Set-up shared by the command-line tests.

use mmloop_mmm::model::simulate::{SimOptions, simulate};
use std::fmt::Write as _;
use std::path::Path;

/// Writes a simulated national dataset of `n_times` weeks (two channels with geometric adstock of
/// `max_lag`, one promo control) to `dir/sim.csv` (columns week, kpi, spend_ch0, spend_ch1, promo,
/// population) and its config to `dir/sim.toml`, with `extra` (further tables, e.g. `[fit]`)
/// appended.
#[allow(dead_code)] // not every test binary that includes this module writes a simulation
pub fn write_sim(dir: &Path, n_times: usize, max_lag: usize, extra: &str) {
    let sim = simulate(&SimOptions { n_times, ..Default::default() }).unwrap();
    let d = &sim.data;
    let mut s = String::from("week,kpi,spend_ch0,spend_ch1,promo,population\n");
    for t in 0..d.n_times() {
        let _ = writeln!(
            s,
            "{t},{},{},{},{},{}",
            d.kpi[[0, t]],
            d.spend[[0, t, 0]],
            d.spend[[0, t, 1]],
            d.control_values[[0, t, 0]],
            d.population.as_ref().unwrap()[0]
        );
    }
    std::fs::write(dir.join("sim.csv"), s).unwrap();
    let config = format!(
        r#"
[data]
path = "sim.csv"
time = "week"
kpi = "kpi"
[media]
adstock = {{ kind = "geometric", max_lag = {max_lag}, normalize = true }}
[[channel]]
name = "ch0"
spend = "spend_ch0"
[[channel]]
name = "ch1"
spend = "spend_ch1"
[[control]]
column = "promo"
{extra}"#
    );
    std::fs::write(dir.join("sim.toml"), config).unwrap();
}

/// Copies the directory `from` to `to`, recursively (a fresh copy of bundled data or an output).
#[allow(dead_code)] // not every test binary that includes this module copies a directory
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
