//! Diagnostics against R `posterior` on the ArviZ oracle: two CmdStan chains of the BUGS
//! "blocker" model, 48 parameters, 17 diagnostics each, compared to 1e-8 absolute — the tolerance
//! ArviZ itself asserts.

#![allow(clippy::neg_cmp_op_on_partial_ord)] // written so that NaN fails the check

mod common;

use std::collections::HashMap;
use std::path::Path;

use mmloop_inference::diagnostics::*;

/// Columns of a CmdStan output CSV ('#' comment lines skipped), by name.
fn read_cmdstan_csv(path: &Path) -> (Vec<String>, HashMap<String, Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let names: Vec<String> = lines.next().expect("header").split(',').map(str::to_string).collect();
    let mut columns: HashMap<String, Vec<f64>> = names.iter().map(|n| (n.clone(), Vec::new())).collect();
    for line in lines {
        for (name, field) in names.iter().zip(line.split(',')) {
            columns.get_mut(name).unwrap().push(field.parse().unwrap_or_else(|e| panic!("{field}: {e}")));
        }
    }
    (names, columns)
}

/// Rows of the reference table: parameter and its column -> value map.
type ReferenceRows = Vec<(String, HashMap<String, f64>)>;

/// The reference table: column names and rows (`NA` as NaN).
fn read_reference(path: &Path) -> (Vec<String>, ReferenceRows) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let unquote = |s: &str| s.trim().trim_matches('"').to_string();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(unquote).collect();
    let columns = header[1..].to_vec();
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<String> = line.split(',').map(unquote).collect();
            let values = columns
                .iter()
                .zip(&fields[1..])
                .map(|(c, v)| (c.clone(), if v == "NA" { f64::NAN } else { v.parse().unwrap() }))
                .collect();
            (fields[0].clone(), values)
        })
        .collect();
    (columns, rows)
}

#[test]
fn diagnostics_match_posterior_on_arviz_reference() {
    let Some(dir) = common::datasets_dir("diagnostics_match_posterior_on_arviz_reference") else { return };
    let (names1, chain1) = read_cmdstan_csv(&dir.join("arviz_stan_diagnostics_blocker.1.csv"));
    let (_, chain2) = read_cmdstan_csv(&dir.join("arviz_stan_diagnostics_blocker.2.csv"));
    let (columns, reference) = read_reference(&dir.join("arviz_stan_diagnostics_reference_posterior.csv"));

    type Diagnostic = fn(&[Vec<f64>]) -> f64;
    let implemented: Vec<(&str, Diagnostic)> = vec![
        ("rhat_rank", |x| rhat(x)),
        ("rhat_raw", |x| rhat_basic(x, false)),
        ("ess_bulk", |x| ess_bulk(x)),
        ("ess_tail", |x| ess_tail(x)),
        ("ess_mean", |x| ess_mean(x)),
        ("ess_sd", |x| ess_sd(x)),
        ("ess_median", |x| ess_median(x)),
        ("ess_raw", |x| ess_basic(x, false)),
        ("ess_quantile01", |x| ess_quantile(x, 0.01)),
        ("ess_quantile10", |x| ess_quantile(x, 0.1)),
        ("ess_quantile30", |x| ess_quantile(x, 0.3)),
        ("mcse_mean", |x| mcse_mean(x)),
        ("mcse_sd", |x| mcse_sd(x)),
        ("mcse_median", |x| mcse_median(x)),
        ("mcse_quantile01", |x| mcse_quantile(x, 0.01)),
        ("mcse_quantile10", |x| mcse_quantile(x, 0.1)),
        ("mcse_quantile30", |x| mcse_quantile(x, 0.3)),
    ];
    // Every reference column is implemented, and every parameter of the CSVs is in the reference.
    let mut implemented_names: Vec<&str> = implemented.iter().map(|(n, _)| *n).collect();
    implemented_names.sort();
    let mut reference_columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    reference_columns.sort();
    assert_eq!(implemented_names, reference_columns);
    let params: Vec<&String> = names1.iter().filter(|n| !n.ends_with("__")).collect();
    assert_eq!(params.len(), 48);
    assert_eq!(reference.len(), 48);

    let mut worst: HashMap<&str, f64> = HashMap::new();
    let mut failures = Vec::new();
    for (param, expected) in &reference {
        assert!(params.contains(&param), "{param} missing from the CSVs");
        let draws = vec![chain1[param].clone(), chain2[param].clone()];
        assert_eq!(draws[0].len(), 1000);
        for (column, f) in &implemented {
            let got = f(&draws);
            let want = expected[*column];
            let err = (got - want).abs();
            let w = worst.entry(column).or_insert(0.0);
            *w = w.max(err);
            if !(err < 1e-8) {
                failures.push(format!("{param} {column}: got {got:.12}, posterior {want:.12} (|diff| {err:.2e})"));
            }
        }
    }
    let mut worst: Vec<_> = worst.into_iter().collect();
    worst.sort_by(|a, b| a.0.cmp(b.0));
    for (column, err) in &worst {
        eprintln!("{column:>16}: max |diff| = {err:.2e}");
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
