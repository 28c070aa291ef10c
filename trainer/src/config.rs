//! The training configuration: typed sections, recipes (TOML files in `trainer/recipes/`), and the
//! layering `defaults ← recipe ← --config file ← --set key=value`, where an unknown key is an error.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Every key a user can set. `Default` is the plain baseline that recipes start from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub description: String,
    pub model: ModelConfig,
    pub loss: LossConfig,
    pub penalty: PenaltyConfig,
    pub regularize: RegularizeConfig,
    pub optim: OptimConfig,
    pub train: TrainLoopConfig,
    pub augment: AugmentConfig,
    pub watch: WatchConfig,
}

/// What the watchdog does when a detector fires.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WatchPolicy {
    /// Log the event and go on.
    Warn,
    /// Log, roll back to the last healthy snapshot, apply the event's remedy, go on.
    Recover,
    /// Log and end the run with a verdict at the first event.
    Stop,
}

/// The stability watchdog: detectors checked every `every` steps (NaN/Inf every step), each with a
/// threshold below, and the policy that answers them (see README, "Stability watchdog").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    pub enabled: bool,
    pub policy: WatchPolicy,
    /// Generator steps between checks.
    pub every: usize,
    /// Checks in the sliding window of the spike and oscillation detectors.
    pub window: usize,
    /// Consecutive failing checks before the vanishing and oscillation detectors fire …
    pub patience: usize,
    /// … and the collapse detectors (coverage and diversity): healthy runs lose modes for a few
    /// hundred steps and find them again.
    pub collapse_patience: usize,
    /// Steps before the slow detectors start (a GAN's first steps look like all of them).
    pub warmup: usize,
    /// Gradient spike: a step's log-norm this many robust σ (1.4826·MAD) above the median of the
    /// last `window` × `every` steps (judged once half of them are there) …
    pub spike_z: f64,
    /// … and this many times the window median.
    pub spike_ratio: f64,
    /// Parameter runaway: a network's weight norm this many times its norm at the last healthy snapshot.
    pub param_growth: f64,
    /// Vanishing: D's sign accuracy (ADA's r_t, both sides) at or above this over a check …
    pub vanish_acc: f64,
    /// … and G's gradient norm below this fraction of its median over healthy checks …
    pub vanish_grad: f64,
    /// … or, for logit losses, the margin D(real) − D(fake) above this many logits.
    pub vanish_margin: f64,
    /// Oscillation: standard deviation of D's per-check mean loss over the window, detrended and
    /// relative to its mean magnitude (or its step noise, if larger), above this, and not smaller
    /// in the window's second half than in its first.
    pub oscillation: f64,
    /// Collapse: samples drawn (fixed latents) and real rows compared at each check.
    pub samples: usize,
    /// Collapse: coverage (Naeem et al. 2020, k = 5) below this fraction of its best so far, once
    /// that best has reached `coverage_min` …
    pub coverage_drop: f64,
    pub coverage_min: f64,
    /// … or fake/real mean pairwise distance below this, once it has been twice as high; or
    /// captured modes (datasets with known modes) below this fraction of their best so far.
    pub min_diversity: f64,
    pub mode_drop: f64,
    /// Modes are judged only against snapshots with at least this HQ % (while most samples are
    /// between modes, one stray sample counts as a mode).
    pub mode_min_hq: f64,
    /// Steps between in-memory snapshots (a snapshot is trusted once the next check passes too).
    pub snapshot_every: usize,
    /// Rollbacks before the run gives up with a verdict.
    pub max_retries: usize,
    /// Remedy: learning rates × this (divergence, collapse, oscillation).
    pub lr_factor: f64,
    /// Remedy: R1/R2/GP weights × this (vanishing, collapse); R1 = `r1_floor` when none is set.
    pub reg_factor: f64,
    pub r1_floor: f64,
    /// Remedy: instance noise σ raised by this (vanishing; 0 = never).
    pub noise_step: f64,
    /// Remedy: augmentation probability raised by this (vanishing, with augmentation on).
    pub aug_step: f64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            policy: WatchPolicy::Recover,
            every: 50,
            window: 20,
            patience: 3,
            collapse_patience: 20,
            warmup: 1000,
            spike_z: 8.0,
            spike_ratio: 20.0,
            param_growth: 4.0,
            vanish_acc: 0.99,
            vanish_grad: 0.01,
            vanish_margin: 12.0,
            oscillation: 0.5,
            samples: 256,
            coverage_drop: 0.7,
            coverage_min: 0.5,
            min_diversity: 0.2,
            mode_drop: 0.2,
            mode_min_hq: 50.0,
            snapshot_every: 500,
            max_retries: 4,
            lr_factor: 0.5,
            reg_factor: 4.0,
            r1_floor: 0.1,
            noise_step: 0.0,
            aug_step: 0.1,
        }
    }
}

