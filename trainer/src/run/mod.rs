//! `keel train`: a whole run from a resolved config and a dataset to a finished run directory.
//! Files are written into the staging directory; its rename into place is the commit. The run is
//! the top of the trainer: it calls everything else, and nothing imports it.

mod outputs;
mod plots;
mod progress;

use crate::artifacts::{Row, Summary};
use crate::checkpoint::{self, Resume, RunState};
use crate::config::Schedule;
use crate::config::TrainConfig;
use crate::converge::{Action, Convergence};
use crate::data::{Dataset, Normalizer};
use crate::eval::frechet::FrechetProbe;
use crate::eval::{mode_metrics, ModeMetrics};
use crate::model::Generator;
use crate::rundir::{self, RunDirWriter};
use crate::sample::{sample, EVAL_SEED_OFFSET};
use crate::train::{Fault, Faults, Snapshot, StepStats, TrainData, Trainer};
use crate::watch::{Verdict, Watchdog};
use anyhow::Result;
use burn::tensor::Device;
use progress::Progress;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub struct RunOptions {
    pub out: PathBuf,
    pub force: bool,
    pub recipe: String,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Faults to inject (`--inject`).
    pub faults: Vec<Fault>,
    /// Set by a signal handler: save a checkpoint after the current step and stop.
    pub stop: Option<Arc<AtomicBool>>,
}

/// The run stopped on request (Ctrl-C, SIGTERM) after saving a checkpoint.
#[derive(Debug)]
pub struct Interrupted {
    pub step: usize,
    pub run: PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted at step {}; checkpoint saved. Continue with: keel train --resume {}",
            self.step,
            self.run.display()
        )
    }
}

impl std::error::Error for Interrupted {}

/// Continues an interrupted run to the end.
pub fn resume(
    r: Resume,
    device: &Device,
    progress: bool,
    stop: Option<Arc<AtomicBool>>,
) -> Result<(PathBuf, Summary)> {
    let opts = RunOptions {
        out: r.dir.target.clone(),
        force: false,
        recipe: r.state.recipe.clone(),
        progress,
        faults: r.state.faults.clone(),
        stop,
    };
    let cfg = r.state.config.clone();
    let from = Some((r.ckpt.as_path(), &r.state));
    let result = train_into(&cfg, &r.data, device, &opts, &r.dir, from);
    finish(r.dir, result)
}

pub fn train(
    cfg: &TrainConfig,
    data: &Dataset,
    device: &Device,
    opts: &RunOptions,
) -> Result<(PathBuf, Summary)> {
    let dir = RunDirWriter::create(&opts.out, opts.force)?;
    let result = train_into(cfg, data, device, opts, &dir, None);
    finish(dir, result)
}

/// Commits a finished run; after a failure keeps a run that has a checkpoint to resume from.
fn finish(dir: RunDirWriter, result: Result<Summary>) -> Result<(PathBuf, Summary)> {
    match result {
        Ok(summary) => {
            let run = dir.commit()?;
            // A finished run has nothing to resume: its checkpoint would only take space.
            for d in ["", ".old", ".new"] {
                let _ = std::fs::remove_dir_all(run.join(format!("{}{d}", rundir::RESUME)));
            }
            Ok((run, summary))
        }
        Err(e) if e.is::<Interrupted>() => Err(e),
        Err(e) => match rundir::existing_dir(&dir.path(rundir::RESUME)) {
            Some(_) => Err(e.context(format!(
                "the run failed; its last checkpoint is intact: fix the cause, then keel train --resume {}",
                dir.target.display()
            ))),
            None => {
                dir.abandon();
                Err(e)
            }
        },
    }
}

/// A run in progress: the trainer, its watchdog and what has been recorded so far.
struct Session<'a> {
    cfg: &'a TrainConfig,
    data: &'a Dataset,
    opts: &'a RunOptions,
    dir: &'a RunDirWriter,
    normalizer: Normalizer,
    trainer: Trainer,
    watchdog: Option<Watchdog>,
    progress: Progress,
    history: Vec<Row>,
    latest: Option<ModeMetrics>,
    last: StepStats,
    /// Why the watchdog ended the run early.
    gave_up: Option<String>,
    /// Training time before a resume, and when this process started training.
    seconds_before: f64,
    start: Instant,
    data_crc: u32,
    /// The quality measure (when the run needs one: `auto` steps or the `plateau` schedule).
    measure: Option<Measure>,
    convergence: Convergence,
    /// The trainer at the lowest quality measure so far (`train.keep_best`).
    best: Option<Snapshot>,
    /// The step training reached, once the run ended with an earlier best state instead.
    kept_from: Option<usize>,
}

