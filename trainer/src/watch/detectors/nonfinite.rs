//! NaN or Inf in a step's figures: judged at every step, not only at checks.

use crate::train::StepStats;
use crate::watch::events::{Finding, Kind};

/// The first non-finite figure of a step.
pub(crate) fn nonfinite(s: &StepStats) -> Option<Finding> {
    let figures = [
        ("loss_d", s.loss_d),
        ("loss_g", s.loss_g),
        ("grad_norm_d", s.grad_norm_d),
        ("grad_norm_g", s.grad_norm_g),
        ("d_real", s.d_real),
        ("d_fake", s.d_fake),
    ];
    let (name, v) = figures.iter().find(|(_, v)| !v.is_finite())?;
    // JSON has no NaN: the value is how many of the step's figures are not finite.
    let count = figures.iter().filter(|(_, v)| !v.is_finite()).count();
    Some(Finding {
        kind: Kind::Divergence,
        detector: "non-finite".into(),
        value: count as f64,
        threshold: 0.0,
        detail: format!("{name} is {v}"),
    })
}