/// Augmentations of every D input, real and fake alike (DiffAugment: differentiable, so G learns
/// through them), for series data. Each transform whose strength is > 0 is applied to each sample
/// with probability `p`; with `ada_target` > 0, `p` follows ADA's controller.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Probability of each transform per sample (the start value when ADA is on).
    pub p: f64,
    /// ADA: raise p when E[sign D(real)] is above this target, lower it below (0 = fixed p).
    pub ada_target: f64,
    /// ADA: real images for p to move from 0 to 1 (Karras et al. use 500k on images).
    pub ada_speed: f64,
    /// ADA: ceiling of p (transforms applied too often leak into what G learns).
    pub p_max: f64,
    /// ADA: D updates between adjustments of p.
    pub ada_interval: usize,
    /// Jitter: σ of Gaussian noise added to every value (normalised units).
    pub jitter: f64,
    /// Scaling: σ of a per-channel factor around 1.
    pub scaling: f64,
    /// Time shift: largest circular shift, as a fraction of the length.
    pub time_shift: f64,
    /// Magnitude warp: σ of the smooth multiplicative curve's knots around 1.
    pub magnitude_warp: f64,
    /// Magnitude warp: interior knots of the curve.
    pub warp_knots: usize,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            p: 0.0,
            ada_target: 0.0,
            ada_speed: 50_000.0,
            p_max: 1.0,
            ada_interval: 4,
            jitter: 0.03,
            scaling: 0.1,
            time_shift: 0.1,
            magnitude_warp: 0.2,
            warp_knots: 4,
        }
    }
}

