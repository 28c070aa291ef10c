use super::device::{training_device, DeviceKind};
use anyhow::{bail, Context, Result};
use keel_trainer::artifacts::{Summary, ONNX_FILE};
use keel_trainer::checkpoint::Resume;
use keel_trainer::config::{ConfigBuilder, TrainConfig, DEFAULT_RECIPE};
use keel_trainer::data;
use keel_trainer::data::Dataset;
use keel_trainer::eval::classifier::Fit;
use keel_trainer::report::{evaluate, EvalOptions};
use keel_trainer::run::{resume, train, RunOptions};
use keel_trainer::rundir;
use keel_trainer::train::Fault;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Named recipe to start from (see `keel recipes`).
    #[arg(long, default_value = DEFAULT_RECIPE)]
    recipe: String,
    /// TOML file whose keys override the recipe.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A built-in dataset (basicmotions, sines, arrowhead, japanesevowels, ring8, grid25), or a
    /// file: a labelled-series CSV (`split,label,c0_t0,…`), a UEA `.ts` file, or a plain N×D CSV.
    #[arg(long, default_value = "basicmotions")]
    data: String,
    /// Generator steps, or `auto`: until the quality measure stops improving, at most
    /// train.max_steps (overrides train.steps).
    #[arg(long)]
    steps: Option<String>,
    /// Seed of every random draw in the run (overrides train.seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Run directory to write [default: runs/<data>-<recipe>-s<seed>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the run directory if it exists.
    #[arg(long)]
    force: bool,
    /// Override any config key, e.g. `--set optim.lr_g=2e-4` (repeatable; applied last).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Device to train on.
    #[arg(long, value_enum, default_value_t)]
    device: DeviceKind,
    /// CPU threads of the training step on `flex` [default: 2, or 1 on a one-core machine].
    /// A second thread takes half of each matrix product of 64³ multiply-adds or more and of each
    /// element-wise op of 16 Ki elements or more (it spins between ops instead of sleeping, so it
    /// is awake for the next one): `keel train --data grid25` ran 25 % faster on 2 cores. The split
    /// is two-way; further threads reach only burn-flex's own parallel paths (products of 192³
    /// and up). Results are bit-identical for any count.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Do not quantize the generator to int8 afterwards (done when `keel-run` sits beside `keel`).
    #[arg(long)]
    no_quantize: bool,
    /// Do not write the evaluation report of a series run afterwards (`keel eval RUN_DIR` does it).
    #[arg(long)]
    no_eval: bool,
    /// Inject a fault to see the watchdog act: lr-spike@STEP (both learning rates ×1000 for 20
    /// steps), nan-batch@STEP (a real batch of NaN), d-boost@STEP (300 D updates alone at 100× its
    /// rate). Repeatable. Compare with `--set watch.enabled=false`.
    #[arg(long, value_name = "KIND@STEP")]
    inject: Vec<Fault>,
    /// Continue an interrupted run (killed, Ctrl-C, out of disk) from its last checkpoint: RUN_DIR
    /// is the run's --out. It ends as the uninterrupted run would have, bit for bit. Checkpoints
    /// are written every train.checkpoint_every steps, and on Ctrl-C or SIGTERM.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = [
        "recipe", "config", "data", "steps", "seed", "out", "force", "set", "inject"
    ])]
    resume: Option<PathBuf>,
}

/// A flag that Ctrl-C and SIGTERM set (the run checkpoints and stops after its step); a second
/// Ctrl-C exits at once.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("cannot install the signal handler")?;
        flag::register(sig, stop.clone()).context("cannot install the signal handler")?;
    }
    Ok(stop)
}

