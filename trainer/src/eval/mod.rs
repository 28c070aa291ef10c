//! Evaluation: the PacGAN mode metrics and the plots of a run.

mod modes;
pub mod plot;
pub mod series_plot;

pub use modes::{mode_metrics, ModeMetrics};
pub mod classic;
pub mod classifier;
pub mod frechet;
pub mod gain;
pub mod minirocket;
pub mod series;
