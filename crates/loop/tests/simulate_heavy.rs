//! The heavier simulation that reports figures: 20 worlds × 5 cycles × 6 arms, 5 channels, Laplace.
//! Ignored in the default suite (hours of CPU on a loaded 2-core machine); it prints the
//! plain-language summary and checks only the machinery (the oracle's floor, `none` never tests).

use mmloop_loop::simulate::{self, Arm, SimSettings};

#[test]
#[ignore = "heavy (20 worlds x 5 cycles x 6 arms with Laplace fits); run with: cargo test --release -p mmloop-loop --test simulate_heavy -- --ignored --nocapture"]
fn twenty_worlds_five_cycles_report() {
    let mut s = SimSettings { worlds: 20, cycles: 5, ..Default::default() };
    s.distribution.channels = (5, 5);
    let r = simulate::simulate(&s, &|| eprint!(".")).unwrap();
    let summary = simulate::summarise(&r);
    println!("\n{}", simulate::terminal_summary(&summary));
    for row in &r.rows {
        match row.arm {
            Arm::Oracle => assert!(row.misallocation_cost.abs() <= 1e-9 * row.oracle_outcome),
            Arm::None => assert_eq!(row.tests, 0),
            _ => {}
        }
    }
}
