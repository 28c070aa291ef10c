//! The progress bar of a run: steps, speed, the latest losses and metrics, and the watchdog's events
//! printed above it as they happen.

use crate::eval::ModeMetrics;
use crate::train::StepStats;
use crate::watch::Watchdog;
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;

pub(crate) struct Progress {
    bar: ProgressBar,
    /// Watchdog events already printed.
    shown_events: usize,
}

impl Progress {
    /// A bar over `steps` steps, hidden unless `show`.
    pub(crate) fn new(steps: usize, show: bool) -> Self {
        let bar = if show {
            ProgressBar::new(steps as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} eta {eta}  {msg}")
                .expect("valid template"),
        );
        Self {
            bar,
            shown_events: 0,
        }
    }

    /// Continues from a checkpoint at `step` whose watchdog already knew `events`.
    pub(crate) fn resumed(&mut self, step: usize, events: usize) {
        self.shown_events = events;
        self.bar.set_position(step as u64);
    }

    pub(crate) fn set_step(&self, step: usize) {
        self.bar.set_position(step as u64);
    }

    pub(crate) fn inc(&self) {
        self.bar.inc(1);
    }

    /// Prints the watchdog's events that are new since the last call.
    /// A line above the bar (a learning-rate cut, why the run stopped).
    pub(crate) fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    pub(crate) fn print_events(&mut self, w: &Watchdog) {
        for e in &w.events()[self.shown_events..] {
            self.bar.suspend(|| eprintln!("watchdog: {e}"));
        }
        self.shown_events = w.events().len();
    }

    /// Shows a logged step's figures beside the bar.
    pub(crate) fn show(
        &self,
        stats: &StepStats,
        augmenting: bool,
        latest: Option<&ModeMetrics>,
        watchdog: Option<&Watchdog>,
    ) {
        let mut msg = format!(
            "D {:.3} G {:.3} |∇D| {:.2} |∇G| {:.2}",
            stats.loss_d, stats.loss_g, stats.grad_norm_d, stats.grad_norm_g
        );
        if augmenting {
            write!(msg, " aug p {:.2}", stats.augment_p).expect("writing to a String");
        }
        if let Some(m) = latest {
            write!(
                msg,
                "  modes {}/{} HQ {:.1}%",
                m.modes, m.total_modes, m.hq_pct
            )
            .expect("writing to a String");
        }
        if let Some(w) = watchdog.filter(|w| !w.events().is_empty()) {
            write!(
                msg,
                "  ⚠ {} events, {} rollbacks",
                w.events().len(),
                w.rollbacks()
            )
            .expect("writing to a String");
        }
        self.bar.set_message(msg);
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