/// What a run's quality is measured by (lower is better).
enum Measure {
    /// Known modes: missed modes' share + (1 − HQ share) on the fixed latents.
    Modes,
    /// Series: the diagonal Fréchet distance in MiniRocket space (`eval::frechet`).
    Frechet(Box<FrechetProbe>),
}

impl Measure {
    /// The smallest change the measure tells from noise: half a point of HQ share (on 2,500
    /// samples its standard error is ±0.44 points at 95 %); the Fréchet distance compares fixed
    /// latents' windows with fixed real ones, so only the generator moves it.
    fn floor(&self) -> f64 {
        match self {
            Measure::Modes => 0.005,
            Measure::Frechet(_) => 0.0,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Measure::Modes => "missed modes' share + (1 − HQ share), on the fixed latents",
            Measure::Frechet(_) => {
                "diagonal Fréchet distance to the training windows in MiniRocket features"
            }
        }
    }
}

fn train_into(
    cfg: &TrainConfig,
    data: &Dataset,
    device: &Device,
    opts: &RunOptions,
    dir: &RunDirWriter,
    from: Option<(&Path, &RunState)>,
) -> Result<Summary> {
    let mut s = Session::new(cfg, data, device, opts, dir)?;
    if let Some((ckpt, st)) = from {
        s.restore(ckpt, st)?;
    }
    s.train()?;
    outputs::write(&s)
}

impl<'a> Session<'a> {
    fn new(
        cfg: &'a TrainConfig,
        data: &'a Dataset,
        device: &Device,
        opts: &'a RunOptions,
        dir: &'a RunDirWriter,
    ) -> Result<Self> {
        let normalizer = Normalizer::fit_dataset(data);
        let points = normalizer.forward(&data.points);
        let mut trainer = Trainer::new(
            cfg.clone(),
            TrainData::from_dataset(data, points.clone()),
            device.clone(),
        )?;
        trainer.faults = Faults::new(opts.faults.clone());
        let watchdog = match cfg.watch.enabled {
            true => Some(Watchdog::new(
                cfg,
                &trainer,
                &points,
                &data.labels,
                data.dim,
                Some(&dir.path("")),
            )?),
            false => None,
        };
        let measure = Self::measure(cfg, data);
        Ok(Self {
            cfg,
            data,
            opts,
            dir,
            normalizer,
            trainer,
            watchdog,
            measure,
            convergence: Convergence::default(),
            best: None,
            kept_from: None,
            progress: Progress::new(cfg.cap(), opts.progress),
            history: Vec::new(),
            latest: None,
            last: StepStats::default(),
            gave_up: None,
            seconds_before: 0.0,
            start: Instant::now(),
            data_crc: checkpoint::data_crc(data),
        })
    }

    /// The run's quality measure, when `auto` steps or the `plateau` schedule need one; data
    /// with neither known modes nor a series shape has none, and the run says so.
    fn measure(cfg: &TrainConfig, data: &Dataset) -> Option<Measure> {
        let needed = cfg.train.steps.is_auto() || cfg.optim.schedule == Schedule::Plateau;
        if !needed {
            return None;
        }
        if data.mixture.is_some() {
            return Some(Measure::Modes);
        }
        if let Some(shape) = data.shape {
            let probe = FrechetProbe::fit(&data.points, shape, cfg.train.seed);
            return Some(Measure::Frechet(Box::new(probe)));
        }
        eprintln!(
            "warning: {} has no quality measure (no known modes, not series): `train.steps = \"auto\"` trains to `train.max_steps` = {} and the `plateau` schedule keeps its rate",
            data.name,
            cfg.train.max_steps
        );
        None
    }

    /// The quality measure of the sampling generator now (`metrics`: this step's mode metrics).
    fn quality(&self, metrics: Option<&ModeMetrics>) -> Option<f64> {
        match self.measure.as_ref()? {
            Measure::Modes => metrics.map(|m| {
                let missed = (m.total_modes - m.modes) as f64 / m.total_modes.max(1) as f64;
                missed + (1.0 - m.hq_pct / 100.0)
            }),
            Measure::Frechet(probe) => {
                let g = self.trainer.sampling_generator();
                let device = self.trainer.device.clone().inner();
                let seed = self.cfg.train.seed;
                Some(probe.generator_distance(&g, &self.normalizer, seed, &device))
            }
        }
    }

