//! Evidence that ages: a lift-test readout's variance grows with its age, so old experiments pin a
//! channel less and less and a stale channel climbs back up the list of tests to run.
//!
//! # The math
//! A readout with standard error SE, read out `t` weeks before the fit's last period (or a given
//! as-of date), enters the next fit with the effective variance
//!
//! ```text
//! SE²_eff(t) = SE² · exp(λ_c · t),     λ_c = ln 2 / h_c,
//! ```
//!
//! where `h_c` is the channel's evidence half-life in weeks. The readout's *weight* in a Gaussian
//! likelihood is its precision 1 / SE²_eff, so it halves every `h_c` weeks: at `t = h_c` the variance
//! has doubled, at `t = 2 h_c` it is four times the original, and a readout many half-lives old
//! carries essentially no information. On the standard-error scale this is
//! `SE_eff = SE · exp(λ_c t / 2)` ([`decayed_se`]). This is the exponential-forgetting (power prior
//! with a time-decaying exponent a₀ = exp(−λt)) rule of Ibrahim & Chen (2000), "Power prior
//! distributions for regression models", Statistical Science 15(1): raising a Gaussian likelihood
//! to the power a₀ multiplies its variance by 1/a₀.
//!
//! # Half-lives
//! Defaults by channel class ([`ChannelClass`]): search, display and other digital 26 weeks, social
//! 39 weeks, TV, video, radio, out-of-home and print 52 weeks — performance channels drift faster
//! (auctions, creatives, targeting change every quarter) than brand media. A channel name is
//! classified by its words ([`ChannelClass::classify`]); every class default and every channel can
//! be overridden ([`HalfLifeSettings`]).
//!
//! ```
//! use mmloop_loop::decay::{Age, HalfLife, decayed_se};
//! let h = HalfLife::weeks(26.0).unwrap();
//! assert_eq!(decayed_se(100.0, Age::weeks(0.0).unwrap(), h), 100.0);
//! // one half-life later the variance has doubled
//! let se = decayed_se(100.0, Age::weeks(26.0).unwrap(), h);
//! assert!((se * se - 2.0 * 100.0 * 100.0).abs() < 1e-6);
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything that can be wrong with a half-life setting or an age.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecayError {
    /// A half-life that is zero, negative, infinite or NaN.
    #[error("{what}: half-life must be a positive number of weeks, got {value}")]
    BadHalfLife { what: String, value: f64 },
    /// A class name in the settings that is not one of the classes.
    #[error("half_life.classes: unknown channel class {name:?}; the classes are {known}")]
    UnknownClass { name: String, known: String },
    /// A time label that is neither an ISO date nor a number.
    #[error("{what}: time {label:?} is neither an ISO date (YYYY-MM-DD) nor a number")]
    BadTime { what: String, label: String },
    /// One time is a date, the other a number: they cannot be subtracted.
    #[error(
        "readout end {end:?} and as-of time {as_of:?} are not in the same notation (one is a date, the other a number)"
    )]
    MixedTime { end: String, as_of: String },
    /// The readout ends after the as-of time: it cannot inform a fit that ends before it.
    #[error("readout ending {end:?} is after the as-of time {as_of:?}; give a later --as-of or leave this readout out")]
    FromTheFuture { end: String, as_of: String },
    /// A readout that names no channel: there is no half-life to age it by.
    #[error(
        "readout {what}: names no channel, so its evidence half-life is unknown; attach it to a channel (mmloop lift --channel)"
    )]
    NoChannel { what: String },
    /// An age that is negative or not finite.
    #[error("evidence age must be a finite number of weeks ≥ 0, got {0}")]
    BadAge(f64),
}

/// An evidence half-life in weeks: finite and positive.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct HalfLife(f64);

