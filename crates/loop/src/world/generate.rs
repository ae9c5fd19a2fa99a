//! Generating a world: parameters from the seed, the observed history, and the weeks that follow.

use super::WorldError;
use super::experiment::{self, PlannedTest, ReadoutOptions, Resolved, TestRun};
use super::spec::{SpendPattern, WorldSpec};
use crate::value::rng;
use mmloop_mmm::simulate::{geometric_adstock, hill};
use serde::Serialize;

/// 2021-01-04 (a Monday) as days since 1970-01-01: the first week of every world.
pub(crate) const FIRST_WEEK: f64 = 18_631.0;
/// Yearly period in weeks.
pub(crate) const PERIOD: f64 = 52.18;

// Random streams: every draw is rng::*(seed, stream, index).
const S_POPULATION: u64 = 1;
const S_INTERCEPT: u64 = 2;
const S_SPEND_WEIGHT: u64 = 3;
const S_BETA_Z: u64 = 4;
const S_FLIGHT: u64 = 5;
const S_PHASE: u64 = 6;
const S_DEMAND_NATIONAL: u64 = 10;
const S_DEMAND_GEO: u64 = 11;
const S_KPI_NOISE: u64 = 12;
const S_SPEND_NOISE: u64 = 13;

/// Index of a (a, b) pair in a stream.
pub(crate) fn key(a: usize, b: usize) -> u64 {
    ((a as u64) << 32) | b as u64
}

pub(crate) fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The true parameters of one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelTruth {
    pub name: String,
    pub adstock_alpha: f64,
    pub max_lag: usize,
    /// Hill half-saturation in per-capita spend units (money per person per week, adstocked).
    pub hill_ec: f64,
    pub hill_slope: f64,
    /// β_c: geo-average per-capita KPI at full saturation.
    pub beta: f64,
    pub beta_geo_sd: f64,
    /// The ROI the spec asked for over the initial history (what β was solved from).
    pub roi_initial: f64,
    pub demand_loading: f64,
}

/// The true parameters of one geo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeoTruth {
    pub name: String,
    pub population: f64,
    /// a_g, per-capita intercept.
    pub intercept: f64,
    /// β(g,c) per channel.
    pub beta: Vec<f64>,
    /// share(g,c): the geo's share of each channel's national spend.
    pub share: Vec<f64>,
}

/// Everything that generates the world, serialisable (for `truth.json`).
#[derive(Debug, Clone, Serialize)]
pub struct WorldTruth {
    pub spec: WorldSpec,
    pub channels: Vec<ChannelTruth>,
    pub geos: Vec<GeoTruth>,
    /// Weeks observed so far.
    pub weeks: usize,
    /// True ROI per channel over the observed weeks.
    pub roi: Vec<f64>,
}

/// A simulated world: its truth and everything observed so far. Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub(crate) spec: WorldSpec,
    pub(crate) channels: Vec<ChannelTruth>,
    pub(crate) geos: Vec<GeoTruth>,
    /// Spend in money, [c][g][t], rounded to cents (what the data shows).
    pub(crate) spend: Vec<Vec<Vec<f64>>>,
    /// KPI in money, [g][t], rounded to cents.
    pub(crate) kpi: Vec<Vec<f64>>,
    /// National weekly spend per channel the world follows from now on.
    pub(crate) plan_weekly: Vec<f64>,
    /// Tests run so far (numbers the readouts' seeds).
    pub(crate) tests_run: usize,
}

/// New weeks generated from the world's state: spend [c][g][k] and KPI [g][k] for weeks
/// from..from+n (from = the observed weeks), and per test the spend deltas actually applied, [(c, g, t, Δ money)].
pub(crate) struct Segment {
    pub spend: Vec<Vec<Vec<f64>>>,
    pub kpi: Vec<Vec<f64>>,
    pub deltas: Vec<Vec<(usize, usize, usize, f64)>>,
}

