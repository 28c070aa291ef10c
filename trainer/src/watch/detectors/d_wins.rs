//! Vanishing gradients: D wins outright (sign accuracy ≥ `vanish_acc`) while G's gradient has
//! collapsed against its healthy level or a logit loss's margin has saturated, for `patience`
//! checks in a row.

use super::{mean, strike, Check, Detector};
use crate::watch::detect::median;
use crate::watch::events::{Finding, Kind};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Healthy checks whose mean |∇G| sets the reference of the vanishing detector.
const G_GRAD_MEMORY: usize = 100;

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct DWins {
    strikes: usize,
    /// Mean |∇G| of recent healthy checks.
    g_grad_healthy: VecDeque<f64>,
}

fn g_grad(c: &Check) -> f64 {
    mean(c.recent.iter().map(|s| s.grad_norm_g))
}

impl Detector for DWins {
    fn check(&mut self, c: &Check) -> Option<Finding> {
        let w = c.cfg;
        let acc = mean(c.recent.iter().map(|s| s.d_acc));
        let g_grad = g_grad(c);
        let margin = mean(c.recent.iter().map(|s| s.d_real - s.d_fake));
        let g_ref = median(self.g_grad_healthy.make_contiguous());
        let starved = g_ref > 0.0 && g_grad < w.vanish_grad * g_ref;
        let saturated = c.logit_loss && margin > w.vanish_margin;
        let wins = acc >= w.vanish_acc && (starved || saturated);
        if !strike(&mut self.strikes, wins, c.warm, w.patience) {
            return None;
        }
        let why = if starved {
            format!("|∇G| {g_grad:.2e} < {} × {g_ref:.2e}", w.vanish_grad)
        } else {
            format!("margin D(real) − D(fake) {margin:.1} > {}", w.vanish_margin)
        };
        Some(Finding {
            kind: Kind::Vanishing,
            detector: "d-wins".into(),
            value: acc,
            threshold: w.vanish_acc,
            detail: format!("D sign accuracy {acc:.3} and {why}, {} checks", w.patience),
        })
    }

    fn strikes(&self) -> usize {
        self.strikes
    }

    fn healthy(&mut self, c: &Check) {
        self.g_grad_healthy.push_back(g_grad(c));
        while self.g_grad_healthy.len() > G_GRAD_MEMORY {
            self.g_grad_healthy.pop_front();
        }
    }

    fn forgive(&mut self) {
        self.strikes = 0;
    }

    fn forget(&mut self) {
        self.strikes = 0;
    }
}
