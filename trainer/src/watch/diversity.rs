//! Sample-based collapse signals, cheap enough for every check: coverage of real rows by generated
//! ones (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative Models", ICML 2020)
//! and the ratio of mean pairwise distances. Rows are flat `dim`-wide slices.

/// Neighbours that set a real row's radius in `coverage` (the paper's k).
pub const COVERAGE_K: usize = 5;

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Squared distance from each real row to its k-th nearest other real row.
pub fn knn_radii(real: &[f32], dim: usize, k: usize) -> Vec<f32> {
    let rows: Vec<&[f32]> = real.chunks_exact(dim).collect();
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let mut d: Vec<f32> = rows
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, o)| dist2(r, o))
                .collect();
            let k = k.min(d.len()).max(1) - 1;
            if d.is_empty() {
                return 0.0;
            }
            *d.select_nth_unstable_by(k, f32::total_cmp).1
        })
        .collect()
}

/// Fraction of real rows with at least one generated row inside their k-NN ball (`radii` from
/// `knn_radii`). 1 when the fakes reach every part of the data; a collapsed generator covers
/// only its modes.
pub fn coverage(real: &[f32], radii: &[f32], fake: &[f32], dim: usize) -> f64 {
    let n = radii.len();
    if n == 0 {
        return 1.0;
    }
    let covered = real
        .chunks_exact(dim)
        .zip(radii)
        .filter(|(r, &rad)| fake.chunks_exact(dim).any(|f| dist2(r, f) <= rad))
        .count();
    covered as f64 / n as f64
}

/// Mean Euclidean distance over all pairs of rows.
pub fn mean_pairwise(rows: &[f32], dim: usize) -> f64 {
    let rows: Vec<&[f32]> = rows.chunks_exact(dim).collect();
    let mut sum = 0.0f64;
    let mut n = 0usize;
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            sum += (dist2(rows[i], rows[j]) as f64).sqrt();
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a ring of `modes` clusters, `per` points each, jittered deterministically.
    fn ring(modes: usize, per: usize, only: Option<usize>) -> Vec<f32> {
        let mut v = Vec::new();
        for m in 0..modes {
            for p in 0..per {
                let m = only.unwrap_or(m);
                let a = m as f32 / modes as f32 * std::f32::consts::TAU;
                let j = (p as f32 * 0.618).fract() * 0.1;
                v.extend([a.cos() * 2.0 + j, a.sin() * 2.0 - j]);
            }
        }
        v
    }

    #[test]
    fn a_collapsed_generator_covers_one_mode_of_eight() {
        let real = ring(8, 16, None);
        let radii = knn_radii(&real, 2, COVERAGE_K);
        let healthy = ring(8, 16, None);
        let collapsed = ring(8, 16, Some(3));
        assert_eq!(coverage(&real, &radii, &healthy, 2), 1.0);
        let c = coverage(&real, &radii, &collapsed, 2);
        assert!((c - 1.0 / 8.0).abs() < 1e-9, "coverage {c}");
        let ratio = mean_pairwise(&collapsed, 2) / mean_pairwise(&real, 2);
        assert!(ratio < 0.05, "diversity {ratio}");
    }
}