impl HalfLife {
    /// A half-life of `w` weeks; `what` names the channel or option in the error.
    pub fn named(w: f64, what: &str) -> Result<Self, DecayError> {
        if w.is_finite() && w > 0.0 {
            Ok(Self(w))
        } else {
            Err(DecayError::BadHalfLife { what: what.into(), value: w })
        }
    }

    /// A half-life of `w` weeks.
    pub fn weeks(w: f64) -> Result<Self, DecayError> {
        Self::named(w, "half-life")
    }

    /// The half-life in weeks.
    pub fn in_weeks(self) -> f64 {
        self.0
    }

    /// The decay rate λ = ln 2 / h, per week.
    pub fn rate(self) -> f64 {
        std::f64::consts::LN_2 / self.0
    }
}

/// The time unit of a numeric time column (`1, 2, 3, …`): how long one step is. ISO dates are
/// always subtracted in days, whatever the data's frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Days,
    Weeks,
}

impl TimeUnit {
    fn weeks_per_step(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0 / 7.0,
            TimeUnit::Weeks => 1.0,
        }
    }
}

/// How long ago a readout ended, in weeks: finite and ≥ 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Age(f64);

impl Age {
    /// An age of `w` weeks.
    pub fn weeks(w: f64) -> Result<Self, DecayError> {
        if w.is_finite() && w >= 0.0 { Ok(Self(w)) } else { Err(DecayError::BadAge(w)) }
    }

    /// An age of `n` steps of the data's own time unit.
    pub fn periods(n: f64, unit: TimeUnit) -> Result<Self, DecayError> {
        Self::weeks(n * unit.weeks_per_step())
    }

    /// The age of a readout whose window ended at `end`, seen from `as_of` (the fit's last period or a
    /// given date), both in the data's time notation: ISO dates are subtracted in days, numbers in
    /// steps of `unit`. A readout ending after `as_of` is an error, not a negative age.
    pub fn between(end: &str, as_of: &str, unit: TimeUnit) -> Result<Self, DecayError> {
        let parse = |s: &str, what: &str| -> Result<(bool, f64), DecayError> {
            if let Some(d) = mmloop_data::parse_date(s) {
                return Ok((true, d));
            }
            match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok((false, v)),
                _ => Err(DecayError::BadTime { what: what.into(), label: s.into() }),
            }
        };
        let (end_is_date, e) = parse(end, "readout end")?;
        let (as_of_is_date, a) = parse(as_of, "as-of time")?;
        if end_is_date != as_of_is_date {
            return Err(DecayError::MixedTime { end: end.into(), as_of: as_of.into() });
        }
        if a < e {
            return Err(DecayError::FromTheFuture { end: end.into(), as_of: as_of.into() });
        }
        if end_is_date { Self::weeks((a - e) / 7.0) } else { Self::periods(a - e, unit) }
    }

    /// The age in weeks.
    pub fn in_weeks(self) -> f64 {
        self.0
    }
}

/// The variance multiplier exp(λ t) = 2^(t / h) of a readout `age` old: SE²_eff = SE² · factor.
/// Overflows to +∞ past about 1000 half-lives: an infinite variance is a readout with no weight.
pub fn variance_inflation(age: Age, half_life: HalfLife) -> f64 {
    (half_life.rate() * age.0).exp()
}

/// The decayed standard error SE_eff = SE · exp(λ t / 2), so that SE²_eff = SE² · exp(λ t) with
/// λ = ln 2 / half-life (see the module documentation for the derivation and source).
pub fn decayed_se(se: f64, age: Age, half_life: HalfLife) -> f64 {
    se * (0.5 * half_life.rate() * age.0).exp()
}

/// A readout aged for a fit: its record with the standard error inflated to
/// `SE_eff = SE · exp(λ t / 2)`, and how it got there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecayedReadout {
    /// The record as the fit should use it: `standard_error` is the decayed SE.
    pub record: mmloop_data::LiftTestRecord,
    /// The readout's own standard error.
    pub original_se: f64,
    pub age: Age,
    /// The half-life used: the shortest of the readout's channels' ([`HalfLives::for_channels`]).
    pub half_life: HalfLife,
    /// SE²_eff / SE² = exp(λ t).
    pub variance_inflation: f64,
}

