//! Writes the bundled demo datasets and their truth into `data/`:
//! `cargo run -p mmloop-mmm --example make_demo_data`. The output is deterministic (fixed seeds,
//! self-contained RNG); `tests/data_demo.rs` checks the committed files match it byte for byte.

use mmloop_mmm::simulate;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    std::fs::create_dir_all(&dir)?;
    for (name, demo) in [("demo_national", simulate::national()), ("demo_geo", simulate::geo())] {
        mmloop_data::write_atomic(&dir.join(format!("{name}.csv")), demo.csv.as_bytes())?;
        mmloop_data::write_atomic(&dir.join(format!("{name}_truth.json")), demo.truth_json().as_bytes())?;
        println!("wrote data/{name}.csv ({} bytes) and data/{name}_truth.json", demo.csv.len());
        for c in &demo.truth.channels {
            println!("  {:<7} ROI {:.2}  contribution share {:.1}%", c.name, c.roi, 100.0 * c.contribution_share);
        }
    }
    Ok(())
}
