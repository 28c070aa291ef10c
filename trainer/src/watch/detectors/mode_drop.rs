//! Collapse seen in the mode metrics (datasets with known modes): fewer modes than the best
//! high-quality count so far, by more than `watch.mode_drop`, at `mode_patience` mode snapshots in a
//! row: healthy runs lose a mode or two for a few hundred steps and find them again. A run that
//! ends with fewer modes than its best (inside that tolerance) is told in the verdict, not rolled back.

use super::{strike, Check, Detector};
use crate::eval::ModeMetrics;
use crate::watch::events::{Finding, Kind};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct ModeDrop {
    /// Most modes captured at a check whose samples were at least `mode_min_hq` % high quality.
    best_modes: usize,
    /// Mode snapshots in a row below the floor (checkpoints before this field had none).
    #[serde(default)]
    strikes: usize,
    /// (modes, total) at the last mode snapshot since the trusted one.
    #[serde(default)]
    last: Option<(usize, usize)>,
}

impl ModeDrop {
    /// (modes, total, best) when the last snapshot holds fewer modes than the best so far.
    pub(crate) fn short_of_best(&self) -> Option<(usize, usize, usize)> {
        self.last
            .filter(|&(m, _)| m < self.best_modes)
            .map(|(m, total)| (m, total, self.best_modes))
    }

    /// The state the run ends with was evaluated as `m` (`train.keep_best`).
    pub(crate) fn ended_with(&mut self, m: Option<&ModeMetrics>) {
        if let Some(m) = m {
            self.last = Some((m.modes, m.total_modes));
        }
    }
}

impl Detector for ModeDrop {
    fn check(&mut self, c: &Check) -> Option<Finding> {
        let m = c.modes?;
        self.last = Some((m.modes, m.total_modes));
        let floor = self.best_modes as f64 * (1.0 - c.cfg.mode_drop);
        let low = (m.modes as f64) < floor;
        strike(&mut self.strikes, low, c.warm, c.cfg.mode_patience).then(|| Finding {
            kind: Kind::Collapse,
            detector: "modes".into(),
            value: m.modes as f64,
            threshold: floor,
            detail: format!(
                "{}/{} modes, down from {} ({} snapshots in a row)",
                m.modes, m.total_modes, self.best_modes, self.strikes
            ),
        })
    }

    fn strikes(&self) -> usize {
        self.strikes
    }

    fn healthy(&mut self, c: &Check) {
        if let Some(m) = c.modes.filter(|m| m.hq_pct >= c.cfg.mode_min_hq) {
            self.best_modes = self.best_modes.max(m.modes);
        }
    }

    fn forgive(&mut self) {
        self.strikes = 0;
    }

    fn forget(&mut self) {
        self.strikes = 0;
        self.last = None;
    }
}
