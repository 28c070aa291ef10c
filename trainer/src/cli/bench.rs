//! `keel bench modes` and `keel bench watch`; `keel bench speed` is in `speed.rs`.

use anyhow::{bail, Context, Result};
use keel_trainer::artifacts::Summary;
use keel_trainer::config::ConfigBuilder;
use keel_trainer::train::{TrainData, Trainer};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Train every recipe × dataset × seed and print mode coverage as mean ± standard error, with
    /// PacGAN's published rows beside ours.
    Modes(ModesArgs),
    /// Generator steps per second against the PyTorch peer (same architecture, batch, loss, threads).
    Speed(super::speed::SpeedArgs),
    /// The watchdog's cost: the same training with and without it, alternating, in one process.
    Watch(WatchArgs),
}

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// Comma-separated datasets; each trains with the default recipe and its overlay.
    #[arg(long, default_value = "grid25,basicmotions", value_delimiter = ',')]
    data: Vec<String>,
    /// Generator steps per timed run (after 100 untimed).
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Alternating rounds (watched, unwatched) per dataset.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(clap::Args, Debug)]
pub struct ModesArgs {
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// Comma-separated datasets.
    #[arg(long, default_value = "ring8,grid25", value_delimiter = ',')]
    data: Vec<String>,
    /// Comma-separated recipes.
    #[arg(long, default_value = "vanilla,stable", value_delimiter = ',')]
    recipes: Vec<String>,
    /// Trainings run at once (each is effectively single-threaded).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Where the runs and the table go.
    #[arg(long, default_value = "bench-modes")]
    out: PathBuf,
    /// Keep runs that already finished in --out (after an interrupted bench) instead of retraining them.
    #[arg(long)]
    resume: bool,
    /// Extra `--set key=value` for every run.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Modes(a) => modes(a),
        BenchCommand::Speed(a) => super::speed::speed(a),
        BenchCommand::Watch(a) => watch(a),
    }
}

/// PacGAN (Lin et al., NeurIPS 2018) Table 1, 10 trials, mean ± s.e.; copied from the paper.
const PACGAN_ROWS: &str = "\
| GAN (PacGAN paper) | ring8 | 6.3 ± 0.5 | 98.2 ± 0.2 | 0.45 ± 0.09 |
| PacGAN4 (PacGAN paper) | ring8 | 7.8 ± 0.1 | 95.9 ± 1.4 | 0.07 ± 0.02 |
| GAN (PacGAN paper) | grid25 | 17.3 ± 0.8 | 94.8 ± 0.7 | 0.70 ± 0.07 |
| PacGAN4 (PacGAN paper) | grid25 | 24.8 ± 0.2 | 93.6 ± 0.6 | 0.04 ± 0.01 |
";

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn modes(a: ModesArgs) -> Result<()> {
    let exe = std::env::current_exe()?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut jobs = Vec::new();
    for recipe in &a.recipes {
        keel_trainer::config::recipe(recipe)?;
        for data in &a.data {
            for seed in 0..a.seeds {
                jobs.push((recipe.clone(), data.clone(), seed));
            }
        }
    }
    let start = Instant::now();
    let total = jobs.len();
    let trained = train_runs(&a, &exe, &jobs)?;
    let mut table = keel_table(&a)?;
    for line in PACGAN_ROWS.lines() {
        if a.data.iter().any(|d| line.contains(&format!("| {d} |"))) {
            table.push_str(line.trim_end_matches(" |"));
            table.push_str(" | | | |\n");
        }
    }
    let footer = format!(
        "\n{} seeds per row; {} runs ({} trained now, {} kept from before) in {:.0} s wall with {} jobs. \
success = all modes captured; train s = training time of one run.\n",
        a.seeds,
        total,
        trained,
        total - trained,
        start.elapsed().as_secs_f64(),
        a.jobs
    );
    let path = a.out.join("modes.md");
    keel_trainer::rundir::write_atomic(&path, format!("{table}{footer}").as_bytes())?;
    println!("{table}{footer}table written to {}", path.display());
    Ok(())
}

