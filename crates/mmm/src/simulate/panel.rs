//! Simulated geo panels of any size — G geos × T weeks × C channels — with known truth, for scaling
//! benchmarks and recovery tests. The data are a long-format CSV and the config a user would write
//! for it with the defaults (geometric adstock with `max_lag = 8`, normalised; Hill saturation;
//! partial pooling; default priors, baseline and sampler), so a fit of a panel is the fit a user
//! gets. Deterministic from the seed ([`SplitMix64`], fixed forever).
//!
//! # The formula (the geo demo's, [`super`], per capita)
//! ```text
//! y(g,t) = p_g · [ a_g + δ·t/(T−1) + Σ_k (s_k sin(2πkt/P) + c_k cos(2πkt/P)) + γ·(price(g,t) − 1)
//!                  + Σ_c β(g,c)·hill(adstock_c(x(g,·,c)))(t; ec_c, n_c) + ε(g,t) ],   ε ~ N(0, σ)
//! β(g,c) = β_c·exp(τ_c·z(g,c)),  z ~ N(0, 1)
//! ```
//! with x the per-capita spend, the adstock and Hill of [`geometric_adstock`] and [`hill`], and β_c
//! set so that channel c's ROI over all weeks, Σ_{g,t} p_g·β(g,c)·hill(…) / Σ_{g,t} spend(g,t,c),
//! equals its drawn true ROI.
//!
//! # The draws
//! Channel c is flighted (c mod 3 = 0: a national schedule of 4–8 weeks on, 2–6 off, weighted per
//! geo), always on (1: follows the season with AR(1) noise per geo) or drifting (2: a bounded random
//! walk per geo), at a per-capita level ~ 0.4/C·U(0.5, 1.5) so media drive about a fifth of the KPI
//! whatever C is. Per channel α ~ U(0.1, 0.7), ec = U(0.6, 1.4) × the mean non-zero per-capita
//! spend, n ~ U(0.8, 2), ROI ~ U(0.5, 3), τ ~ U(0.1, 0.3). Populations are log-uniform on
//! [2·10⁵, 3·10⁶]; a_g = 2·exp(0.1·N(0, 1)); δ = 0.15; γ = −1.2; σ = 0.06.

use super::{FIRST_WEEK, PERIOD, SplitMix64, geometric_adstock, hill, mean_nonzero, price_index, round_to, seasonal};
use crate::Dataset;
use crate::config::{ConfigError, parse_config};
use crate::data::MmmDataError;
use crate::spec::ModelSpec;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Adstock window of the panels (the config's `max_lag`).
pub const PANEL_MAX_LAG: usize = 8;

/// The size and seed of a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanelOptions {
    pub geos: usize,
    pub weeks: usize,
    pub channels: usize,
    pub seed: u64,
}

/// The true parameters of one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelChannelTruth {
    pub name: String,
    pub adstock_alpha: f64,
    /// Hill half-saturation, per-capita spend units.
    pub hill_ec: f64,
    pub hill_slope: f64,
    /// β_c, the geo-average per-capita KPI at full saturation.
    pub beta: f64,
    /// τ_c, the geo spread of log β.
    pub beta_geo_sd: f64,
    /// True ROI over all weeks (KPI units per unit of spend).
    pub roi: f64,
    pub total_spend: f64,
}

/// A simulated panel: its CSV, its config (the data file named `panel.csv`) and the truth.
#[derive(Debug, Clone)]
pub struct Panel {
    pub options: PanelOptions,
    pub csv: String,
    pub config: String,
    pub channels: Vec<PanelChannelTruth>,
    /// Share of the total KPI due to media.
    pub media_share: f64,
}

/// Why a panel could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum PanelError {
    #[error("panel options: {0}")]
    Options(String),
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error(transparent)]
    Data(Box<MmmDataError>),
}

impl Panel {
    /// Writes `panel.csv` and `panel.toml` into `dir` (created if absent) and loads them as a user's
    /// `mmloop fit --config dir/panel.toml` would.
    pub fn write(&self, dir: &Path) -> Result<(ModelSpec, Dataset), PanelError> {
        std::fs::create_dir_all(dir).map_err(|source| PanelError::Io { path: dir.to_path_buf(), source })?;
        for (name, text) in [("panel.csv", &self.csv), ("panel.toml", &self.config)] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| PanelError::Io { path, source })?;
        }
        let spec = parse_config(&self.config, dir).map_err(|e| PanelError::Config(Box::new(e)))?;
        let data = Dataset::load(&spec).map_err(|e| PanelError::Data(Box::new(e)))?;
        Ok((spec, data))
    }

    /// True ROI per channel, in channel order.
    pub fn true_roi(&self) -> Vec<f64> {
        self.channels.iter().map(|c| c.roi).collect()
    }
}