impl World {
    /// Generates the world and its observed history (`spec.history_weeks` weeks).
    pub fn new(spec: WorldSpec) -> Result<Self, WorldError> {
        spec.validate()?;
        let seed = spec.seed;
        let (g_n, c_n, t_n) = (spec.n_geos, spec.channels.len(), spec.history_weeks);
        let (p_lo, p_hi) = spec.population_range;
        let mut geos: Vec<GeoTruth> = (0..g_n)
            .map(|g| {
                let u = rng::uniform(seed, S_POPULATION, g as u64);
                let pop = ((p_lo.ln() + (p_hi.ln() - p_lo.ln()) * u).exp() / 1000.0).round().max(1.0) * 1000.0;
                GeoTruth {
                    name: format!("geo{:02}", g + 1),
                    population: pop,
                    intercept: spec.intercept * (0.1 * rng::normal(seed, S_INTERCEPT, g as u64)).exp(),
                    beta: vec![0.0; c_n],
                    share: vec![0.0; c_n],
                }
            })
            .collect();
        for c in 0..c_n {
            let w: Vec<f64> = (0..g_n)
                .map(|g| geos[g].population * (0.2 * rng::normal(seed, S_SPEND_WEIGHT, key(g, c))).exp())
                .collect();
            let total: f64 = w.iter().sum();
            for g in 0..g_n {
                geos[g].share[c] = w[g] / total;
            }
        }
        let channels: Vec<ChannelTruth> = spec
            .channels
            .iter()
            .map(|c| ChannelTruth {
                name: c.name.clone(),
                adstock_alpha: c.adstock_alpha,
                max_lag: spec.max_lag,
                hill_ec: 0.0,
                hill_slope: c.hill_slope,
                beta: 0.0,
                beta_geo_sd: c.beta_geo_sd,
                roi_initial: c.roi,
                demand_loading: c.demand_loading,
            })
            .collect();
        let mut world = World {
            plan_weekly: spec.channels.iter().map(|c| c.weekly_spend).collect(),
            spec,
            channels,
            geos,
            spend: vec![vec![Vec::new(); g_n]; c_n],
            kpi: vec![Vec::new(); g_n],
            tests_run: 0,
        };
        // the history's spend: its national pattern, then β and ec from it, then the KPI
        let national: Vec<Vec<f64>> = (0..c_n).map(|c| world.history_pattern(c)).collect();
        let demand = world.demand(t_n);
        for (c, nat) in national.iter().enumerate() {
            for g in 0..g_n {
                world.spend[c][g] = (0..t_n).map(|t| world.bau_spend(c, g, t, nat[t], &demand)).collect();
            }
        }
        for c in 0..c_n {
            let spec_c = &world.spec.channels[c];
            let pc: Vec<f64> = (0..g_n)
                .flat_map(|g| world.spend[c][g].iter().map(move |&s| (g, s)))
                .map(|(g, s)| s / world.geos[g].population)
                .filter(|&x| x > 0.0)
                .collect();
            let mean_nz = if pc.is_empty() { 1.0 } else { pc.iter().sum::<f64>() / pc.len() as f64 };
            world.channels[c].hill_ec = spec_c.hill_ec_factor * mean_nz;
            let mut weighted = 0.0;
            let mut money = 0.0;
            for g in 0..g_n {
                let m = (spec_c.beta_geo_sd * rng::normal(seed, S_BETA_Z, key(g, c))).exp();
                world.geos[g].beta[c] = m; // β_c applied below
                let sat: f64 = world.saturation_path(c, g, &world.per_capita(c, g, &world.spend[c][g])).iter().sum();
                weighted += world.geos[g].population * m * sat;
                money += world.spend[c][g].iter().sum::<f64>();
            }
            let beta = spec_c.roi * money / weighted;
            world.channels[c].beta = beta;
            for g in world.geos.iter_mut() {
                g.beta[c] *= beta;
            }
        }
        for g in 0..g_n {
            world.kpi[g] = (0..t_n).map(|t| world.kpi_at(g, t, &demand, |c| &world.spend[c][g])).collect();
        }
        Ok(world)
    }

