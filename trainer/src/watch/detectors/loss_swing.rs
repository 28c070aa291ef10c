//! Oscillation: D's loss, averaged per check, swings by more than `watch.oscillation` of its scale
//! over a window of checks and does not decay (`detect::oscillation`), for `patience` checks.

use super::{mean, strike, Check, Detector};
use crate::watch::detect::oscillation;
use crate::watch::events::{Finding, Kind};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct LossSwing {
    strikes: usize,
    /// D's mean loss per check, and its step-to-step std within each check.
    loss_checks: VecDeque<f64>,
    loss_noise: VecDeque<f64>,
}

impl Detector for LossSwing {
    fn check(&mut self, c: &Check) -> Option<Finding> {
        let w = c.cfg;
        let loss = mean(c.recent.iter().map(|s| s.loss_d));
        let noise = mean(c.recent.iter().map(|s| (s.loss_d - loss).powi(2))).sqrt();
        self.loss_checks.push_back(loss);
        self.loss_noise.push_back(noise);
        while self.loss_checks.len() > w.window {
            self.loss_checks.pop_front();
            self.loss_noise.pop_front();
        }
        let (swing, sustained) = if self.loss_checks.len() == w.window {
            let noise = mean(self.loss_noise.iter().copied());
            oscillation(self.loss_checks.make_contiguous(), noise)
        } else {
            (0.0, false)
        };
        let bad = swing > w.oscillation && sustained;
        strike(&mut self.strikes, bad, c.warm, w.patience).then(|| Finding {
            kind: Kind::Oscillation,
            detector: "loss-swing".into(),
            value: swing,
            threshold: w.oscillation,
            detail: format!(
                "D loss swings {swing:.2} of its mean over {} checks and does not decay",
                w.window
            ),
        })
    }

    fn strikes(&self) -> usize {
        self.strikes
    }

    fn forgive(&mut self) {
        self.strikes = 0;
    }

    fn forget(&mut self) {
        self.strikes = 0;
        self.loss_checks.clear();
        self.loss_noise.clear();
    }
}
