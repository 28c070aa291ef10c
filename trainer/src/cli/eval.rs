use anyhow::{bail, Result};
use keel_trainer::eval::classifier::Fit;
use keel_trainer::eval::gain::{self, GainOptions, Judge};
use keel_trainer::report::{evaluate, EvalOptions};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A run directory of a series model, written by `keel train`.
    run: PathBuf,
    /// Held-out labelled series (CSV or .ts) instead of the dataset's own test split.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Where the training data are now, if not where the run recorded them.
    #[arg(long)]
    data: Option<String>,
    /// Synthetic series per class for TSTR.
    #[arg(long, default_value_t = 100)]
    per_class: usize,
    /// Repeats of the discriminative and predictive scores.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Skip the augmentation-gain study (it trains a GAN per k and draw).
    #[arg(long)]
    no_gain: bool,
    /// k real series per class in the gain study (`all` for every one). The default keeps a
    /// study of 10 draws on BasicMotions under 5 minutes on 2 cores; the full study is
    /// `--k 2,5,10,all`.
    #[arg(long, value_delimiter = ',', default_value = "2,all")]
    k: Vec<String>,
    /// Draws of the k series per class.
    #[arg(long, default_value_t = 10)]
    draws: usize,
    /// Series added per class (GAN samples, or classic augmentations).
    #[arg(long, default_value_t = 50)]
    added: usize,
    /// The classifier that judges the gain study: the reference CNN, or MiniRocket + ridge (a
    /// stronger few-shot classifier).
    #[arg(long, value_enum, default_value = "minirocket")]
    judge: Judge,
    /// Generator steps of each GAN of the gain study (a short schedule: each draw trains two).
    #[arg(long, default_value_t = 1000)]
    gan_steps: usize,
    /// Training steps of every reference classifier.
    #[arg(long, default_value_t = Fit::default().steps)]
    classifier_steps: usize,
    /// Draws of the gain study run at once, each on one thread [default: the machine's cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Seed of the evaluation's own draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let ks =
        a.k.iter()
            .map(|k| match k.trim() {
                "all" => Ok(None),
                n => match n.parse::<usize>() {
                    Ok(v) if v > 0 => Ok(Some(v)),
                    _ => bail!("--k `{n}`: expected a positive number or `all`"),
                },
            })
            .collect::<Result<Vec<_>>>()?;
    if a.draws == 0 || a.repeats == 0 || a.per_class == 0 || a.jobs == Some(0) {
        bail!("--draws, --repeats, --per-class and --jobs must be at least 1");
    }
    let fit = Fit {
        steps: a.classifier_steps,
        seed: a.seed,
        ..Fit::default()
    };
    let opts = EvalOptions {
        test: a.test,
        data: a.data,
        per_class: a.per_class,
        repeats: a.repeats,
        gain: (!a.no_gain).then(|| GainOptions {
            ks,
            judge: a.judge,
            draws: a.draws,
            added_per_class: a.added,
            gan_steps: a.gan_steps,
            fit,
            jobs: a
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        }),
        fit,
    };
    let (dir, r) = evaluate(&a.run, &opts, &|m| eprintln!("{m}"))?;
    let s = &r.scores;
    if let (Some(t), Some(b)) = (s.tstr, s.trtr) {
        println!("TSTR {:.3}  TRTR {:.3}  ratio {:.3}", t, b, t / b.max(1e-9));
    }
    if let Some(j) = s.minirocket {
        println!("MiniRocket judge: TSTR {:.3}  TRTR {:.3}", j.tstr, j.trtr);
    }
    println!(
        "discriminative {:.3} ± {:.3}  predictive {:.4} (real→real {:.4})",
        s.discriminative.mean, s.discriminative.std, s.predictive.mean, s.predictive_real.mean
    );
    if let Some(g) = &r.gain {
        let shown = [
            gain::REAL,
            gain::BEST_CLASSIC,
            gain::KEEL,
            gain::KEEL_CV,
            gain::KEEL_CONFIDENT,
            gain::SEMI,
            gain::SELF_TRAINING,
        ];
        println!("k     {}", shown.map(|n| format!("{n:>18}")).join(""));
        for row in &g.rows {
            let cells = shown.map(|n| {
                row.arms
                    .iter()
                    .find(|a| a.name == n)
                    .map_or(format!("{:>18}", "—"), |a| {
                        format!("{:>17.1}%", 100.0 * a.accuracy.mean)
                    })
            });
            println!("{:<5} {}", gain::k_name(row.k), cells.join(""));
        }
    }
    println!(
        "report: {}",
        dir.join(keel_trainer::rundir::EVAL_REPORT).display()
    );
    println!(
        "scores: {}",
        dir.join(keel_trainer::rundir::EVAL_JSON).display()
    );
    Ok(())
}
