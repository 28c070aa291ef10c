//! `keel sweep` and `keel sweep merge`.

use anyhow::{bail, Context, Result};
use keel_trainer::artifacts::Summary;
use keel_trainer::config::ConfigBuilder;
use keel_trainer::rundir::{write_atomic, SUMMARY};
use keel_trainer::sweep::{expand, judge, table, Axis, Job, Outcome, Seeds, Shard};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    merge: Option<SweepCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Subcommand, Debug)]
enum SweepCommand {
    /// Join the results of shards (each DIR holds results-*.jsonl) into one table and heat map.
    Merge {
        /// Sweep directories, or one directory all shards wrote into.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where sweep.md, sweep.jsonl and heatmap.png go [default: the first DIR].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Comma-separated recipes.
    #[arg(long, default_value = "stable,vanilla", value_delimiter = ',')]
    recipes: Vec<String>,
    /// Comma-separated datasets (built-in names or files).
    #[arg(long, default_value = "grid25", value_delimiter = ',')]
    data: Vec<String>,
    /// A grid axis KEY=V1,V2,… (repeatable): `lr` sets lr_g and keeps the recipe's lr_d/lr_g
    /// ratio; any config key works, e.g. `--grid watch.enabled=true,false`.
    #[arg(long = "grid", value_name = "KEY=V1,V2")]
    grid: Vec<Axis>,
    /// Seeds per grid point: N for seeds 0..N, or A..B for seeds A to B − 1 (more seeds for a
    /// sweep: into another --out, then `keel sweep merge OLD NEW`; or `--seeds N --resume` into the
    /// same --out, which trains only the runs it does not hold).
    #[arg(long, default_value = "10", value_name = "N|A..B")]
    seeds: Seeds,
    /// Run one slice of the sweep: jobs i with i mod N = I (0-based; Slurm's
    /// $SLURM_ARRAY_TASK_ID, Kubernetes' $JOB_COMPLETION_INDEX). Join slices with `keel sweep merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Submit the sweep to Slurm instead of running it here: a job array of N tasks (one shard
    /// each, `--jobs` CPUs each) and a merge job that runs once every task has succeeded. Needs
    /// `sbatch` on PATH; the scripts are written to --out first.
    #[arg(long, value_name = "N", conflicts_with = "shard")]
    slurm: Option<usize>,
    /// An `sbatch` option for both jobs (repeatable), e.g. `--slurm-option=--partition=cpu`.
    #[arg(
        long = "slurm-option",
        value_name = "OPT",
        allow_hyphen_values = true,
        requires = "slurm"
    )]
    slurm_options: Vec<String>,
    /// With --slurm: wait until the merge job has finished (`sbatch --wait`).
    #[arg(long, requires = "slurm")]
    wait: bool,
    /// Trainings at once on this machine. Each trains on its share of the cores (`--threads`:
    /// cores / jobs, between 1 and 2), so the default on 2 cores runs two one-thread trainings.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Where runs/, results-*.jsonl, sweep.md and heatmap.png go.
    #[arg(long, default_value = "sweep")]
    out: PathBuf,
    /// Keep runs that already finished in --out instead of training them again.
    #[arg(long)]
    resume: bool,
    /// Extra `--set key=value` for every run.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Success on datasets with known modes: all modes and at least this HQ %.
    #[arg(long, default_value_t = 90.0)]
    min_hq: f64,
}

pub fn run(a: SweepArgs) -> Result<()> {
    match a.merge {
        Some(SweepCommand::Merge { dirs, out }) => {
            let out = out.unwrap_or_else(|| dirs[0].clone());
            merge(&dirs, &out)
        }
        None => sweep(a.run),
    }
}

/// Every grid value must be a valid setting before hours are spent.
fn check_grid(a: &RunArgs, jobs: &[Job], recipe_lr: &BTreeMap<String, (f64, f64)>) -> Result<()> {
    for j in jobs {
        let mut b = ConfigBuilder::new().recipe(&j.recipe)?;
        for s in j.sets(recipe_lr[&j.recipe])?.iter().chain(&a.set) {
            b = b.set(s)?;
        }
        b.build()
            .with_context(|| format!("grid point {} of {}", j.point_label(), j.recipe))?;
    }
    Ok(())
}

