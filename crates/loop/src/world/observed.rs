//! What the MMM sees: the observed history as the mmm crate reads it (the layout of
//! `data/demo_geo.csv`: `date,geo,population,sales,<channel>_spend…`, sorted by date then geo), and
//! an MMM config that fits it (the geo demo's: geometric adstock over the world's max lag, Hill
//! saturation, partial pooling, Laplace). The demand signal is not in the data: that is the point.

use super::WorldError;
use super::generate::{FIRST_WEEK, World};
use mmloop_data::{TimeColumn, TimeKind};
use mmloop_mmm::config::parse_config;
use mmloop_mmm::{Dataset, ModelSpec};
use ndarray::{Array1, Array2, Array3};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// File name of the observed history [`World::write_files`] writes.
pub const DATA_FILE: &str = "world.csv";
/// File name of the MMM config [`World::write_files`] writes.
pub const CONFIG_FILE: &str = "world.toml";

impl World {
    /// The spend column of channel `c`.
    pub fn spend_column(&self, c: usize) -> String {
        format!("{}_spend", self.channels[c].name)
    }

    /// The observed history as CSV text.
    pub fn observed_csv(&self) -> String {
        let mut s = String::from("date,geo,population,sales");
        for c in 0..self.channels.len() {
            s.push(',');
            s.push_str(&self.spend_column(c));
        }
        s.push('\n');
        for t in 0..self.weeks() {
            let date = self.week_label(t);
            for (g, geo) in self.geos.iter().enumerate() {
                let _ = write!(s, "{date},{},{},{:.2}", geo.name, geo.population, self.kpi[g][t]);
                for c in 0..self.channels.len() {
                    let _ = write!(s, ",{:.2}", self.spend[c][g][t]);
                }
                s.push('\n');
            }
        }
        s
    }

    /// The MMM config (TOML) for the observed history stored at `data_path` (relative to the
    /// config's folder, or absolute).
    pub fn mmm_config_toml(&self, data_path: &str) -> String {
        let mut s = String::from(
            "# The MMM config of a simulated mmloop world (mmloop_loop::world). The latent demand that drives\n\
             # part of the spend is not in the data, so the observational fit is biased where spend follows it.\n\n",
        );
        let _ = writeln!(
            s,
            "[data]\npath = {}\ntime = \"date\"\ngeo = \"geo\"\nkpi = \"sales\"\npopulation = \"population\"\n",
            toml_string(data_path)
        );
        let _ = writeln!(
            s,
            "[media]\nadstock = {{ kind = \"geometric\", max_lag = {} }}\nsaturation = {{ kind = \"hill\" }}\n",
            self.spec.max_lag
        );
        for c in 0..self.channels.len() {
            let _ = writeln!(
                s,
                "[[channel]]\nname = {}\nspend = {}\n",
                toml_string(&self.channels[c].name),
                toml_string(&self.spend_column(c))
            );
        }
        s.push_str("[pooling]\nkind = \"complete\"\n\n[fit]\nmethod = \"laplace\"\nseed = 42\n");
        s
    }

    /// The MMM's spec for the history stored at `data_path` (in memory; the file need not exist
    /// for fitting with [`World::dataset`]).
    pub fn model_spec(&self, data_path: &Path) -> Result<ModelSpec, WorldError> {
        let base = data_path.parent().unwrap_or(Path::new("."));
        let name = data_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| DATA_FILE.into());
        parse_config(&self.mmm_config_toml(&name), base).map_err(|e| WorldError::Config(Box::new(e)))
    }

    /// The observed history as the MMM's dataset, in memory: equal to `Dataset::load` of the written
    /// files (a test checks it), with `source` = `data_path`.
    pub fn dataset(&self, data_path: &Path) -> Dataset {
        let (g_n, t_n, c_n) = (self.geos.len(), self.weeks(), self.channels.len());
        let values: Vec<f64> = (0..t_n).map(|t| FIRST_WEEK + 7.0 * t as f64).collect();
        let labels: Vec<String> = (0..t_n).map(|t| self.week_label(t)).collect();
        let spend = Array3::from_shape_fn((g_n, t_n, c_n), |(g, t, c)| self.spend[c][g][t]);
        Dataset {
            source: data_path.to_path_buf(),
            geos: self.geo_names(),
            times: TimeColumn { kind: TimeKind::Date, values, labels },
            channels: self.channel_names(),
            controls: Vec::new(),
            kpi: Array2::from_shape_fn((g_n, t_n), |(g, t)| self.kpi[g][t]),
            media: spend.clone(),
            spend,
            control_values: Array3::zeros((g_n, t_n, 0)),
            population: Some(Array1::from_iter(self.geos.iter().map(|g| g.population))),
            revenue_per_kpi: None,
        }
    }

    /// The regional panel of the whole observed history for test design (KPI `sales`, spend of
    /// `channel`), as `mmloop design` would read [`DATA_FILE`] with `--geo geo --kpi sales`.
    pub fn panel(&self, channel: Option<&str>) -> Result<mmloop_geolift::Panel, WorldError> {
        let chans: Vec<usize> = match channel {
            Some(name) => vec![self.channels.iter().position(|c| c.name == name).ok_or_else(|| WorldError::Test {
                test: format!("panel for {name:?}"),
                message: format!("no such channel (channels: {})", self.channel_names().join(", ")),
            })?],
            None => Vec::new(),
        };
        let mut p = super::experiment::panel(self, 0, self.weeks(), &chans, DATA_FILE)?;
        if channel.is_none() {
            p.spend = None;
        }
        Ok(p)
    }

    /// Writes the observed history ([`DATA_FILE`]), its MMM config ([`CONFIG_FILE`]) and the truth
    /// (`truth.json`) into `dir` (created if missing; each file written atomically). Returns the
    /// (data, config) paths.
    pub fn write_files(&self, dir: &Path) -> Result<(PathBuf, PathBuf), WorldError> {
        let io = |path: &Path, e: std::io::Error| WorldError::Io { path: path.to_path_buf(), source: e };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let (data, config, truth) = (dir.join(DATA_FILE), dir.join(CONFIG_FILE), dir.join("truth.json"));
        let truth_text = serde_json::to_string_pretty(&self.truth()).unwrap_or_default() + "\n";
        for (path, text) in
            [(&data, self.observed_csv()), (&config, self.mmm_config_toml(DATA_FILE)), (&truth, truth_text)]
        {
            mmloop_data::write_atomic(path, text.as_bytes())
                .map_err(|e| WorldError::Io { path: path.clone(), source: std::io::Error::other(e.to_string()) })?;
        }
        Ok((data, config))
    }
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
