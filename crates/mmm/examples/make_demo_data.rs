//! Writes the bundled demo datasets and their truth into `data/`:
//! `cargo run -p mmloop-mmm --example make_demo_data`. The output is deterministic (fixed seeds,
//! self-contained RNG); `tests/data_demo.rs` checks the committed files match it byte for byte.

use mmloop_mmm::simulate;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    std::fs::create_dir_all(&dir)?;
    let (geo_test, test_truth) = simulate::geo_test();
    for (name, demo) in [("demo_national", simulate::national()), ("demo_geo", simulate::geo())] {
        mmloop_data::write_atomic(&dir.join(format!("{name}.csv")), demo.csv.as_bytes())?;
        mmloop_data::write_atomic(&dir.join(format!("{name}_truth.json")), demo.truth_json().as_bytes())?;
        println!("wrote data/{name}.csv ({} bytes) and data/{name}_truth.json", demo.csv.len());
        for c in &demo.truth.channels {
            println!("  {:<7} ROI {:.2}  contribution share {:.1}%", c.name, c.roi, 100.0 * c.contribution_share);
        }
    }
    // the geo world with a heavy-up test in it: the panel `mmloop lift` reads and the calibrated fit's data
    mmloop_data::write_atomic(&dir.join("demo_geo_test.csv"), geo_test.csv.as_bytes())?;
    let json = serde_json::to_string_pretty(&test_truth)? + "\n";
    mmloop_data::write_atomic(&dir.join("demo_geo_test_truth.json"), json.as_bytes())?;
    println!(
        "wrote data/demo_geo_test.csv ({} bytes) and data/demo_geo_test_truth.json\n  {} +{:.0} in {} from {} to {}: \
         incremental {} {:.0} in the window, {:.0} with carry-over",
        geo_test.csv.len(),
        test_truth.channel,
        test_truth.spend_change,
        test_truth.geos.join(","),
        test_truth.start,
        test_truth.end,
        geo_test.truth.kpi_column,
        test_truth.incremental_kpi_in_window,
        test_truth.incremental_kpi_with_carryover
    );
    Ok(())
}