impl AugmentConfig {
    /// Whether augmentation can ever be applied.
    pub fn enabled(&self) -> bool {
        self.p > 0.0 || self.ada_target > 0.0
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Relu,
    LeakyRelu,
    Tanh,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Size of the latent vector z ~ N(0, I).
    pub latent: usize,
    pub g_width: usize,
    pub g_depth: usize,
    pub g_activation: Activation,
    pub g_batchnorm: bool,
    /// Learned per-unit noise injection after each hidden layer of G (StyleGAN-style).
    pub g_noise: bool,
    pub d_width: usize,
    pub d_depth: usize,
    pub d_activation: Activation,
    /// Negative slope of LeakyReLU (both networks).
    pub leaky_slope: f64,
    /// Minibatch standard deviation feature before D's last layer.
    pub d_minibatch_std: bool,
    /// Spectral normalisation of every D layer, one power iteration per step.
    pub spectral_norm: bool,
    /// Series only: Conv1d layers (stride 2, LeakyReLU/… as d_activation) before D's MLP (0 = none).
    pub d_conv: usize,
    pub d_conv_channels: usize,
    /// Odd kernel size of D's convolutions.
    pub d_conv_kernel: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Non-saturating: G maximises log D(G(z)).
    NonSaturating,
    /// The original minimax game: G minimises log(1 - D(G(z))).
    Minimax,
    Wasserstein,
    Hinge,
    LeastSquares,
    /// Relativistic average GAN (standard/BCE form).
    RelativisticAverage,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    pub kind: LossKind,
    /// One-sided label smoothing: real target 1 - s (BCE and least-squares losses).
    pub label_smoothing: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GpSide {
    /// (‖∇D‖ − 1)², Gulrajani et al.
    TwoSided,
    /// max(0, ‖∇D‖ − 1)², Petzka et al.
    OneSided,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PenaltyConfig {
    /// WGAN-GP weight λ on random interpolates of real and fake (0 = off).
    pub gp: f64,
    pub gp_side: GpSide,
    /// Target norm of the gradient penalty.
    pub gp_target: f64,
    /// R1 weight γ: (γ/2)·E‖∇D(x_real)‖² (0 = off).
    pub r1: f64,
    /// R2 weight γ: (γ/2)·E‖∇D(x_fake)‖² (0 = off).
    pub r2: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegularizeConfig {
    /// WGAN weight clipping of D's parameters to [-c, c] after every D step (0 = off).
    pub weight_clip: f64,
    /// Clip each network's gradients by their *global* L2 norm (0 = off).
    pub grad_clip: f64,
    pub l1_g: f64,
    pub l2_g: f64,
    pub l1_d: f64,
    pub l2_d: f64,
    /// Std of Gaussian instance noise added to every D input, in normalised units (0 = off).
    pub instance_noise: f64,
    /// Steps over which instance noise anneals linearly to 0 (0 = constant).
    pub instance_noise_anneal: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adam,
    Rmsprop,
    Sgd,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    Constant,
    /// Linear decay from lr to lr·final_lr_fraction over the run.
    Linear,
    /// Cosine decay from lr to lr·final_lr_fraction over the run.
    Cosine,
    /// lr·gamma^(step / step_every).
    Step,
}

/// Every optimizer hyper-parameter is explicit: burn's defaults differ from PyTorch's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub kind: OptimizerKind,
    /// Generator learning rate (TTUR: set it apart from lr_d).
    pub lr_g: f64,
    pub lr_d: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// RMSprop smoothing constant.
    pub rms_alpha: f64,
    /// Momentum for RMSprop and SGD.
    pub momentum: f64,
    /// SGD momentum dampening.
    pub dampening: f64,
    pub nesterov: bool,
    pub schedule: Schedule,
    pub final_lr_fraction: f64,
    pub step_every: usize,
    pub gamma: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainLoopConfig {
    /// Generator steps.
    pub steps: usize,
    pub batch: usize,
    /// Discriminator steps per generator step.
    pub n_critic: usize,
    /// EMA decay of generator weights (0 = off). Sampling and export use the EMA copy.
    pub ema: f64,
    /// Step at which the EMA starts tracking (copied from G before that).
    pub ema_start: usize,
    pub seed: u64,
    pub log_every: usize,
    pub eval_every: usize,
    /// Steps between resumable checkpoints (`keel train --resume`); 0 = none.
    pub checkpoint_every: usize,
    /// Generator samples drawn for each metric snapshot (PacGAN: 2500).
    pub eval_samples: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            latent: 2,
            g_width: 128,
            g_depth: 3,
            g_activation: Activation::Relu,
            g_batchnorm: false,
            g_noise: false,
            d_width: 128,
            d_depth: 3,
            d_activation: Activation::Relu,
            leaky_slope: 0.2,
            d_minibatch_std: false,
            spectral_norm: false,
            d_conv: 0,
            d_conv_channels: 32,
            d_conv_kernel: 5,
        }
    }
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            kind: LossKind::NonSaturating,
            label_smoothing: 0.0,
        }
    }
}

impl Default for PenaltyConfig {
    fn default() -> Self {
        Self {
            gp: 0.0,
            gp_side: GpSide::TwoSided,
            gp_target: 1.0,
            r1: 0.0,
            r2: 0.0,
        }
    }
}

