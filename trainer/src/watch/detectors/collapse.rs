//! Collapse seen in the samples themselves (any data): generated rows from fixed latents stop
//! covering the real rows of a class (coverage below `coverage_drop` of its best), or stop spreading
//! (pairwise distance below `min_diversity` of the real spread), for `collapse_patience` checks.

use super::{strike, Check, Detector};
use crate::config::WatchConfig;
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

impl Collapse {
    /// The verdict on one check's coverage and diversity (worst class; `classes` > 1 says so).
    fn judge(
        &mut self,
        cov: f64,
        div: f64,
        w: &WatchConfig,
        warm: bool,
        classes: usize,
    ) -> Option<Finding> {
        self.last_coverage = cov;
        self.last_diversity = div;
        let cov_floor = self.best_coverage * (1.0 - w.coverage_drop);
        // Both are drops: a generator that has not spread out yet is young, not collapsed.
        let thin = self.best_diversity >= 2.0 * w.min_diversity && div < w.min_diversity;
        let collapsed = (self.best_coverage >= w.coverage_min && cov < cov_floor) || thin;
        if !strike(&mut self.strikes, collapsed, warm, w.collapse_patience) {
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
            let worst = if classes > 1 { " (worst class)" } else { "" };
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

    /// After a healthy check: the bests so far. The spread counts only once warm: a young
    /// generator's first steps can scatter its samples (on ring8 at lr 1e-4, 0.42 of the real
    /// spread at step 100, covering nothing) before it draws them in to find the data.
    fn learn(&mut self, warm: bool) {
        self.best_coverage = self.best_coverage.max(self.last_coverage);
        if warm {
            self.best_diversity = self.best_diversity.max(self.last_diversity);
        }
    }
}

impl Detector for Collapse {
    fn check(&mut self, c: &Check) -> Option<Finding> {
        let (cov, div) = signal(c);
        self.judge(cov, div, c.cfg, c.warm, c.reference.rows.len())
    }

    fn strikes(&self) -> usize {
        self.strikes
    }

    fn healthy(&mut self, c: &Check) {
        self.learn(c.warm);
    }

    fn forgive(&mut self) {
        self.strikes = 0;
    }

    fn forget(&mut self) {
        self.strikes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds (warm, diversity) checks with no coverage; returns the index of the first finding.
    fn first_finding(checks: &[(bool, f64)]) -> Option<usize> {
        let w = WatchConfig::default();
        let mut d = Collapse::default();
        checks.iter().position(|&(warm, div)| {
            let f = d.judge(0.0, div, &w, warm, 1);
            if f.is_none() {
                d.learn(warm);
            }
            f.is_some()
        })
    }

    #[test]
    fn a_spread_lost_after_warmup_is_a_collapse_and_a_young_scatter_is_not() {
        let patience = WatchConfig::default().collapse_patience;
        // Scattered (0.42) during warm-up, then drawn in to 0.05 for good: young, never fires.
        let young: Vec<(bool, f64)> = (0..20)
            .map(|i| (false, if i == 2 { 0.42 } else { 0.25 }))
            .chain((0..200).map(|_| (true, 0.05)))
            .collect();
        assert_eq!(first_finding(&young), None);
        // Spread out once warm, then thin: fires after `collapse_patience` checks in a row.
        let lost: Vec<(bool, f64)> = (0..20)
            .map(|_| (false, 0.1))
            .chain((0..10).map(|_| (true, 0.6)))
            .chain((0..200).map(|_| (true, 0.05)))
            .collect();
        assert_eq!(first_finding(&lost), Some(30 + patience - 1));
    }
}
