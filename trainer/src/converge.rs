//! When a run has converged: the quality measure (lower is better) at each evaluation, its best
//! so far, and how far the run has gone without an improvement of `train.min_delta` (relative; at
//! least the measure's noise floor), in steps × lr_g and in evaluations. `train.patience` of that
//! (and four evaluations at least) is a plateau: it cuts the learning rates (the `plateau`
//! schedule) or, after the last cut, stops an `auto` run.
//!
//! Plateaus count only once the measure has halved from its first evaluation: a GAN often
//! wanders before it learns (grid25 at lr 1e-4 stays at 0–7 of 25 modes for 10,000 steps), and
//! that is not convergence. A run that never halves it trains to its cap.
//!
//! It also remembers the lowest measure and its step, whatever the margin: an `auto` run ends with
//! that state (`train.keep_best`), since the evaluations that prove a plateau may be worse ones.
//!
//! Serialised in the checkpoint, so a resumed run stops where the uninterrupted one would.

use crate::config::{Schedule, TrainConfig};
use serde::{Deserialize, Serialize};

/// The fewest stale evaluations that make a plateau, whatever the rate: at lr 3e-3 the measure
/// swings for a few evaluations (ring8: HQ 30 → 10 → 29 %) while the run still learns.
pub const MIN_STALE_EVALUATIONS: usize = 4;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Convergence {
    /// The first evaluation's measure.
    pub first: Option<f64>,
    pub best: Option<f64>,
    pub best_step: usize,
    /// Evaluations since the best (or since the last cut), and Σ lr_g over their steps.
    pub stale: usize,
    pub stale_lr: f64,
    /// Σ lr_g over the steps since the last evaluation.
    pub pending_lr: f64,
    pub cuts: usize,
    /// Why the run stopped before its cap, once it has.
    pub stopped: Option<String>,
    /// The lowest finite measure so far and its step (checkpoints before this field had none).
    #[serde(default)]
    pub lowest: Option<f64>,
    #[serde(default)]
    pub lowest_step: usize,
}

/// What the run does after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Continue,
    /// Multiply both learning rates by `optim.gamma`.
    Cut,
    Stop,
}

impl Convergence {
    /// Counts a generator step taken at rate `lr_g`.
    pub fn step(&mut self, lr_g: f64) {
        self.pending_lr += lr_g;
    }

    /// Whether `loss` at `step` is the lowest measure so far (then remembered as such): the state
    /// to keep if the run ends worse.
    pub fn is_lowest(&mut self, step: usize, loss: f64) -> bool {
        let lower = loss.is_finite() && self.lowest.is_none_or(|l| loss < l);
        if lower {
            self.lowest = Some(loss);
            self.lowest_step = step;
        }
        lower
    }

    /// Takes the quality measure at `step` (non-finite counts as no improvement); `floor` is the
    /// smallest change the measure can tell from noise.
    pub fn observe(&mut self, cfg: &TrainConfig, step: usize, loss: f64, floor: f64) -> Action {
        let t = &cfg.train;
        let lr_steps = std::mem::take(&mut self.pending_lr);
        if self.first.is_none() && loss.is_finite() {
            self.first = Some(loss);
        }
        let improved = loss.is_finite()
            && self
                .best
                .is_none_or(|b| loss < b - (b * t.min_delta).max(floor));
        if improved {
            self.best = Some(loss);
            self.best_step = step;
            self.stale = 0;
            self.stale_lr = 0.0;
            return Action::Continue;
        }
        let learning = matches!((self.first, self.best), (Some(f), Some(b)) if b <= 0.5 * f);
        if !learning {
            return Action::Continue;
        }
        self.stale += 1;
        self.stale_lr += lr_steps;
        if self.stale < MIN_STALE_EVALUATIONS || self.stale_lr < t.patience {
            return Action::Continue;
        }
        let plateau = cfg.optim.schedule == Schedule::Plateau;
        if plateau && self.cuts < cfg.optim.plateau_cuts {
            self.cuts += 1;
            self.stale = 0;
            self.stale_lr = 0.0;
            return Action::Cut;
        }
        if !t.steps.is_auto() {
            self.stale = 0;
            self.stale_lr = 0.0;
            return Action::Continue;
        }
        self.stopped = Some(format!(
            "converged: no {:.0} % improvement in {} evaluations ({:.2} steps × lr_g){} (best {:.4} at step {})",
            100.0 * t.min_delta,
            self.stale,
            self.stale_lr,
            if plateau {
                format!(" after {} learning-rate cuts", self.cuts)
            } else {
                String::new()
            },
            self.best.unwrap_or(f64::NAN),
            self.best_step
        ));
        Action::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigBuilder, Steps};