impl Default for RegularizeConfig {
    fn default() -> Self {
        Self {
            weight_clip: 0.0,
            grad_clip: 0.0,
            l1_g: 0.0,
            l2_g: 0.0,
            l1_d: 0.0,
            l2_d: 0.0,
            instance_noise: 0.0,
            instance_noise_anneal: 0,
        }
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Adam,
            lr_g: 1e-4,
            lr_d: 1e-4,
            beta1: 0.5,
            beta2: 0.9,
            epsilon: 1e-8,
            rms_alpha: 0.99,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            schedule: Schedule::Constant,
            final_lr_fraction: 0.1,
            step_every: 1000,
            gamma: 0.5,
        }
    }
}

impl Default for TrainLoopConfig {
    fn default() -> Self {
        Self {
            steps: 5000,
            batch: 256,
            n_critic: 1,
            ema: 0.0,
            ema_start: 0,
            seed: 0,
            log_every: 50,
            eval_every: 1000,
            checkpoint_every: 500,
            eval_samples: 2500,
        }
    }
}

/// A named recipe shipped with Keel (`trainer/recipes/NAME.toml`).
pub struct Recipe {
    pub name: &'static str,
    pub toml: &'static str,
}

pub const DEFAULT_RECIPE: &str = "stable";

/// A recipe named `N` is the file `trainer/recipes/N.toml`, built into the binary.
macro_rules! recipe {
    ($name:literal) => {
        Recipe {
            name: $name,
            toml: include_str!(concat!("../recipes/", $name, ".toml")),
        }
    };
}

pub const RECIPES: &[Recipe] = &[
    recipe!("stable"),
    recipe!("vanilla"),
    recipe!("wgan-clip"),
    recipe!("wgan-gp"),
    recipe!("sngan-hinge"),
    recipe!("r1"),
];

/// What a recipe changes for series data (longer outputs, few samples): `NAME.series.toml`.
pub const SERIES_OVERLAYS: &[Recipe] = &[Recipe {
    name: "stable",
    toml: include_str!("../recipes/stable.series.toml"),
}];

pub fn recipe(name: &str) -> Result<&'static Recipe> {
    RECIPES.iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<_> = RECIPES.iter().map(|r| r.name).collect();
        anyhow!(
            "unknown recipe `{name}`; known recipes: {} (see `keel recipes`)",
            names.join(", ")
        )
    })
}

/// Builds a configuration layer by layer; each layer is checked for unknown keys as it is added.
pub struct ConfigBuilder {
    table: toml::Table,
    known: toml::Table,
}

impl ConfigBuilder {
    pub fn new() -> Self {
        let known =
            toml::Table::try_from(TrainConfig::default()).expect("default config serialises");
        Self {
            table: known.clone(),
            known,
        }
    }

    /// Starts from a named recipe.
    pub fn recipe(mut self, name: &str) -> Result<Self> {
        let r = recipe(name)?;
        let t: toml::Table =
            toml::from_str(r.toml).with_context(|| format!("recipe `{name}` is not valid TOML"))?;
        self.merge(t, &format!("recipe `{name}`"))?;
        Ok(self)
    }

    /// A recipe, then its series overlay (`NAME.series.toml`) when training on series and it has one.
    pub fn recipe_for(self, name: &str, series: bool) -> Result<Self> {
        let mut b = self.recipe(name)?;
        if series {
            if let Some(o) = SERIES_OVERLAYS.iter().find(|r| r.name == name) {
                let t: toml::Table = toml::from_str(o.toml)
                    .with_context(|| format!("series overlay of `{name}` is not valid TOML"))?;
                b.merge(t, &format!("recipe `{name}` (series)"))?;
            }
        }
        Ok(b)
    }

