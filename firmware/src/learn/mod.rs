//! On-device learning: a classifier that adapts to its user from a few labelled windows plus
//! windows from the generator.
//!
//! - [`features`]: fixed MiniRocket-style features in integer arithmetic (672 per window);
//! - [`Learner`]: a nearest-class-mean head on those features, each feature scaled by its pooled
//!   within-class variance (diagonal LDA with equal priors), trained in one pass over the windows;
//! - [`Store`]: the user's labelled windows, of fixed capacity;
//! - [`adapt`]: one adaptation — train on labelled windows plus generated ones, test — the very
//!   routine the board runs and the host simulates (`keel-run adapt`), on an [`AdaptSet`].
//!
//! Determinism: only integer arithmetic and IEEE f32 additions, multiplications and divisions in a
//! fixed order (no fused multiply-add, no `libm`), so the host simulation and the device give the
//! same bits.

pub mod features;
pub mod set;
mod store;

pub use features::{Features, FEATURES};
pub use set::AdaptSet;
pub use store::Store;

use crate::{Augmenter, Error};

/// The head's pooled variance floor, so that a feature constant within every class does not
/// divide by zero (PPV features lie in 0..=1).
const VARIANCE_FLOOR: f32 = 1e-4;

/// The weights a generated window may take in its class mean (a real one weighs 1), among which
/// [`Learner::choose_weight`] picks by leave-one-out on the real windows. 0: generated windows
/// only sharpen the variances; 1: they count as much as real ones.
pub const GENERATED_WEIGHTS: [f32; 5] = [0.0, 0.1, 0.25, 0.5, 1.0];

/// A nearest-class-mean classifier over [`Features`] for up to `K` classes, whose class means
/// mix the user's real windows with generated ones at a weight chosen on the real windows.
pub struct Learner<const K: usize> {
    features: Features,
    /// Per class: the sum of its real windows' features; after training, their mean.
    real: [[f32; FEATURES]; K],
    /// Per class: the sum of its generated windows' features; after training, their mean.
    generated: [[f32; FEATURES]; K],
    /// The sum of squared features over every window; after training, the inverse pooled
    /// within-group variance (real and generated windows of a class are separate groups).
    squares: [f32; FEATURES],
    counts: [u32; K],
    generated_counts: [u32; K],
    /// The weight of a generated window in its class mean.
    weight: f32,
    classes: usize,
    trained: bool,
    scratch: [f32; FEATURES],
}

impl<const K: usize> Learner<K> {
    /// A learner of `classes` (≤ `K`) over a fitted extractor.
    pub fn new(features: Features, classes: usize) -> Result<Self, Error> {
        let mut l = Self::empty();
        l.init(features, classes)?;
        Ok(l)
    }

    /// A learner of no class yet, for a `static` (all zero: it lives in `.bss`, and is never
    /// built on the stack); [`Learner::init`] gives it its extractor and classes.
    pub const fn empty() -> Self {
        Self {
            features: Features::EMPTY,
            real: [[0.0; FEATURES]; K],
            generated: [[0.0; FEATURES]; K],
            squares: [0.0; FEATURES],
            counts: [0; K],
            generated_counts: [0; K],
            weight: 0.0,
            classes: 0,
            trained: false,
            scratch: [0.0; FEATURES],
        }
    }

    /// Starts over with `features` and `classes` (≤ `K`) classes.
    pub fn init(&mut self, features: Features, classes: usize) -> Result<(), Error> {
        if classes == 0 || classes > K {
            return Err(Error::BadClass {
                class: classes as u16,
                classes: K as u16,
            });
        }
        self.features = features;
        self.classes = classes;
        self.reset();
        Ok(())
    }

    /// Forgets every window (and the trained head).
    pub fn reset(&mut self) {
        self.real.iter_mut().for_each(|s| s.fill(0.0));
        self.generated.iter_mut().for_each(|s| s.fill(0.0));
        self.squares.fill(0.0);
        self.counts.fill(0);
        self.generated_counts.fill(0);
        self.weight = 0.0;
        self.trained = false;
    }

    /// Adds one of the user's labelled windows (int8, the generator's scale). After
    /// [`Learner::train`], call [`Learner::reset`] before adding again.
    pub fn add(&mut self, class: u16, window: &[i8]) -> Result<(), Error> {
        self.accumulate(class, window, false)
    }