/// Trains the benchmark's runs (`keel train` per job, `--jobs` at a time); returns how many were
/// trained now (`--resume` keeps finished ones).
fn train_runs(
    a: &ModesArgs,
    exe: &std::path::Path,
    jobs: &[(String, String, u64)],
) -> Result<usize> {
    let total = jobs.len();
    let trained = std::sync::atomic::AtomicUsize::new(0);
    let failures = super::jobs::parallel(jobs, a.jobs, |i, (recipe, data, seed)| {
        let out = a.out.join(format!("{data}-{recipe}-s{seed}"));
        if a.resume && out.join(keel_trainer::rundir::SUMMARY).exists() {
            return Ok(());
        }
        trained.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut cmd = Command::new(exe);
        cmd.args([
            "train",
            "--quiet",
            "--force",
            "--recipe",
            recipe,
            "--data",
            data,
            "--seed",
            &seed.to_string(),
        ]);
        cmd.arg("--out").arg(&out);
        for kv in &a.set {
            cmd.args(["--set", kv]);
        }
        let o = cmd
            .output()
            .with_context(|| format!("{data} {recipe} seed {seed}"))?;
        if !o.status.success() {
            bail!(
                "{data} {recipe} seed {seed}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        eprintln!("[{}/{total}] {data} {recipe} seed {seed} done", i + 1);
        Ok(())
    });
    if !failures.is_empty() {
        bail!("{} runs failed:\n{}", failures.len(), failures.join("\n"));
    }
    Ok(trained.into_inner())
}

/// Keel's rows of the modes table: mean ± standard error over seeds per recipe and dataset.
fn keel_table(a: &ModesArgs) -> Result<String> {
    let mut table = String::from(
        "| method | data | modes | HQ % | reverse KL | strict modes (≥1 %) | success | train s |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for data in &a.data {
        for recipe in &a.recipes {
            let mut cols: [Vec<f64>; 5] = Default::default();
            let mut success = 0;
            for seed in 0..a.seeds {
                let s = Summary::read(&a.out.join(format!("{data}-{recipe}-s{seed}")))?;
                let m = s.final_metrics.context("run has no mode metrics")?;
                // An all-diffuse generator has no HQ sample: its KL is undefined; count it as log K.
                let kl = m.reverse_kl.unwrap_or((m.total_modes as f64).ln());
                cols[0].push(m.modes as f64);
                cols[1].push(m.hq_pct);
                cols[2].push(kl);
                cols[3].push(m.modes_strict as f64);
                cols[4].push(s.train_seconds);
                if m.modes == m.total_modes {
                    success += 1;
                }
            }
            let f = |v: &[f64], p: usize| {
                let (m, se) = mean_se(v);
                format!("{m:.p$} ± {se:.p$}")
            };
            table.push_str(&format!(
                "| Keel `{recipe}` | {data} | {} | {} | {} | {} | {success}/{} | {} |\n",
                f(&cols[0], 1),
                f(&cols[1], 1),
                f(&cols[2], 3),
                f(&cols[3], 1),
                a.seeds,
                f(&cols[4], 0)
            ));
        }
    }
    Ok(table)
}

/// Seconds per generator step, with the watchdog observing every step when `watched`, and the
/// seconds of those spent inside the watchdog.
fn step_seconds(
    data: &keel_trainer::data::Dataset,
    steps: usize,
    watched: bool,
) -> Result<(f64, f64)> {
    let cfg = ConfigBuilder::new()
        .recipe_for(keel_trainer::config::DEFAULT_RECIPE, data.shape.is_some())?
        .build()?;
    let points = keel_trainer::data::Normalizer::fit_dataset(data).forward(&data.points);
    let device = burn::tensor::Device::flex().autodiff();
    let mut t = Trainer::new(
        cfg.clone(),
        TrainData::from_dataset(data, points.clone()),
        device,
    )?;
    let mut w =
        keel_trainer::watch::Watchdog::new(&cfg, &t, &points, &data.labels, data.dim, None)?;
    let mut inside = 0.0;
    let mut run = |t: &mut Trainer, n: usize| -> Result<()> {
        for _ in 0..n {
            let s = t.step();
            if watched {
                let start = Instant::now();
                w.observe(t, &s, None)?;
                inside += start.elapsed().as_secs_f64();
            }
        }
        Ok(())
    };
    run(&mut t, 100)?;
    let start = Instant::now();
    run(&mut t, steps)?;
    let total = start.elapsed().as_secs_f64();
    Ok((total / steps as f64, inside / steps as f64))
}

fn watch(a: WatchArgs) -> Result<()> {
    println!("| data | step, unwatched (median) | step, watched (median) | overhead (A/B) | in the watchdog (timed inside) |\n| --- | --- | --- | --- | --- |");
    for name in &a.data {
        let data = keel_trainer::data::load(name, 0)?;
        let (mut off, mut on, mut inside) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..a.rounds {
            off.push(step_seconds(&data, a.steps, false)?.0);
            let (step, watch) = step_seconds(&data, a.steps, true)?;
            on.push(step);
            inside.push(watch / step);
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (off, on, inside) = (med(&mut off), med(&mut on), med(&mut inside));
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:+.1} % | {:.1} % |",
            off * 1e3,
            on * 1e3,
            100.0 * (on / off - 1.0),
            100.0 * inside
        );
    }
    println!(
        "\n{} generator steps per run after 100 untimed, {} alternating rounds, the default recipe; the \
         watchdog checks every 50 steps (coverage and diversity of 256 samples, parameter norms) and \
         looks at every step's figures.",
        a.steps, a.rounds
    );
    Ok(())
}