    pub fn file(mut self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let t: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))?;
        self.merge(t, &format!("config file {}", path.display()))?;
        Ok(self)
    }

    /// Applies one `section.key=value` override; the value is parsed as TOML (bare words are strings).
    pub fn set(mut self, assignment: &str) -> Result<Self> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            anyhow!("--set `{assignment}`: expected key=value, e.g. --set optim.lr_g=2e-4")
        })?;
        let key = key.trim();
        let value = value.trim();
        let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(mut t) => t.remove("v").expect("just parsed"),
            Err(_) => toml::Value::String(value.to_string()),
        };
        let mut table = toml::Table::new();
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut cursor = &mut table;
        for p in parts {
            cursor = cursor
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("fresh table");
        }
        cursor.insert(last.to_string(), parsed);
        self.merge(table, &format!("--set {key}"))?;
        Ok(self)
    }

    pub fn build(self) -> Result<TrainConfig> {
        let cfg: TrainConfig = self
            .table
            .try_into()
            .map_err(|e| anyhow!("invalid configuration: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn merge(&mut self, layer: toml::Table, origin: &str) -> Result<()> {
        merge_checked(&mut self.table, &self.known, layer, "", origin)
    }
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn merge_checked(
    dst: &mut toml::Table,
    known: &toml::Table,
    layer: toml::Table,
    prefix: &str,
    origin: &str,
) -> Result<()> {
    for (k, v) in layer {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let Some(known_v) = known.get(&k) else {
            let mut keys: Vec<_> = known
                .keys()
                .map(|k| {
                    if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    }
                })
                .collect();
            keys.sort();
            bail!(
                "{origin}: unknown config key `{path}`; valid keys here: {}",
                keys.join(", ")
            );
        };
        match (known_v, v) {
            (toml::Value::Table(kt), toml::Value::Table(vt)) => {
                let d = dst
                    .get_mut(&k)
                    .and_then(|x| x.as_table_mut())
                    .expect("sections exist in defaults");
                merge_checked(d, kt, vt, &path, origin)?;
            }
            (toml::Value::Table(_), _) => bail!("{origin}: `{path}` is a section, not a value"),
            (_, v @ toml::Value::Table(_)) => {
                bail!("{origin}: `{path}` is a value, not a section (got {v})")
            }
            (kv, v) => {
                // Let integers stand for floats (`lr_g=1` means 1.0).
                let v = match (kv, v) {
                    (toml::Value::Float(_), toml::Value::Integer(i)) => {
                        toml::Value::Float(i as f64)
                    }
                    (_, v) => v,
                };
                if std::mem::discriminant(kv) != std::mem::discriminant(&v) {
                    bail!("{origin}: `{path}` expects a {}, got `{v}`", kv.type_str());
                }
                dst.insert(k, v);
            }
        }
    }
    Ok(())
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        let t = &self.train;
        let o = &self.optim;
        let positive = [
            ("model.latent", m.latent),
            ("model.g_width", m.g_width),
            ("model.d_width", m.d_width),
            ("train.batch", t.batch),
            ("train.n_critic", t.n_critic),
            ("train.log_every", t.log_every),
            ("train.eval_every", t.eval_every),
            ("train.eval_samples", t.eval_samples),
            ("optim.step_every", o.step_every),
        ];
        for (k, v) in positive {
            if v == 0 {
                bail!("`{k}` must be at least 1");
            }
        }
        if t.steps == 0 {
            bail!("`train.steps` must be at least 1");
        }
        // Sizes that allocate: a typo must be an error, not an attempt at terabytes.
        let bounded = [
            ("model.latent", m.latent, 4096),
            ("model.g_width", m.g_width, 8192),
            ("model.d_width", m.d_width, 8192),
            ("model.g_depth", m.g_depth, 64),
            ("model.d_depth", m.d_depth, 64),
            ("model.d_conv", m.d_conv, 16),
            ("model.d_conv_channels", m.d_conv_channels, 1024),
            ("model.d_conv_kernel", m.d_conv_kernel, 255),
            ("train.batch", t.batch, 65_536),
            ("train.n_critic", t.n_critic, 100),
            ("train.eval_samples", t.eval_samples, 1_000_000),
            ("watch.samples", self.watch.samples, 100_000),
            ("augment.warp_knots", self.augment.warp_knots, 1024),
        ];
        for (k, v, max) in bounded {
            if v > max {
                bail!("`{k}` = {v} is more than Keel supports ({max})");
            }
        }
        if m.d_conv > 0 && (m.d_conv_channels == 0 || m.d_conv_kernel.is_multiple_of(2)) {
            bail!("`model.d_conv_channels` must be at least 1 and `model.d_conv_kernel` odd");
        }
        if m.d_minibatch_std && t.batch < 2 {
            bail!("`model.d_minibatch_std` needs `train.batch` ≥ 2");
        }
        for (k, v) in [("optim.lr_g", o.lr_g), ("optim.lr_d", o.lr_d)] {
            if !(v > 0.0 && v.is_finite()) {
                bail!("`{k}` must be a positive number, got {v}");
            }
        }
        let a = &self.augment;
        for (k, v) in [("augment.p", a.p), ("augment.ada_target", a.ada_target)] {
            if !(0.0..=1.0).contains(&v) {
                bail!("`{k}` must be in [0, 1], got {v}");
            }
        }
        for (k, v) in [
            ("augment.jitter", a.jitter),
            ("augment.scaling", a.scaling),
            ("augment.time_shift", a.time_shift),
            ("augment.magnitude_warp", a.magnitude_warp),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                bail!("`{k}` must be ≥ 0, got {v}");
            }
        }
        if a.time_shift > 0.5 {
            bail!(
                "`augment.time_shift` must be ≤ 0.5 (a fraction of the length), got {}",
                a.time_shift
            );
        }
        if a.ada_speed.is_nan() || a.ada_speed <= 0.0 || a.ada_interval == 0 || a.warp_knots == 0 {
            bail!("`augment.ada_speed`, `augment.ada_interval` and `augment.warp_knots` must be positive");
        }
        let w = &self.watch;
        for (k, v) in [
            ("watch.every", w.every),
            ("watch.window", w.window),
            ("watch.patience", w.patience),
            ("watch.collapse_patience", w.collapse_patience),
            ("watch.samples", w.samples),
            ("watch.snapshot_every", w.snapshot_every),
        ] {
            if v == 0 {
                bail!("`{k}` must be at least 1");
            }
        }
        if w.samples < 6 {
            bail!("`watch.samples` must be at least 6 (coverage uses 5 nearest neighbours)");
        }
        if !w.snapshot_every.is_multiple_of(w.every) {
            bail!(
                "`watch.snapshot_every` ({}) must be a multiple of `watch.every` ({})",
                w.snapshot_every,
                w.every
            );
        }
        if !(w.lr_factor > 0.0 && w.lr_factor <= 1.0) || w.reg_factor < 1.0 {
            bail!("`watch.lr_factor` must be in (0, 1] and `watch.reg_factor` ≥ 1");
        }
        if !(0.0..1.0).contains(&t.ema) {
            bail!("`train.ema` must be in [0, 1), got {}", t.ema);
        }
        if !(0.0..1.0).contains(&self.loss.label_smoothing) {
            bail!(
                "`loss.label_smoothing` must be in [0, 1), got {}",
                self.loss.label_smoothing
            );
        }
        let nonneg = [
            ("penalty.gp", self.penalty.gp),
            ("penalty.r1", self.penalty.r1),
            ("penalty.r2", self.penalty.r2),
            ("regularize.weight_clip", self.regularize.weight_clip),
            ("regularize.grad_clip", self.regularize.grad_clip),
            ("regularize.l1_g", self.regularize.l1_g),
            ("regularize.l2_g", self.regularize.l2_g),
            ("regularize.l1_d", self.regularize.l1_d),
            ("regularize.l2_d", self.regularize.l2_d),
            ("regularize.instance_noise", self.regularize.instance_noise),
        ];
        for (k, v) in nonneg {
            if !(v >= 0.0 && v.is_finite()) {
                bail!("`{k}` must be ≥ 0, got {v}");
            }
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}
