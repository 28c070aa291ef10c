//! Optimizers with every hyper-parameter explicit (burn's defaults differ from PyTorch's), and the
//! learning-rate schedule as a pure function of the step, so a resumed run gets the same rate.

use crate::config::{OptimConfig, OptimizerKind, Schedule};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, RmsPropConfig, SgdConfig};

pub fn build_optimizer(cfg: &OptimConfig) -> ModuleOptimizer {
    match cfg.kind {
        OptimizerKind::Adam => ModuleOptimizer::from(super::FusedAdam {
            beta_1: cfg.beta1 as f32,
            beta_2: cfg.beta2 as f32,
            epsilon: cfg.epsilon as f32,
        }),
        OptimizerKind::Rmsprop => RmsPropConfig::new()
            .with_alpha(cfg.rms_alpha as f32)
            .with_momentum(cfg.momentum as f32)
            .with_epsilon(cfg.epsilon as f32)
            .with_centered(false)
            .init(),
        OptimizerKind::Sgd => {
            let momentum = (cfg.momentum > 0.0).then_some(MomentumConfig {
                momentum: cfg.momentum,
                dampening: cfg.dampening,
                nesterov: cfg.nesterov,
            });
            SgdConfig::new().with_momentum(momentum).init()
        }
    }
}

/// The learning rate at generator step `step` of `total`, from base rate `lr`.
pub fn learning_rate(cfg: &OptimConfig, lr: f64, step: usize, total: usize) -> f64 {
    let progress = step as f64 / total.max(1) as f64;
    let floor = lr * cfg.final_lr_fraction;
    match cfg.schedule {
        // Plateau cuts change the base rate itself (the run's current config), not the step's.
        Schedule::Constant | Schedule::Plateau => lr,
        Schedule::Linear => lr + (floor - lr) * progress,
        Schedule::Cosine => {
            floor + (lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
        Schedule::Step => lr * cfg.gamma.powi((step / cfg.step_every) as i32),
    }
}
