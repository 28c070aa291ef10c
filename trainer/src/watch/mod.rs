//! The stability watchdog: it looks at every step's figures (NaN/Inf at once) and, every
//! `watch.every` steps, at gradient spikes, runaway weights, a discriminator that wins outright,
//! swings that do not decay and samples that stop covering the data. On an event it warns, or rolls
//! the trainer back to its last healthy snapshot and applies the event's remedy, or stops; after
//! `max_retries` rollbacks it gives up with a verdict. Thresholds and remedies: `WatchConfig`.

mod detect;
pub mod diversity;
mod events;

pub use detect::{median, oscillation, spike};
pub use events::{Event, Finding, Kind};

use crate::config::{LossKind, TrainConfig, WatchConfig, WatchPolicy};
use crate::eval::ModeMetrics;
use crate::sample::generate;
use crate::train::{param_norm, Snapshot, StepStats, Trainer};
use anyhow::{Context, Result};
use diversity::{coverage, knn_radii, mean_pairwise, COVERAGE_K};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
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
    /// `healthy`, `recovered`, `warned`, `stopped: …` or `gave up: …`.
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

/// Real rows per class that generated ones are compared with.
struct Reference {
    rows: Vec<Vec<f32>>,
    radii: Vec<Vec<f32>>,
    spread: Vec<f64>,
    /// Class of each generated row (as many per class as real rows).
    fake_labels: Vec<usize>,
}

/// Files of a watchdog's part of a checkpoint.
const MEMORY: &str = "memory.cbor";
const CONFIRMED: &str = "confirmed";
const PENDING: &str = "pending";

