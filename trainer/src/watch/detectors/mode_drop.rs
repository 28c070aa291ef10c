//! Collapse seen in the mode metrics (datasets with known modes): fewer modes than the best
//! high-quality count so far, by more than `watch.mode_drop`.

use super::{Check, Detector};
use crate::watch::events::{Finding, Kind};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct ModeDrop {
    /// Most modes captured at a check whose samples were at least `mode_min_hq` % high quality.
    best_modes: usize,
}

impl Detector for ModeDrop {
    fn check(&mut self, c: &Check) -> Option<Finding> {
        let m = c.modes?;
        let floor = self.best_modes as f64 * (1.0 - c.cfg.mode_drop);
        (c.warm && (m.modes as f64) < floor).then(|| Finding {
            kind: Kind::Collapse,
            detector: "modes".into(),
            value: m.modes as f64,
            threshold: floor,
            detail: format!(
                "{}/{} modes, down from {}",
                m.modes, m.total_modes, self.best_modes
            ),
        })
    }

    fn healthy(&mut self, c: &Check) {
        if let Some(m) = c.modes.filter(|m| m.hq_pct >= c.cfg.mode_min_hq) {
            self.best_modes = self.best_modes.max(m.modes);
        }
    }
}
