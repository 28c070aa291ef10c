//! What a finished run directory holds and how later commands read it back: `generator.json`
//! (`GeneratorMeta`), `summary.json` (`Summary`), `metrics.csv` (`Row`s), the EMA generator.
//! The file names are in `rundir`; the run (`run.rs`) writes these, `export`, `report`, `sweep`
//! and the CLI read them.

use crate::config::TrainConfig;
use crate::data::{Mixture, Normalizer};
use crate::eval::ModeMetrics;
use crate::model::Generator;
use crate::rundir;
use crate::train::StepStats;
use crate::watch::WatchSummary;
use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// File name of the ONNX export inside a run directory.
pub const ONNX_FILE: &str = "generator.onnx";

/// What `generator.json` records: enough to rebuild and use the generator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratorMeta {
    pub dataset: String,
    pub output_dim: usize,
    /// Column names of the output, one per dimension.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Class names; empty for an unconditional generator.
    #[serde(default)]
    pub classes: Vec<String>,
    pub normalizer: Normalizer,
    pub mixture: Option<Mixture>,
    /// `[channels, length]` of a series generator (rows are channel-major).
    #[serde(default)]
    pub shape: Option<[usize; 2]>,
    /// The `--data` the run trained on (built-in name or absolute path).
    #[serde(default)]
    pub source: String,
    pub seed: u64,
    pub step: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub keel_version: String,
    pub burn_version: String,
    /// The dependencies that shaped the outputs, with versions (`burn 0.22.1, burn-onnx 0.22.1`).
    #[serde(default)]
    pub dependencies: String,
    pub dataset: String,
    pub recipe: String,
    pub seed: u64,
    pub steps: usize,
    pub train_seconds: f64,
    pub generator_steps_per_second: f64,
    pub final_metrics: Option<ModeMetrics>,
    /// NaN when the run diverged unwatched (written as null: JSON has no NaN).
    #[serde(deserialize_with = "nan_from_null")]
    pub final_loss_d: f64,
    #[serde(deserialize_with = "nan_from_null")]
    pub final_loss_g: f64,
    /// What the watchdog saw and did (absent when it was off).
    #[serde(default)]
    pub watch: Option<WatchSummary>,
    /// The quality measure that decides when training stops (`train.steps = "auto"`) or when the
    /// `plateau` schedule cuts the learning rates, and what it decided.
    #[serde(default)]
    pub convergence: Option<ConvergenceSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConvergenceSummary {
    /// What was measured (lower is better).
    pub measure: String,
    pub best: Option<f64>,
    pub best_step: usize,
    pub lr_cuts: usize,
    /// Why training ended: converged, the cap, or the fixed count.
    pub stopped: String,
    /// The step whose state the run ended with, when that is not its last (`train.keep_best`:
    /// the lowest measure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_step: Option<usize>,
    /// That state's measure, the lowest of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_measure: Option<f64>,
}

impl Summary {
    /// A run directory's `summary.json`.
    pub fn read(run: &Path) -> Result<Self> {
        let p = run.join(rundir::SUMMARY);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", p.display()))
    }
}

fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The version of dependency `name` this binary was built with.
pub fn dependency_version(name: &str) -> String {
    env!("KEEL_DEP_VERSIONS")
        .split(", ")
        .find_map(|d| d.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or("unknown")
        .to_string()
}

/// One logged step of the run: a line of `metrics.csv` (rows after a rollback's target are dropped).
#[derive(Clone, Serialize, Deserialize)]
pub struct Row {
    pub step: usize,
    pub stats: StepStats,
    pub metrics: Option<ModeMetrics>,
    /// The run's quality measure at an evaluation (lower is better; see `run::converge`).
    #[serde(default)]
    pub quality: Option<f64>,
}

/// `metrics.csv`: a header and one line per row.
pub fn metrics_csv(rows: &[Row]) -> String {
    let mut csv = String::from(
        "step,loss_d,loss_g,d_real,d_fake,penalty,grad_norm_d,grad_norm_g,lr_g,lr_d,instance_noise,augment_p,d_acc,modes,modes_strict,hq_pct,reverse_kl,quality\n",
    );
    for r in rows {
        csv.push_str(&r.csv_line());
    }
    csv
}

impl Row {
    fn csv_line(&self) -> String {
        let s = &self.stats;
        let mut row = format!(
            "{},{:.6e},{:.6e},{:.6e},{:.6e},{:.6e},{:.6e},{:.6e},{:.4e},{:.4e},{:.4e},{:.4},{:.4}",
            self.step,
            s.loss_d,
            s.loss_g,
            s.d_real,
            s.d_fake,
            s.penalty,
            s.grad_norm_d,
            s.grad_norm_g,
            s.lr_g,
            s.lr_d,
            s.instance_noise,
            s.augment_p,
            s.d_acc
        );
        match &self.metrics {
            Some(m) => write!(
                row,
                ",{},{},{:.2},{}",
                m.modes,
                m.modes_strict,
                m.hq_pct,
                m.reverse_kl.map_or(String::new(), |k| format!("{k:.4}"))
            )
            .expect("writing to a String"),
            None => row.push_str(",,,,"),
        }
        match self.quality {
            Some(q) => write!(row, ",{q:.6e}").expect("writing to a String"),
            None => row.push(','),
        }
        row.push('\n');
        row
    }
}

/// Loads a run's EMA generator and its metadata for sampling.
pub fn load_generator(
    run: &Path,
    device: &Device,
) -> Result<(TrainConfig, GeneratorMeta, Generator)> {
    let cfg_path = run.join(rundir::CONFIG);
    let text = std::fs::read_to_string(&cfg_path).with_context(|| {
        format!(
            "{} is not a Keel run directory (no {})",
            run.display(),
            rundir::CONFIG
        )
    })?;
    let cfg: TrainConfig =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
    let meta_path = run.join(rundir::GENERATOR_META);
    let meta: GeneratorMeta = serde_json::from_str(
        &std::fs::read_to_string(&meta_path)
            .with_context(|| format!("cannot read {}", meta_path.display()))?,
    )
    .with_context(|| format!("{} is not valid", meta_path.display()))?;
    let mut rng = <rand_pcg::Pcg64Mcg as rand::SeedableRng>::seed_from_u64(0);
    let g = Generator::new(
        &cfg.model,
        meta.classes.len(),
        meta.output_dim,
        meta.shape,
        &mut rng,
        device,
    )?;
    let gen_path = run.join(rundir::GENERATOR);
    let g = g
        .try_load_file(&gen_path)
        .map_err(|e| anyhow::anyhow!("cannot load {}: {e:?}", gen_path.display()))?;
    Ok((cfg, meta, g))
}
