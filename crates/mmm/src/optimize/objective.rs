//! Risk-aware objectives over the posterior draws of the total outcome O_d = Σ_c R_{c,d}(s_c).
//!
//! Each objective Φ(O_1..O_D) is handled through its gradient ω_d = ∂Φ/∂O_d (a weighting of the
//! draws), so the optimiser treats all of them alike: ∂Φ/∂s_c = Σ_d ω_d R'_{c,d}(s_c).
//! CVaR and the quantile are not smooth; they are optimised through smoothed versions whose
//! smoothing τ is driven to zero, and always reported at their exact values.

use mmloop_data::human::percent;

/// What to maximise over the posterior of the total outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Risk {
    /// The posterior mean (expected outcome).
    Mean,
    /// Mean − k·sd: penalises uncertain allocations.
    MeanMinusSd { k: f64 },
    /// The lower q-quantile (value at risk at level q). Not concave in general: a local optimum.
    Quantile { q: f64 },
    /// Conditional value at risk: the mean of the worst α fraction of draws
    /// (Rockafellar & Uryasev 2000). Concave when the responses are.
    Cvar { alpha: f64 },
}

/// The objective as `--objective` spells it, then what it means in words:
/// `cvar:0.1 (the mean outcome of the worst 10% of draws)`.
impl std::fmt::Display for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Risk::Mean => write!(f, "mean (the expected outcome)"),
            Risk::MeanMinusSd { k } => write!(f, "mean-sd:{k} (the expected outcome less {k} posterior sd)"),
            Risk::Quantile { q } => write!(f, "quantile:{q} (the outcome exceeded in {} of draws)", percent(1.0 - q)),
            Risk::Cvar { alpha } => {
                write!(f, "cvar:{alpha} (the mean outcome of the worst {} of draws)", percent(alpha))
            }
        }
    }
}

