//! Faults injected on purpose (`keel train --inject KIND@STEP`), to prove that the watchdog catches
//! what goes wrong in real runs. Each fault is transient: it fires once, at the first time the run
//! reaches its step; a rollback clears what is still active and never re-arms it.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Steps that `lr-spike` lasts, and its factor on both learning rates.
pub const LR_SPIKE_STEPS: usize = 20;
pub const LR_SPIKE_FACTOR: f64 = 1000.0;
/// `d-boost`: D updates taken alone (G frozen), at this factor on D's learning rate.
pub const D_BOOST_UPDATES: usize = 300;
pub const D_BOOST_LR: f64 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// Both learning rates × LR_SPIKE_FACTOR for LR_SPIKE_STEPS steps (a bad schedule, a typo).
    LrSpike,
    /// Every value of one real batch is NaN (a corrupt record).
    NanBatch,
    /// D trains alone, far too fast (an unbalanced n_critic or D learning rate).
    DBoost,
}

impl FaultKind {
    pub const ALL: [(FaultKind, &'static str); 3] = [
        (FaultKind::LrSpike, "lr-spike"),
        (FaultKind::NanBatch, "nan-batch"),
        (FaultKind::DBoost, "d-boost"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .expect("listed")
            .1
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// Generator step (0-based: the step that starts at this count) at which it fires.
    pub step: usize,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.kind.name(), self.step)
    }
}

impl std::str::FromStr for Fault {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let names = || {
            FaultKind::ALL
                .iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some((kind, step)) = s.split_once('@') else {
            bail!(
                "--inject `{s}`: expected KIND@STEP, e.g. nan-batch@2000 (kinds: {})",
                names()
            );
        };
        let Some(&(kind, _)) = FaultKind::ALL.iter().find(|(_, n)| *n == kind) else {
            bail!("--inject `{s}`: unknown fault `{kind}`; known: {}", names());
        };
        let Ok(step) = step.parse() else {
            bail!("--inject `{s}`: `{step}` is not a step number");
        };
        Ok(Fault { kind, step })
    }
}

/// The faults of a run and what each has done so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Faults {
    pending: Vec<Fault>,
    /// Steps of `lr-spike` still to run.
    spike_left: usize,
}

impl Faults {
    pub fn new(faults: Vec<Fault>) -> Self {
        Self {
            pending: faults,
            spike_left: 0,
        }
    }

    /// Removes and reports whether a fault of `kind` fires at `step`.
    fn fire(&mut self, kind: FaultKind, step: usize) -> bool {
        match self
            .pending
            .iter()
            .position(|f| f.kind == kind && f.step == step)
        {
            Some(i) => {
                self.pending.remove(i);
                true
            }
            None => false,
        }
    }

    /// Factor on both learning rates at `step`.
    pub fn lr_multiplier(&mut self, step: usize) -> f64 {
        if self.fire(FaultKind::LrSpike, step) {
            self.spike_left = LR_SPIKE_STEPS;
        }
        if self.spike_left > 0 {
            self.spike_left -= 1;
            LR_SPIKE_FACTOR
        } else {
            1.0
        }
    }

    pub fn nan_batch_now(&mut self, step: usize) -> bool {
        self.fire(FaultKind::NanBatch, step)
    }

    pub fn d_boost_now(&mut self, step: usize) -> bool {
        self.fire(FaultKind::DBoost, step)
    }

    /// A rollback ends what is active; faults not yet reached stay armed.
    pub fn clear_active(&mut self) {
        self.spike_left = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_fires_once() {
        let f: Fault = "lr-spike@10".parse().unwrap();
        assert_eq!(f.to_string(), "lr-spike@10");
        let mut faults = Faults::new(vec![f]);
        assert_eq!(faults.lr_multiplier(9), 1.0);
        for s in 10..10 + LR_SPIKE_STEPS {
            assert_eq!(faults.lr_multiplier(s), LR_SPIKE_FACTOR);
        }
        assert_eq!(faults.lr_multiplier(10 + LR_SPIKE_STEPS), 1.0);
        // Reaching step 10 again (after a rollback) does not re-fire it.
        assert_eq!(faults.lr_multiplier(10), 1.0);
        for bad in ["lr-spike", "boom@3", "nan-batch@x"] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }
}
