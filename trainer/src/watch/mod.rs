//! The stability watchdog: it looks at every step's figures (NaN/Inf at once) and, every
//! `watch.every` steps, at gradient spikes, runaway weights, a discriminator that wins outright,
//! swings that do not decay and samples that stop covering the data. On an event it warns, or rolls
//! the trainer back to its last healthy snapshot and applies the event's remedy, or stops; after
//! `max_retries` rollbacks it gives up with a verdict. Thresholds and remedies: `WatchConfig`.

mod detect;
mod detectors;
pub mod diversity;
mod events;
mod remedy;

pub use detect::{median, oscillation, spike};
pub use events::{Event, Finding, Kind};

use crate::config::{LossKind, TrainConfig, WatchConfig, WatchPolicy};
use crate::eval::ModeMetrics;
use crate::train::{param_norm, Snapshot, StepStats, Trainer};
use anyhow::{Context, Result};
use detectors::{nonfinite, Check, Detectors, Reference};
use remedy::remedy;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the run loop does after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Healthy,
    /// The trainer is back at `to_step`; drop what was recorded after it.
    RolledBack {
        to_step: usize,
    },
    /// End the run (the trainer holds the last healthy state).
    GaveUp(String),
}

/// The watchdog's part of `summary.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WatchSummary {
    pub enabled: bool,
    pub events: usize,
    pub rollbacks: usize,
    /// `healthy`, `recovered`, `warned`, `unsettled: …` (a slow detector counting at the end),
    /// `ended below its best: …` (fewer modes at the last snapshot than at the best one),
    /// `stopped: …` or `gave up: …`.
    pub verdict: String,
    /// Faults injected with `--inject`.
    #[serde(default)]
    pub injected: Vec<String>,
    /// The settings the run ended with (remedies change them).
    pub lr_g: f64,
    pub lr_d: f64,
    pub r1: f64,
    pub gp: f64,
    pub n_critic: usize,
    pub instance_noise: f64,
}

/// Files of a watchdog's part of a checkpoint.
const MEMORY: &str = "memory.cbor";
const CONFIRMED: &str = "confirmed";
const PENDING: &str = "pending";

/// Seed of the fixed latents of the collapse check.
const LATENT_SEED_OFFSET: u64 = 20_000;

pub struct Watchdog {
    cfg: WatchConfig,
    logit_loss: bool,
    dim: usize,
    seed: u64,
    reference: Reference,
    m: Memory,
    /// The trusted snapshot (rollbacks go there) and the one waiting to be trusted.
    confirmed: Snapshot,
    pending: Option<Snapshot>,
    log: Option<std::fs::File>,
    snapshot_dir: Option<PathBuf>,
}

/// What the watchdog has seen so far: all of it goes into a checkpoint, so a resumed run judges
/// exactly as an uninterrupted one.
#[derive(Default, Serialize, Deserialize)]
struct Memory {
    /// Step figures since the last check.
    recent: Vec<StepStats>,
    detectors: Detectors,
    retries: usize,
    nonfinite_warned: bool,
    events: Vec<Event>,
    /// Parameter norms of the confirmed and the pending snapshot.
    confirmed_norms: [f64; 2],
    pending_norms: Option<[f64; 2]>,
}

