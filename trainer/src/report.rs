//! `keel eval RUN_DIR`: scores, plots and a markdown report of a series run, written to
//! `RUN_DIR/eval/`, swapped into place whole (a failed evaluation leaves the old one, or none).

use crate::artifacts::{load_generator, GeneratorMeta, Summary};
use crate::config::TrainConfig;
use crate::data::{self, read_test_file, Dataset, Split};
use crate::eval::classifier::Fit;
use crate::eval::frechet::FrechetProbe;
use crate::eval::gain::{self, gain, k_name, Gain, GainOptions, Judge};
use crate::eval::series::{scores, synthetic, MeanStd, RealData, Scores};
use crate::eval::series_plot::{projection, series_grid, spectra};
use crate::model::Generator;
use crate::rundir::EVAL_DIR;
use crate::rundir::{replace_dir, write_atomic, EVAL_JSON, EVAL_REPORT, EVENTS};
use crate::watch::{Event, WatchSummary};
use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use keel_stats::Paired;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub struct EvalOptions {
    /// A held-out file (CSV or `.ts`) instead of the dataset's own test split.
    pub test: Option<PathBuf>,
    /// Read the training data from here instead of what the run recorded.
    pub data: Option<String>,
    pub per_class: usize,
    pub repeats: usize,
    /// `None`: no augmentation-gain study.
    pub gain: Option<GainOptions>,
    pub fit: Fit,
}

#[derive(Serialize)]
pub struct EvalJson {
    pub keel_version: String,
    pub run: String,
    pub dataset: String,
    pub test_source: String,
    pub seed: u64,
    pub real_train: usize,
    pub real_test: usize,
    pub scores: Scores,
    /// The diagonal Fréchet distance to the training windows in MiniRocket features (what
    /// `train.steps = "auto"` watches; needs no test data).
    pub frechet: Option<f64>,
    pub gain: Option<Gain>,
    pub seconds: f64,
    /// The watchdog's verdict on the training run and its events, one line each.
    pub training: Option<WatchSummary>,
    pub events: Vec<String>,
}

/// What an evaluation reads: the run's generator and the real series it is judged against.
struct Inputs {
    cfg: TrainConfig,
    meta: GeneratorMeta,
    g: Generator,
    shape: [usize; 2],
    /// The training rows, as read again.
    train: Dataset,
    test: Split,
    test_source: String,
}

