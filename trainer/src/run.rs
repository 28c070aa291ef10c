//! `keel train`: a whole run from a resolved config and a dataset to a finished run directory.
//! Files are written into the staging directory; its rename into place is the commit.

pub use crate::checkpoint::Resume;
use crate::checkpoint::{self, RunState};
use crate::config::TrainConfig;
use crate::data::{Dataset, Mixture, Normalizer};
use crate::eval::{mode_metrics, plot, ModeMetrics};
use crate::export::{export_generator, ExportInfo};
use crate::model::Generator;
use crate::rundir::{self, write_atomic, RunDirWriter};
use crate::sample::sample;
use crate::train::{save_module, Fault, Faults, StepStats, TrainData, Trainer};
use crate::watch::{Verdict, WatchSummary, Watchdog};
use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What `generator.json` records: enough to rebuild and use the generator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratorMeta {
    pub dataset: String,
    pub output_dim: usize,
    /// Column names of the output, one per dimension.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Class names; empty for an unconditional generator.
    #[serde(default)]
    pub classes: Vec<String>,
    pub normalizer: Normalizer,
    pub mixture: Option<Mixture>,
    /// `[channels, length]` of a series generator (rows are channel-major).
    #[serde(default)]
    pub shape: Option<[usize; 2]>,
    /// The `--data` the run trained on (built-in name or absolute path).
    #[serde(default)]
    pub source: String,
    pub seed: u64,
    pub step: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub keel_version: String,
    pub burn_version: String,
    /// The dependencies that shaped the outputs, with versions (`burn 0.22.1, burn-onnx 0.22.1`).
    #[serde(default)]
    pub dependencies: String,
    pub dataset: String,
    pub recipe: String,
    pub seed: u64,
    pub steps: usize,
    pub train_seconds: f64,
    pub generator_steps_per_second: f64,
    pub final_metrics: Option<ModeMetrics>,
    /// NaN when the run diverged unwatched (written as null: JSON has no NaN).
    #[serde(deserialize_with = "nan_from_null")]
    pub final_loss_d: f64,
    #[serde(deserialize_with = "nan_from_null")]
    pub final_loss_g: f64,
    /// What the watchdog saw and did (absent when it was off).
    #[serde(default)]
    pub watch: Option<WatchSummary>,
}

impl Summary {
    /// A run directory's `summary.json`.
    pub fn read(run: &Path) -> Result<Self> {
        let p = run.join(rundir::SUMMARY);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", p.display()))
    }
}

fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

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

/// Seed of the fixed latents used for metric snapshots, so successive snapshots are comparable.
const EVAL_SEED_OFFSET: u64 = 10_000;

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

/// One logged step of the run (rows after a rollback's target are dropped).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    step: usize,
    stats: StepStats,
    metrics: Option<ModeMetrics>,
}

fn metrics_header() -> &'static str {
    "step,loss_d,loss_g,d_real,d_fake,penalty,grad_norm_d,grad_norm_g,lr_g,lr_d,instance_noise,augment_p,d_acc,modes,modes_strict,hq_pct,reverse_kl\n"
}

fn metrics_row(step: usize, s: &StepStats, m: Option<&ModeMetrics>) -> String {
    let mut row = format!(
        "{step},{:.6e},{:.6e},{:.6e},{:.6e},{:.6e},{:.6e},{:.6e},{:.4e},{:.4e},{:.4e},{:.4},{:.4}",
        s.loss_d,
        s.loss_g,
        s.d_real,
        s.d_fake,
        s.penalty,
        s.grad_norm_d,
        s.grad_norm_g,
        s.lr_g,
        s.lr_d,
        s.instance_noise,
        s.augment_p,
        s.d_acc
    );
    match m {
        Some(m) => write!(
            row,
            ",{},{},{:.2},{}",
            m.modes,
            m.modes_strict,
            m.hq_pct,
            m.reverse_kl.map_or(String::new(), |k| format!("{k:.4}"))
        )
        .unwrap(),
        None => row.push_str(",,,,"),
    }
    row.push('\n');
    row
}