impl Watchdog {
    /// `reals` are the normalised training rows with `labels` (empty when unlabelled). With
    /// `run_dir`, events go to `events.jsonl` and trusted snapshots to `checkpoint/healthy/`.
    pub fn new(
        cfg: &TrainConfig,
        trainer: &Trainer,
        reals: &[f32],
        labels: &[usize],
        dim: usize,
        run_dir: Option<&Path>,
    ) -> Result<Self> {
        let w = cfg.watch.clone();
        let log = match run_dir {
            Some(d) => {
                let p = d.join(crate::rundir::EVENTS);
                Some(
                    std::fs::File::create(&p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )
            }
            None => None,
        };
        Ok(Self {
            logit_loss: !matches!(
                cfg.loss.kind,
                LossKind::Wasserstein | LossKind::Hinge | LossKind::LeastSquares
            ),
            dim,
            seed: cfg.train.seed + LATENT_SEED_OFFSET,
            reference: Reference::new(reals, labels, dim, w.samples),
            m: Memory {
                confirmed_norms: norms(trainer),
                ..Memory::default()
            },
            confirmed: trainer.snapshot(),
            pending: None,
            log,
            snapshot_dir: run_dir.map(|d| d.join(crate::rundir::HEALTHY)),
            cfg: w,
        })
    }

    /// Writes what a resume needs into `dir`: the memory and both snapshots.
    pub fn save(&self, dir: &Path) -> Result<()> {
        crate::rundir::write_cbor(&dir.join(MEMORY), &self.m)?;
        self.confirmed.save(&dir.join(CONFIRMED))?;
        if let Some(p) = &self.pending {
            p.save(&dir.join(PENDING))?;
        }
        Ok(())
    }

    /// Takes the state `save` wrote (after `new` with the same arguments) and rewrites
    /// `events.jsonl` to the events it knew, dropping any logged after the checkpoint.
    pub fn resume(&mut self, dir: &Path, t: &Trainer) -> Result<()> {
        self.m = crate::rundir::read_cbor(&dir.join(MEMORY))?;
        self.confirmed = Snapshot::load(&dir.join(CONFIRMED), t)?;
        self.pending = match self.m.pending_norms {
            Some(_) => Some(Snapshot::load(&dir.join(PENDING), t)?),
            None => None,
        };
        if let Some(f) = &mut self.log {
            let mut text = String::new();
            for e in &self.m.events {
                text.push_str(&serde_json::to_string(e)?);
                text.push('\n');
            }
            f.set_len(0)?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.flush())
                .context("cannot write events.jsonl")?;
        }
        Ok(())
    }

    pub fn events(&self) -> &[Event] {
        &self.m.events
    }

    pub fn rollbacks(&self) -> usize {
        self.m.retries
    }

    /// Call after every step with its figures and, when taken, the mode metrics.
    pub fn observe(
        &mut self,
        t: &mut Trainer,
        s: &StepStats,
        modes: Option<&ModeMetrics>,
    ) -> Result<Verdict> {
        if let Some(f) = nonfinite(s) {
            if self.cfg.policy == WatchPolicy::Warn && self.m.nonfinite_warned {
                return Ok(Verdict::Healthy);
            }
            self.m.nonfinite_warned = true;
            return self.act(t, f);
        }
        self.m.recent.push(s.clone());
        if !t.step.is_multiple_of(self.cfg.every) {
            return Ok(Verdict::Healthy);
        }
        let c = Check {
            t,
            cfg: &self.cfg,
            recent: &self.m.recent,
            modes,
            warm: t.step >= self.cfg.warmup,
            logit_loss: self.logit_loss,
            confirmed: (self.confirmed.step, self.m.confirmed_norms),
            reference: &self.reference,
            seed: self.seed,
            dim: self.dim,
        };
        let finding = self.m.detectors.check(&c);
        if finding.is_none() {
            self.m.detectors.healthy(&c);
        }
        self.m.recent.clear();
        match finding {
            Some(f) => self.act(t, f),
            None => {
                self.trust(t)?;
                Ok(Verdict::Healthy)
            }
        }
    }

    /// After a healthy check: the pending snapshot becomes the trusted one, and a new one is taken.
    fn trust(&mut self, t: &Trainer) -> Result<()> {
        // A snapshot is trusted once a later check passes with no detector counting strikes: it
        // may hold a fault not yet visible.
        if self.m.detectors.striking() {
            return Ok(());
        }
        if let Some(p) = self.pending.take() {
            if let Some(dir) = &self.snapshot_dir {
                crate::rundir::replace_dir(dir, |tmp| p.save(tmp))?;
            }
            self.confirmed = p;
            self.m.confirmed_norms = self.m.pending_norms.take().unwrap_or_default();
        }
        if t.step.is_multiple_of(self.cfg.snapshot_every) {
            self.pending = Some(t.snapshot());
            self.m.pending_norms = Some(norms(t));
        }
        Ok(())
    }

