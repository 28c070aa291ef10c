//! The time-series scores of a run: TSTR/TRTR with the reference classifier, the TimeGAN
//! discriminative and predictive scores, and the augmentation gain with k real samples per class.
//! Everything here works on normalised series (the run's per-channel normaliser).

use super::classic::{self, Classic};
use super::classifier::{accuracy, predictor_mae, train_classifier, train_predictor, Fit};
use super::minirocket;
use super::paired::{paired, Paired};
use crate::config::TrainConfig;
use crate::data::{Normalizer, Split};
use crate::model::Generator;
use crate::sample::sample_classes;
use crate::train::{TrainData, Trainer};
use burn::tensor::Device;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::Serialize;

/// Normalised real data of a run: training rows and a held-out split.
pub struct RealData<'a> {
    pub shape: [usize; 2],
    pub classes: usize,
    /// Class names, for messages.
    pub names: &'a [String],
    pub train: &'a Split,
    pub test: &'a Split,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    /// Synthetic series drawn per class for TSTR (or in all, unconditional).
    pub synthetic_per_class: usize,
    pub tstr: Option<f64>,
    pub trtr: Option<f64>,
    pub tstr_over_trtr: Option<f64>,
    /// TSTR and TRTR with MiniRocket + ridge as the judge (a stronger few-shot classifier).
    pub minirocket: Option<Judged>,
    /// |accuracy − 0.5| of a real-vs-synthetic classifier on a held-out 20 %, over `repeats`.
    pub discriminative: MeanStd,
    /// Next-step MAE (data units) of a predictor trained on synthetic, tested on real.
    pub predictive: MeanStd,
    /// The same predictor trained on real training data (the floor).
    pub predictive_real: MeanStd,
    pub classifier: Fit,
}

/// Test accuracy of a judge trained on synthetic (TSTR) and on real (TRTR) series.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Judged {
    pub tstr: f64,
    pub trtr: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl MeanStd {
    pub fn of(v: &[f64]) -> Self {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Self {
            mean,
            std: var.sqrt(),
            n: v.len(),
        }
    }
}

/// Draws `per_class` normalised samples of every class (or `per_class` in all, unconditional).
pub fn synthetic(g: &Generator, per_class: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let k = g.classes.max(1);
    let labels: Vec<usize> = (0..per_class * k).map(|i| i % k).collect();
    let identity = Normalizer {
        mean: vec![0.0],
        std: vec![1.0],
        span: 1,
    };
    let x = sample_classes(g, &identity, &labels, seed, &Device::flex());
    let labels = if g.classes > 0 { labels } else { Vec::new() };
    (x, labels)
}

/// TSTR, TRTR, discriminative and predictive scores of generator `g` (inference copy).
pub fn scores(
    g: &Generator,
    real: &RealData,
    norm: &Normalizer,
    per_class: usize,
    repeats: usize,
    fit: Fit,
) -> Scores {
    let shape = real.shape;
    let (tstr, trtr, rocket_scores) = if real.classes > 0 && !real.test.labels.is_empty() {
        let (sx, sy) = synthetic(g, per_class, fit.seed + 1);
        let c = train_classifier(&sx, &sy, shape, real.classes, fit);
        let tstr = accuracy(&c, &real.test.points, &real.test.labels, shape);
        let c = train_classifier(
            &real.train.points,
            &real.train.labels,
            shape,
            real.classes,
            fit,
        );
        let trtr = accuracy(&c, &real.test.points, &real.test.labels, shape);
        let test = (&real.test.points[..], &real.test.labels[..]);
        let rocket = |x: &[f32], y: &[usize]| {
            minirocket::accuracy((x, y), test, shape, real.classes, fit.seed)
        };
        let judged = Judged {
            tstr: rocket(&sx, &sy),
            trtr: rocket(&real.train.points, &real.train.labels),
        };
        (Some(tstr), Some(trtr), Some(judged))
    } else {
        (None, None, None)
    };
    // Real rows for the post-hoc tests: every real series we have (train and test).
    let dim = shape[0] * shape[1];
    let mut all_real = real.train.points.clone();
    all_real.extend_from_slice(&real.test.points);
    let n_real = all_real.len() / dim;
    let target = shape[0] - usize::from(shape[0] > 1);
    let to_units = norm.std.get(target).copied().unwrap_or(1.0);
    let mut disc = Vec::new();
    let mut pred = Vec::new();
    let mut pred_real = Vec::new();
    for r in 0..repeats {
        let seed = fit.seed + 100 + r as u64;
        let per = n_real.div_ceil(g.classes.max(1));
        let (sx, _) = synthetic(g, per, seed);
        let sx = &sx[..n_real * dim];
        disc.push(discriminative(&all_real, sx, shape, Fit { seed, ..fit }));
        let p = train_predictor(sx, shape, Fit { seed, ..fit });
        pred.push(predictor_mae(&p, &real.test.points, shape) * to_units);
        let p = train_predictor(&real.train.points, shape, Fit { seed, ..fit });
        pred_real.push(predictor_mae(&p, &real.test.points, shape) * to_units);
    }
    Scores {
        synthetic_per_class: per_class,
        tstr,
        trtr,
        tstr_over_trtr: tstr.zip(trtr).map(|(a, b)| a / b.max(1e-9)),
        minirocket: rocket_scores,
        discriminative: MeanStd::of(&disc),
        predictive: MeanStd::of(&pred),
        predictive_real: MeanStd::of(&pred_real),
        classifier: fit,
    }
}

