//! The augmentation-gain study of `keel eval`: with k labelled training series per class, over
//! draws of those k (the same draws for every arm), the test accuracy of a judge trained on
//!
//! 1. the k real series only;
//! 2. adding each classic augmentation, and the (augmentation, count) cross-validation chose on the k;
//! 3. adding samples of a GAN trained on the k alone; and only those assigned to their intended class
//!    by MiniRocket + ridge trained on the k ("confident");
//! 4. adding GAN samples and the chosen classic augmentation;
//! 5. adding samples of a GAN that also saw the rest of the training split without its labels, through
//!    pseudo-labels: MiniRocket + ridge trained on the k labels the rest, the most confident half
//!    of each predicted class joins the k (semi-supervised); beside it, those pseudo-labelled
//!    real series added without a GAN (self-training), so that what the GAN adds can be read.
//!
//! Those choices (the classic augmentation and count, pseudo-labels, confident samples) are made
//! by MiniRocket + ridge on the k series whichever judge scores the arms on the test split.
//!
//! Every series a draw uses goes into one pool, and the judge turns each into features once
//! (MiniRocket: a transform fitted on the k real series alone, never on the test split), so an arm
//! costs one fit of the classifier. Draws run in parallel, each on one thread.

use super::classic::{self, Classic};
use super::classifier::{argmax, class_scores, train_classifier, Fit};
use super::minirocket::{MiniRocket, Ridge};
use super::series::{synthetic, MeanStd, RealData};
use crate::config::TrainConfig;
use crate::model::Generator;
use crate::train::{TrainData, Trainer};
use burn::tensor::Device;
use keel_stats::{paired, Paired};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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
    /// Draws run at once.
    pub jobs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gain {
    pub draws: usize,
    /// Series added per class by each augmentation arm (GAN samples, or classic copies).
    pub added_per_class: usize,
    /// The counts per class cross-validation chooses the best classic augmentation's among.
    pub counts: Vec<usize>,
    /// Generator steps of each GAN trained for a draw.
    pub gan_steps: usize,
    pub judge: Judge,
    pub rows: Vec<GainRow>,
}

/// One k: every arm over the draws, and what each draw chose.
#[derive(Debug, Clone, Serialize)]
pub struct GainRow {
    /// k per class; `None` is "all".
    pub k: Option<usize>,
    pub arms: Vec<Arm>,
    /// Per draw: the classic augmentation and count cross-validation chose (`None`: a class has
    /// fewer than 2 series to cross-validate; jitter at `added_per_class` is used).
    pub chosen: Vec<Option<Choice>>,
    /// Per draw: the GAN samples per class 2-fold cross-validation chose to add (0: none; `None`:
    /// a class has one labelled series; `added_per_class` is used).
    pub keel_count: Vec<Option<usize>>,
    /// Per draw: the pseudo-labelling of arm 5 (empty at k = all: nothing is unlabelled).
    pub pseudo: Vec<Pseudo>,
    /// Per draw: the share of GAN samples the judge trained on the k assigns to their class.
    pub confident_share: Vec<f64>,
    /// Per draw, how far added series sit from the k they were made from: the mean distance of
    /// each added series to its nearest same-class labelled series, over the same for the test
    /// series (1: as new as unseen real series; near 0: copies). For the GAN samples (arm 3) and
    /// the chosen classic augmentation.
    pub novelty_keel: Vec<f64>,
    pub novelty_classic: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Arm {
    pub name: &'static str,
    pub accuracy: MeanStd,
    pub per_draw: Vec<f64>,
    /// This arm against the k real series only, and against the best classic augmentation.
    pub vs_real: Paired,
    pub vs_best_classic: Paired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub kind: Classic,
    pub count: usize,
}

/// Unlabelled series pseudo-labelled and kept; how many of those labels were right (the study
/// knows the hidden labels; no arm sees them).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Pseudo {
    pub unlabelled: usize,
    pub kept: usize,
    pub right: usize,
}