impl DecayedReadout {
    /// Whether the readout still carries information: past about 1000 half-lives (2 · 1024 for the
    /// SE) the inflation overflows to an infinite SE, which `LiftTestRecord::validate` rejects; such
    /// a readout is to be left out of the fit, which is exactly its limit of zero weight.
    pub fn informative(&self) -> bool {
        self.record.standard_error.is_finite()
    }
}

/// Ages a readout for a fit whose last period (or `--as-of` date) is `as_of`, in the data's time
/// notation and `unit`: the age runs from the readout's `end` to `as_of`, the half-life is the
/// shortest of its channels', and the standard error becomes `SE · exp(λ t / 2)`. Errors name the
/// readout (its channels, window and source).
pub fn decay_readout(
    r: &mmloop_data::LiftTestRecord,
    as_of: &str,
    unit: TimeUnit,
    half_lives: &HalfLives,
) -> Result<DecayedReadout, DecayError> {
    let what = || format!("{:?} {}..{} ({})", r.channels, r.start, r.end, r.source);
    let half_life = half_lives.for_channels(&r.channels).ok_or_else(|| DecayError::NoChannel { what: what() })?;
    let age = Age::between(&r.end, as_of, unit)?;
    let mut record = r.clone();
    record.standard_error = decayed_se(r.standard_error, age, half_life);
    Ok(DecayedReadout {
        record,
        original_se: r.standard_error,
        age,
        half_life,
        variance_inflation: variance_inflation(age, half_life),
    })
}

/// Channel classes that set the default evidence half-life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelClass {
    Tv,
    Video,
    Radio,
    Ooh,
    Print,
    Social,
    Search,
    Display,
    Digital,
    /// No keyword matched: gets the shortest default (26 weeks), so unknown evidence is never
    /// trusted longer than the fastest-changing known class. Override it per channel.
    Other,
}

/// Words that put a channel in a class, checked in this order of classes (the first class with a
/// matching word wins, so `social_video` and `digital_video` are video, `paid_social` is social).
const KEYWORDS: [(ChannelClass, &[&str]); 9] = [
    (ChannelClass::Tv, &["tv", "ctv", "ott", "television", "linear", "broadcast", "cable"]),
    (ChannelClass::Video, &["video", "youtube", "olv", "vod"]),
    (ChannelClass::Radio, &["radio", "audio", "podcast", "podcasts", "spotify"]),
    (ChannelClass::Ooh, &["ooh", "dooh", "outdoor", "billboard", "billboards", "transit", "cinema"]),
    (ChannelClass::Print, &["print", "newspaper", "newspapers", "magazine", "magazines", "press", "mail", "dm"]),
    (
        ChannelClass::Social,
        &[
            "social",
            "facebook",
            "fb",
            "meta",
            "instagram",
            "ig",
            "tiktok",
            "snapchat",
            "snap",
            "pinterest",
            "linkedin",
            "twitter",
            "reddit",
        ],
    ),
    (ChannelClass::Search, &["search", "sem", "ppc", "sea", "google", "bing", "adwords"]),
    (ChannelClass::Display, &["display", "banner", "banners", "programmatic", "dsp", "native"]),
    (ChannelClass::Digital, &["digital", "online", "affiliate", "affiliates", "email", "web", "app", "mobile"]),
];

impl ChannelClass {
    /// All classes, in the order used for matching.
    pub const ALL: [ChannelClass; 10] = [
        Self::Tv,
        Self::Video,
        Self::Radio,
        Self::Ooh,
        Self::Print,
        Self::Social,
        Self::Search,
        Self::Display,
        Self::Digital,
        Self::Other,
    ];

