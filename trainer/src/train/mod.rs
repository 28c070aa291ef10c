//! The training step (D then G), optimizers and schedules, EMA, clipping, and the seeded sampling
//! that makes a run reproducible.

mod augment;
mod clip;
mod ema;
mod optim;
mod sampling;
mod step;

pub use augment::{warp_curve, Augmenter};
pub use clip::{clip_global_norm, clip_weights, global_norm};
pub use ema::Ema;
pub use optim::{build_optimizer, learning_rate};
pub use sampling::{normal_tensor, one_hot, uniform_tensor, Batch, Batcher};
pub use step::{StepStats, TrainData, Trainer};