/// TimeGAN's discriminative score: shuffle real (label 1) and synthetic (0), train on 80 %,
/// |accuracy − 0.5| on the other 20 %.
fn discriminative(real: &[f32], fake: &[f32], shape: [usize; 2], fit: Fit) -> f64 {
    let dim = shape[0] * shape[1];
    let mut rows: Vec<(&[f32], usize)> = real
        .chunks_exact(dim)
        .map(|r| (r, 1))
        .chain(fake.chunks_exact(dim).map(|r| (r, 0)))
        .collect();
    rows.shuffle(&mut Pcg64Mcg::seed_from_u64(fit.seed ^ 0xd15c));
    let cut = rows.len() * 4 / 5;
    let flat = |rs: &[(&[f32], usize)]| -> (Vec<f32>, Vec<usize>) {
        (
            rs.iter().flat_map(|r| r.0.iter().copied()).collect(),
            rs.iter().map(|r| r.1).collect(),
        )
    };
    let (tx, ty) = flat(&rows[..cut]);
    let (vx, vy) = flat(&rows[cut..]);
    let c = train_classifier(&tx, &ty, shape, 2, fit);
    (accuracy(&c, &vx, &vy, shape) - 0.5).abs()
}

/// Accuracy on the real test split with k real training series per class, per arm, over the
/// same draws of the k series.
#[derive(Debug, Clone, Serialize)]
pub struct GainRow {
    /// k per class; `None` is "all".
    pub k: Option<usize>,
    /// 1: the k real series only.
    pub real_only: MeanStd,
    /// 2: + each classic augmentation on its own.
    pub classic: Vec<(Classic, MeanStd)>,
    /// 2: the classic augmentation cross-validation chose on the k series, per draw (`None`: a
    /// class has fewer than 2 series to cross-validate; jitter is used).
    pub chosen: Vec<Option<Classic>>,
    /// 2: + the chosen classic augmentation.
    pub best_classic: MeanStd,
    /// 3: + Keel samples from a GAN trained on the k series only.
    pub keel: MeanStd,
    /// 4: + Keel samples and the chosen classic augmentation.
    pub keel_and_classic: MeanStd,
    /// Arm 3 against arms 1 and 2, arm 4 against arm 2 (paired over the draws).
    pub keel_vs_real: Paired,
    pub keel_vs_classic: Paired,
    pub both_vs_classic: Paired,
    /// Each draw's accuracy per arm: real, best classic, Keel, Keel + classic.
    pub per_draw: [Vec<f64>; 4],
}

#[derive(Debug, Clone, Serialize)]
pub struct Gain {
    pub draws: usize,
    /// Synthetic (GAN) or augmented (classic) series added per class.
    pub added_per_class: usize,
    /// Generator steps of each GAN trained on k series per class.
    pub gan_steps: usize,
    pub judge: Judge,
    pub rows: Vec<GainRow>,
}

/// The classifier that judges the augmentation gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Judge {
    /// The reference 1-D CNN.
    Cnn,
    /// MiniRocket features and a leave-one-out ridge classifier.
    Minirocket,
}

pub struct GainOptions {
    pub ks: Vec<Option<usize>>,
    pub judge: Judge,
    pub draws: usize,
    pub added_per_class: usize,
    pub gan_steps: usize,
    pub fit: Fit,
}

