//! Collapse seen in the samples themselves (any data): generated rows from fixed latents stop
//! covering the real rows of a class (coverage below `coverage_drop` of its best), or stop spreading
//! (pairwise distance below `min_diversity` of the real spread), for `collapse_patience` checks.

use super::{strike, Check, Detector};
use crate::sample::generate;
use crate::watch::diversity::{coverage, knn_radii, mean_pairwise, COVERAGE_K};
use crate::watch::events::{Finding, Kind};
use serde::{Deserialize, Serialize};

/// Real rows per class that generated ones are compared with.
pub(crate) struct Reference {
    rows: Vec<Vec<f32>>,
    radii: Vec<Vec<f32>>,
    spread: Vec<f64>,
    /// Class of each generated row (as many per class as real rows).
    fake_labels: Vec<usize>,
}

impl Reference {
    /// Up to `samples` real rows spread evenly over the data, grouped by class (one group when
    /// unlabelled); every group keeps at least COVERAGE_K + 1 rows when it has them.
    pub(crate) fn new(reals: &[f32], labels: &[usize], dim: usize, samples: usize) -> Self {
        let n = reals.len() / dim;
        let groups = labels.iter().copied().max().map_or(1, |m| m + 1);
        let per = (samples / groups).max(COVERAGE_K + 1);
        let rows: Vec<Vec<f32>> = (0..groups)
            .map(|k| {
                let idx: Vec<usize> = (0..n)
                    .filter(|&i| labels.get(i).is_none_or(|&l| l == k))
                    .collect();
                let take = per.min(idx.len());
                (0..take)
                    .flat_map(|j| {
                        let i = idx[j * idx.len() / take];
                        reals[i * dim..(i + 1) * dim].iter().copied()
                    })
                    .collect()
            })
            .collect();
        let radii = rows.iter().map(|r| knn_radii(r, dim, COVERAGE_K)).collect();
        let spread = rows.iter().map(|r| mean_pairwise(r, dim)).collect();
        let fake_labels = rows
            .iter()
            .enumerate()
            .flat_map(|(k, r)| std::iter::repeat_n(k, r.len() / dim))
            .collect();
        Self {
            rows,
            radii,
            spread,
            fake_labels,
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Collapse {
    strikes: usize,
    last_coverage: f64,
    best_coverage: f64,
    last_diversity: f64,
    best_diversity: f64,
}

/// Coverage and diversity of samples from fixed latents, the worst class's.
fn signal(c: &Check) -> (f64, f64) {
    let r = c.reference;
    let g = c.t.sampling_generator();
    let fakes = generate(&g, &r.fake_labels, c.seed, &c.t.device.clone().inner());
    let (mut cov, mut div) = (f64::INFINITY, f64::INFINITY);
    let mut at = 0;
    for k in 0..r.rows.len() {
        let n = r.rows[k].len();
        let f = &fakes[at..at + n];
        at += n;
        cov = cov.min(coverage(&r.rows[k], &r.radii[k], f, c.dim));
        div = div.min(mean_pairwise(f, c.dim) / r.spread[k].max(1e-12));
    }
    (cov, div)
}

impl Detector for Collapse {
    fn check(&mut self, c: &Check) -> Option<Finding> {
        let w = c.cfg;
        let (cov, div) = signal(c);
        self.last_coverage = cov;
        self.last_diversity = div;
        let cov_floor = self.best_coverage * (1.0 - w.coverage_drop);
        // Both are drops: a generator that has not spread out yet is young, not collapsed.
        let thin = self.best_diversity >= 2.0 * w.min_diversity && div < w.min_diversity;
        let collapsed = (self.best_coverage >= w.coverage_min && cov < cov_floor) || thin;
        if !strike(&mut self.strikes, collapsed, c.warm, w.collapse_patience) {
            return None;
        }
        let (detector, value, threshold, detail) = if thin {
            (
                "diversity",
                div,
                w.min_diversity,
                format!("fake/real mean pairwise distance {div:.3}"),
            )
        } else {
            let worst = if c.reference.rows.len() > 1 {
                " (worst class)"
            } else {
                ""
            };
            (
                "coverage",
                cov,
                cov_floor,
                format!("coverage {cov:.3}, best {:.3}{worst}", self.best_coverage),
            )
        };
        Some(Finding {
            kind: Kind::Collapse,
            detector: detector.into(),
            value,
            threshold,
            detail,
        })
    }

    fn strikes(&self) -> usize {
        self.strikes
    }

    fn healthy(&mut self, _c: &Check) {
        self.best_coverage = self.best_coverage.max(self.last_coverage);
        self.best_diversity = self.best_diversity.max(self.last_diversity);
    }

    fn forgive(&mut self) {
        self.strikes = 0;
    }

    fn forget(&mut self) {
        self.strikes = 0;
    }
}