pub const REAL: &str = "real";
pub const BEST_CLASSIC: &str = "best-classic";
pub const KEEL: &str = "keel";
pub const KEEL_CV: &str = "keel-cv-count";
pub const KEEL_CONFIDENT: &str = "keel-confident";
pub const KEEL_AND_CLASSIC: &str = "keel+best-classic";
pub const SEMI: &str = "keel-semi";
pub const SELF_TRAINING: &str = "self-training";

/// GAN samples drawn per class for the confident arm, per sample it keeps.
pub const CANDIDATES: usize = 4;

/// Runs the study. `full` is the run's own generator, which saw every training series (the Keel
/// arm at k = all).
pub fn gain(
    cfg: &TrainConfig,
    real: &RealData,
    full: &Generator,
    opts: &GainOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Gain> {
    if opts.added_per_class == 0 || opts.draws == 0 {
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
    let counts = counts(opts.added_per_class);
    let tasks: Vec<(Option<usize>, usize)> = opts
        .ks
        .iter()
        .flat_map(|&k| (0..opts.draws).map(move |d| (k, d)))
        .collect();
    let results: Vec<Mutex<Option<anyhow::Result<Draw>>>> =
        tasks.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, tasks.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(k, d)) = tasks.get(i) else { break };
                progress(&format!("k = {} draw {}: started", k_name(k), d + 1));
                let r = draw(cfg, real, full, opts, &counts, k, d);
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    let mut draws = Vec::with_capacity(tasks.len());
    for r in results {
        let r = r.into_inner().unwrap_or_else(|e| e.into_inner());
        draws.push(r.unwrap_or_else(|| Err(anyhow::anyhow!("a draw did not run")))?);
    }
    let rows = opts
        .ks
        .iter()
        .zip(draws.chunks(opts.draws))
        .map(|(&k, d)| row(k, d))
        .collect();
    Ok(Gain {
        draws: opts.draws,
        added_per_class: opts.added_per_class,
        counts,
        gan_steps: opts.gan_steps,
        judge: opts.judge,
        rows,
    })
}

/// The counts per class the best classic augmentation is chosen among: ¼, ½ and all of `added`.
fn counts(added: usize) -> Vec<usize> {
    let mut c: Vec<usize> = [added / 4, added / 2, added]
        .into_iter()
        .filter(|&c| c > 0)
        .collect();
    c.dedup();
    c
}

pub fn k_name(k: Option<usize>) -> String {
    k.map_or("all".into(), |k| k.to_string())
}

/// What one draw measured: each arm's accuracy, in the order arms are listed.
struct Draw {
    accuracy: Vec<(&'static str, f64)>,
    chosen: Option<Choice>,
    keel_count: Option<usize>,
    pseudo: Option<Pseudo>,
    confident_share: f64,
    novelty: (f64, f64),
}

fn row(k: Option<usize>, draws: &[Draw]) -> GainRow {
    let of = |name: &str| -> Vec<f64> {
        draws
            .iter()
            .filter_map(|d| d.accuracy.iter().find(|a| a.0 == name).map(|a| a.1))
            .collect()
    };
    let real = of(REAL);
    let best = of(BEST_CLASSIC);
    let arms = draws[0]
        .accuracy
        .iter()
        .map(|&(name, _)| {
            let v = of(name);
            Arm {
                name,
                accuracy: MeanStd::of(&v),
                vs_real: paired(&v, &real),
                vs_best_classic: paired(&v, &best),
                per_draw: v,
            }
        })
        .collect();
    GainRow {
        k,
        arms,
        chosen: draws.iter().map(|d| d.chosen).collect(),
        keel_count: draws.iter().map(|d| d.keel_count).collect(),
        pseudo: draws.iter().filter_map(|d| d.pseudo).collect(),
        confident_share: draws.iter().map(|d| d.confident_share).collect(),
        novelty_keel: draws.iter().map(|d| d.novelty.0).collect(),
        novelty_classic: draws.iter().map(|d| d.novelty.1).collect(),
    }
}

/// One classic augmentation's copies in the pool: per class, in order, each copy's row and its
/// source's row.
type Copies = (Classic, Vec<Vec<(usize, usize)>>);

/// Labelled series in one place; arms are lists of rows.
struct Pool {
    dim: usize,
    x: Vec<f32>,
    y: Vec<usize>,
}

impl Pool {
    fn add(&mut self, x: &[f32], y: &[usize]) -> Vec<usize> {
        let start = self.y.len();
        self.x.extend_from_slice(x);
        self.y.extend_from_slice(y);
        (start..self.y.len()).collect()
    }

    fn gather(&self, rows: &[usize]) -> (Vec<f32>, Vec<usize>) {
        let x = rows
            .iter()
            .flat_map(|&r| &self.x[r * self.dim..(r + 1) * self.dim])
            .copied()
            .collect();
        (x, rows.iter().map(|&r| self.y[r]).collect())
    }
}

/// The judge of one draw.
enum Scorer {
    Cnn {
        shape: [usize; 2],
        classes: usize,
        fit: Fit,
    },
    /// MiniRocket fitted on the draw's k real series; features of every pooled row so far.
    Rocket {
        rocket: MiniRocket,
        features: Vec<f32>,
        classes: usize,
    },
}

impl Scorer {
    fn new(judge: Judge, labelled: &[f32], shape: [usize; 2], classes: usize, fit: Fit) -> Self {
        match judge {
            Judge::Cnn => Scorer::Cnn {
                shape,
                classes,
                fit,
            },
            Judge::Minirocket => Scorer::Rocket {
                rocket: MiniRocket::fit(labelled, shape, fit.seed),
                features: Vec::new(),
                classes,
            },
        }
    }

    /// Transforms the rows added to the pool since the last call.
    fn update(&mut self, pool: &Pool) {
        if let Scorer::Rocket {
            rocket, features, ..
        } = self
        {
            let done = features.len() / rocket.features();
            features.extend(rocket.transform(&pool.x[done * pool.dim..]));
        }
    }

    /// Class scores of `rows` from a classifier trained on `train`.
    fn scores(&self, pool: &Pool, train: &[usize], rows: &[usize]) -> Vec<Vec<f64>> {
        match self {
            Scorer::Cnn {
                shape,
                classes,
                fit,
            } => {
                let (x, y) = pool.gather(train);
                let model = train_classifier(&x, &y, *shape, *classes, *fit);
                class_scores(&model, &pool.gather(rows).0, *shape)
            }
            Scorer::Rocket {
                rocket,
                features,
                classes,
            } => {
                let width = rocket.features();
                let take = |rows: &[usize]| -> Vec<f32> {
                    rows.iter()
                        .flat_map(|&r| &features[r * width..(r + 1) * width])
                        .copied()
                        .collect()
                };
                let labels: Vec<usize> = train.iter().map(|&r| pool.y[r]).collect();
                Ridge::fit(&take(train), &labels, *classes).scores(&take(rows))
            }
        }
    }

    fn accuracy(&self, pool: &Pool, train: &[usize], held: &[usize]) -> f64 {
        self.graded(pool, train, held).0 / held.len().max(1) as f64
    }

    /// Held-out rows classified right, and the sum over them of the true class's score margin
    /// over the best other class (a finer grade that separates candidates which tie on a few
    /// held-out series).
    fn graded(&self, pool: &Pool, train: &[usize], held: &[usize]) -> (f64, f64) {
        let scores = self.scores(pool, train, held);
        let mut right = 0.0;
        let mut margin = 0.0;
        for (s, &r) in scores.iter().zip(held) {
            let c = pool.y[r];
            right += f64::from(u8::from(argmax(s) == c));
            margin += s[c] - margin_over(s, c);
        }
        (right, margin)
    }
}

/// One draw of the k series and every arm on it.
fn draw(
    cfg: &TrainConfig,
    real: &RealData,
    full: &Generator,
    opts: &GainOptions,
    counts: &[usize],
    k: Option<usize>,
    d: usize,
) -> anyhow::Result<Draw> {
    let (shape, classes, added) = (real.shape, real.classes, opts.added_per_class);
    let dim = shape[0] * shape[1];
    let seed = opts.fit.seed + 1000 * d as u64 + k.unwrap_or(0) as u64;
    let fit = Fit { seed, ..opts.fit };
    let (labelled, unlabelled) = pick(&real.train.labels, classes, k, seed);
    let mut pool = Pool {
        dim,
        x: Vec::new(),
        y: Vec::new(),
    };
    let train_rows = |rows: &[usize]| -> (Vec<f32>, Vec<usize>) {
        let x = rows
            .iter()
            .flat_map(|&i| &real.train.points[i * dim..(i + 1) * dim])
            .copied()
            .collect();
        (x, rows.iter().map(|&i| real.train.labels[i]).collect())
    };
    let (kx, ky) = train_rows(&labelled);
    let base = pool.add(&kx, &ky);
    let test = pool.add(&real.test.points, &real.test.labels);
    // Unlabelled rows enter the pool with a placeholder class until pseudo-labelled.
    let (ux, uy_hidden) = train_rows(&unlabelled);
    let unl = pool.add(&ux, &vec![0; uy_hidden.len()]);
    let mut aug: Vec<Copies> = Vec::new();
    for kind in Classic::ALL {
        let a = classic::augment((&kx, &ky), shape, classes, added, kind, seed);
        let rows = pool.add(&a.x, &a.y);
        let mut per_class = vec![Vec::new(); classes];
        for (i, &r) in rows.iter().enumerate() {
            per_class[a.y[i]].push((r, base[a.source[i]]));
        }
        aug.push((kind, per_class));
    }
    // Choices (pseudo-labels, the classic augmentation, confident samples) are made by MiniRocket
    // on the k series whatever the judge: it is the stronger few-shot classifier, and a CNN per
    // cross-validation candidate and fold would cost ~75 trainings a draw.
    let mut chooser = Scorer::new(Judge::Minirocket, &kx, shape, classes, fit);
    chooser.update(&pool);
    let cnn = (opts.judge == Judge::Cnn).then(|| Scorer::new(Judge::Cnn, &kx, shape, classes, fit));

    // Arm 5's pseudo-labels: per predicted class, the more confident half (by the margin of the
    // best class score over the next).
    let mut pseudo_rows = Vec::new();
    let pseudo = (!unl.is_empty()).then(|| {
        let scores = chooser.scores(&pool, &base, &unl);
        let mut by_class: Vec<Vec<(f64, usize, usize)>> = vec![Vec::new(); classes];
        for (i, s) in scores.iter().enumerate() {
            let c = argmax(s);
            by_class[c].push((s[c] - margin_over(s, c), i, c));
        }
        let mut right = 0;
        for group in &mut by_class {
            group.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for &(_, i, c) in &group[..group.len().div_ceil(2)] {
                pool.y[unl[i]] = c;
                pseudo_rows.push(unl[i]);
                right += usize::from(uy_hidden[i] == c);
            }
        }
        Pseudo {
            unlabelled: unl.len(),
            kept: pseudo_rows.len(),
            right,
        }
    });

    let chosen = choose(&chooser, &pool, &base, &aug, counts);
    let best = chosen.unwrap_or(Choice {
        kind: Classic::Jitter,
        count: added,
    });

    // GAN samples: `CANDIDATES × added` per class, the first `added` of each class for arm 3.
    let trained;
    let g = match k {
        None => full,
        Some(_) => {
            trained = train_gan(cfg, &kx, &ky, real, opts.gan_steps, seed)?;
            &trained
        }
    };
    let (sx, sy) = synthetic(g, CANDIDATES * added, seed + 7);
    let samples = pool.add(&sx, &sy);
    let semi = if pseudo_rows.is_empty() {
        Vec::new()
    } else {
        let rows: Vec<usize> = base.iter().chain(&pseudo_rows).copied().collect();
        let (x, y) = pool.gather(&rows);
        let g = train_gan(cfg, &x, &y, real, opts.gan_steps, seed + 3)?;
        let (sx, sy) = synthetic(&g, added, seed + 11);
        pool.add(&sx, &sy)
    };
    // How many GAN samples to add (0 included), by 2-fold CV with a GAN per fold trained on the
    // other fold only (half the steps: it sees half the series).
    let mut keel_count = None;
    let mut fold_samples = Vec::new();
    if let Some((folds, rank)) = fold_ranks(&pool, &base, classes, 2) {
        for fold in 0..folds {
            let (x, y) = pool.gather(&split_fold(&base, &rank, folds, fold).1);
            let g = train_gan(
                cfg,
                &x,
                &y,
                real,
                opts.gan_steps / 2,
                seed + 17 + fold as u64,
            )?;
            let (sx, sy) = synthetic(&g, added, seed + 19 + fold as u64);
            fold_samples.push(pool.add(&sx, &sy));
        }
        chooser.update(&pool);
        let mut keel_counts = vec![0];
        keel_counts.extend_from_slice(counts);
        let mut grade = vec![(0.0, 0.0); keel_counts.len()];
        for (fold, samples) in fold_samples.iter().enumerate() {
            let (held, kept) = split_fold(&base, &rank, folds, fold);
            for (&count, total) in keel_counts.iter().zip(&mut grade) {
                let mut train = kept.clone();
                train.extend(first_per_class(&pool, samples, classes, count));
                let (right, margin) = chooser.graded(&pool, &train, &held);
                total.0 += right;
                total.1 += margin;
            }
        }
        keel_count = Some(keel_counts[best_grade(&grade)]);
    }
    chooser.update(&pool);
    let judge = cnn.as_ref().unwrap_or(&chooser);
    let keel = &samples[..added * classes];
    let keel_cv = first_per_class(&pool, keel, classes, keel_count.unwrap_or(added));
    let scores = chooser.scores(&pool, &base, &samples);
    let mut kept = vec![0usize; classes];
    let mut confident = Vec::new();
    for (s, &r) in scores.iter().zip(&samples) {
        let c = pool.y[r];
        if argmax(s) == c && kept[c] < added {
            kept[c] += 1;
            confident.push(r);
        }
    }
    let confident_share = scores
        .iter()
        .zip(&samples)
        .filter(|(s, &r)| argmax(s) == pool.y[r])
        .count() as f64
        / samples.len().max(1) as f64;

    let acc = |extra: &[&[usize]]| -> f64 {
        let mut train = base.clone();
        extra.iter().for_each(|e| train.extend_from_slice(e));
        judge.accuracy(&pool, &train, &test)
    };
    let nearest = |rows: &[usize]| -> f64 {
        let total: f64 = rows
            .iter()
            .map(|&r| {
                let x = &pool.x[r * dim..(r + 1) * dim];
                base.iter()
                    .filter(|&&b| pool.y[b] == pool.y[r])
                    .map(|&b| distance(x, &pool.x[b * dim..(b + 1) * dim]))
                    .fold(f64::INFINITY, f64::min)
            })
            .sum();
        total / rows.len().max(1) as f64
    };
    let unseen = nearest(&test);
    let novelty = |rows: &[usize]| nearest(rows) / unseen.max(1e-12);
    let mut accuracy = vec![(REAL, acc(&[]))];
    for kind in Classic::ALL {
        let rows = classic_rows(&aug, Choice { kind, count: added });
        accuracy.push((kind.key(), acc(&[&rows])));
    }
    let best_rows = classic_rows(&aug, best);
    accuracy.push((BEST_CLASSIC, acc(&[&best_rows])));
    accuracy.push((KEEL, acc(&[keel])));
    accuracy.push((KEEL_CV, acc(&[&keel_cv])));
    accuracy.push((KEEL_CONFIDENT, acc(&[&confident])));
    accuracy.push((KEEL_AND_CLASSIC, acc(&[keel, &best_rows])));
    if !semi.is_empty() {
        accuracy.push((SEMI, acc(&[&semi])));
        accuracy.push((SELF_TRAINING, acc(&[&pseudo_rows])));
    }
    Ok(Draw {
        accuracy,
        chosen,
        keel_count,
        pseudo,
        confident_share,
        novelty: (novelty(keel), novelty(&best_rows)),
    })
}

/// The (classic augmentation, count) whose held-out accuracy summed over folds of the k labelled
/// series is best (ties: the larger summed margin of the true class) (fold i holds out the i-th series of every class, up to 5 folds; a held-out
/// series' copies are left out with it); `None` with fewer than 2 series in some class. Only
/// `base` and its copies are read: never the test split.
fn choose(
    judge: &Scorer,
    pool: &Pool,
    base: &[usize],
    aug: &[Copies],
    counts: &[usize],
) -> Option<Choice> {
    let classes = aug.first().map_or(0, |a| a.1.len());
    let (folds, rank) = fold_ranks(pool, base, classes, 5)?;
    let candidates: Vec<Choice> = aug
        .iter()
        .flat_map(|a| counts.iter().map(|&count| Choice { kind: a.0, count }))
        .collect();
    let mut grade = vec![(0.0, 0.0); candidates.len()];
    for fold in 0..folds {
        let (held, kept) = split_fold(base, &rank, folds, fold);
        for (c, total) in candidates.iter().zip(&mut grade) {
            let per_class = &aug.iter().find(|a| a.0 == c.kind).expect("every kind").1;
            let mut train = kept.clone();
            for rows in per_class {
                train.extend(
                    rows.iter()
                        .filter(|(_, src)| !held.contains(src))
                        .take(c.count)
                        .map(|r| r.0),
                );
            }
            let (right, margin) = judge.graded(pool, &train, &held);
            total.0 += right;
            total.1 += margin;
        }
    }
    Some(candidates[best_grade(&grade)])
}

/// Each labelled row's position within its class, and the number of folds (fold i holds out the
/// rows whose position is i modulo it): up to `most`, `None` below 2 (a class with one row).
fn fold_ranks(
    pool: &Pool,
    base: &[usize],
    classes: usize,
    most: usize,
) -> Option<(usize, Vec<usize>)> {
    let mut seen = vec![0usize; classes];
    let rank: Vec<usize> = base
        .iter()
        .map(|&r| {
            seen[pool.y[r]] += 1;
            seen[pool.y[r]] - 1
        })
        .collect();
    let folds = seen.iter().copied().min().unwrap_or(0).min(most);
    (folds >= 2).then_some((folds, rank))
}

/// The rows of fold `fold` (held out) and the others (kept).
fn split_fold(
    base: &[usize],
    rank: &[usize],
    folds: usize,
    fold: usize,
) -> (Vec<usize>, Vec<usize>) {
    let (mut held, mut kept) = (Vec::new(), Vec::new());
    for (&b, &r) in base.iter().zip(rank) {
        if r % folds == fold {
            held.push(b);
        } else {
            kept.push(b);
        }
    }
    (held, kept)
}

/// The candidate with the most held-out rows right; among those, the largest summed margin; then
/// the first listed.
fn best_grade(grade: &[(f64, f64)]) -> usize {
    let mut best = 0;
    for (i, g) in grade.iter().enumerate() {
        if g.0 > grade[best].0 || (g.0 == grade[best].0 && g.1 > grade[best].1) {
            best = i;
        }
    }
    best
}

/// The first `count` rows of each class among `rows`.
fn first_per_class(pool: &Pool, rows: &[usize], classes: usize, count: usize) -> Vec<usize> {
    let mut taken = vec![0usize; classes];
    rows.iter()
        .copied()
        .filter(|&r| {
            let c = pool.y[r];
            taken[c] += 1;
            taken[c] <= count
        })
        .collect()
}

/// Every classic copy of `c.kind`, the first `c.count` of each class.
fn classic_rows(aug: &[Copies], c: Choice) -> Vec<usize> {
    let per_class = &aug.iter().find(|a| a.0 == c.kind).expect("every kind").1;
    per_class
        .iter()
        .flat_map(|rows| rows.iter().take(c.count).map(|r| r.0))
        .collect()
}

fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The best score of a class other than `c` (`c`'s own with one class).
fn margin_over(scores: &[f64], c: usize) -> f64 {
    scores
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != c)
        .map(|(_, v)| *v)
        .reduce(f64::max)
        .unwrap_or(scores[c])
}

/// Training-split indices: k per class drawn without replacement (all for `None`), and the rest.
fn pick(labels: &[usize], classes: usize, k: Option<usize>, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let (mut chosen, mut rest) = (Vec::new(), Vec::new());
    for class in 0..classes {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        let n = k.map_or(idx.len(), |k| k.min(idx.len()));
        chosen.extend_from_slice(&idx[..n]);
        rest.extend_from_slice(&idx[n..]);
    }
    (chosen, rest)
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
    cfg.train.steps = crate::config::Steps::Fixed(steps);
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