/// Seed of the fixed latents of the collapse check.
const LATENT_SEED_OFFSET: u64 = 20_000;
/// Healthy checks whose mean |∇G| sets the reference of the vanishing detector.
const G_GRAD_MEMORY: usize = 100;

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
    grad_d: VecDeque<f64>,
    grad_g: VecDeque<f64>,
    loss_checks: VecDeque<f64>,
    /// Step-to-step std of D's loss within each of those checks.
    loss_noise: VecDeque<f64>,
    g_grad_healthy: VecDeque<f64>,
    last_coverage: f64,
    best_coverage: f64,
    last_diversity: f64,
    best_diversity: f64,
    best_modes: usize,
    /// Consecutive failing checks of vanishing, oscillation, collapse.
    strikes: [usize; 3],
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
            reference: reference(reals, labels, dim, w.samples),
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
        let finding = self.mode_drop(t.step, modes).or_else(|| self.check(t));
        let g_grad = mean(self.m.recent.iter().map(|s| s.grad_norm_g));
        self.m.recent.clear();
        match finding {
            Some(f) => self.act(t, f),
            None => {
                self.healthy(t, modes, g_grad)?;
                Ok(Verdict::Healthy)
            }
        }
    }

    fn mode_drop(&self, step: usize, modes: Option<&ModeMetrics>) -> Option<Finding> {
        let m = modes?;
        let floor = self.m.best_modes as f64 * (1.0 - self.cfg.mode_drop);
        (step >= self.cfg.warmup && (m.modes as f64) < floor).then(|| Finding {
            kind: Kind::Collapse,
            detector: "modes".into(),
            value: m.modes as f64,
            threshold: floor,
            detail: format!(
                "{}/{} modes, down from {}",
                m.modes, m.total_modes, self.m.best_modes
            ),
        })
    }

    /// The periodic detectors, in order of urgency.
    fn check(&mut self, t: &Trainer) -> Option<Finding> {
        let c = self.cfg.clone();
        let gd: Vec<f64> = self.m.recent.iter().map(|s| s.grad_norm_d).collect();
        let gg: Vec<f64> = self.m.recent.iter().map(|s| s.grad_norm_g).collect();
        let mut found = None;
        for (name, net, hist, now) in [
            ("grad-spike-d", "D", &mut self.m.grad_d, &gd),
            ("grad-spike-g", "G", &mut self.m.grad_g, &gg),
        ] {
            // Norms move by orders of magnitude while a GAN finds its feet: judge spikes against
            // at least half a window of history.
            let enough = hist.len() >= c.window * c.every / 2;
            if let Some((z, ratio)) = spike(hist.make_contiguous(), now).filter(|_| enough) {
                if found.is_none() && z > c.spike_z && ratio > c.spike_ratio {
                    found = Some(Finding {
                        kind: Kind::Divergence,
                        detector: name.into(),
                        value: ratio,
                        threshold: c.spike_ratio,
                        detail: format!(
                            "|∇{net}| {ratio:.0}× its median of the last {} steps (robust z {z:.1})",
                            hist.len()
                        ),
                    });
                }
            }
            hist.extend(now.iter().copied());
            while hist.len() > c.window * c.every {
                hist.pop_front();
            }
        }
        if found.is_some() {
            return found;
        }
        let now = norms(t);
        for (i, net) in ["D", "G"].into_iter().enumerate() {
            let ratio = now[i] / self.m.confirmed_norms[i].max(1e-12);
            if ratio > c.param_growth {
                return Some(Finding {
                    kind: Kind::Divergence,
                    detector: format!("param-runaway-{}", net.to_lowercase()),
                    value: ratio,
                    threshold: c.param_growth,
                    detail: format!(
                        "‖θ{net}‖ {:.3e} is {ratio:.1}× its value at step {}",
                        now[i], self.confirmed.step
                    ),
                });
            }
        }

        // The slow detectors: each needs `patience` failing checks in a row.
        let acc = mean(self.m.recent.iter().map(|s| s.d_acc));
        let g_grad = mean(gg.iter().copied());
        let margin = mean(self.m.recent.iter().map(|s| s.d_real - s.d_fake));
        let g_ref = median(self.m.g_grad_healthy.make_contiguous());
        let starved = g_ref > 0.0 && g_grad < c.vanish_grad * g_ref;
        let saturated = self.logit_loss && margin > c.vanish_margin;
        let wins = acc >= c.vanish_acc && (starved || saturated);

        let loss = mean(self.m.recent.iter().map(|s| s.loss_d));
        let noise = mean(self.m.recent.iter().map(|s| (s.loss_d - loss).powi(2))).sqrt();
        self.m.loss_checks.push_back(loss);
        self.m.loss_noise.push_back(noise);
        while self.m.loss_checks.len() > c.window {
            self.m.loss_checks.pop_front();
            self.m.loss_noise.pop_front();
        }
        let (swing, sustained) = if self.m.loss_checks.len() == c.window {
            let noise = mean(self.m.loss_noise.iter().copied());
            oscillation(self.m.loss_checks.make_contiguous(), noise)
        } else {
            (0.0, false)
        };

        let (cov, div) = self.collapse_signal(t);
        self.m.last_coverage = cov;
        let cov_floor = self.m.best_coverage * (1.0 - c.coverage_drop);
        self.m.last_diversity = div;
        // Both are drops: a generator that has not spread out yet is young, not collapsed.
        let thin = self.m.best_diversity >= 2.0 * c.min_diversity && div < c.min_diversity;
        let collapsed = (self.m.best_coverage >= c.coverage_min && cov < cov_floor) || thin;

        let warm = t.step >= c.warmup;
        let signals = [wins, swing > c.oscillation && sustained, collapsed];
        for (s, bad) in self.m.strikes.iter_mut().zip(signals) {
            *s = if bad && warm { *s + 1 } else { 0 };
        }
        let fired =
            |i: usize| self.m.strikes[i] >= [c.patience, c.patience, c.collapse_patience][i];
        if fired(0) {
            let why = if starved {
                format!("|∇G| {g_grad:.2e} < {} × {g_ref:.2e}", c.vanish_grad)
            } else {
                format!("margin D(real) − D(fake) {margin:.1} > {}", c.vanish_margin)
            };
            return Some(Finding {
                kind: Kind::Vanishing,
                detector: "d-wins".into(),
                value: acc,
                threshold: c.vanish_acc,
                detail: format!("D sign accuracy {acc:.3} and {why}, {} checks", c.patience),
            });
        }
        if fired(2) {
            let (detector, value, threshold, detail) = if thin {
                (
                    "diversity",
                    div,
                    c.min_diversity,
                    format!("fake/real mean pairwise distance {div:.3}"),
                )
            } else {
                (
                    "coverage",
                    cov,
                    cov_floor,
                    format!(
                        "coverage {cov:.3}, best {:.3}{}",
                        self.m.best_coverage,
                        if self.reference.rows.len() > 1 {
                            " (worst class)"
                        } else {
                            ""
                        }
                    ),
                )
            };
            return Some(Finding {
                kind: Kind::Collapse,
                detector: detector.into(),
                value,
                threshold,
                detail,
            });
        }
        if fired(1) {
            return Some(Finding {
                kind: Kind::Oscillation,
                detector: "loss-swing".into(),
                value: swing,
                threshold: c.oscillation,
                detail: format!(
                    "D loss swings {swing:.2} of its mean over {} checks and does not decay",
                    c.window
                ),
            });
        }
        None
    }

    /// Coverage and diversity of samples from fixed latents, the worst class's.
    fn collapse_signal(&self, t: &Trainer) -> (f64, f64) {
        let r = &self.reference;
        let g = t.sampling_generator();
        let fakes = generate(&g, &r.fake_labels, self.seed, &t.device.clone().inner());
        let (mut cov, mut div) = (f64::INFINITY, f64::INFINITY);
        let mut at = 0;
        for k in 0..r.rows.len() {
            let n = r.rows[k].len();
            let f = &fakes[at..at + n];
            at += n;
            cov = cov.min(coverage(&r.rows[k], &r.radii[k], f, self.dim));
            div = div.min(mean_pairwise(f, self.dim) / r.spread[k].max(1e-12));
        }
        (cov, div)
    }

    fn healthy(&mut self, t: &Trainer, modes: Option<&ModeMetrics>, g_grad: f64) -> Result<()> {
        self.m.g_grad_healthy.push_back(g_grad);
        while self.m.g_grad_healthy.len() > G_GRAD_MEMORY {
            self.m.g_grad_healthy.pop_front();
        }
        self.m.best_coverage = self.m.best_coverage.max(self.m.last_coverage);
        self.m.best_diversity = self.m.best_diversity.max(self.m.last_diversity);
        if let Some(m) = modes.filter(|m| m.hq_pct >= self.cfg.mode_min_hq) {
            self.m.best_modes = self.m.best_modes.max(m.modes);
        }
        // A snapshot is trusted once a later check passes with no detector counting strikes: it
        // may hold a fault not yet visible.
        if self.m.strikes.iter().any(|&s| s > 0) {
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
                self.m.strikes = [0; 3];
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
        self.m.grad_d.clear();
        self.m.grad_g.clear();
        self.m.loss_checks.clear();
        self.m.loss_noise.clear();
        self.m.strikes = [0; 3];
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

    pub fn summary(&self, t: &Trainer, gave_up: Option<&str>) -> WatchSummary {
        let verdict = match gave_up {
            Some(v) => v.to_string(),
            None if self.m.events.is_empty() => "healthy".into(),
            None if self.m.retries > 0 => "recovered".into(),
            None => "warned".into(),
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

/// Changes the trainer's settings for what went wrong; returns what it changed.
fn remedy(w: &WatchConfig, kind: Kind, t: &mut Trainer) -> Vec<String> {
    let mut changes = Vec::new();
    let c = &mut t.cfg;
    let mut set = |name: &str, v: &mut f64, new: f64| {
        changes.push(format!("{name} {} → {}", fmt(*v), fmt(new)));
        *v = new;
    };
    let lower_lr = matches!(kind, Kind::Divergence | Kind::Oscillation | Kind::Collapse);
    let regularize = matches!(kind, Kind::Vanishing | Kind::Collapse);
    if lower_lr {
        let (g, d) = (c.optim.lr_g, c.optim.lr_d);
        set("optim.lr_g", &mut c.optim.lr_g, g * w.lr_factor);
        set("optim.lr_d", &mut c.optim.lr_d, d * w.lr_factor);
    }
    if regularize {
        let p = &mut c.penalty;
        if p.r1 == 0.0 && p.r2 == 0.0 && p.gp == 0.0 {
            set("penalty.r1", &mut p.r1, w.r1_floor);
        } else {
            for (name, v) in [
                ("penalty.r1", &mut p.r1),
                ("penalty.r2", &mut p.r2),
                ("penalty.gp", &mut p.gp),
            ] {
                if *v > 0.0 {
                    let new = *v * w.reg_factor;
                    set(name, v, new);
                }
            }
        }
    }
    if kind == Kind::Vanishing {
        if w.noise_step > 0.0 {
            let n = c.regularize.instance_noise;
            set(
                "regularize.instance_noise",
                &mut c.regularize.instance_noise,
                n + w.noise_step,
            );
        }
        if c.train.n_critic > 1 {
            changes.push(format!(
                "train.n_critic {} → {}",
                c.train.n_critic,
                c.train.n_critic - 1
            ));
            c.train.n_critic -= 1;
        }
        let p_max = c.augment.p_max;
        if let Some(a) = &mut t.augmenter {
            let new = (a.p + w.aug_step).min(p_max);
            changes.push(format!("augment p {:.2} → {new:.2}", a.p));
            a.p = new;
        }
    }
    changes
}

/// The shortest form that reads back as `v`: `5e-4`, `2.5e-4`.
fn fmt(v: f64) -> String {
    format!("{v:e}")
}

fn norms(t: &Trainer) -> [f64; 2] {
    [param_norm(&t.d), param_norm(&t.g)]
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// The first non-finite figure of a step.
fn nonfinite(s: &StepStats) -> Option<Finding> {
    let figures = [
        ("loss_d", s.loss_d),
        ("loss_g", s.loss_g),
        ("grad_norm_d", s.grad_norm_d),
        ("grad_norm_g", s.grad_norm_g),
        ("d_real", s.d_real),
        ("d_fake", s.d_fake),
    ];
    let (name, v) = figures.iter().find(|(_, v)| !v.is_finite())?;
    // JSON has no NaN: the value is how many of the step's figures are not finite.
    let count = figures.iter().filter(|(_, v)| !v.is_finite()).count();
    Some(Finding {
        kind: Kind::Divergence,
        detector: "non-finite".into(),
        value: count as f64,
        threshold: 0.0,
        detail: format!("{name} is {v}"),
    })
}

/// Up to `samples` real rows spread evenly over the data, grouped by class (one group when
/// unlabelled); every group keeps at least COVERAGE_K + 1 rows when it has them.
fn reference(reals: &[f32], labels: &[usize], dim: usize, samples: usize) -> Reference {
    let n = reals.len() / dim;
    let groups = labels.iter().copied().max().map_or(1, |m| m + 1);
    let per = (samples / groups).max(COVERAGE_K + 1);
    let rows: Vec<Vec<f32>> = (0..groups)
        .map(|k| {
            let idx: Vec<usize> = (0..n)
                .filter(|&i| labels.get(i).is_none_or(|&l| l == k))
                .collect();
            let take = per.min(idx.len());
            (0..take)
                .flat_map(|j| {
                    let i = idx[j * idx.len() / take];
                    reals[i * dim..(i + 1) * dim].iter().copied()
                })
                .collect()
        })
        .collect();
    let radii = rows.iter().map(|r| knn_radii(r, dim, COVERAGE_K)).collect();
    let spread = rows.iter().map(|r| mean_pairwise(r, dim)).collect();
    let fake_labels = rows
        .iter()
        .enumerate()
        .flat_map(|(k, r)| std::iter::repeat_n(k, r.len() / dim))
        .collect();
    Reference {
        rows,
        radii,
        spread,
        fake_labels,
    }
}
