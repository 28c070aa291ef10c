//! What the watchdog saw and did, one JSON object per line in `RUN/events.jsonl`.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// NaN/Inf, a gradient spike or parameters running away.
    Divergence,
    /// D wins outright and G's gradient collapses.
    Vanishing,
    /// Loss swings that do not decay.
    Oscillation,
    /// Generated samples stop covering the data.
    Collapse,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Divergence => "divergence",
            Kind::Vanishing => "vanishing",
            Kind::Oscillation => "oscillation",
            Kind::Collapse => "collapse",
        }
    }
}

/// A detector firing: what it measured against which threshold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// The detector, e.g. `non-finite`, `grad-spike-d`, `param-runaway-g`, `d-wins`, `coverage`.
    pub detector: String,
    pub value: f64,
    pub threshold: f64,
    pub detail: String,
}

/// One line of `events.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Generator step at which the detector fired.
    pub step: usize,
    #[serde(flatten)]
    pub finding: Finding,
    /// `warn`, `rollback`, `stop` or `give-up`.
    pub action: String,
    /// The step the run went back to, on a rollback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_step: Option<usize>,
    /// What the remedy changed, e.g. `optim.lr_g 0.001 → 0.0005`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub changes: Vec<String>,
    /// Rollbacks so far, this one included.
    pub retries: usize,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = &self.finding;
        write!(
            f,
            "step {}: {} ({}: {}) → {}",
            self.step,
            x.kind.name(),
            x.detector,
            x.detail,
            self.action
        )?;
        if let Some(to) = self.to_step {
            write!(f, " to step {to}")?;
        }
        if !self.changes.is_empty() {
            write!(f, "; {}", self.changes.join(", "))?;
        }
        Ok(())
    }
}