fn channel_name(c: usize, n: usize) -> String {
    // zero-padded so the names sort in channel order
    let w = n.saturating_sub(1).to_string().len();
    format!("ch{c:0w$}")
}

/// Simulates a G × T × C panel (see the module doc for the formula and the draws).
pub fn simulate_panel(o: PanelOptions) -> Result<Panel, PanelError> {
    let (g_n, t_n, c_n) = (o.geos, o.weeks, o.channels);
    if g_n < 2 || c_n == 0 || t_n < 2 * (PANEL_MAX_LAG + 1) {
        return Err(PanelError::Options(format!(
            "need at least 2 geos, 1 channel and {} weeks; got {g_n} geos, {c_n} channels, {t_n} weeks",
            2 * (PANEL_MAX_LAG + 1)
        )));
    }
    let mut rng = SplitMix64::new(o.seed);
    let (intercept, trend_total, noise_sd, price_coef) = (2.0, 0.15, 0.06, -1.2);
    let sc = [(0.18, 0.08), (-0.05, 0.03)];
    let season = |t: usize| (2.0 * std::f64::consts::PI * t as f64 / PERIOD).sin();

    let pop: Vec<f64> =
        (0..g_n).map(|_| 1000.0 * ((2e5f64.ln() + rng.uniform() * 15f64.ln()).exp() / 1000.0).round()).collect();
    let a_g: Vec<f64> = (0..g_n).map(|_| intercept * (0.1 * rng.normal()).exp()).collect();
    let price = price_index(&mut rng, g_n, t_n);

    // per-capita spend x[c][g][t], rounded so that the total spend is whole cents
    let mut x = vec![vec![vec![0.0; t_n]; g_n]; c_n];
    for (c, xc) in x.iter_mut().enumerate() {
        let level = 0.4 / c_n as f64 * (0.5 + rng.uniform());
        match c % 3 {
            0 => {
                let mut nat = vec![0.0; t_n];
                let mut t = (rng.uniform() * 3.0) as usize;
                while t < t_n {
                    let on = 4 + (rng.uniform() * 5.0) as usize;
                    let weekly = level * 2.0 * (0.8 + 0.4 * rng.uniform()) * (1.0 + 0.3 * season(t + 4));
                    for v in nat.iter_mut().take((t + on).min(t_n)).skip(t) {
                        *v = weekly;
                    }
                    t += on + 2 + (rng.uniform() * 5.0) as usize;
                }
                for xg in xc.iter_mut() {
                    let w = (0.25 * rng.normal()).exp();
                    for (v, n) in xg.iter_mut().zip(&nat) {
                        *v = n * w * (0.85 + 0.3 * rng.uniform());
                    }
                }
            }
            1 => {
                for xg in xc.iter_mut() {
                    let mut l = 0.0f64;
                    for (t, v) in xg.iter_mut().enumerate() {
                        l = 0.8 * l + 0.15 * rng.normal();
                        *v = level * (1.0 + 0.25 * season(t)) * l.exp();
                    }
                }
            }
            _ => {
                for xg in xc.iter_mut() {
                    let mut b = 1.0f64;
                    for v in xg.iter_mut() {
                        b = (b + 0.1 * rng.normal()).clamp(0.4, 2.0);
                        *v = level * b;
                    }
                }
            }
        }
        for (g, xg) in xc.iter_mut().enumerate() {
            for v in xg.iter_mut() {
                *v = round_to(*v * pop[g], 2) / pop[g];
            }
        }
    }

    // channel truth and per-capita contributions β(g,c)·hill(adstock(x))
    let mut channels = Vec::with_capacity(c_n);
    let mut media = vec![vec![0.0; t_n]; g_n];
    for (c, xc) in x.iter().enumerate() {
        let alpha = 0.1 + 0.6 * rng.uniform();
        let ec_factor = 0.6 + 0.8 * rng.uniform();
        let slope = 0.8 + 1.2 * rng.uniform();
        let roi = 0.5 + 2.5 * rng.uniform();
        let tau = 0.1 + 0.2 * rng.uniform();
        let all: Vec<f64> = xc.iter().flatten().copied().collect();
        let ec = ec_factor * mean_nonzero(&all);
        let mult: Vec<f64> = (0..g_n).map(|_| (tau * rng.normal()).exp()).collect();
        let sat: Vec<Vec<f64>> = xc
            .iter()
            .map(|xg| geometric_adstock(xg, alpha, PANEL_MAX_LAG).iter().map(|&a| hill(a, ec, slope)).collect())
            .collect();
        let weighted: f64 = (0..g_n).map(|g| pop[g] * mult[g] * sat[g].iter().sum::<f64>()).sum();
        let total_spend: f64 = (0..g_n).map(|g| pop[g] * xc[g].iter().sum::<f64>()).sum();
        let beta = roi * total_spend / weighted;
        for g in 0..g_n {
            for (m, s) in media[g].iter_mut().zip(&sat[g]) {
                *m += beta * mult[g] * s;
            }
        }
        channels.push(PanelChannelTruth {
            name: channel_name(c, c_n),
            adstock_alpha: alpha,
            hill_ec: ec,
            hill_slope: slope,
            beta,
            beta_geo_sd: tau,
            roi,
            total_spend,
        });
    }

    let mut csv = String::from("date,geo,population,sales");
    for ch in &channels {
        let _ = write!(csv, ",{}_spend", ch.name);
    }
    csv.push_str(",price_index\n");
    let geo_name = |g: usize| format!("geo{g:0w$}", w = (g_n - 1).to_string().len());
    let (mut total_y, mut total_media) = (0.0, 0.0);
    let mut rows = vec![String::new(); g_n * t_n];
    for g in 0..g_n {
        for t in 0..t_n {
            let mut pc = a_g[g] + trend_total * t as f64 / (t_n - 1) as f64 + seasonal(&sc, t);
            pc += price_coef * (price[g][t] - 1.0) + media[g][t] + noise_sd * rng.normal();
            let y = round_to(pop[g] * pc, 2);
            total_y += y;
            total_media += pop[g] * media[g][t];
            let row = &mut rows[t * g_n + g]; // long format sorted by date then geo
            let _ = write!(
                row,
                "{},{},{},{y:.2}",
                mmloop_data::format_date(FIRST_WEEK + 7.0 * t as f64),
                geo_name(g),
                pop[g]
            );
            for xc in &x {
                let _ = write!(row, ",{:.2}", xc[g][t] * pop[g]);
            }
            let _ = writeln!(row, ",{:.4}", price[g][t]);
        }
    }
    rows.iter().for_each(|r| csv.push_str(r));

    let mut config = format!(
        "# Simulated panel: {g_n} geos x {t_n} weeks x {c_n} channels, seed {} \
         (mmloop_mmm::simulate::panel::simulate_panel).\n\n\
         [data]\npath = \"panel.csv\"\ntime = \"date\"\ngeo = \"geo\"\nkpi = \"sales\"\npopulation = \"population\"\n\n\
         [media]\nadstock = {{ kind = \"geometric\", max_lag = {PANEL_MAX_LAG} }}\nsaturation = {{ kind = \"hill\" }}\n",
        o.seed
    );
    for ch in &channels {
        let _ = write!(config, "\n[[channel]]\nname = \"{0}\"\nspend = \"{0}_spend\"\n", ch.name);
    }
    config.push_str("\n[[control]]\ncolumn = \"price_index\"\n\n[pooling]\nkind = \"partial\"\n");
    let _ = write!(config, "\n[fit]\nseed = {}\n", o.seed);
    Ok(Panel { options: o, csv, config, channels, media_share: total_media / total_y })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_is_deterministic_from_its_seed_and_sized_as_asked() {
        let o = PanelOptions { geos: 3, weeks: 20, channels: 4, seed: 7 };
        let (a, b) = (simulate_panel(o).unwrap(), simulate_panel(o).unwrap());
        assert_eq!(a.csv, b.csv);
        assert_eq!(a.channels, b.channels);
        let c = simulate_panel(PanelOptions { seed: 8, ..o }).unwrap();
        assert_ne!(a.csv, c.csv, "another seed gives another panel");
        assert_eq!(a.csv.lines().count(), 1 + 3 * 20);
        assert_eq!(a.csv.lines().next().unwrap().split(',').count(), 4 + 4 + 1);
        assert_eq!(a.config.matches("[[channel]]").count(), 4);
        assert!(simulate_panel(PanelOptions { geos: 1, ..o }).is_err());
    }
}
