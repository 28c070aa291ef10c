//! The training step (D then G), optimizers and schedules, EMA, clipping, and the seeded sampling
//! that makes a run reproducible.

mod augment;
mod clip;
mod denormals;
mod ema;
mod fused_adam;
mod in_place;
pub mod inject;
mod mlp_step;
mod optim;
mod sampling;
mod snapshot;
mod step;

pub use augment::{warp_curve, Augmenter};
pub use clip::{clip_global_norm, clip_if_set, clip_weights, global_norm, param_norm};
pub use ema::Ema;
pub use fused_adam::FusedAdam;
pub use inject::{Fault, FaultKind, Faults};
pub use optim::{build_optimizer, learning_rate};
pub use sampling::{normal_tensor, one_hot, uniform_tensor, Batch, Batcher};
pub use snapshot::{save_module, Snapshot};
pub use step::{StepStats, TrainData, Trainer};