    fn act(&mut self, t: &mut Trainer, finding: Finding) -> Result<Verdict> {
        let step = t.step;
        let what = format!(
            "{} ({}: {})",
            finding.kind.name(),
            finding.detector,
            finding.detail
        );
        let mut event = Event {
            step,
            finding,
            action: String::new(),
            to_step: None,
            changes: Vec::new(),
            retries: self.m.retries,
        };
        let verdict = match self.cfg.policy {
            WatchPolicy::Warn => {
                self.m.detectors.forgive();
                event.action = "warn".into();
                Verdict::Healthy
            }
            WatchPolicy::Stop => {
                event.action = "stop".into();
                self.go_back(t, &mut event);
                Verdict::GaveUp(format!("stopped at step {step}: {what}"))
            }
            WatchPolicy::Recover if self.m.retries >= self.cfg.max_retries => {
                event.action = "give-up".into();
                self.go_back(t, &mut event);
                Verdict::GaveUp(format!(
                    "gave up at step {step} after {} rollbacks: {what}",
                    self.m.retries
                ))
            }
            WatchPolicy::Recover => {
                self.m.retries += 1;
                event.retries = self.m.retries;
                event.action = "rollback".into();
                self.go_back(t, &mut event);
                event.changes = remedy(&self.cfg, event.finding.kind, t);
                Verdict::RolledBack {
                    to_step: self.confirmed.step,
                }
            }
        };
        self.record(event)?;
        Ok(verdict)
    }

    /// Back to the trusted snapshot, forgetting what was seen since.
    fn go_back(&mut self, t: &mut Trainer, event: &mut Event) {
        t.restore(&self.confirmed, self.m.retries);
        event.to_step = Some(self.confirmed.step);
        self.pending = None;
        self.m.pending_norms = None;
        self.m.recent.clear();
        self.m.detectors.forget();
        self.m.nonfinite_warned = false;
    }

    fn record(&mut self, event: Event) -> Result<()> {
        if let Some(f) = &mut self.log {
            let line = serde_json::to_string(&event)?;
            writeln!(f, "{line}")
                .and_then(|_| f.flush())
                .context("cannot write events.jsonl")?;
        }
        self.m.events.push(event);
        Ok(())
    }

    /// The run ends in an earlier state than its last, evaluated as `m`: the verdict is about it.
    pub fn ended_with(&mut self, m: Option<&ModeMetrics>) {
        self.m.detectors.ended_with(m);
    }

    pub fn summary(&self, t: &Trainer, gave_up: Option<&str>) -> WatchSummary {
        let pending = self.m.detectors.pending(&self.cfg);
        let short = self.m.detectors.short_of_best();
        let verdict = match (gave_up, pending, short) {
            (Some(v), _, _) => v.to_string(),
            // The run ended while a detector was still waiting out its patience: say so, rather
            // than call a run healthy that may be collapsing.
            (None, Some((what, n, of)), _) => {
                format!("unsettled: {what} failing at the last {n} of {of} checks")
            }
            // Fewer modes than it had, within the drop the detector tolerates mid-run: at the end
            // nothing will bring them back, so it is not healthy either.
            (None, None, Some((m, total, best))) => {
                format!("ended below its best: {m}/{total} modes, it had {best}")
            }
            (None, ..) if self.m.events.is_empty() => "healthy".into(),
            (None, ..) if self.m.retries > 0 => "recovered".into(),
            (None, ..) => "warned".into(),
        };
        let c = &t.cfg;
        WatchSummary {
            enabled: true,
            events: self.m.events.len(),
            rollbacks: self.m.retries,
            verdict,
            injected: Vec::new(),
            lr_g: c.optim.lr_g,
            lr_d: c.optim.lr_d,
            r1: c.penalty.r1,
            gp: c.penalty.gp,
            n_critic: c.train.n_critic,
            instance_noise: c.regularize.instance_noise,
        }
    }
}

/// Parameter norms `[D, G]`.
fn norms(t: &Trainer) -> [f64; 2] {
    [param_norm(&t.d), param_norm(&t.g)]
}
