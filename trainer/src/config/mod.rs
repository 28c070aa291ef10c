//! The training configuration: one typed section per file, each field with its default beside it
//! and each section validating itself; recipes (TOML files in `trainer/recipes/`) and the layering
//! `defaults ← recipe ← --config file ← --set key=value`, where an unknown key is an error.

mod augment;
mod layers;
mod loss;
mod model;
mod optim;
mod penalty;
mod recipes;
mod regularize;
mod section;
mod train_loop;
mod watch;

pub use augment::AugmentConfig;
pub use layers::ConfigBuilder;
pub use loss::{LossConfig, LossKind};
pub use model::{Activation, GenKind, ModelConfig};
pub use optim::{OptimConfig, OptimizerKind, Schedule};
pub use penalty::{GpSide, PenaltyConfig};
pub use recipes::{recipe, Recipe, DEFAULT_RECIPE, RECIPES, SERIES_OVERLAYS};
pub use regularize::RegularizeConfig;
pub use train_loop::{Steps, TrainLoopConfig};
pub use watch::{WatchConfig, WatchPolicy};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

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

impl TrainConfig {
    /// The most generator steps this run can take (`train.cap` at the configured lr_g).
    pub fn cap(&self) -> usize {
        self.train.cap(self.optim.lr_g)
    }

    /// Each section checks itself; then what spans sections.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()?;
        self.optim.validate()?;
        self.augment.validate()?;
        self.watch.validate()?;
        self.loss.validate()?;
        self.penalty.validate()?;
        self.regularize.validate()?;
        if self.train.steps.is_auto() && self.optim.schedule.needs_length() {
            bail!(
                "`optim.schedule = {:?}` decays over the run's length, which `train.steps = \"auto\"` does not know: use `plateau` (or `constant`), or a number of steps",
                self.optim.schedule
            );
        }
        if self.model.d_minibatch_std && self.train.batch < 2 {
            bail!("`model.d_minibatch_std` needs `train.batch` ≥ 2");
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}