    /// Adds one generated window of `class`.
    pub fn add_generated(&mut self, class: u16, window: &[i8]) -> Result<(), Error> {
        self.accumulate(class, window, true)
    }

    fn accumulate(&mut self, class: u16, window: &[i8], generated: bool) -> Result<(), Error> {
        self.check_class(class)?;
        if self.trained {
            return Err(Error::Trained);
        }
        self.features.transform(window, &mut self.scratch)?;
        let c = class as usize;
        let (sums, count) = if generated {
            (&mut self.generated[c], &mut self.generated_counts[c])
        } else {
            (&mut self.real[c], &mut self.counts[c])
        };
        for ((s, q), &x) in sums.iter_mut().zip(&mut self.squares).zip(&self.scratch) {
            *s += x;
            *q += x * x;
        }
        *count += 1;
        Ok(())
    }

    /// Turns the sums into means and inverse pooled variances. Every class needs a real window.
    /// Generated windows weigh [`GENERATED_WEIGHTS`]' largest in the class means until
    /// [`Learner::choose_weight`] or [`Learner::set_weight`] says otherwise.
    pub fn train(&mut self) -> Result<(), Error> {
        if self.trained {
            return Ok(());
        }
        if let Some(c) = (0..self.classes).find(|&c| self.counts[c] == 0) {
            return Err(Error::NoWindows { class: c as u16 });
        }
        let (mut n, mut groups) = (0usize, 0usize);
        for c in 0..self.classes {
            for count in [self.counts[c], self.generated_counts[c]] {
                n += count as usize;
                groups += usize::from(count > 0);
            }
        }
        // Pooled within-group variance: (Σ x² − Σ_groups n_g · mean_g²) / (n − groups).
        let dof = n.saturating_sub(groups).max(1) as f32;
        for c in 0..self.classes {
            let counts = [self.counts[c], self.generated_counts[c]];
            for (sums, count) in [&mut self.real[c], &mut self.generated[c]]
                .into_iter()
                .zip(counts)
            {
                if count == 0 {
                    continue;
                }
                let count = count as f32;
                for (s, q) in sums.iter_mut().zip(&mut self.squares) {
                    *s /= count;
                    *q -= count * *s * *s;
                }
            }
        }
        for q in &mut self.squares {
            let var = *q / dof;
            *q = 1.0
                / if var > VARIANCE_FLOOR {
                    var
                } else {
                    VARIANCE_FLOOR
                };
        }
        self.weight = GENERATED_WEIGHTS[GENERATED_WEIGHTS.len() - 1];
        self.trained = true;
        Ok(())
    }

    /// Sets the weight of a generated window in its class mean (a real one weighs 1).
    pub fn set_weight(&mut self, weight: f32) {
        self.weight = weight;
    }

    /// The weight of a generated window in its class mean.
    pub fn weight(&self) -> f32 {
        self.weight
    }

    /// Picks the generated windows' weight among [`GENERATED_WEIGHTS`] by leave-one-out on the
    /// user's real windows (`windows`: the ones added with [`Learner::add`]): each is classified
    /// by the head trained without it, at every weight; the most right wins, ties going to the
    /// larger summed margin. A class with a single real window cannot leave it out: it is
    /// skipped. Returns the weight chosen (and sets it).
    pub fn choose_weight<'w>(
        &mut self,
        windows: impl Iterator<Item = (u16, &'w [i8])>,
        mark: &mut dyn FnMut(Phase),
    ) -> Result<f32, Error> {
        if !self.trained {
            return Err(Error::NotTrained);
        }
        let mut right = [0u32; GENERATED_WEIGHTS.len()];
        let mut margin = [0.0f32; GENERATED_WEIGHTS.len()];
        for (class, window) in windows {
            self.check_class(class)?;
            let own = class as usize;
            if self.counts[own] < 2 {
                continue;
            }
            mark(Phase::Extract);
            self.features.transform(window, &mut self.scratch)?;
            mark(Phase::Train);
            for (w, &weight) in GENERATED_WEIGHTS.iter().enumerate() {
                let (mut truth, mut other) = (f32::INFINITY, f32::INFINITY);
                for c in 0..self.classes {
                    let d = if c == own {
                        self.distance_without(c, weight)
                    } else {
                        self.distance(c, weight)
                    };
                    if c == own {
                        truth = d;
                    } else if d < other {
                        other = d;
                    }
                }
                right[w] += u32::from(truth < other);
                margin[w] += (other - truth) / (other + truth);
            }
        }
        let mut best = GENERATED_WEIGHTS.len() - 1;
        for w in (0..GENERATED_WEIGHTS.len()).rev() {
            if (right[w], margin[w]) > (right[best], margin[best]) {
                best = w;
            }
        }
        self.weight = GENERATED_WEIGHTS[best];
        Ok(self.weight)
    }