/// For each k and draw: a classifier on k real series per class; on those plus classic
/// augmentation of them; on those plus samples of a GAN trained on them alone (the run's config).
/// `full` is the run's own generator, which saw every training series (used for k = all).
pub fn gain(
    cfg: &TrainConfig,
    real: &RealData,
    full: &Generator,
    opts: &GainOptions,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<Gain> {
    let shape = real.shape;
    let dim = shape[0] * shape[1];
    let added = opts.added_per_class;
    if added == 0 || opts.draws == 0 {
        anyhow::bail!("the gain study needs --added and --draws of at least 1");
    }
    // A k that some class cannot supply would silently draw fewer: refuse it, naming the class.
    for k in opts.ks.iter().flatten() {
        for class in 0..real.classes {
            let n = real.train.labels.iter().filter(|&&l| l == class).count();
            if n < *k {
                let name = real.names.get(class).map_or("?", String::as_str);
                anyhow::bail!(
                    "--k {k}: class `{name}` has only {n} training series; use --k {n} or less, or `all`"
                );
            }
        }
    }
    let mut rows = Vec::new();
    for &k in &opts.ks {
        // Per arm, per draw: real, each classic, best classic, Keel, Keel + classic.
        let mut arm: Vec<Vec<f64>> = vec![Vec::new(); 4 + Classic::ALL.len()];
        let mut chosen = Vec::new();
        for draw in 0..opts.draws {
            let seed = opts.fit.seed + 1000 * draw as u64 + k.unwrap_or(0) as u64;
            let (x, y) = pick(real.train, dim, real.classes, k, seed);
            let fit = Fit { seed, ..opts.fit };
            let judge = |train: (&[f32], &[usize]), held: (&[f32], &[usize])| match opts.judge {
                Judge::Cnn => {
                    let m = train_classifier(train.0, train.1, shape, real.classes, fit);
                    accuracy(&m, held.0, held.1, shape)
                }
                Judge::Minirocket => minirocket::accuracy(train, held, shape, real.classes, seed),
            };
            let test = (&real.test.points[..], &real.test.labels[..]);
            let with = |extra: &[(Vec<f32>, Vec<usize>)]| {
                let mut tx = x.clone();
                let mut ty = y.clone();
                for (ex, ey) in extra {
                    tx.extend_from_slice(ex);
                    ty.extend_from_slice(ey);
                }
                judge((&tx, &ty), test)
            };
            arm[0].push(with(&[]));
            let augmented =
                |kind| classic::augment((&x, &y), shape, real.classes, added, kind, seed);
            for (i, kind) in Classic::ALL.into_iter().enumerate() {
                arm[4 + i].push(with(&[augmented(kind)]));
            }
            // The best classic augmentation, chosen on the k series alone.
            let pick_cv =
                classic::choose((&x, &y), shape, real.classes, added, seed, &mut |t, h| {
                    judge(t, h)
                });
            chosen.push(pick_cv);
            let best = pick_cv.unwrap_or(Classic::Jitter);
            let best_i = Classic::ALL.iter().position(|&c| c == best).unwrap_or(0);
            let best_acc = arm[4 + best_i][draw];
            arm[1].push(best_acc);
            let trained;
            let g = match k {
                None => full,
                Some(_) => {
                    progress(&format!(
                        "k = {} draw {}: training a GAN on {} series",
                        k.map_or("all".into(), |k| k.to_string()),
                        draw + 1,
                        y.len()
                    ));
                    trained = train_gan(cfg, &x, &y, real, opts.gan_steps, seed)?;
                    &trained
                }
            };
            let keel = synthetic(g, added, seed + 7);
            arm[2].push(with(std::slice::from_ref(&keel)));
            arm[3].push(with(&[keel, augmented(best)]));
        }
        rows.push(GainRow {
            k,
            real_only: MeanStd::of(&arm[0]),
            classic: Classic::ALL
                .into_iter()
                .enumerate()
                .map(|(i, c)| (c, MeanStd::of(&arm[4 + i])))
                .collect(),
            chosen,
            best_classic: MeanStd::of(&arm[1]),
            keel: MeanStd::of(&arm[2]),
            keel_and_classic: MeanStd::of(&arm[3]),
            keel_vs_real: paired(&arm[2], &arm[0]),
            keel_vs_classic: paired(&arm[2], &arm[1]),
            both_vs_classic: paired(&arm[3], &arm[1]),
            per_draw: [
                arm[0].clone(),
                arm[1].clone(),
                arm[2].clone(),
                arm[3].clone(),
            ],
        });
    }
    Ok(Gain {
        draws: opts.draws,
        added_per_class: opts.added_per_class,
        gan_steps: opts.gan_steps,
        judge: opts.judge,
        rows,
    })
}

/// k series per class drawn without replacement (all of them for `None`).
fn pick(
    split: &Split,
    dim: usize,
    classes: usize,
    k: Option<usize>,
    seed: u64,
) -> (Vec<f32>, Vec<usize>) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for class in 0..classes {
        let mut idx: Vec<usize> = (0..split.labels.len())
            .filter(|&i| split.labels[i] == class)
            .collect();
        idx.shuffle(&mut rng);
        let n = k.map_or(idx.len(), |k| k.min(idx.len()));
        for &i in &idx[..n] {
            x.extend_from_slice(&split.points[i * dim..(i + 1) * dim]);
            y.push(class);
        }
    }
    (x, y)
}

/// A GAN with the run's configuration, trained on normalised `x` only.
fn train_gan(
    cfg: &TrainConfig,
    x: &[f32],
    y: &[usize],
    real: &RealData,
    steps: usize,
    seed: u64,
) -> anyhow::Result<Generator> {
    let mut cfg = cfg.clone();
    cfg.train.steps = steps;
    cfg.train.seed = seed;
    cfg.train.ema_start = cfg.train.ema_start.min(steps / 4);
    let data = TrainData {
        points: x.to_vec(),
        dim: x.len() / y.len(),
        labels: y.to_vec(),
        classes: real.classes,
        shape: Some(real.shape),
    };
    let mut t = Trainer::new(cfg, data, Device::flex().autodiff())?;
    for _ in 0..steps {
        t.step();
    }
    Ok(t.sampling_generator())
}