    /// What the summary says about convergence (when the run needed a measure).
    pub(crate) fn convergence_summary(&self) -> Option<crate::artifacts::ConvergenceSummary> {
        let t = &self.cfg.train;
        let needed = t.steps.is_auto() || self.cfg.optim.schedule == Schedule::Plateau;
        if !needed {
            return None;
        }
        let c = &self.convergence;
        let (measure, stopped) = match (&self.measure, &c.stopped) {
            (None, _) => (
                "none: no known modes, not series".to_string(),
                format!(
                    "no quality measure for this data: trained to the cap ({} steps)",
                    self.cfg.cap()
                ),
            ),
            (Some(m), Some(why)) => (m.name().to_string(), why.clone()),
            (Some(m), None) if t.steps.is_auto() => (
                m.name().to_string(),
                format!(
                    "reached the cap, {} steps (train.max_steps = {}, train.max_lr_steps = {}), still improving",
                    self.cfg.cap(),
                    t.max_steps,
                    t.max_lr_steps
                ),
            ),
            (Some(m), None) => (
                m.name().to_string(),
                format!("trained the fixed train.steps = {}", t.steps),
            ),
        };
        Some(crate::artifacts::ConvergenceSummary {
            measure,
            best: c.best,
            best_step: c.best_step,
            lr_cuts: c.cuts,
            stopped,
            kept_step: self.kept_from.map(|_| self.trainer.step),
            kept_measure: self.kept_from.and(c.lowest),
        })
    }

    /// Takes up an interrupted run where its checkpoint left it.
    fn restore(&mut self, ckpt: &Path, st: &RunState) -> Result<()> {
        checkpoint::restore(ckpt, st, &mut self.trainer, self.watchdog.as_mut())?;
        let events = self.watchdog.as_ref().map_or(0, |w| w.events().len());
        self.progress.resumed(self.trainer.step, events);
        self.history = st.history.clone();
        self.latest = st.latest.clone();
        self.last = st.last.clone();
        self.convergence = st.convergence.clone();
        self.best = checkpoint::load_best(ckpt, &self.trainer)?;
        self.seconds_before = st.train_seconds;
        Ok(())
    }

    /// Mode metrics of `g` on fixed latents (`None` when the dataset has no modes).
    fn evaluate(&self, g: &Generator) -> Option<ModeMetrics> {
        let mix = self.data.mixture.as_ref()?;
        Some(mode_metrics(&self.shown_samples(g), mix))
    }

    /// Samples from fixed latents in real units, so successive snapshots are comparable.
    fn shown_samples(&self, g: &Generator) -> Vec<f32> {
        let device = self.trainer.device.clone().inner();
        let seed = self.cfg.train.seed + EVAL_SEED_OFFSET;
        sample(
            g,
            &self.normalizer,
            self.cfg.train.eval_samples,
            seed,
            &device,
        )
    }

    fn train_seconds(&self) -> f64 {
        self.seconds_before + self.start.elapsed().as_secs_f64()
    }

    /// Steps until the configured count (or an `auto` run's convergence or cap), a verdict that
    /// ends the run, or a stop request.
    fn train(&mut self) -> Result<()> {
        self.start = Instant::now();
        let cap = self.cfg.cap();
        while self.trainer.step < cap && self.convergence.stopped.is_none() {
            let stats = self.trainer.step();
            let step = self.trainer.step;
            let eval_due = step.is_multiple_of(self.cfg.train.eval_every) || step == cap;
            let metrics = match eval_due && self.data.mixture.is_some() {
                true => self.evaluate(&self.trainer.sampling_generator()),
                false => None,
            };
            match self.watch(&stats, metrics.as_ref())? {
                Verdict::Healthy => {}
                Verdict::RolledBack { .. } => continue,
                Verdict::GaveUp(_) => break,
            }
            let quality = match eval_due {
                true => self.quality(metrics.as_ref()),
                false => None,
            };
            // The configured rate, not the cut one: patience is about the user's choice of lr.
            self.convergence.step(self.cfg.optim.lr_g);
            self.record(step, &stats, metrics, quality);
            self.progress.inc();
            self.last = stats;
            if let Some(q) = quality {
                self.converge(step, q);
            }
            if self.convergence.stopped.is_none() {
                self.checkpoint(step)?;
            }
        }
        self.keep_best();
        self.progress.finish();
        Ok(())
    }

    /// Whether the run ends with its best evaluated state rather than its last.
    fn keeps_best(&self) -> bool {
        self.cfg.train.steps.is_auto() && self.cfg.train.keep_best && self.measure.is_some()
    }