/// Trains one grid point with `keel train` into `dir`.
fn train_job(a: &RunArgs, exe: &Path, dir: &Path, job: &Job, lr: (f64, f64)) -> Result<()> {
    let mut cmd = Command::new(exe);
    cmd.args(["train", "--quiet", "--force", "--no-quantize", "--no-eval"])
        .args(["--recipe", &job.recipe, "--data", &job.data])
        .args(["--seed", &job.seed.to_string()])
        .arg("--out")
        .arg(dir);
    // The machine's cores shared between the trainings at once (two each at most).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / a.jobs.max(1)).clamp(1, super::train::default_threads());
    cmd.args(["--threads", &threads.to_string()]);
    for s in job.sets(lr)?.iter().chain(&a.set) {
        cmd.args(["--set", s]);
    }
    let o = cmd
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    // A run the watchdog gave up on exits non-zero but has a summary: that is a result.
    if !dir.join(SUMMARY).exists() {
        bail!(
            "{}: {}",
            job.name(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

fn sweep(a: RunArgs) -> Result<()> {
    let mut recipe_lr = BTreeMap::new();
    for r in &a.recipes {
        let c = ConfigBuilder::new().recipe(r)?.build()?;
        recipe_lr.insert(r.clone(), (c.optim.lr_g, c.optim.lr_d));
    }
    let all = expand(&a.recipes, &a.data, &a.grid, &a.seeds);
    if let Some(tasks) = a.slurm {
        check_grid(&a, &all, &recipe_lr)?;
        return super::slurm::submit(&super::slurm::Submission {
            exe: std::env::current_exe()?,
            args: shard_args(&a)?,
            out: a.out.clone(),
            tasks,
            cpus: a.jobs,
            options: a.slurm_options.clone(),
            wait: a.wait,
        });
    }
    let shard = a.shard.unwrap_or(Shard { index: 0, count: 1 });
    let jobs = shard.take(all.clone());
    check_grid(&a, &jobs, &recipe_lr)?;
    let runs = a.out.join("runs");
    std::fs::create_dir_all(&runs).with_context(|| format!("cannot create {}", runs.display()))?;
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let total = jobs.len();
    eprintln!(
        "sweep: {total} of {} runs (shard {}/{}), {} at a time, into {}",
        all.len(),
        shard.index,
        shard.count,
        a.jobs,
        a.out.display()
    );
    let outcomes = std::sync::Mutex::new(Vec::new());
    let failures = super::jobs::parallel(&jobs, a.jobs, |i, job| {
        let dir = runs.join(job.name());
        if !(a.resume && dir.join(SUMMARY).exists()) {
            train_job(&a, &exe, &dir, job, recipe_lr[&job.recipe])?;
        }
        let o = judge(job.clone(), &Summary::read(&dir)?, a.min_hq);
        eprintln!(
            "[{}/{total}] {} {} ({})",
            i + 1,
            job.name(),
            if o.success { "success" } else { "failure" },
            o.verdict
        );
        outcomes.lock().unwrap().push(o);
        Ok(())
    });
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by_key(|o| all.iter().position(|j| *j == o.job));
    let lines: String = outcomes
        .iter()
        .map(|o| serde_json::to_string(o).map(|l| l + "\n"))
        .collect::<Result<_, _>>()?;
    let file = a
        .out
        .join(format!("results-{}of{}.jsonl", shard.index, shard.count));
    write_atomic(&file, lines.as_bytes())?;
    eprintln!(
        "sweep: {} runs in {:.0} s; results in {}",
        outcomes.len(),
        start.elapsed().as_secs_f64(),
        file.display()
    );
    if !failures.is_empty() {
        bail!(
            "{} runs failed to run (not counted):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    if shard.count == 1 {
        merge(std::slice::from_ref(&a.out), &a.out)?;
    } else {
        println!(
            "shard {}/{} done; when all are: keel sweep merge {}",
            shard.index,
            shard.count,
            a.out.display()
        );
    }
    Ok(())
}

/// The arguments of one shard of this sweep (`--shard` follows), `--out` made absolute.
fn shard_args(a: &RunArgs) -> Result<Vec<String>> {
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let out = a.out.canonicalize()?;
    let mut v: Vec<String> = vec![
        "sweep".into(),
        "--recipes".into(),
        a.recipes.join(","),
        "--data".into(),
        a.data.join(","),
        "--seeds".into(),
        a.seeds.to_string(),
        "--jobs".into(),
        a.jobs.to_string(),
        "--min-hq".into(),
        a.min_hq.to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for g in &a.grid {
        v.push("--grid".into());
        v.push(format!("{}={}", g.key, g.values.join(",")));
    }
    for s in &a.set {
        v.push("--set".into());
        v.push(s.clone());
    }
    if a.resume {
        v.push("--resume".into());
    }
    Ok(v)
}

fn merge(dirs: &[PathBuf], out: &Path) -> Result<()> {
    let mut by_name: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut files = 0;
    for d in dirs {
        let entries = std::fs::read_dir(d)
            .with_context(|| format!("cannot read directory {}", d.display()))?;
        for e in entries {
            let p = e?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !(name.starts_with("results-") && name.ends_with(".jsonl")) {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let o: Outcome = serde_json::from_str(line)
                    .with_context(|| format!("{}:{}: not a sweep result", p.display(), n + 1))?;
                by_name.insert(o.job.name(), o);
            }
        }
    }
    if by_name.is_empty() {
        bail!(
            "no results-*.jsonl with results in {}; run `keel sweep --out DIR` (or its shards) first",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let outcomes: Vec<Outcome> = order(by_name.into_values().collect());
    let t = table(&outcomes);
    let runs = outcomes.len();
    let secs: f64 = outcomes.iter().map(|o| o.train_seconds).sum();
    let md = format!(
        "{}\n{runs} runs from {files} result files; success = all modes and HQ ≥ the sweep's \
         --min-hq on datasets with known modes, else finished with finite losses and no give-up; \
         failures flagged = failed runs whose watchdog verdict is not `healthy`; {:.0} s of \
         training in all.\n",
        t.markdown(),
        secs
    );
    std::fs::create_dir_all(out)?;
    write_atomic(&out.join("sweep.md"), md.as_bytes())?;
    let lines: String = outcomes
        .iter()
        .map(|o| serde_json::to_string(o).map(|l| l + "\n"))
        .collect::<Result<_, _>>()?;
    write_atomic(&out.join("sweep.jsonl"), lines.as_bytes())?;
    keel_trainer::eval::plot::heatmap(
        &out.join("heatmap.png"),
        "success rate",
        &t.rows.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
        &t.columns,
        &t.rows
            .iter()
            .map(|(_, c)| c.iter().map(|c| (c.successes, c.runs)).collect())
            .collect::<Vec<_>>(),
    )?;
    print!("{md}");
    println!(
        "written: {}, {}, {}",
        out.join("sweep.md").display(),
        out.join("sweep.jsonl").display(),
        out.join("heatmap.png").display()
    );
    Ok(())
}

/// Recipe, data, grid point (numeric values by value), seed.
fn order(mut v: Vec<Outcome>) -> Vec<Outcome> {
    fn point_key(j: &Job) -> Vec<(f64, String)> {
        j.point
            .iter()
            .map(|(_, x)| (x.parse().unwrap_or(f64::NAN), x.clone()))
            .collect()
    }
    v.sort_by(|a, b| {
        let (a, b) = (&a.job, &b.job);
        (&a.recipe, &a.data)
            .cmp(&(&b.recipe, &b.data))
            .then_with(|| {
                let (ka, kb) = (point_key(a), point_key(b));
                ka.iter()
                    .zip(&kb)
                    .map(|(x, y)| x.0.total_cmp(&y.0).then_with(|| x.1.cmp(&y.1)))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then(a.seed.cmp(&b.seed))
    });
    v
}
