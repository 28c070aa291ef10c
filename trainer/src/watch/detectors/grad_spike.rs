//! A gradient-norm spike of one network: the largest norm since the last check against the
//! recent window's median (robust z and ratio, `detect::spike`).

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
}

impl GradSpike {
    pub(crate) fn new(net: Net) -> Self {
        Self {
            net,
            hist: VecDeque::new(),
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
        let found = spike(self.hist.make_contiguous(), &now)
            .filter(|&(z, ratio)| enough && z > w.spike_z && ratio > w.spike_ratio)
            .map(|(z, ratio)| Finding {
                kind: Kind::Divergence,
                detector: name.into(),
                value: ratio,
                threshold: w.spike_ratio,
                detail: format!(
                    "|∇{net}| {ratio:.0}× its median of the last {} steps (robust z {z:.1})",
                    self.hist.len()
                ),
            });
        self.hist.extend(now);
        while self.hist.len() > w.window * w.every {
            self.hist.pop_front();
        }
        found
    }

    fn forget(&mut self) {
        self.hist.clear();
    }
}