/// Evaluates a series run; returns the directory written and what it holds.
pub fn evaluate(
    run: &Path,
    opts: &EvalOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(PathBuf, EvalJson)> {
    let start = std::time::Instant::now();
    let inputs = read_inputs(run, opts)?;
    let Inputs {
        cfg,
        meta,
        g,
        shape,
        ..
    } = &inputs;
    let norm = &meta.normalizer;
    let train = Split {
        points: norm.forward(&inputs.train.points),
        labels: inputs.train.labels.clone(),
    };
    let test_n = Split {
        points: norm.forward(&inputs.test.points),
        labels: inputs.test.labels.clone(),
    };
    let real = RealData {
        shape: *shape,
        classes: meta.classes.len(),
        names: &meta.classes,
        train: &train,
        test: &test_n,
    };
    progress("scores: TSTR/TRTR, discriminative, predictive");
    let s = scores(g, &real, norm, opts.per_class, opts.repeats, opts.fit);
    let probe = FrechetProbe::fit(&inputs.train.points, *shape, meta.seed);
    let frechet = probe.generator_distance(g, norm, meta.seed, &Device::flex());
    let gain = match (&opts.gain, meta.classes.is_empty()) {
        (Some(o), false) => Some(gain(cfg, &real, g, o, progress)?),
        _ => None,
    };
    let report = EvalJson {
        keel_version: env!("CARGO_PKG_VERSION").into(),
        run: run.display().to_string(),
        dataset: meta.dataset.clone(),
        test_source: inputs.test_source.clone(),
        seed: meta.seed,
        real_train: inputs.train.len(),
        real_test: inputs.test.points.len() / (shape[0] * shape[1]),
        scores: s,
        frechet: Some(frechet),
        gain,
        seconds: start.elapsed().as_secs_f64(),
        // A report does not fail for want of a readable summary.
        training: Summary::read(run).ok().and_then(|s| s.watch),
        events: read_events(run),
    };
    // Written beside and swapped into place: a failed evaluation leaves the old one, or none.
    let out = run.join(EVAL_DIR);
    replace_dir(&out, |dir| {
        write_plots(dir, &inputs, opts.fit.seed)?;
        if let Some(g) = &report.gain {
            gain_plot(dir, &inputs.meta.dataset, g)?;
        }
        write_atomic(
            &dir.join(EVAL_JSON),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        write_atomic(&dir.join(EVAL_REPORT), markdown(&report).as_bytes())
    })?;
    Ok((out, report))
}

/// The run's generator, its training data read again and the held-out series.
fn read_inputs(run: &Path, opts: &EvalOptions) -> Result<Inputs> {
    let (cfg, meta, g) = load_generator(run, &Device::flex())?;
    let Some(shape) = meta.shape else {
        bail!(
            "{} holds a generator of {}-D points, not series: `keel eval` scores series runs (points runs report their mode metrics in summary.json)",
            run.display(),
            meta.output_dim
        );
    };
    let source = opts.data.clone().unwrap_or_else(|| meta.source.clone());
    if source.is_empty() {
        bail!("{} does not record its data: pass --data", run.display());
    }
    let ds = data::load(&source, meta.seed)
        .context("cannot read the run's training data again (pass --data FILE if it moved)")?;
    if ds.shape != Some(shape) || ds.classes != meta.classes {
        bail!(
            "{source}: its series ({:?}, classes {:?}) are not what {} was trained on ({:?}, classes {:?})",
            ds.shape.unwrap_or_default(),
            ds.classes,
            run.display(),
            shape,
            meta.classes
        );
    }
    let (test, test_source) = match &opts.test {
        Some(f) => (
            read_test_file(f, &meta.classes, shape)?,
            f.display().to_string(),
        ),
        None => match ds.test.clone() {
            Some(t) => (t, format!("{source} (test split)")),
            None => bail!("{source} has no test split: pass --test FILE (CSV or .ts)"),
        },
    };
    if test.labels.is_empty() && !meta.classes.is_empty() {
        bail!("{test_source}: no test series");
    }
    Ok(Inputs {
        cfg,
        meta,
        g,
        shape,
        train: ds,
        test,
        test_source,
    })
}

/// Samples per class and channel, power spectra and a PCA projection, real beside generated.
fn write_plots(dir: &Path, i: &Inputs, seed: u64) -> Result<()> {
    let (meta, shape, test) = (&i.meta, i.shape, &i.test);
    let norm = &meta.normalizer;
    let (fx, fy) = synthetic(&i.g, 10, seed + 3);
    let fake = norm.inverse(&fx);
    let title = format!(
        "{} · seed {} (real grey, generated colour)",
        meta.dataset, meta.seed
    );
    series_grid(
        &dir.join("samples.png"),
        &title,
        shape,
        &meta.classes,
        (&test.points, &test.labels),
        (&fake, &fy),
    )?;
    let (px, _) = synthetic(
        &i.g,
        (test.labels.len().max(200) / meta.classes.len().max(1)).max(50),
        seed + 4,
    );
    let many = norm.inverse(&px);
    spectra(
        &dir.join("spectra.png"),
        &format!("{}: mean power spectrum per channel", meta.dataset),
        shape,
        &test.points,
        &many,
    )?;
    projection(
        &dir.join("pca.png"),
        &format!("{}: PCA of whole series", meta.dataset),
        shape[0] * shape[1],
        &test.points,
        &many,
    )
}

/// `gain.png`: accuracy against k for the real-only, best-classic and GAN arms.
fn gain_plot(dir: &Path, dataset: &str, g: &Gain) -> Result<()> {
    let ks: Vec<String> = g.rows.iter().map(|r| k_name(r.k)).collect();
    let shown = [
        (gain::REAL, "real only"),
        (gain::BEST_CLASSIC, "+ best classic (CV)"),
        (gain::KEEL, "+ Keel"),
        (gain::KEEL_CONFIDENT, "+ Keel, confident"),
        (gain::SEMI, "+ Keel, semi-supervised"),
    ];
    // An arm missing at some k (semi-supervised at k = all) is drawn where it exists.
    let bands: Vec<(&str, Vec<crate::eval::plot::Band>)> = shown
        .iter()
        .map(|&(name, label)| {
            let v = g
                .rows
                .iter()
                .map(|r| {
                    r.arms
                        .iter()
                        .find(|a| a.name == name)
                        .map(|a| (100.0 * a.accuracy.mean, 100.0 * a.accuracy.std))
                })
                .collect();
            (label, v)
        })
        .collect();
    crate::eval::plot::bands(
        &dir.join("gain.png"),
        &format!(
            "{dataset}: augmentation gain ({} draws, mean ± std)",
            g.draws
        ),
        &ks,
        &bands,
    )
}

fn read_events(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join(EVENTS)).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .map(|e| e.to_string())
        .collect()
}

fn pct(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

pub fn markdown(r: &EvalJson) -> String {
    let s = &r.scores;
    let mut m = String::new();
    writeln!(m, "# Evaluation of `{}`\n", r.run).unwrap();
    writeln!(
        m,
        "Dataset `{}` (seed {}), {} real training series, {} held out from {}. Keel {}; {:.0} s.\n",
        r.dataset, r.seed, r.real_train, r.real_test, r.test_source, r.keel_version, r.seconds
    )
    .unwrap();
    writeln!(m, "| score | value |\n| --- | --- |").unwrap();
    if let (Some(a), Some(b), Some(q)) = (s.tstr, s.trtr, s.tstr_over_trtr) {
        writeln!(
            m,
            "| TSTR accuracy ({} synthetic per class) | {} |",
            s.synthetic_per_class,
            pct(a)
        )
        .unwrap();
        writeln!(m, "| TRTR accuracy | {} |", pct(b)).unwrap();
        writeln!(m, "| TSTR / TRTR | {q:.3} |").unwrap();
    }
    if let Some(j) = s.minirocket {
        writeln!(
            m,
            "| TSTR accuracy, MiniRocket + ridge judge | {} |",
            pct(j.tstr)
        )
        .unwrap();
        writeln!(
            m,
            "| TRTR accuracy, MiniRocket + ridge judge | {} |",
            pct(j.trtr)
        )
        .unwrap();
    }
    writeln!(
        m,
        "| discriminative score (lower is better) | {:.3} ± {:.3} ({} repeats) |",
        s.discriminative.mean, s.discriminative.std, s.discriminative.n
    )
    .unwrap();
    if let Some(f) = r.frechet {
        writeln!(
            m,
            "| Fréchet distance to the training windows, MiniRocket features, diagonal (lower is better; what `train.steps = \"auto\"` watches) | {f:.3} |"
        )
        .unwrap();
    }
    writeln!(
        m,
        "| predictive score, synthetic → real (MAE) | {:.4} ± {:.4} |",
        s.predictive.mean, s.predictive.std
    )
    .unwrap();
    writeln!(
        m,
        "| predictive score, real → real (floor) | {:.4} ± {:.4} |\n",
        s.predictive_real.mean, s.predictive_real.std
    )
    .unwrap();
    writeln!(m, "Reference classifier: a 1-D CNN (conv 7 → conv 5, 32 channels, ReLU, global average, linear), Adam lr {}, {} steps of batch {}, seed {}. Discriminative score: the same CNN telling real from synthetic, trained on 80 %, |accuracy − 0.5| on 20 %. Predictive score: the same CNN with causal convolutions predicting the last channel's next step from the other channels (TimeGAN protocol; TimeGAN used GRUs). MiniRocket judge: 9,996 MiniRocket features (Dempster et al. 2021) and a one-vs-rest ridge classifier whose penalty is chosen from 10⁻³…10³ by leave-one-out error.\n", s.classifier.lr, s.classifier.steps, s.classifier.batch, s.classifier.seed).unwrap();
    if let Some(g) = &r.gain {
        gain_section(&mut m, g);
    }
    if let Some(w) = &r.training {
        writeln!(
            m,
            "## Training\n\nWatchdog: **{}** ({} events, {} rollbacks). Losses with the events marked: \
             ![losses](../losses.png)\n",
            w.verdict, w.events, w.rollbacks
        )
        .unwrap();
        for e in &r.events {
            writeln!(m, "- {e}").unwrap();
        }
        if !r.events.is_empty() {
            m.push('\n');
        }
    }
    m.push_str("## Plots\n\n![real and generated series per class and channel](samples.png)\n\n![power spectra](spectra.png)\n\n![PCA projection](pca.png)\n");
    m
}

/// The augmentation-gain tables: every arm, then the paired comparisons.
fn gain_section(m: &mut String, g: &Gain) {
    let judge = match g.judge {
        Judge::Cnn => "reference CNN",
        Judge::Minirocket => "MiniRocket + ridge judge (its transform fitted on the k real series)",
    };
    let counts: Vec<String> = g.counts.iter().map(|c| c.to_string()).collect();
    writeln!(m, "## Augmentation gain\n\nAccuracy on the held-out series of the {judge} trained on k real series per class and what each arm adds; mean ± std over {} draws of the k (the same draws for every arm).\n\n- *jitter … window warp*: {} copies per class of the k (Um et al. 2017; Le Guennec et al. 2016).\n- *best-classic*: the augmentation and count ({} per class) that cross-validation chose on the k series alone (up to 5 folds, each holding out one series per class and its copies; MiniRocket + ridge decides, whatever the judge; jitter × {} where a class has fewer than 2).\n- *keel*: {} samples per class of a GAN trained on the k only ({} steps; k = all: the run's generator). *keel-cv-count*: of those, the count per class (0, {}) that 2-fold cross-validation on the k chose, each fold's GAN trained on the other fold alone ({} steps). *keel-confident*: of {} samples per class, the first {} that MiniRocket + ridge trained on the k assigns to their class. *keel+best-classic*: both.\n- *keel-semi*: {} samples per class of a GAN trained on the k plus the rest of the training split pseudo-labelled by MiniRocket + ridge trained on the k (per predicted class, the more confident half by score margin). *self-training*: those pseudo-labelled series added without a GAN.\n", g.draws, g.added_per_class, counts.join(", "), g.added_per_class, g.added_per_class, g.gan_steps, counts.join(", "), g.gan_steps / 2, gain::CANDIDATES * g.added_per_class, g.added_per_class, g.added_per_class).unwrap();
    let f = |v: &MeanStd| format!("{} ± {:.1}", pct(v.mean), 100.0 * v.std);
    let ks: Vec<String> = g
        .rows
        .iter()
        .map(|r| format!("k = {}", k_name(r.k)))
        .collect();
    let names: Vec<&str> = g.rows[0].arms.iter().map(|a| a.name).collect();
    let cell = |name: &str, show: &dyn Fn(&gain::Arm) -> String| -> Vec<String> {
        g.rows
            .iter()
            .map(|r| {
                r.arms
                    .iter()
                    .find(|a| a.name == name)
                    .map_or("—".into(), show)
            })
            .collect()
    };
    writeln!(
        m,
        "| arm | {} |\n|{}",
        ks.join(" | "),
        " --- |".repeat(ks.len() + 1)
    )
    .unwrap();
    for name in &names {
        writeln!(
            m,
            "| {name} | {} |",
            cell(name, &|a| f(&a.accuracy)).join(" | ")
        )
        .unwrap();
    }
    let p = |c: &Paired| {
        format!(
            "{:+.1} (p {:.3}; {}/{}/{})",
            100.0 * c.mean_diff,
            c.p_value,
            c.wins,
            c.ties,
            c.losses
        )
    };
    writeln!(m, "\n![accuracy against k per arm](gain.png)\n\nPaired over the draws against the best classic augmentation (and, below, against the real series only): mean difference in accuracy points, Wilcoxon signed-rank two-sided p (exact), wins / ties / losses.\n\n| arm − best-classic | {} |\n|{}", ks.join(" | "), " --- |".repeat(ks.len() + 1)).unwrap();
    for name in names.iter().filter(|n| **n != gain::BEST_CLASSIC) {
        writeln!(
            m,
            "| {name} | {} |",
            cell(name, &|a| p(&a.vs_best_classic)).join(" | ")
        )
        .unwrap();
    }
    writeln!(
        m,
        "\n| arm − real only | {} |\n|{}",
        ks.join(" | "),
        " --- |".repeat(ks.len() + 1)
    )
    .unwrap();
    for name in names.iter().filter(|n| **n != gain::REAL) {
        writeln!(
            m,
            "| {name} | {} |",
            cell(name, &|a| p(&a.vs_real)).join(" | ")
        )
        .unwrap();
    }
    writeln!(m, "\nNovelty: the mean distance of an added series to its nearest labelled series of its class, over the same for the test series (1: as far from the k as unseen real series; 0: copies).\n\n| k | chosen by CV (augmentation × count) | GAN samples per class chosen by CV | pseudo-labels kept (right) of unlabelled | GAN samples assigned to their class | novelty of GAN samples | novelty of chosen classic copies |\n| --- | --- | --- | --- | --- | --- | --- |").unwrap();
    for row in &g.rows {
        let chosen: Vec<String> = row
            .chosen
            .iter()
            .map(|c| c.map_or("—".into(), |c| format!("{} × {}", c.kind.name(), c.count)))
            .collect();
        let pseudo: Vec<String> = row
            .pseudo
            .iter()
            .map(|p| format!("{} ({}) of {}", p.kept, p.right, p.unlabelled))
            .collect();
        let keel_count: Vec<String> = row
            .keel_count
            .iter()
            .map(|c| c.map_or("—".into(), |c| c.to_string()))
            .collect();
        let share = MeanStd::of(&row.confident_share);
        let ratio = |v: &[f64]| {
            let v = MeanStd::of(v);
            format!("{:.2} ± {:.2}", v.mean, v.std)
        };
        writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} |",
            k_name(row.k),
            chosen.join(", "),
            keel_count.join(", "),
            if pseudo.is_empty() {
                "—".into()
            } else {
                pseudo.join(", ")
            },
            f(&share),
            ratio(&row.novelty_keel),
            ratio(&row.novelty_classic)
        )
        .unwrap();
    }
    m.push('\n');
}
