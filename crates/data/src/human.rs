//! Numbers written for people: thousands separators, a precision that suits the size of the number,
//! and counted nouns ("1 geo", "3 geos"). Every command's terminal output goes through these, so
//! money and KPI look the same everywhere (`1,605,200`, not `1.6052e6`).
//!
//! ```
//! use mmloop_data::human::{amount, count, number, percent};
//! assert_eq!(amount(1_605_200.4), "1,605,200");
//! assert_eq!(amount(-9_840_000.0), "-9,840,000");
//! assert_eq!(number(3.12345), "3.12");
//! assert_eq!(number(0.000123), "0.000123");
//! assert_eq!(percent(0.1492), "14.9%");
//! assert_eq!(count(1, "geo"), "1 geo");
//! assert_eq!(count(10, "geo"), "10 geos");
//! ```

/// `x` rounded to `decimals` places with a comma between thousands: `grouped(1234567.891, 2)` is
/// `"1,234,567.89"`. Non-finite values print as Rust prints them (`NaN`, `inf`).
pub fn grouped(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s.as_str(), None),
    };
    let mut out = String::with_capacity(s.len() + s.len() / 3 + 1);
    // a value that rounds to zero prints without a sign ("-0" reads as a bug)
    if x < 0.0 && s.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        out.push('-');
    }
    let digits = int.as_bytes();
    for (i, d) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(*d as char);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// An amount of money or KPI: whole units with thousands separators when |x| ≥ 100, otherwise three
/// significant figures (`1,605,200`, `52.3`, `0.125`).
pub fn amount(x: f64) -> String {
    if x.is_finite() && x.abs() >= 100.0 { grouped(x, 0) } else { number(x) }
}

/// Money: as [`amount`] (whole units with separators from 100 up), but never finer than a cent:
/// below 100 two decimals, and an amount under half a cent prints as `0` — a value of information of
/// `3.68e-16` is the Monte Carlo estimate of nothing, not a figure (`money(0.000352)` is `"0"`).
pub fn money(x: f64) -> String {
    if !x.is_finite() {
        format!("{x}")
    } else if x.abs() >= 100.0 {
        grouped(x, 0)
    } else if x.abs() < 0.005 {
        "0".into()
    } else {
        grouped(x, 2)
    }
}

/// A ratio or coefficient (ROI, R², a z-score) at a precision that suits its size: two decimals
/// from 1 up, three significant figures below 1, thousands separators above 10,000, and scientific
/// notation only for magnitudes no table column could hold (below 1e-4 or beyond 1e15).
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a >= 1e15 {
        format!("{x:.3e}")
    } else if a >= 10_000.0 {
        grouped(x, 0)
    } else if a >= 1.0 {
        grouped(x, 2)
    } else if a >= 1e-4 {
        // three significant figures: 0.125, 0.0125, 0.00125
        let decimals = (2.0 - a.log10().floor()) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.2e}")
    }
}

/// A share as a percentage with one decimal: `percent(0.1492)` is `"14.9%"`.
pub fn percent(share: f64) -> String {
    if share.is_finite() { format!("{:.1}%", 100.0 * share) } else { format!("{share}") }
}

/// `n` and the noun, plural when `n != 1` by adding `s` (`count(1, "geo")`, `count(3, "channel")`).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_puts_commas_between_thousands_only() {
        assert_eq!(grouped(0.0, 0), "0");
        assert_eq!(grouped(999.0, 0), "999");
        assert_eq!(grouped(1000.0, 0), "1,000");
        assert_eq!(grouped(123_456.0, 0), "123,456");
        assert_eq!(grouped(1_234_567.891, 2), "1,234,567.89");
        assert_eq!(grouped(-1_000_000.0, 0), "-1,000,000");
        assert_eq!(grouped(-0.4, 0), "0");
        assert_eq!(grouped(f64::NAN, 0), "NaN");
    }

    #[test]
    fn grouped_round_trips_through_removing_the_commas() {
        for &x in &[1.0, 12.5, 12_345.678, 9_007_199_254_740_992.0, -42_000.25, 1e-3] {
            let s = grouped(x, 3).replace(',', "");
            let back: f64 = s.parse().unwrap();
            assert!((back - x).abs() <= 5e-4 * x.abs().max(1.0), "{x} -> {s}");
        }
    }

    #[test]
    fn number_keeps_three_significant_figures_below_one() {
        assert_eq!(number(0.125), "0.125");
        assert_eq!(number(0.0125), "0.0125");
        assert_eq!(number(0.999), "0.999");
        assert_eq!(number(1.0), "1.00");
        assert_eq!(number(-2.5), "-2.50");
        assert_eq!(number(12_345.6), "12,346");
        assert_eq!(number(3e-6), "3.00e-6");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn money_is_never_finer_than_a_cent() {
        assert_eq!(money(1_605_200.4), "1,605,200");
        assert_eq!(money(49.0), "49.00");
        assert_eq!(money(-6.126), "-6.13");
        assert_eq!(money(0.000352), "0");
        assert_eq!(money(-2.98e-8), "0");
        assert_eq!(money(3.68e-16), "0");
        assert_eq!(money(0.005), "0.01");
    }

    #[test]
    fn amount_drops_decimals_from_a_hundred_up() {
        assert_eq!(amount(1.6052e6), "1,605,200");
        assert_eq!(amount(99.5), "99.50");
        assert_eq!(amount(100.4), "100");
        assert_eq!(amount(0.5), "0.500");
    }

    #[test]
    fn count_pluralises_everything_but_one() {
        assert_eq!(count(0, "test"), "0 tests");
        assert_eq!(count(1, "geo"), "1 geo");
        assert_eq!(count(2, "geo"), "2 geos");
    }
}