fn train_into(
    cfg: &TrainConfig,
    data: &Dataset,
    device: &Device,
    opts: &RunOptions,
    dir: &RunDirWriter,
    from: Option<(&Path, &RunState)>,
) -> Result<Summary> {
    let normalizer = Normalizer::fit_dataset(data);
    let points = normalizer.forward(&data.points);
    let mut watchdog = None;
    let mut trainer = Trainer::new(
        cfg.clone(),
        TrainData::from_dataset(data, points.clone()),
        device.clone(),
    )?;
    trainer.faults = Faults::new(opts.faults.clone());
    if cfg.watch.enabled {
        watchdog = Some(Watchdog::new(
            cfg,
            &trainer,
            &points,
            &data.labels,
            data.dim,
            Some(&dir.path("")),
        )?);
    }
    let eval_device = device.clone().inner();
    let evaluate = |g: &Generator| -> Option<ModeMetrics> {
        let mix = data.mixture.as_ref()?;
        let s = sample(
            g,
            &normalizer,
            cfg.train.eval_samples,
            cfg.train.seed + EVAL_SEED_OFFSET,
            &eval_device,
        );
        Some(mode_metrics(&s, mix))
    };

    let bar = if opts.progress {
        ProgressBar::new(cfg.train.steps as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} eta {eta}  {msg}")
            .expect("valid template"),
    );
    let mut history: Vec<Row> = Vec::new();
    let mut latest: Option<ModeMetrics> = None;
    let mut last = StepStats::default();
    let mut gave_up = None;
    let mut shown_events = 0;
    let mut seconds_before = 0.0;
    if let Some((ckpt, st)) = from {
        checkpoint::restore(ckpt, st, &mut trainer, watchdog.as_mut())?;
        shown_events = watchdog.as_ref().map_or(0, |w| w.events().len());
        history = st.history.clone();
        latest = st.latest.clone();
        last = st.last.clone();
        seconds_before = st.train_seconds;
        bar.set_position(trainer.step as u64);
    }
    let data_crc = checkpoint::data_crc(data);
    let start = Instant::now();
    while trainer.step < cfg.train.steps {
        let stats = trainer.step();
        let step = trainer.step;
        let eval_now = data.mixture.is_some()
            && (step.is_multiple_of(cfg.train.eval_every) || step == cfg.train.steps);
        let metrics = if eval_now {
            evaluate(&trainer.sampling_generator())
        } else {
            None
        };
        if let Some(w) = &mut watchdog {
            let verdict = w.observe(&mut trainer, &stats, metrics.as_ref())?;
            for e in &w.events()[shown_events..] {
                bar.suspend(|| eprintln!("watchdog: {e}"));
            }
            shown_events = w.events().len();
            match verdict {
                Verdict::Healthy => {}
                Verdict::RolledBack { to_step } => {
                    history.retain(|r| r.step <= to_step);
                    latest = history.iter().rev().find_map(|r| r.metrics.clone());
                    bar.set_position(to_step as u64);
                    continue;
                }
                Verdict::GaveUp(why) => {
                    history.retain(|r| r.step <= trainer.step);
                    latest = history.iter().rev().find_map(|r| r.metrics.clone());
                    gave_up = Some(why);
                    break;
                }
            }
        }
        if metrics.is_some() {
            latest = metrics.clone();
        }
        if step.is_multiple_of(cfg.train.log_every) || metrics.is_some() || step == cfg.train.steps
        {
            let mut msg = format!(
                "D {:.3} G {:.3} |∇D| {:.2} |∇G| {:.2}",
                stats.loss_d, stats.loss_g, stats.grad_norm_d, stats.grad_norm_g
            );
            if trainer.augmenter.is_some() {
                write!(msg, " aug p {:.2}", stats.augment_p).unwrap();
            }
            if let Some(m) = &latest {
                write!(
                    msg,
                    "  modes {}/{} HQ {:.1}%",
                    m.modes, m.total_modes, m.hq_pct
                )
                .unwrap();
            }
            if let Some(w) = watchdog.as_ref().filter(|w| !w.events().is_empty()) {
                write!(
                    msg,
                    "  ⚠ {} events, {} rollbacks",
                    w.events().len(),
                    w.rollbacks()
                )
                .unwrap();
            }
            bar.set_message(msg);
            history.push(Row {
                step,
                stats: stats.clone(),
                metrics,
            });
        }
        bar.inc(1);
        last = stats;
        let stop = opts
            .stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed));
        let every = cfg.train.checkpoint_every;
        if stop || (every > 0 && step.is_multiple_of(every) && step < cfg.train.steps) {
            let state = RunState {
                config: cfg.clone(),
                current: trainer.cfg.clone(),
                recipe: opts.recipe.clone(),
                source: data.source.clone(),
                data_crc,
                faults: opts.faults.clone(),
                armed: trainer.faults.clone(),
                step,
                train_seconds: seconds_before + start.elapsed().as_secs_f64(),
                history: history.clone(),
                latest: latest.clone(),
                last: last.clone(),
            };
            checkpoint::save(dir, &trainer, watchdog.as_ref(), &state)?;
            if stop {
                bar.finish_and_clear();
                return Err(Interrupted {
                    step,
                    run: opts.out.clone(),
                }
                .into());
            }
        }
    }
    let train_seconds = seconds_before + start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut csv = String::from(metrics_header());
    for r in &history {
        csv.push_str(&metrics_row(r.step, &r.stats, r.metrics.as_ref()));
    }
    let watch = watchdog.as_ref().map(|w| {
        let mut s = w.summary(&trainer, gave_up.as_deref());
        s.injected = opts.faults.iter().map(|f| f.to_string()).collect();
        s
    });

    let g = trainer.sampling_generator();
    let final_metrics = latest;
    write_atomic(&dir.path(rundir::CONFIG), cfg.to_toml().as_bytes())?;
    write_atomic(&dir.path(rundir::METRICS), csv.as_bytes())?;
    let meta = GeneratorMeta {
        dataset: data.name.clone(),
        output_dim: data.dim,
        columns: data.columns.clone(),
        classes: data.classes.clone(),
        normalizer: normalizer.clone(),
        mixture: data.mixture.clone(),
        shape: data.shape,
        source: data.source.clone(),
        seed: cfg.train.seed,
        step: trainer.step,
    };
    write_atomic(
        &dir.path(rundir::GENERATOR_META),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    save_module(g.clone(), &dir.path(rundir::GENERATOR))?;
    save_module(trainer.g.valid(), &dir.path(rundir::GENERATOR_RAW))?;
    save_module(trainer.d.valid(), &dir.path(rundir::DISCRIMINATOR))?;

    // Plots: samples over the real data, losses over steps.
    let shown = sample(
        &g,
        &normalizer,
        cfg.train.eval_samples,
        cfg.train.seed + EVAL_SEED_OFFSET,
        &eval_device,
    );
    if let Some(shape) = data.shape {
        let title = format!(
            "{} · {} · seed {} · step {} (real grey, generated colour)",
            data.name, opts.recipe, cfg.train.seed, trainer.step
        );
        let fake_labels: Vec<usize> = (0..shown.len() / data.dim)
            .map(|i| i % data.classes.len().max(1))
            .collect();
        crate::eval::series_plot::series_grid(
            &dir.path(rundir::SAMPLES_PNG),
            &title,
            shape,
            &data.classes,
            (&data.points, &data.labels),
            (&shown, &fake_labels),
        )?;
    } else if data.dim >= 2 {
        let shown2: Vec<f32> = shown
            .chunks_exact(data.dim)
            .flat_map(|r| [r[0], r[1]])
            .collect();
        let real: Vec<f32> = data
            .points
            .chunks_exact(data.dim)
            .take(2500)
            .flat_map(|r| [r[0], r[1]])
            .collect();
        let modes = data
            .mixture
            .as_ref()
            .map(|m| m.centres.clone())
            .unwrap_or_default();
        let title = format!(
            "{} · {} · seed {} · step {}",
            data.name, opts.recipe, cfg.train.seed, trainer.step
        );
        plot::scatter(
            &dir.path(rundir::SAMPLES_PNG),
            &title,
            &shown2,
            &real,
            &modes,
        )?;
    }
    let steps: Vec<f64> = history.iter().map(|r| r.step as f64).collect();
    let col = |f: fn(&StepStats) -> f64| history.iter().map(|r| f(&r.stats)).collect();
    let mut series = vec![
        ("loss D", col(|s| s.loss_d)),
        ("loss G", col(|s| s.loss_g)),
        ("D(real)", col(|s| s.d_real)),
        ("D(fake)", col(|s| s.d_fake)),
    ];
    if trainer.augmenter.is_some() {
        series.push(("augment p", col(|s| s.augment_p)));
    }
    // Each watchdog event is marked where it fired, labelled with what it did.
    let marks: Vec<(f64, String)> = watchdog
        .iter()
        .flat_map(|w| w.events())
        .map(|e| {
            let to = e.to_step.map_or(String::new(), |t| format!("→{t}"));
            (
                e.step as f64,
                format!("{} {}{to}", e.finding.kind.name(), e.action),
            )
        })
        .collect();
    plot::lines(
        &dir.path(rundir::LOSSES_PNG),
        &format!("losses · {} · {}", data.name, opts.recipe),
        &steps,
        &series,
        &marks,
    )?;

    let summary = Summary {
        keel_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: dependency_version("burn"),
        dependencies: env!("KEEL_DEP_VERSIONS").to_string(),
        dataset: data.name.clone(),
        recipe: opts.recipe.clone(),
        seed: cfg.train.seed,
        steps: trainer.step,
        train_seconds,
        generator_steps_per_second: trainer.step as f64 / train_seconds.max(1e-9),
        final_metrics,
        final_loss_d: last.loss_d,
        final_loss_g: last.loss_g,
        watch,
    };
    write_atomic(
        &dir.path(rundir::SUMMARY),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let info = ExportInfo {
        meta: &meta,
        config: cfg,
        recipe: &opts.recipe,
        metrics: serde_json::to_value(&summary.final_metrics)?,
    };
    write_atomic(
        &dir.path(crate::export::ONNX_FILE),
        &export_generator(&g, &info)?,
    )?;
    Ok(summary)
}

/// The version of dependency `name` this binary was built with.
fn dependency_version(name: &str) -> String {
    env!("KEEL_DEP_VERSIONS")
        .split(", ")
        .find_map(|d| d.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or("unknown")
        .to_string()
}

/// Loads a run's EMA generator and its metadata for sampling.
pub fn load_generator(
    run: &Path,
    device: &Device,
) -> Result<(TrainConfig, GeneratorMeta, Generator)> {
    let cfg_path = run.join(rundir::CONFIG);
    let text = std::fs::read_to_string(&cfg_path).with_context(|| {
        format!(
            "{} is not a Keel run directory (no {})",
            run.display(),
            rundir::CONFIG
        )
    })?;
    let cfg: TrainConfig =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
    let meta_path = run.join(rundir::GENERATOR_META);
    let meta: GeneratorMeta = serde_json::from_str(
        &std::fs::read_to_string(&meta_path)
            .with_context(|| format!("cannot read {}", meta_path.display()))?,
    )
    .with_context(|| format!("{} is not valid", meta_path.display()))?;
    let mut rng = <rand_pcg::Pcg64Mcg as rand::SeedableRng>::seed_from_u64(0);
    let g = Generator::new(
        &cfg.model,
        meta.classes.len(),
        meta.output_dim,
        &mut rng,
        device,
    );
    let gen_path = run.join(rundir::GENERATOR);
    let g = g
        .try_load_file(&gen_path)
        .map_err(|e| anyhow::anyhow!("cannot load {}: {e:?}", gen_path.display()))?;
    Ok((cfg, meta, g))
}
