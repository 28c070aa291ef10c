//! A gradient-norm spike of one network: the norms since the last check against the recent
//! window's median (robust z and ratio, `detect::spike`). It fires when `spike_steps` steps are
//! above both thresholds in this check, or in this one and the one before. A lone step is a strike
//! and waits for the next check: one outlying batch barely moves an Adam-trained network (its
//! update is bounded by the learning rate), while a diverging one keeps spiking.

use super::{Check, Detector};
use crate::watch::detect::spike;
use crate::watch::events::{Finding, Kind};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Net {
    D,
    G,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct GradSpike {
    net: Net,
    /// The norms of the last `window · every` steps.
    hist: VecDeque<f64>,
    /// Steps above the thresholds at the last check, which did not fire (checkpoints before this
    /// field had none).
    #[serde(default)]
    lone: usize,
}

impl GradSpike {
    pub(crate) fn new(net: Net) -> Self {
        Self {
            net,
            hist: VecDeque::new(),
            lone: 0,
        }
    }
}

impl Detector for GradSpike {
    fn check(&mut self, c: &Check) -> Option<Finding> {
        let (name, net) = match self.net {
            Net::D => ("grad-spike-d", "D"),
            Net::G => ("grad-spike-g", "G"),
        };
        let now: Vec<f64> = c
            .recent
            .iter()
            .map(|s| match self.net {
                Net::D => s.grad_norm_d,
                Net::G => s.grad_norm_g,
            })
            .collect();
        let w = c.cfg;
        // Norms move by orders of magnitude while a GAN finds its feet: judge spikes against at
        // least half a window of history.
        let enough = self.hist.len() >= w.window * w.every / 2;
        let found = spike(self.hist.make_contiguous(), &now, w.spike_z, w.spike_ratio)
            .filter(|s| enough && s.steps > 0);
        let before = std::mem::take(&mut self.lone);
        let found = match found {
            Some(s) if before + s.steps >= w.spike_steps => Some(Finding {
                kind: Kind::Divergence,
                detector: name.into(),
                value: s.ratio,
                threshold: w.spike_ratio,
                detail: format!(
                    "|∇{net}| {:.0}× its median of the last {} steps (robust z {:.1}); \
                     {} steps above {}× at this check{}",
                    s.ratio,
                    self.hist.len(),
                    s.z,
                    s.steps,
                    w.spike_ratio,
                    match before {
                        0 => String::new(),
                        n => format!(", {n} at the one before"),
                    }
                ),
            }),
            Some(s) => {
                self.lone = s.steps;
                None
            }
            None => None,
        };
        self.hist.extend(now);
        while self.hist.len() > w.window * w.every {
            self.hist.pop_front();
        }
        found
    }

    fn strikes(&self) -> usize {
        self.lone
    }

    fn forgive(&mut self) {
        self.lone = 0;
    }

    fn forget(&mut self) {
        self.hist.clear();
        self.lone = 0;
    }
}
