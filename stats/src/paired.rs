//! Paired comparison of two arms over the same draws: mean difference, win/tie/loss counts and the
//! Wilcoxon signed-rank test (two-sided, exact: the permutation distribution of the signs over
//! the actual ranks, so ties among the differences are handled exactly; zero differences dropped,
//! as Wilcoxon did).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Paired {
    /// Mean of `a − b` over the draws.
    pub mean_diff: f64,
    /// Two-sided p-value of the Wilcoxon signed-rank test (1 when every difference is zero).
    pub p_value: f64,
    pub wins: usize,
    pub ties: usize,
    pub losses: usize,
}

/// `a` against `b`, draw by draw (same length).
pub fn paired(a: &[f64], b: &[f64]) -> Paired {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len().max(1) as f64;
    Paired {
        mean_diff: d.iter().sum::<f64>() / n,
        p_value: wilcoxon(&d),
        wins: d.iter().filter(|&&v| v > 0.0).count(),
        ties: d.iter().filter(|&&v| v == 0.0).count(),
        losses: d.iter().filter(|&&v| v < 0.0).count(),
    }
}

/// Exact two-sided p-value of the signed-rank statistic of the differences `d`.
pub fn wilcoxon(d: &[f64]) -> f64 {
    let mut nz: Vec<f64> = d.iter().copied().filter(|v| *v != 0.0).collect();
    if nz.is_empty() {
        return 1.0;
    }
    nz.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    // Twice the average ranks (integers) of |d|, ties sharing their mean rank.
    let mut ranks2 = vec![0usize; nz.len()];
    let mut i = 0;
    while i < nz.len() {
        let mut j = i;
        while j + 1 < nz.len() && nz[j + 1].abs() == nz[i].abs() {
            j += 1;
        }
        for r in &mut ranks2[i..=j] {
            *r = i + j + 2; // (i + 1 + j + 1) / 2, doubled
        }
        i = j + 1;
    }
    let total: usize = ranks2.iter().sum();
    let w: usize = nz
        .iter()
        .zip(&ranks2)
        .filter(|(v, _)| **v > 0.0)
        .map(|(_, r)| r)
        .sum();
    // Number of sign assignments giving each W⁺, by dynamic programming over the ranks.
    let mut count = vec![0f64; total + 1];
    count[0] = 1.0;
    for &r in &ranks2 {
        for s in (r..=total).rev() {
            count[s] += count[s - r];
        }
    }
    let all = 2f64.powi(nz.len() as i32);
    let centre = total as f64 / 2.0;
    let far = (w as f64 - centre).abs();
    let tail: f64 = (0..=total)
        .filter(|&s| (s as f64 - centre).abs() >= far - 1e-9)
        .map(|s| count[s])
        .sum();
    (tail / all).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_values_match_the_tables() {
        // Five positive differences: only 2 of 32 sign patterns are as extreme (scipy: 0.0625).
        assert!((wilcoxon(&[1.0, 2.0, 3.0, 4.0, 5.0]) - 0.0625).abs() < 1e-12);
        // Ten: 2 / 1024 (scipy's exact two-sided p 0.001953125).
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((wilcoxon(&ten) - 2.0 / 1024.0).abs() < 1e-12);
        // Symmetric differences: no evidence.
        assert_eq!(wilcoxon(&[1.0, -1.0, 2.0, -2.0]), 1.0);
        // Zeros are dropped; all zero is p = 1.
        assert_eq!(wilcoxon(&[0.0, 0.0]), 1.0);
        assert!((wilcoxon(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]) - 0.0625).abs() < 1e-12);
        // Ties share their rank: [1, 1, 2] all positive, W⁺ = 6 of 6, two of 8 patterns as extreme.
        assert!((wilcoxon(&[1.0, 1.0, 2.0]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn counts_wins_ties_and_losses() {
        let p = paired(&[0.9, 0.8, 0.7, 0.6], &[0.8, 0.8, 0.9, 0.5]);
        assert_eq!((p.wins, p.ties, p.losses), (2, 1, 1));
        assert!((p.mean_diff - 0.0).abs() < 1e-12);
    }
}
