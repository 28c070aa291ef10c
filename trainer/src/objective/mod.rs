//! What D and G minimise: the adversarial losses, the gradient penalties and weight penalties.

mod loss;
mod penalty;

pub use loss::{d_loss, g_loss, softplus};
pub use penalty::{grad_sq_penalty, gradient_penalty, r_penalty, weight_penalty};
