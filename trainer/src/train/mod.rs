//! The training step (D then G), optimizers and schedules, EMA, clipping, and the seeded sampling
//! that makes a run reproducible.

mod clip;
mod ema;
mod optim;
mod sampling;
mod step;

pub use clip::{clip_global_norm, clip_weights, global_norm};
pub use ema::Ema;
pub use optim::{build_optimizer, learning_rate};
pub use sampling::{normal_tensor, uniform_tensor, Batcher};
pub use step::{StepStats, Trainer};