    /// The national weekly spend of channel `c` over the initial history (mean `weekly_spend`).
    fn history_pattern(&self, c: usize) -> Vec<f64> {
        let (seed, t_n) = (self.spec.seed, self.spec.history_weeks);
        let ch = &self.spec.channels[c];
        let raw: Vec<f64> = match ch.pattern {
            SpendPattern::AlwaysOn => {
                let phase = std::f64::consts::TAU * rng::uniform(seed, S_PHASE, c as u64);
                (0..t_n).map(|t| 1.0 + 0.2 * (std::f64::consts::TAU * t as f64 / PERIOD + phase).sin()).collect()
            }
            SpendPattern::Flighted => {
                let mut v = vec![0.0; t_n];
                let mut k = 0u64;
                let mut u = || {
                    k += 1;
                    rng::uniform(seed, S_FLIGHT, key(c, k as usize))
                };
                let mut t = (u() * 3.0) as usize;
                while t < t_n {
                    let on = 4 + (u() * 5.0) as usize;
                    let level = 0.8 + 0.4 * u();
                    for x in v.iter_mut().take((t + on).min(t_n)).skip(t) {
                        *x = level;
                    }
                    t += on + 2 + (u() * 5.0) as usize;
                }
                v
            }
        };
        let mean = raw.iter().sum::<f64>() / t_n as f64;
        raw.iter().map(|r| ch.weekly_spend * r / mean).collect()
    }

    /// The latent demand d(g,t) for weeks 0..t_end, [g][t] (see [`WorldSpec`]).
    pub(crate) fn demand(&self, t_end: usize) -> Vec<Vec<f64>> {
        let (seed, rho) = (self.spec.seed, self.spec.demand_rho);
        let ar1 = |stream: u64, g: usize| {
            let mut v = Vec::with_capacity(t_end);
            let innov = (1.0 - rho * rho).sqrt();
            for t in 0..t_end {
                let e = rng::normal(seed, stream, key(g, t));
                v.push(if t == 0 { e } else { rho * v[t - 1] + innov * e });
            }
            v
        };
        let national = ar1(S_DEMAND_NATIONAL, 0);
        let phi = self.spec.demand_national_share;
        (0..self.spec.n_geos)
            .map(|g| {
                ar1(S_DEMAND_GEO, g)
                    .iter()
                    .zip(&national)
                    .map(|(e, n)| phi.sqrt() * n + (1.0 - phi).sqrt() * e)
                    .collect()
            })
            .collect()
    }

    /// Business-as-usual spend (money, cents) of channel c in geo g, week t, when the national weekly
    /// spend is `national`: national·share·exp(κλd + s·u − ½(κ²λ² + s²)) (mean-one log-normal factor).
    fn bau_spend(&self, c: usize, g: usize, t: usize, national: f64, demand: &[Vec<f64>]) -> f64 {
        let ch = &self.spec.channels[c];
        let kl = self.spec.confounding * ch.demand_loading;
        let s = ch.spend_noise_sd;
        let u = rng::normal(self.spec.seed, S_SPEND_NOISE, key(g * self.channels.len() + c, t));
        let factor = (kl * demand[g][t] + s * u - 0.5 * (kl * kl + s * s)).exp();
        cents(national * self.geos[g].share[c] * factor)
    }

    pub(crate) fn per_capita(&self, _c: usize, g: usize, money: &[f64]) -> Vec<f64> {
        let p = self.geos[g].population;
        money.iter().map(|m| m / p).collect()
    }

    /// hill(adstock(x)) of a per-capita spend path (x before week 0 is 0).
    pub(crate) fn saturation_path(&self, c: usize, _g: usize, x: &[f64]) -> Vec<f64> {
        let ch = &self.channels[c];
        geometric_adstock(x, ch.adstock_alpha, ch.max_lag).iter().map(|&a| hill(a, ch.hill_ec, ch.hill_slope)).collect()
    }

    /// Media contribution (money KPI) of channel c in geo g per week of a money spend path.
    pub(crate) fn contribution_path(&self, c: usize, g: usize, money: &[f64]) -> Vec<f64> {
        let k = self.geos[g].population * self.geos[g].beta[c];
        self.saturation_path(c, g, &self.per_capita(c, g, money)).iter().map(|s| k * s).collect()
    }

    /// Per-capita baseline (no media, no noise, no demand) of geo g at week t.
    fn baseline_pc(&self, g: usize, t: usize) -> f64 {
        let s = &self.spec;
        let season: f64 = s
            .seasonality
            .iter()
            .enumerate()
            .map(|(k, (a, b))| {
                let x = std::f64::consts::TAU * (k + 1) as f64 * t as f64 / PERIOD;
                a * x.sin() + b * x.cos()
            })
            .sum();
        self.geos[g].intercept + s.trend_total * t as f64 / (s.history_weeks - 1) as f64 + season
    }