    /// The class whose mean is nearest to `window`'s features (variance-scaled distance).
    pub fn predict(&mut self, window: &[i8]) -> Result<u16, Error> {
        if !self.trained {
            return Err(Error::NotTrained);
        }
        self.features.transform(window, &mut self.scratch)?;
        let mut best = (f32::INFINITY, 0);
        for c in 0..self.classes {
            let d = self.distance(c, self.weight);
            if d < best.0 {
                best = (d, c);
            }
        }
        Ok(best.1 as u16)
    }

    /// The scaled squared distance from the features in `scratch` to class `c`'s mean at `weight`.
    fn distance(&self, c: usize, weight: f32) -> f32 {
        let (n, g) = (
            self.counts[c] as f32,
            self.generated_counts[c] as f32 * weight,
        );
        let (a, b) = (n / (n + g), g / (n + g));
        self.scaled_distance(c, a, b, 0.0)
    }

    /// As [`Learner::distance`], with the features in `scratch` left out of class `c`'s real mean
    /// (they are one of its real windows).
    fn distance_without(&self, c: usize, weight: f32) -> f32 {
        let (n, g) = (
            self.counts[c] as f32,
            self.generated_counts[c] as f32 * weight,
        );
        let total = n - 1.0 + g;
        // mean = (n · real − x + g · generated) / (n − 1 + g)
        self.scaled_distance(c, n / total, g / total, 1.0 / total)
    }

    /// Σ_f (x_f − m_f)² / var_f with m = a · real + b · generated − drop · x.
    fn scaled_distance(&self, c: usize, a: f32, b: f32, drop: f32) -> f32 {
        let mut d = 0.0f32;
        for (((&x, &r), &g), &w) in self
            .scratch
            .iter()
            .zip(&self.real[c])
            .zip(&self.generated[c])
            .zip(&self.squares)
        {
            let e = x - (a * r + b * g - drop * x);
            d += e * e * w;
        }
        d
    }

    /// Windows added per class.
    pub fn counts(&self) -> &[u32] {
        &self.counts[..self.classes]
    }

    fn check_class(&self, class: u16) -> Result<(), Error> {
        if class as usize >= self.classes {
            return Err(Error::BadClass {
                class,
                classes: self.classes as u16,
            });
        }
        Ok(())
    }
}

/// What [`adapt`] is doing, for a caller that times it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Phase {
    Generate,
    Extract,
    Train,
    Predict,
    Done,
}

/// Resets `learner`, trains it on the set's labelled windows plus `generated` windows per class
/// from `aug` (indices `first, first + 1, …`), and returns how many of the set's test windows it
/// classifies right. `mark` is told each time a phase starts (the board counts instructions
/// between marks; every stretch is one window's work).
pub fn adapt<const K: usize>(
    learner: &mut Learner<K>,
    aug: &mut Augmenter,
    set: &AdaptSet,
    generated: u32,
    first: u32,
    scratch: &mut [i8],
    mark: &mut dyn FnMut(Phase),
) -> Result<u32, Error> {
    learner.reset();
    for i in 0..set.labelled {
        mark(Phase::Extract);
        let (class, w) = set.labelled(i);
        learner.add(class, w)?;
    }
    for class in 0..set.classes {
        for i in 0..generated {
            mark(Phase::Generate);
            aug.window_i8(class, first.wrapping_add(i), scratch)?;
            mark(Phase::Extract);
            learner.add_generated(class, scratch)?;
        }
    }
    mark(Phase::Train);
    learner.train()?;
    if generated > 0 {
        learner.choose_weight((0..set.labelled).map(|i| set.labelled(i)), mark)?;
    }
    let mut right = 0;
    for i in 0..set.tests {
        mark(Phase::Predict);
        let (class, w) = set.test(i);
        right += u32::from(learner.predict(w)? == class);
    }
    mark(Phase::Done);
    Ok(right)
}