/// The layered configuration; `series` adds the recipe's series overlay.
fn config(a: &TrainArgs, series: bool) -> Result<TrainConfig> {
    let mut b = ConfigBuilder::new().recipe_for(&a.recipe, series)?;
    if let Some(f) = &a.config {
        b = b.file(f)?;
    }
    if let Some(s) = &a.steps {
        b = b.set(&format!("train.steps={s}"))?;
    }
    if let Some(s) = a.seed {
        b = b.set(&format!("train.seed={s}"))?;
    }
    for s in &a.set {
        b = b.set(s)?;
    }
    b.build()
}

pub fn run(a: TrainArgs) -> Result<()> {
    let progress = !a.quiet && std::io::stderr().is_terminal();
    // Training runs in a pool of its own size (flex's ops and matrix products use the current
    // pool); what follows it (quantizing, the evaluation report) keeps the global pool.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.map_or_else(default_threads, usize::from))
        .stack_size(TRAIN_STACK_BYTES)
        .thread_name(|i| format!("keel-train-{i}"))
        .build()
        .context("cannot start the training threads")?;
    let trained = pool.install(|| train_or_resume(&a, progress))?;
    report(&a, trained)
}

/// Two threads where the machine has them: the split ops use exactly two.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// The main thread's default stack: training code was written for it.
pub const TRAIN_STACK_BYTES: usize = 8 << 20;

fn train_or_resume(a: &TrainArgs, progress: bool) -> Result<(PathBuf, Summary, Dataset, String)> {
    Ok(match &a.resume {
        Some(run) => {
            let r = Resume::open(run)?;
            let device = training_device(a.device)?;
            eprintln!(
                "resuming {} ({} on {}) from step {} of {}",
                run.display(),
                r.recipe(),
                r.data.name,
                r.step(),
                r.config().train.steps
            );
            let (recipe, data) = (r.recipe().to_string(), r.data.clone());
            let (dir, summary) = resume(r, &device, progress, Some(stop_flag()?))?;
            (dir, summary, data, recipe)
        }
        None => fresh(a, progress)?,
    })
}

/// A new run from the command line's recipe, config and data.
fn fresh(a: &TrainArgs, progress: bool) -> Result<(PathBuf, Summary, Dataset, String)> {
    // The seed picks the draw of a built-in set; whether the data are series picks the overlay.
    let seed = config(a, false)?.train.seed;
    let dataset = data::load(&a.data, seed)?;
    let cfg = config(a, dataset.shape.is_some())?;
    let device = training_device(a.device)?;
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/{}-{}-s{}",
            dataset.name, a.recipe, cfg.train.seed
        ))
    });
    let opts = RunOptions {
        out,
        force: a.force,
        recipe: a.recipe.clone(),
        progress,
        faults: a.inject.clone(),
        stop: Some(stop_flag()?),
    };
    let (dir, summary) = train(&cfg, &dataset, &device, &opts)?;
    Ok((dir, summary, dataset, a.recipe.clone()))
}

