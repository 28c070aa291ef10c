//! The time-series scores of a run: TSTR/TRTR with the reference classifier, the TimeGAN
//! discriminative and predictive scores (the augmentation gain is in `gain.rs`).
//! Everything here works on normalised series (the run's per-channel normaliser).

use super::classifier::{accuracy, predictor_mae, train_classifier, train_predictor, Fit};
use super::minirocket;
use crate::data::{Normalizer, Split};
use crate::model::Generator;
use crate::sample::sample_classes;
use burn::tensor::Device;
pub use keel_stats::MeanStd;
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
