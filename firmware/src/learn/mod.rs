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

/// A nearest-class-mean classifier over [`Features`] for up to `K` classes.
pub struct Learner<const K: usize> {
    features: Features,
    /// Per class: the sum of its feature vectors; after training, their mean.
    sums: [[f32; FEATURES]; K],
    /// The sum of squared features over every window; after training, the inverse pooled
    /// within-class variance.
    squares: [f32; FEATURES],
    counts: [u32; K],
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
            sums: [[0.0; FEATURES]; K],
            squares: [0.0; FEATURES],
            counts: [0; K],
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
        self.sums.iter_mut().for_each(|s| s.fill(0.0));
        self.squares.fill(0.0);
        self.counts.fill(0);
        self.trained = false;
    }

    /// Adds one labelled window (int8, the generator's scale) to the statistics. After
    /// [`Learner::train`], call [`Learner::reset`] before adding again.
    pub fn add(&mut self, class: u16, window: &[i8]) -> Result<(), Error> {
        self.check_class(class)?;
        if self.trained {
            return Err(Error::Trained);
        }
        self.features.transform(window, &mut self.scratch)?;
        let sums = &mut self.sums[class as usize];
        for ((s, q), &x) in sums.iter_mut().zip(&mut self.squares).zip(&self.scratch) {
            *s += x;
            *q += x * x;
        }
        self.counts[class as usize] += 1;
        Ok(())
    }

    /// Turns the sums into class means and inverse pooled variances. Every class needs a window.
    pub fn train(&mut self) -> Result<(), Error> {
        if self.trained {
            return Ok(());
        }
        if let Some(c) = (0..self.classes).find(|&c| self.counts[c] == 0) {
            return Err(Error::NoWindows { class: c as u16 });
        }
        let n: u32 = self.counts[..self.classes].iter().sum();
        // Pooled within-class variance: (Σ x² − Σ_c n_c · mean_c²) / (n − classes).
        let dof = (n as usize).saturating_sub(self.classes).max(1) as f32;
        for c in 0..self.classes {
            let count = self.counts[c] as f32;
            for (s, q) in self.sums[c].iter_mut().zip(&mut self.squares) {
                *s /= count;
                *q -= count * *s * *s;
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
        self.trained = true;
        Ok(())
    }

    /// The class whose mean is nearest to `window`'s features (variance-scaled distance).
    pub fn predict(&mut self, window: &[i8]) -> Result<u16, Error> {
        if !self.trained {
            return Err(Error::NotTrained);
        }
        self.features.transform(window, &mut self.scratch)?;
        let mut best = (f32::INFINITY, 0);
        for c in 0..self.classes {
            let mut d = 0.0f32;
            for ((&x, &m), &w) in self.scratch.iter().zip(&self.sums[c]).zip(&self.squares) {
                let e = x - m;
                d += e * e * w;
            }
            if d < best.0 {
                best = (d, c);
            }
        }
        Ok(best.1 as u16)
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
            learner.add(class, scratch)?;
        }
    }
    mark(Phase::Train);
    learner.train()?;
    let mut right = 0;
    for i in 0..set.tests {
        mark(Phase::Predict);
        let (class, w) = set.test(i);
        right += u32::from(learner.predict(w)? == class);
    }
    mark(Phase::Done);
    Ok(right)
}