/// What the run made, then the int8 model and the evaluation report.
fn report(a: &TrainArgs, trained: (PathBuf, Summary, Dataset, String)) -> Result<()> {
    let (dir, summary, dataset, recipe) = trained;
    print!(
        "trained {} on {} for {} steps in {:.1} s",
        recipe, dataset.name, summary.steps, summary.train_seconds
    );
    if let Some(m) = &summary.final_metrics {
        print!(
            ": {}/{} modes, {:.1}% HQ, reverse KL {}",
            m.modes,
            m.total_modes,
            m.hq_pct,
            m.reverse_kl
                .map_or("undefined (no HQ sample)".into(), |k| format!("{k:.3}"))
        );
    }
    println!("\nrun directory: {}", dir.display());
    if let Some(c) = &summary.convergence {
        println!("stopped: {}", c.stopped);
        if let (Some(k), Some(m)) = (c.kept_step, c.kept_measure) {
            println!(
                "  kept: the state of step {k}, its lowest measure ({m:.4}), not step {}'s (train.keep_best=false keeps the last)",
                summary.steps
            );
        }
    }
    if let Some(w) = &summary.watch {
        println!(
            "  watchdog: {} ({} events, {} rollbacks; {})",
            w.verdict,
            w.events,
            w.rollbacks,
            dir.join(rundir::EVENTS).display()
        );
        if w.verdict.starts_with("gave up") || w.verdict.starts_with("stopped") {
            bail!(
                "the watchdog ended the run: {}. The run directory holds the last healthy state; \
                 see {} and losses.png, then try a lower learning rate or stronger regularisation",
                w.verdict,
                dir.join(rundir::EVENTS).display()
            );
        }
    }
    println!(
        "  samples plot {}, losses {}, metrics {}",
        dir.join(rundir::SAMPLES_PNG).display(),
        dir.join(rundir::LOSSES_PNG).display(),
        dir.join(rundir::METRICS).display()
    );
    println!(
        "  generator for any ONNX runtime: {}",
        dir.join(ONNX_FILE).display()
    );
    let onnx = dir.join(ONNX_FILE);
    let draw = if dataset.classes.is_empty() {
        ""
    } else {
        " --class NAME"
    };
    println!(
        "  draw more: keel-run generate {}{draw} --n 1000 --out samples.csv",
        onnx.display()
    );
    if !a.no_quantize {
        quantize(&onnx)?;
    }
    if dataset.shape.is_some() && !a.no_eval {
        let opts = EvalOptions {
            test: None,
            data: None,
            per_class: 100,
            repeats: 3,
            gain: None,
            fit: Fit::default(),
        };
        match evaluate(&dir, &opts, &|_| {}) {
            Ok((eval_dir, r)) => {
                if let (Some(t), Some(b)) = (r.scores.tstr, r.scores.trtr) {
                    println!(
                        "  TSTR {t:.3} / TRTR {b:.3}; discriminative score {:.3}",
                        r.scores.discriminative.mean
                    );
                }
                if let Some(j) = r.scores.minirocket {
                    println!(
                        "  MiniRocket judge: TSTR {:.3} / TRTR {:.3}",
                        j.tstr, j.trtr
                    );
                }
                println!(
                    "  report: {} (augmentation gain: keel eval {})",
                    eval_dir.join(rundir::EVAL_REPORT).display(),
                    dir.display()
                );
            }
            // A dataset without a test split has nothing to score against: say so, keep the run.
            Err(e) => println!("  no report: {e:#}"),
        }
    }
    Ok(())
}

/// Quantizes with `keel-run` from beside this binary: the trainer does not link the runtime
/// (data flows one way), but a user who built both gets the `.kq8` in the same command.
fn quantize(onnx: &Path) -> Result<()> {
    let exe = std::env::current_exe().ok();
    let runner = exe
        .as_deref()
        .and_then(Path::parent)
        .map(|d| d.join(format!("keel-run{}", std::env::consts::EXE_SUFFIX)))
        .filter(|p| p.exists());
    let kq8 = onnx.with_extension("kq8");
    let report = onnx.with_file_name(rundir::QUANTIZE_REPORT);
    let Some(runner) = runner else {
        println!(
            "  int8 for the firmware: keel-run quantize {} --out {} (build keel-run: cargo build --release -p keel-runtime)",
            onnx.display(),
            kq8.display()
        );
        return Ok(());
    };
    let out = std::process::Command::new(&runner)
        .arg("quantize")
        .arg(onnx)
        .arg("--out")
        .arg(&kq8)
        .arg("--report")
        .arg(&report)
        .output()
        .with_context(|| format!("cannot run {}", runner.display()))?;
    if !out.status.success() {
        bail!(
            "training finished, but quantizing failed ({}):\n{}",
            runner.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The quantizer's figures from its JSON report (its printed table is for people).
    let sqnr = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["sqnr_db"].as_f64())
        .map_or_else(|| "?".to_string(), |db| format!("{db:.1}"));
    println!(
        "  int8 for the firmware: {} (SQNR {sqnr} dB; report {})",
        kq8.display(),
        report.display()
    );
    Ok(())
}