    /// The KPI (money, cents) of geo g at week t given each channel's money spend path in that geo
    /// (`spend(c)`, covering at least weeks 0..=t).
    pub(crate) fn kpi_at<'a>(
        &self,
        g: usize,
        t: usize,
        demand: &[Vec<f64>],
        spend: impl Fn(usize) -> &'a Vec<f64>,
    ) -> f64 {
        let lo = t.saturating_sub(self.spec.max_lag);
        let media: f64 = (0..self.channels.len())
            .map(|c| {
                let path = &spend(c)[lo..=t];
                *self.contribution_path(c, g, path).last().unwrap_or(&0.0)
            })
            .sum();
        let p = self.geos[g].population;
        let noise = self.spec.noise_sd * rng::normal(self.spec.seed, S_KPI_NOISE, key(g, t));
        cents(p * (self.baseline_pc(g, t) + self.spec.demand_effect * demand[g][t] + noise) + media)
    }

    /// Generates weeks `from..from + n` after the observed history (from = [`World::weeks`]) under
    /// the current plan with the resolved tests applied. Nothing is stored.
    pub(crate) fn segment(&self, n: usize, tests: &[Resolved]) -> Segment {
        let from = self.weeks();
        let (c_n, g_n) = (self.channels.len(), self.geos.len());
        let demand = self.demand(from + n);
        let mut spend: Vec<Vec<Vec<f64>>> = (0..c_n)
            .map(|c| {
                (0..g_n)
                    .map(|g| (from..from + n).map(|t| self.bau_spend(c, g, t, self.plan_weekly[c], &demand)).collect())
                    .collect()
            })
            .collect();
        let deltas: Vec<Vec<(usize, usize, usize, f64)>> =
            tests.iter().map(|r| experiment::apply(r, &mut spend, from)).collect();
        // full paths (history + segment) per channel and geo, for the adstock's look-back
        let full: Vec<Vec<Vec<f64>>> = (0..c_n)
            .map(|c| (0..g_n).map(|g| [self.spend[c][g].as_slice(), spend[c][g].as_slice()].concat()).collect())
            .collect();
        let kpi =
            (0..g_n).map(|g| (from..from + n).map(|t| self.kpi_at(g, t, &demand, |c| &full[c][g])).collect()).collect();
        Segment { spend, kpi, deltas }
    }

    /// Appends a generated segment to the observed history.
    pub(crate) fn append(&mut self, seg: &Segment) {
        for (c, per_geo) in seg.spend.iter().enumerate() {
            for (g, s) in per_geo.iter().enumerate() {
                self.spend[c][g].extend_from_slice(s);
            }
        }
        for (g, k) in seg.kpi.iter().enumerate() {
            self.kpi[g].extend_from_slice(k);
        }
    }

    /// From now on, spend follows `allocation`: money per channel (in [`World::channel_names`] order)
    /// over `horizon` weeks, i.e. allocation/horizon per week nationally, split across geos by the
    /// channel's geo shares, times the confounded component. This is the rule
    /// [`super::TruePlanner`] evaluates allocations with.
    pub fn follow(&mut self, allocation: &[f64], horizon: usize) -> Result<(), WorldError> {
        if allocation.len() != self.channels.len() {
            return Err(WorldError::Allocation(format!(
                "{} amounts for {} channels ({}); give one per channel in that order",
                allocation.len(),
                self.channels.len(),
                self.channel_names().join(", ")
            )));
        }
        if let Some((c, a)) = allocation.iter().enumerate().find(|(_, a)| !(a.is_finite() && **a >= 0.0)) {
            return Err(WorldError::Allocation(format!(
                "channel {:?} gets {a}, not a finite non-negative amount",
                self.channels[c].name
            )));
        }
        if horizon == 0 {
            return Err(WorldError::Allocation("the horizon must be at least one week".into()));
        }
        self.plan_weekly = allocation.iter().map(|a| a / horizon as f64).collect();
        Ok(())
    }

    /// Moves time on by `weeks` weeks under the current plan ([`World::follow`]), running `tests`
    /// in them (each window must lie inside the new weeks), and reads every test out with the real
    /// geo-lift estimators. The new weeks join the observed history.
    pub fn advance(
        &mut self,
        weeks: usize,
        tests: &[PlannedTest],
        readout: &ReadoutOptions,
    ) -> Result<Vec<TestRun>, WorldError> {
        let from = self.weeks();
        let resolved =
            tests.iter().map(|t| experiment::resolve(self, t, from, from + weeks)).collect::<Result<Vec<_>, _>>()?;
        // the carry-over of a test ending near the segment's end lies in weeks after it: generate
        // them too (under the same plan) for the true lift, keep only `weeks`
        let tail = resolved.iter().map(|r| (r.end + self.spec.max_lag).saturating_sub(from + weeks)).max().unwrap_or(0);
        let seg = self.segment(weeks + tail, &resolved);
        let runs = experiment::truths(self, &seg, &resolved);
        let mut kept = Segment {
            spend: seg.spend.iter().map(|pg| pg.iter().map(|s| s[..weeks].to_vec()).collect()).collect(),
            kpi: seg.kpi.iter().map(|k| k[..weeks].to_vec()).collect(),
            deltas: Vec::new(),
        };
        self.append(&kept);
        kept.deltas = seg.deltas;
        let first_index = self.tests_run;
        self.tests_run += tests.len();
        experiment::read_all(self, &resolved, &kept, runs, tests, readout, first_index)
    }

    /// Runs one test on a copy of the world, under the current plan, with the window wherever
    /// the test puts it (at or after [`World::weeks`]); the world itself does not move.
    pub fn run_test(&self, test: &PlannedTest, readout: &ReadoutOptions) -> Result<TestRun, WorldError> {
        let mut copy = self.clone();
        let weeks = (test.start + test.weeks).saturating_sub(self.weeks()).max(1);
        let mut runs = copy.advance(weeks, std::slice::from_ref(test), readout)?;
        Ok(runs.remove(0))
    }

    // ---- accessors -----------------------------------------------------------------------------

    pub fn spec(&self) -> &WorldSpec {
        &self.spec
    }
    /// Weeks observed so far.
    pub fn weeks(&self) -> usize {
        self.kpi.first().map_or(0, |k| k.len())
    }
    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name.clone()).collect()
    }
    pub fn geo_names(&self) -> Vec<String> {
        self.geos.iter().map(|g| g.name.clone()).collect()
    }
    pub fn channels(&self) -> &[ChannelTruth] {
        &self.channels
    }
    pub fn geos(&self) -> &[GeoTruth] {
        &self.geos
    }
    /// The national weekly spend per channel the world currently follows.
    pub fn plan_weekly(&self) -> &[f64] {
        &self.plan_weekly
    }
    /// Observed spend (money) of channel c in geo g, per week.
    pub fn spend(&self, c: usize, g: usize) -> &[f64] {
        &self.spend[c][g]
    }
    /// Observed KPI (money) of geo g, per week.
    pub fn kpi(&self, g: usize) -> &[f64] {
        &self.kpi[g]
    }
    /// The date label of week t (`YYYY-MM-DD`, weekly from 2021-01-04).
    pub fn week_label(&self, t: usize) -> String {
        mmloop_data::format_date(FIRST_WEEK + 7.0 * t as f64)
    }
    /// The week index of a date label (any week, observed or future).
    pub fn week_index(&self, label: &str) -> Result<usize, WorldError> {
        let bad = |m: String| WorldError::Test { test: label.to_string(), message: m };
        let d = mmloop_data::parse_date(label).ok_or_else(|| bad("not a date (expected YYYY-MM-DD)".into()))?;
        let k = (d - FIRST_WEEK) / 7.0;
        if k < 0.0 || (k - k.round()).abs() > 1e-9 {
            return Err(bad(format!("not one of the world's weeks (Mondays from {})", self.week_label(0))));
        }
        Ok(k.round() as usize)
    }
    /// National spend per channel over the last `horizon` observed weeks (the "current" allocation
    /// the MMM's planning basis starts from).
    pub fn recent_spend(&self, horizon: usize) -> Vec<f64> {
        let t_n = self.weeks();
        let lo = t_n.saturating_sub(horizon);
        (0..self.channels.len()).map(|c| self.spend[c].iter().map(|s| s[lo..t_n].iter().sum::<f64>()).sum()).collect()
    }
    /// The truth, serialisable.
    pub fn truth(&self) -> WorldTruth {
        WorldTruth {
            spec: self.spec.clone(),
            channels: self.channels.clone(),
            geos: self.geos.clone(),
            weeks: self.weeks(),
            roi: self.true_roi(),
        }
    }
}
