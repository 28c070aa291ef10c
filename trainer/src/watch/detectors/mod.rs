//! The watchdog's detectors, one type per file behind `Detector`. A check runs them in tiers
//! (`Detectors::tiers`): within a tier every detector sees the check (they keep their own
//! histories), and the first that fires is the finding; a later tier runs only when an earlier one
//! found nothing, so the urgent signals (a gradient spike) pre-empt the slow ones (collapse).

mod collapse;
mod d_wins;
mod grad_spike;
mod loss_swing;
mod mode_drop;
mod nonfinite;
mod param_runaway;

pub(crate) use collapse::{Collapse, Reference};
pub(crate) use d_wins::DWins;
pub(crate) use grad_spike::{GradSpike, Net};
pub(crate) use loss_swing::LossSwing;
pub(crate) use mode_drop::ModeDrop;
pub(crate) use nonfinite::nonfinite;
pub(crate) use param_runaway::ParamRunaway;

use super::events::Finding;
use crate::config::WatchConfig;
use crate::eval::ModeMetrics;
use crate::train::{StepStats, Trainer};
use serde::{Deserialize, Serialize};

/// What one periodic check looks at.
pub(crate) struct Check<'a> {
    pub t: &'a Trainer,
    pub cfg: &'a WatchConfig,
    /// The figures of the steps since the last check.
    pub recent: &'a [StepStats],
    /// Mode metrics of this step, when taken.
    pub modes: Option<&'a ModeMetrics>,
    /// Past `watch.warmup`: slow detectors count strikes only then.
    pub warm: bool,
    /// The loss reads D's output as a logit (its margin can saturate).
    pub logit_loss: bool,
    /// Step and parameter norms `[D, G]` of the trusted snapshot.
    pub confirmed: (usize, [f64; 2]),
    /// Real rows per class, latent seed and row width of the collapse check.
    pub reference: &'a Reference,
    pub seed: u64,
    pub dim: usize,
}

pub(crate) trait Detector {
    /// Looks at one check; returns a finding when the detector fires.
    fn check(&mut self, c: &Check) -> Option<Finding>;
    /// Failing checks in a row that have not fired yet: a snapshot is trusted only at zero.
    fn strikes(&self) -> usize {
        0
    }
    /// After a check that found nothing: learn what healthy looks like.
    fn healthy(&mut self, _c: &Check) {}
    /// After a warning: count strikes from zero again.
    fn forgive(&mut self) {}
    /// After a rollback: forget what was seen since the snapshot.
    fn forget(&mut self) {}
}

/// Every detector's state; it goes into checkpoints, so a resumed run judges as an uninterrupted one.
#[derive(Serialize, Deserialize)]
pub(crate) struct Detectors {
    mode_drop: ModeDrop,
    spike_d: GradSpike,
    spike_g: GradSpike,
    runaway: ParamRunaway,
    d_wins: DWins,
    collapse: Collapse,
    loss_swing: LossSwing,
}

impl Default for Detectors {
    fn default() -> Self {
        Self {
            mode_drop: ModeDrop::default(),
            spike_d: GradSpike::new(Net::D),
            spike_g: GradSpike::new(Net::G),
            runaway: ParamRunaway,
            d_wins: DWins::default(),
            collapse: Collapse::default(),
            loss_swing: LossSwing::default(),
        }
    }
}

impl Detectors {
    /// In order of urgency; within the last tier, the order in which findings win.
    fn tiers(&mut self) -> [Vec<&mut dyn Detector>; 4] {
        [
            vec![&mut self.mode_drop],
            vec![&mut self.spike_d, &mut self.spike_g],
            vec![&mut self.runaway],
            vec![&mut self.d_wins, &mut self.collapse, &mut self.loss_swing],
        ]
    }

    fn all(&mut self) -> impl Iterator<Item = &mut dyn Detector> {
        self.tiers().into_iter().flatten()
    }

    /// The first finding of the first tier that has one.
    pub(crate) fn check(&mut self, c: &Check) -> Option<Finding> {
        for tier in self.tiers() {
            let findings: Vec<Option<Finding>> = tier.into_iter().map(|d| d.check(c)).collect();
            if let Some(f) = findings.into_iter().flatten().next() {
                return Some(f);
            }
        }
        None
    }

    pub(crate) fn striking(&mut self) -> bool {
        self.all().any(|d| d.strikes() > 0)
    }

    /// A slow detector that was counting failing checks when the run ended: (what, checks, patience).
    pub(crate) fn pending(&self, w: &WatchConfig) -> Option<(&'static str, usize, usize)> {
        [
            ("modes", self.mode_drop.strikes(), w.mode_patience),
            ("collapse", self.collapse.strikes(), w.collapse_patience),
            ("vanishing", self.d_wins.strikes(), w.patience),
            ("oscillation", self.loss_swing.strikes(), w.patience),
        ]
        .into_iter()
        .find(|&(_, n, _)| n > 0)
    }

    /// (modes, total, best) when the last mode snapshot fell short of the best one.
    pub(crate) fn short_of_best(&self) -> Option<(usize, usize, usize)> {
        self.mode_drop.short_of_best()
    }

    /// The run ends in a state evaluated as `m` (an earlier one than its last check).
    pub(crate) fn ended_with(&mut self, m: Option<&ModeMetrics>) {
        self.mode_drop.ended_with(m);
    }

    pub(crate) fn healthy(&mut self, c: &Check) {
        self.all().for_each(|d| d.healthy(c));
    }

    pub(crate) fn forgive(&mut self) {
        self.all().for_each(|d| d.forgive());
    }

    pub(crate) fn forget(&mut self) {
        self.all().for_each(|d| d.forget());
    }
}

/// Counts a failing check (only once warm); true when `patience` failing checks in a row are reached.
fn strike(strikes: &mut usize, bad: bool, warm: bool, patience: usize) -> bool {
    *strikes = if bad && warm { *strikes + 1 } else { 0 };
    *strikes >= patience
}

pub(crate) fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}