impl Risk {
    /// Parses `mean`, `mean-sd:K`, `quantile:Q` / `var:Q`, `cvar:A`.
    pub fn parse(s: &str) -> Result<Risk, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (s.trim(), None),
        };
        let num = |what: &str| -> Result<f64, String> {
            let a = arg.ok_or_else(|| format!("objective {name:?} needs a {what}, e.g. {name}:0.1"))?;
            a.parse::<f64>().map_err(|_| format!("objective {name:?}: {a:?} is not a number"))
        };
        let unit = |v: f64, what: &str| {
            if v > 0.0 && v < 1.0 {
                Ok(v)
            } else {
                Err(format!("objective {name:?}: the {what} must be in (0, 1), got {v}"))
            }
        };
        match name.to_ascii_lowercase().as_str() {
            "mean" if arg.is_none() => Ok(Risk::Mean),
            "mean-sd" | "mean_sd" => {
                let k = num("multiple of the sd")?;
                if k.is_finite() && k >= 0.0 {
                    Ok(Risk::MeanMinusSd { k })
                } else {
                    Err(format!("mean-sd: k must be ≥ 0, got {k}"))
                }
            }
            "quantile" | "var" => Ok(Risk::Quantile { q: unit(num("level")?, "level")? }),
            "cvar" => Ok(Risk::Cvar { alpha: unit(num("tail fraction")?, "tail fraction")? }),
            _ => Err(format!("unknown objective {s:?}; use mean, mean-sd:K, quantile:Q or cvar:A")),
        }
    }

    /// Whether the objective is smooth (needs no smoothing schedule).
    pub(crate) fn is_smooth(&self) -> bool {
        matches!(self, Risk::Mean | Risk::MeanMinusSd { .. })
    }

    /// The exact objective value for outcomes `o` with draw weights `w` (Σw = 1).
    pub fn value(&self, o: &[f64], w: &[f64]) -> f64 {
        match *self {
            Risk::Mean => dot(o, w),
            Risk::MeanMinusSd { k } => {
                let m = dot(o, w);
                m - k * weighted_var(o, w, m).sqrt()
            }
            Risk::Quantile { q } => weighted_quantile(o, w, q),
            Risk::Cvar { alpha } => lower_tail_mean(o, w, alpha),
        }
    }

    /// The (smoothed, for τ > 0 on non-smooth objectives) value and its gradient ω = ∂Φ/∂O.
    pub(crate) fn value_and_weights(&self, o: &[f64], w: &[f64], tau: f64, omega: &mut [f64]) -> f64 {
        match *self {
            Risk::Mean => {
                omega.copy_from_slice(w);
                dot(o, w)
            }
            Risk::MeanMinusSd { k } => {
                let m = dot(o, w);
                let sd = weighted_var(o, w, m).sqrt();
                for ((om, &od), &wd) in omega.iter_mut().zip(o).zip(w) {
                    *om = if sd > 0.0 { wd * (1.0 - k * (od - m) / sd) } else { wd };
                }
                m - k * sd
            }
            Risk::Cvar { alpha } => {
                // Φ_τ = max_η η − (1/α) Σ w_d τ·softplus((η − O_d)/τ); at the optimum
                // Σ w_d σ((η − O_d)/τ) = α, and by the envelope theorem ω_d = w_d σ(·)/α.
                let eta = solve_sigmoid_level(o, w, tau, alpha);
                let mut pen = 0.0;
                for ((om, &od), &wd) in omega.iter_mut().zip(o).zip(w) {
                    let z = (eta - od) / tau;
                    pen += wd * tau * softplus(z);
                    *om = wd * sigmoid(z) / alpha;
                }
                eta - pen / alpha
            }
            Risk::Quantile { q } => {
                // η_τ solves Σ w_d σ((η − O_d)/τ) = q; implicit differentiation gives
                // ∂η/∂O_d = w_d σ'_d / Σ w σ'.
                let eta = solve_sigmoid_level(o, w, tau, q);
                let mut tot = 0.0;
                for ((om, &od), &wd) in omega.iter_mut().zip(o).zip(w) {
                    let s = sigmoid((eta - od) / tau);
                    *om = wd * s * (1.0 - s);
                    tot += *om;
                }
                if tot > 0.0 {
                    omega.iter_mut().for_each(|x| *x /= tot);
                }
                eta
            }
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn weighted_var(o: &[f64], w: &[f64], m: f64) -> f64 {
    o.iter().zip(w).map(|(x, wd)| wd * (x - m) * (x - m)).sum::<f64>().max(0.0)
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn softplus(z: f64) -> f64 {
    if z > 30.0 { z } else { z.exp().ln_1p() }
}

/// η with Σ w_d σ((η − O_d)/τ) = level, by bisection (the left side increases in η).
fn solve_sigmoid_level(o: &[f64], w: &[f64], tau: f64, level: f64) -> f64 {
    let (mut lo, mut hi) = o.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let pad = 50.0 * tau + 1e-12 * (lo.abs() + hi.abs());
    lo -= pad;
    hi += pad;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        let f: f64 = o.iter().zip(w).map(|(&od, &wd)| wd * sigmoid((mid - od) / tau)).sum();
        if f < level {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-15 * (lo.abs() + hi.abs()) {
            break;
        }
    }
    0.5 * (lo + hi)
}

fn sorted_by_outcome(o: &[f64], w: &[f64]) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = o.iter().copied().zip(w.iter().copied()).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The weighted lower q-quantile: the smallest O with cumulative weight ≥ q.
pub fn weighted_quantile(o: &[f64], w: &[f64], q: f64) -> f64 {
    let v = sorted_by_outcome(o, w);
    let mut acc = 0.0;
    for &(x, wd) in &v {
        acc += wd;
        if acc >= q - 1e-12 {
            return x;
        }
    }
    v.last().map(|p| p.0).unwrap_or(f64::NAN)
}

/// The mean of the lower α tail of the weighted distribution (the last draw counted fractionally).
pub fn lower_tail_mean(o: &[f64], w: &[f64], alpha: f64) -> f64 {
    let v = sorted_by_outcome(o, w);
    let (mut acc, mut sum) = (0.0, 0.0);
    for &(x, wd) in &v {
        let take = wd.min(alpha - acc);
        if take <= 0.0 {
            break;
        }
        sum += take * x;
        acc += take;
    }
    sum / alpha
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objectives_and_rejects_nonsense() {
        assert_eq!(Risk::parse("mean").unwrap(), Risk::Mean);
        assert_eq!(Risk::parse("cvar:0.1").unwrap(), Risk::Cvar { alpha: 0.1 });
        assert_eq!(Risk::parse("mean-sd:1.5").unwrap(), Risk::MeanMinusSd { k: 1.5 });
        assert_eq!(Risk::parse("var:0.05").unwrap(), Risk::Quantile { q: 0.05 });
        assert!(Risk::parse("cvar").unwrap_err().contains("needs"));
        assert!(Risk::parse("cvar:1.5").unwrap_err().contains("(0, 1)"));
        assert!(Risk::parse("median").unwrap_err().contains("unknown objective"));
    }

    #[test]
    fn exact_tail_measures_on_a_small_sample() {
        let o = [5.0, 1.0, 3.0, 2.0, 4.0];
        let w = [0.2; 5];
        assert!((lower_tail_mean(&o, &w, 0.4) - 1.5).abs() < 1e-12);
        assert!((lower_tail_mean(&o, &w, 0.3) - (0.2 * 1.0 + 0.1 * 2.0) / 0.3).abs() < 1e-12);
        assert_eq!(weighted_quantile(&o, &w, 0.4), 2.0);
        assert_eq!(Risk::Mean.value(&o, &w), 3.0);
    }

    #[test]
    fn smoothed_cvar_converges_to_exact_cvar_and_weights_sum_to_one() {
        let o: Vec<f64> = (0..200).map(|i| ((i * 37 % 200) as f64).sqrt()).collect();
        let w = vec![1.0 / 200.0; 200];
        let exact = lower_tail_mean(&o, &w, 0.1);
        let mut om = vec![0.0; 200];
        let r = Risk::Cvar { alpha: 0.1 };
        let v = r.value_and_weights(&o, &w, 1e-6, &mut om);
        // R-U smoothing error is at most τ·ln2/α
        assert!((v - exact).abs() < 1e-6 * 2f64.ln() / 0.1 + 1e-12, "{v} vs {exact}");
        assert!((om.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn weights_are_the_gradient_of_the_smoothed_objective() {
        let o: Vec<f64> = (0..50).map(|i| (i as f64 * 0.37).sin() * 3.0 + i as f64 * 0.1).collect();
        let w = vec![1.0 / 50.0; 50];
        for r in [Risk::Mean, Risk::MeanMinusSd { k: 1.3 }, Risk::Cvar { alpha: 0.2 }, Risk::Quantile { q: 0.25 }] {
            let tau = 0.3;
            let mut om = vec![0.0; 50];
            r.value_and_weights(&o, &w, tau, &mut om);
            for d in [0, 7, 31] {
                let h = 1e-6;
                let mut op = o.clone();
                op[d] += h;
                let mut om2 = vec![0.0; 50];
                let vp = r.value_and_weights(&op, &w, tau, &mut om2);
                op[d] -= 2.0 * h;
                let vm = r.value_and_weights(&op, &w, tau, &mut om2);
                let fd = (vp - vm) / (2.0 * h);
                assert!((fd - om[d]).abs() < 1e-6, "{r:?} d={d}: {fd} vs {}", om[d]);
            }
        }
    }
}