    /// The class's name as written in settings (`tv`, `video`, …, `other`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tv => "tv",
            Self::Video => "video",
            Self::Radio => "radio",
            Self::Ooh => "ooh",
            Self::Print => "print",
            Self::Social => "social",
            Self::Search => "search",
            Self::Display => "display",
            Self::Digital => "digital",
            Self::Other => "other",
        }
    }

    /// The default half-life in weeks: 26 for search, display, digital and unclassified channels,
    /// 39 for social, 52 for TV, video, radio, out-of-home and print.
    pub fn default_half_life_weeks(self) -> f64 {
        match self {
            Self::Search | Self::Display | Self::Digital | Self::Other => 26.0,
            Self::Social => 39.0,
            Self::Tv | Self::Video | Self::Radio | Self::Ooh | Self::Print => 52.0,
        }
    }

    /// Classifies a channel name by its words. The name is split into lowercase words at every
    /// non-alphanumeric character, and each of those again at lower→upper case changes and at
    /// letter↔digit changes (`PaidSearch2` → `paidsearch2`, `paid`, `search`, `2`); the first class (in the order TV, video, radio, OOH,
    /// print, social, search, display, digital) with one of its keywords among the words wins;
    /// no match is [`ChannelClass::Other`].
    ///
    /// ```
    /// use mmloop_loop::decay::ChannelClass;
    /// assert_eq!(ChannelClass::classify("PaidSearch"), ChannelClass::Search);
    /// assert_eq!(ChannelClass::classify("linear_tv"), ChannelClass::Tv);
    /// assert_eq!(ChannelClass::classify("facebook_ads"), ChannelClass::Social);
    /// assert_eq!(ChannelClass::classify("channel_3"), ChannelClass::Other);
    /// ```
    pub fn classify(channel: &str) -> Self {
        let words = words(channel);
        for (class, keys) in KEYWORDS {
            if words.iter().any(|w| keys.contains(&w.as_str())) {
                return class;
            }
        }
        Self::Other
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// Splits a channel name into lowercase words (see [`ChannelClass::classify`]): the pieces between
/// non-alphanumeric characters (`youtube` from `YouTube`), and those pieces split further at case
/// and digit changes (`you`, `tube`; `paid`, `search` from `PaidSearch`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in name.split(|c: char| !c.is_alphanumeric()).filter(|p| !p.is_empty()) {
        out.push(piece.to_lowercase());
        let mut cur = String::new();
        let mut prev: Option<char> = None;
        for c in piece.chars() {
            if let Some(p) = prev {
                let case_break = p.is_lowercase() && c.is_uppercase();
                let digit_break = p.is_ascii_digit() != c.is_ascii_digit();
                if (case_break || digit_break) && !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            cur.extend(c.to_lowercase());
            prev = Some(c);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

/// Half-life settings as written in a config (TOML or JSON), all in weeks:
///
/// ```toml
/// [half_life]
/// classes = { search = 20, tv = 60 }      # override class defaults
/// channels = { brand_tv = 80 }            # override single channels (by exact name)
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HalfLifeSettings {
    #[serde(default)]
    pub classes: BTreeMap<String, f64>,
    #[serde(default)]
    pub channels: BTreeMap<String, f64>,
}

/// Validated half-lives: a default per class, and overrides per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct HalfLives {
    classes: BTreeMap<ChannelClass, HalfLife>,
    channels: BTreeMap<String, HalfLife>,
}

/// Where a channel's half-life came from, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HalfLifeSource {
    /// The channel's own override.
    Channel,
    /// Its class's default (possibly overridden in the settings).
    Class(ChannelClass),
}

impl Default for HalfLives {
    fn default() -> Self {
        let classes = ChannelClass::ALL.into_iter().map(|c| (c, HalfLife(c.default_half_life_weeks()))).collect();
        Self { classes, channels: BTreeMap::new() }
    }
}

impl HalfLives {
    /// The defaults with the settings' overrides; every value is checked, and errors name the class
    /// or channel (`half_life.channels.tv`).
    pub fn from_settings(s: &HalfLifeSettings) -> Result<Self, DecayError> {
        let mut h = Self::default();
        for (name, &w) in &s.classes {
            let class = ChannelClass::from_name(name).ok_or_else(|| DecayError::UnknownClass {
                name: name.clone(),
                known: ChannelClass::ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", "),
            })?;
            h.classes.insert(class, HalfLife::named(w, &format!("half_life.classes.{name}"))?);
        }
        for (name, &w) in &s.channels {
            h.set_channel(name, w)?;
        }
        Ok(h)
    }

    /// Overrides one channel's half-life (weeks); the error names the channel.
    pub fn set_channel(&mut self, channel: &str, weeks: f64) -> Result<(), DecayError> {
        let hl = HalfLife::named(weeks, &format!("half_life.channels.{channel}"))?;
        self.channels.insert(channel.to_string(), hl);
        Ok(())
    }

    /// A channel's half-life and where it came from: its own override, else its class's.
    pub fn for_channel(&self, channel: &str) -> (HalfLife, HalfLifeSource) {
        if let Some(&h) = self.channels.get(channel) {
            return (h, HalfLifeSource::Channel);
        }
        let class = ChannelClass::classify(channel);
        // every class has an entry (Default fills all of them), the fallback is never taken
        let h = self.classes.get(&class).copied().unwrap_or(HalfLife(class.default_half_life_weeks()));
        (h, HalfLifeSource::Class(class))
    }

    /// The half-life of a readout on a set of channels moved together: the shortest of theirs, so a
    /// joint readout ages as fast as its fastest-ageing channel. `None` for an empty set.
    pub fn for_channels<S: AsRef<str>>(&self, channels: &[S]) -> Option<HalfLife> {
        channels.iter().map(|c| self.for_channel(c.as_ref()).0).min_by(|a, b| a.0.total_cmp(&b.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hl(w: f64) -> HalfLife {
        HalfLife::weeks(w).unwrap()
    }

    #[test]
    fn se_is_unchanged_at_age_zero() {
        for w in [1.0, 26.0, 52.0] {
            assert_eq!(decayed_se(123.4, Age::weeks(0.0).unwrap(), hl(w)), 123.4);
            assert_eq!(variance_inflation(Age::weeks(0.0).unwrap(), hl(w)), 1.0);
        }
    }

    #[test]
    fn variance_doubles_and_weight_halves_at_one_half_life() {
        // exp(ln 2) = 2 exactly in real arithmetic; 1e-12 relative covers the rounding of ln 2 / h · h
        for w in [13.0, 26.0, 39.0, 52.0] {
            let se = decayed_se(50.0, Age::weeks(w).unwrap(), hl(w));
            let var_ratio = se * se / (50.0 * 50.0);
            assert!((var_ratio - 2.0).abs() < 1e-12, "h={w}: variance ratio {var_ratio}");
            let weight_ratio = (1.0 / (se * se)) / (1.0 / 2500.0);
            assert!((weight_ratio - 0.5).abs() < 1e-12);
            // two half-lives: four times the variance
            let se2 = decayed_se(50.0, Age::weeks(2.0 * w).unwrap(), hl(w));
            assert!((se2 * se2 / 2500.0 - 4.0).abs() < 1e-11);
        }
    }

    #[test]
    fn decayed_se_increases_with_age_and_falls_with_half_life() {
        let mut last = 0.0;
        for i in 0..200 {
            let se = decayed_se(10.0, Age::weeks(i as f64).unwrap(), hl(26.0));
            assert!(se > last, "not increasing at {i} weeks");
            last = se;
        }
        let a = Age::weeks(30.0).unwrap();
        assert!(decayed_se(10.0, a, hl(26.0)) > decayed_se(10.0, a, hl(52.0)));
    }

    #[test]
    fn very_old_readout_has_huge_variance() {
        // 40 half-lives: variance × 2^40 ≈ 1.1e12, the readout is worthless next to any prior
        let f = variance_inflation(Age::weeks(40.0 * 26.0).unwrap(), hl(26.0));
        assert!((f / 2f64.powi(40) - 1.0).abs() < 1e-9, "{f}");
        // beyond ~1024 half-lives the multiplier overflows to +inf: no weight at all, never NaN
        let f = variance_inflation(Age::weeks(2000.0 * 26.0).unwrap(), hl(26.0));
        assert_eq!(f, f64::INFINITY);
    }

    #[test]
    fn bad_half_lives_are_rejected_naming_the_channel() {
        for w in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            let mut h = HalfLives::default();
            let e = h.set_channel("brand_tv", w).unwrap_err().to_string();
            assert!(e.contains("half_life.channels.brand_tv") && e.contains("positive"), "{e}");
        }
        let s = HalfLifeSettings { classes: [("search".into(), -1.0)].into(), ..Default::default() };
        let e = HalfLives::from_settings(&s).unwrap_err().to_string();
        assert!(e.contains("half_life.classes.search"), "{e}");
        let s = HalfLifeSettings { classes: [("radioo".into(), 10.0)].into(), ..Default::default() };
        let e = HalfLives::from_settings(&s).unwrap_err().to_string();
        assert!(e.contains("radioo") && e.contains("radio"), "{e}");
        assert!(Age::weeks(-1.0).is_err() && Age::weeks(f64::NAN).is_err());
    }

    #[test]
    fn channel_names_are_classified_by_their_words() {
        let cases = [
            ("tv", ChannelClass::Tv),
            ("TV_Spend", ChannelClass::Tv),
            ("ctv", ChannelClass::Tv),
            ("YouTube", ChannelClass::Video),
            ("social_video", ChannelClass::Video),
            ("radio", ChannelClass::Radio),
            ("OOH", ChannelClass::Ooh),
            ("print2", ChannelClass::Print),
            ("PaidSocial", ChannelClass::Social),
            ("facebook", ChannelClass::Social),
            ("search", ChannelClass::Search),
            ("paid_search_brand", ChannelClass::Search),
            ("google", ChannelClass::Search),
            ("Display", ChannelClass::Display),
            ("programmatic", ChannelClass::Display),
            ("digital", ChannelClass::Digital),
            ("Channel0", ChannelClass::Other),
            // no substring matching: "tv" inside a word is not TV, "print" inside "blueprint" not print
            ("stvalentine", ChannelClass::Other),
            ("blueprint", ChannelClass::Other),
        ];
        for (name, class) in cases {
            assert_eq!(ChannelClass::classify(name), class, "{name}");
        }
    }

    #[test]
    fn defaults_follow_the_class_and_overrides_win() {
        let h = HalfLives::default();
        assert_eq!(h.for_channel("search").0.in_weeks(), 26.0);
        assert_eq!(h.for_channel("display").0.in_weeks(), 26.0);
        assert_eq!(h.for_channel("social").0.in_weeks(), 39.0);
        for c in ["tv", "video", "radio", "ooh", "print"] {
            assert_eq!(h.for_channel(c).0.in_weeks(), 52.0, "{c}");
        }
        let s = HalfLifeSettings {
            classes: [("tv".into(), 60.0)].into(),
            channels: [("tv_brand".into(), 80.0), ("channel_1".into(), 13.0)].into(),
        };
        let h = HalfLives::from_settings(&s).unwrap();
        assert_eq!(h.for_channel("linear_tv"), (hl(60.0), HalfLifeSource::Class(ChannelClass::Tv)));
        assert_eq!(h.for_channel("tv_brand"), (hl(80.0), HalfLifeSource::Channel));
        assert_eq!(h.for_channel("channel_1").0.in_weeks(), 13.0);
        // a joint readout ages with its fastest channel
        assert_eq!(h.for_channels(&["tv", "search"]).unwrap().in_weeks(), 26.0);
        assert!(h.for_channels::<&str>(&[]).is_none());
    }

    #[test]
    fn settings_parse_from_toml_and_reject_unknown_keys() {
        let s: HalfLifeSettings = toml::from_str("classes = { search = 20 }\nchannels = { tv = 40 }").unwrap();
        assert_eq!(HalfLives::from_settings(&s).unwrap().for_channel("search").0.in_weeks(), 20.0);
        assert!(toml::from_str::<HalfLifeSettings>("clases = { search = 20 }").is_err());
    }

    #[test]
    fn readouts_age_by_their_channels_half_life() {
        let r = mmloop_data::LiftTestRecord {
            channels: vec!["paid_search".into(), "tv".into()],
            geos: vec!["a".into()],
            start: "2024-01-01".into(),
            end: "2024-01-28".into(),
            spend_change: 1000.0,
            spend_path: None,
            incremental_kpi: 500.0,
            standard_error: 80.0,
            estimator: "sc".into(),
            source: "x.csv".into(),
        };
        let h = HalfLives::default();
        // as of its own end: unchanged
        let d = decay_readout(&r, "2024-01-28", TimeUnit::Weeks, &h).unwrap();
        assert_eq!((d.record.clone(), d.variance_inflation), (r.clone(), 1.0));
        // 26 weeks later: the joint search+TV readout ages with search's 26 weeks: variance × 2
        let d = decay_readout(&r, "2024-07-28", TimeUnit::Weeks, &h).unwrap();
        assert_eq!(d.half_life.in_weeks(), 26.0);
        assert!((d.record.standard_error.powi(2) / 6400.0 - 2.0).abs() < 1e-12, "{d:?}");
        assert_eq!(d.original_se, 80.0);
        let mut none = r.clone();
        none.channels.clear();
        let e = decay_readout(&none, "2024-07-28", TimeUnit::Weeks, &h).unwrap_err().to_string();
        assert!(e.contains("names no channel") && e.contains("x.csv"), "{e}");
        assert!(decay_readout(&r, "2023-12-01", TimeUnit::Weeks, &h).is_err());
        assert!(d.informative() && d.record.validate().is_ok());
        // 2100 half-lives of search: SE overflows to +inf, the readout is no longer informative
        let old = decay_readout(&r, &(26 * 7 * 2100 + 19750).to_string(), TimeUnit::Days, &h);
        assert!(old.is_err(), "dates and numbers do not mix");
        let mut num = r.clone();
        num.end = "0".into();
        num.start = "0".into();
        let d = decay_readout(&num, &(26 * 2100).to_string(), TimeUnit::Weeks, &h).unwrap();
        assert!(!d.informative() && d.variance_inflation == f64::INFINITY);
    }

    #[test]
    fn age_is_measured_in_the_data_time_unit() {
        // dates: days / 7, whatever the unit
        let a = Age::between("2024-01-01", "2024-07-01", TimeUnit::Weeks).unwrap();
        assert!((a.in_weeks() - 182.0 / 7.0).abs() < 1e-12);
        // numeric weeks and numeric days
        assert_eq!(Age::between("10", "36", TimeUnit::Weeks).unwrap().in_weeks(), 26.0);
        assert_eq!(Age::between("10", "24", TimeUnit::Days).unwrap().in_weeks(), 2.0);
        assert_eq!(Age::between("5", "5", TimeUnit::Weeks).unwrap().in_weeks(), 0.0);
        let e = Age::between("2024-07-01", "2024-01-01", TimeUnit::Days).unwrap_err().to_string();
        assert!(e.contains("after the as-of"), "{e}");
        assert!(matches!(Age::between("10", "2024-01-01", TimeUnit::Days), Err(DecayError::MixedTime { .. })));
        assert!(matches!(Age::between("week 3", "10", TimeUnit::Days), Err(DecayError::BadTime { .. })));
    }
}