    fn cfg(steps: Steps, schedule: &str) -> TrainConfig {
        let mut c = ConfigBuilder::new()
            .set(&format!("optim.schedule={schedule}"))
            .unwrap()
            .build()
            .unwrap();
        c.train.steps = steps;
        c.train.patience = 2.0;
        c.train.min_delta = 0.1;
        c.optim.plateau_cuts = 1;
        c
    }

    #[test]
    fn a_plateau_cuts_then_stops_an_auto_run() {
        let c = cfg(Steps::AUTO, "plateau");
        let mut s = Convergence::default();
        // Wandering before it learns (1.1, 1.2, 1.05): no plateau until the measure has halved.
        let seq = [
            1.0, 1.1, 1.2, 1.05, 0.5, 0.48, 0.47, 0.46, 0.49, 0.455, 0.46, 0.47, 0.46,
        ];
        let acts: Vec<Action> = seq
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                s.step(1.0);
                s.observe(&c, i * 100, l, 0.0)
            })
            .collect();
        use Action::*;
        // 0.48 … 0.49 are not 10 % better than 0.5 (below 0.45 needed): a plateau of four
        // evaluations (patience 2 at 1 per evaluation, and the minimum of four) → cut; four more
        // → after the one cut, stop.
        assert_eq!(acts[..5], [Continue; 5]);
        assert_eq!(acts[5..9], [Continue, Continue, Continue, Cut]);
        assert_eq!(acts[9..], [Continue, Continue, Continue, Stop]);
        assert_eq!(s.best_step, 400);
        assert!(s
            .stopped
            .as_deref()
            .unwrap()
            .contains("after 1 learning-rate cuts"));
    }

    #[test]
    fn the_lowest_measure_is_remembered_whatever_the_margin() {
        let mut s = Convergence::default();
        let lows: Vec<bool> = [f64::NAN, 1.0, 0.99, 1.2, 0.99, f64::NEG_INFINITY, 0.5]
            .iter()
            .enumerate()
            .map(|(i, &l)| s.is_lowest(i * 100, l))
            .collect();
        // 0.99 is below the 2 % margin that counts as progress, but it is the lowest yet; a tie
        // keeps the earlier state, and no non-finite value is ever the lowest.
        assert_eq!(lows, [false, true, true, false, false, false, true]);
        assert_eq!((s.lowest, s.lowest_step), (Some(0.5), 600));
    }

    #[test]
    fn a_fixed_run_never_stops_and_nan_is_no_improvement() {
        let c = cfg(Steps::Fixed(10), "constant");
        let mut s = Convergence::default();
        for (i, l) in [1.0, f64::NAN, f64::INFINITY, 2.0, 3.0]
            .into_iter()
            .enumerate()
        {
            s.step(1.0);
            assert_ne!(s.observe(&c, i, l, 0.0), Action::Stop);
        }
        assert_eq!(s.best, Some(1.0));
        assert!(s.stopped.is_none());
    }

    #[test]
    fn changes_below_the_noise_floor_are_no_improvement() {
        let c = cfg(Steps::AUTO, "constant");
        let mut s = Convergence::default();
        let mut observe = |l: f64, floor: f64| {
            s.step(1.0);
            s.observe(&c, 0, l, floor)
        };
        assert_eq!(observe(0.1, 0.0), Action::Continue);
        assert_eq!(observe(0.04, 0.005), Action::Continue);
        // 0.036 is 10 % better than 0.04 but within the floor of 0.005: stale, four times.
        for _ in 0..3 {
            assert_eq!(observe(0.036, 0.005), Action::Continue);
        }
        assert_eq!(observe(0.036, 0.005), Action::Stop);
    }

    #[test]
    fn a_slower_rate_gets_proportionally_longer() {
        let c = cfg(Steps::AUTO, "constant");
        let mut s = Convergence::default();
        {
            s.step(0.1);
            s.observe(&c, 0, 1.0, 0.0)
        };
        {
            s.step(0.1);
            s.observe(&c, 1, 0.4, 0.0)
        };
        // Patience 2.0 at 0.1 per evaluation: 20 stale evaluations, not 2.
        for i in 2..21 {
            assert_eq!(
                {
                    s.step(0.1);
                    s.observe(&c, i, 0.4, 0.0)
                },
                Action::Continue,
                "{i}"
            );
        }
        assert_eq!(
            {
                s.step(0.1);
                s.observe(&c, 21, 0.4, 0.0)
            },
            Action::Stop
        );
    }
}