    /// Ends an `auto` run in the state of its lowest quality measure when its last state is not
    /// that one (a run the watchdog gave up on keeps its last state: it failed).
    fn keep_best(&mut self) {
        if !self.keeps_best() || self.gave_up.is_some() {
            return;
        }
        let last = self.trainer.step;
        // Compared by measure, not step: after a rollback a step can be trained twice.
        let lowest = self.convergence.lowest;
        let last_is_lowest = (self.history.last())
            .is_some_and(|r| r.step == last && r.quality.is_some() && r.quality == lowest);
        let Some(best) = self.best.take().filter(|_| !last_is_lowest) else {
            return;
        };
        self.trainer.resume_from(&best);
        // Fixed latents: the same metrics as that step's evaluation.
        self.latest = self.evaluate(&self.trainer.sampling_generator());
        if let Some(w) = &mut self.watchdog {
            w.ended_with(self.latest.as_ref());
        }
        self.kept_from = Some(last);
    }

    /// Feeds the quality measure to the stop rule: cut the learning rates, or stop.
    fn converge(&mut self, step: usize, quality: f64) {
        let floor = self.measure.as_ref().map_or(0.0, Measure::floor);
        if self.convergence.is_lowest(step, quality) && self.keeps_best() {
            self.best = Some(self.trainer.snapshot());
        }
        match self.convergence.observe(self.cfg, step, quality, floor) {
            Action::Continue => {}
            Action::Cut => {
                let o = &mut self.trainer.cfg.optim;
                o.lr_g *= self.cfg.optim.gamma;
                o.lr_d *= self.cfg.optim.gamma;
                let line = format!(
                    "plateau at step {step}: learning rates cut to {:.2e} / {:.2e} (cut {} of {})",
                    o.lr_g, o.lr_d, self.convergence.cuts, self.cfg.optim.plateau_cuts
                );
                self.progress.note(&line);
            }
            Action::Stop => {
                let why = self.convergence.stopped.clone().unwrap_or_default();
                self.progress.note(&format!("step {step}: {why}"));
            }
        }
    }

    /// The watchdog's verdict on a step; a rollback or a stop drops the rows recorded after it.
    fn watch(&mut self, stats: &StepStats, metrics: Option<&ModeMetrics>) -> Result<Verdict> {
        let Some(w) = &mut self.watchdog else {
            return Ok(Verdict::Healthy);
        };
        let verdict = w.observe(&mut self.trainer, stats, metrics)?;
        self.progress.print_events(w);
        let keep_to = match &verdict {
            Verdict::Healthy => return Ok(verdict),
            Verdict::RolledBack { to_step } => {
                self.progress.set_step(*to_step);
                *to_step
            }
            Verdict::GaveUp(why) => {
                self.gave_up = Some(why.clone());
                self.trainer.step
            }
        };
        self.history.retain(|r| r.step <= keep_to);
        self.latest = self.history.iter().rev().find_map(|r| r.metrics.clone());
        Ok(verdict)
    }

    /// Logs the step (every `log_every`, at each metric snapshot and at the end).
    fn record(
        &mut self,
        step: usize,
        stats: &StepStats,
        metrics: Option<ModeMetrics>,
        quality: Option<f64>,
    ) {
        if metrics.is_some() {
            self.latest = metrics.clone();
        }
        let c = &self.cfg.train;
        if step.is_multiple_of(c.log_every)
            || metrics.is_some()
            || quality.is_some()
            || step == self.cfg.cap()
        {
            let augmenting = self.trainer.augmenter.is_some();
            let w = self.watchdog.as_ref();
            self.progress
                .show(stats, augmenting, self.latest.as_ref(), w);
            self.history.push(Row {
                step,
                stats: stats.clone(),
                metrics,
                quality,
            });
        }
    }

    /// Saves the resumable checkpoint every `checkpoint_every` steps, and on a stop request, after
    /// which the run ends with `Interrupted`.
    fn checkpoint(&mut self, step: usize) -> Result<()> {
        let stop = self
            .opts
            .stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed));
        let every = self.cfg.train.checkpoint_every;
        let due = every > 0 && step.is_multiple_of(every) && step < self.cfg.cap();
        if !stop && !due {
            return Ok(());
        }
        let state = RunState {
            format: checkpoint::CHECKPOINT_FORMAT,
            config: self.cfg.clone(),
            current: self.trainer.cfg.clone(),
            recipe: self.opts.recipe.clone(),
            source: self.data.source.clone(),
            data_crc: self.data_crc,
            faults: self.opts.faults.clone(),
            armed: self.trainer.faults.clone(),
            step,
            train_seconds: self.train_seconds(),
            history: self.history.clone(),
            latest: self.latest.clone(),
            last: self.last.clone(),
            convergence: self.convergence.clone(),
        };
        let (t, w) = (&self.trainer, self.watchdog.as_ref());
        checkpoint::save(self.dir, t, w, self.best.as_ref(), &state)?;
        if stop {
            self.progress.finish();
            return Err(Interrupted {
                step,
                run: self.opts.out.clone(),
            }
            .into());
        }
        Ok(())
    }
}
