//! A stronger judge than the reference CNN for few-shot series: MiniRocket (Dempster, Schmidt &
//! Webb, KDD 2021) features and a ridge classifier whose penalty is chosen by exact leave-one-out
//! cross-validation, as sktime/aeon's `MiniRocketMultivariate` + `RidgeClassifierCV` do.
//!
//! The transform: 84 fixed kernels of length 9 (weight 2 at three positions, −1 at the other six),
//! each at a set of dilations spread log-uniformly up to the series length; for each
//! (kernel, dilation) a random subset of channels is summed, and biases are quantiles of that
//! convolution on one random training series. A feature is the proportion of positive values
//! (PPV) of the convolution minus one bias. Padding alternates between combinations, as in the paper.

use super::classifier::argmax;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

const KERNEL_LENGTH: usize = 9;
/// 84 = C(9, 3) kernels.
const KERNELS: usize = 84;
const MAX_DILATIONS_PER_KERNEL: usize = 32;
/// The paper's default number of features (rounded down to a multiple of 84).
pub const FEATURES: usize = 10_000;

/// One (kernel, dilation) combination and the biases of its features.
struct Combo {
    /// Positions (of 9) that weigh 2.
    twos: [usize; 3],
    dilation: usize,
    padded: bool,
    channels: Vec<usize>,
    biases: Vec<f32>,
}

/// A fitted transform: series `[C, T]` (channel-major rows) to PPV features.
pub struct MiniRocket {
    shape: [usize; 2],
    combos: Vec<Combo>,
}

impl MiniRocket {
    /// Fits dilations, channel subsets and biases to `x` (`n` channel-major series of `shape`).
    pub fn fit(x: &[f32], shape: [usize; 2], seed: u64) -> Self {
        let [channels, length] = shape;
        let n = x.len() / (channels * length);
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let kernels = kernel_positions();
        let mut combos = Vec::new();
        let dilations = dilations(length);
        for (di, &(dilation, features)) in dilations.iter().enumerate() {
            for (ki, twos) in kernels.iter().enumerate() {
                let padded = (di + ki) % 2 == 0;
                let max_channels = channels.min(KERNEL_LENGTH);
                let exponent = rng.random_range(0.0..((max_channels + 1) as f64).log2());
                let count = (2f64.powf(exponent) as usize).clamp(1, channels);
                let mut all: Vec<usize> = (0..channels).collect();
                all.shuffle(&mut rng);
                let mut chosen = all[..count].to_vec();
                chosen.sort_unstable();
                let mut combo = Combo {
                    twos: *twos,
                    dilation,
                    padded,
                    channels: chosen,
                    biases: Vec::new(),
                };
                // Biases: low-discrepancy quantiles of the convolution of one training series.
                let example = rng.random_range(0..n.max(1));
                let series = &x[example * channels * length..][..channels * length];
                let mut out = combo.convolve(series, length);
                out.sort_by(f32::total_cmp);
                combo.biases = (1..=features)
                    .map(|i| quantile(&out, (i as f64 * GOLDEN).fract()))
                    .collect();
                combos.push(combo);
            }
        }
        Self { shape, combos }
    }

    pub fn features(&self) -> usize {
        self.combos.iter().map(|c| c.biases.len()).sum()
    }

    /// PPV features of each series of `x`, row-major `[n, features]`.
    pub fn transform(&self, x: &[f32]) -> Vec<f32> {
        let [channels, length] = self.shape;
        let mut f = Vec::with_capacity(x.len() / (channels * length) * self.features());
        // With the widest vectors the CPU has (the same f32 operations at any width).
        pulp::Arch::new().dispatch(Transform {
            rocket: self,
            x,
            f: &mut f,
        });
        f
    }
}

/// `MiniRocket::transform`'s loop, for `pulp`'s dispatcher: `with_simd` is inlined into its
/// AVX-512 / AVX2 copy (a closure would not be, and would run as baseline SSE2).
struct Transform<'a> {
    rocket: &'a MiniRocket,
    x: &'a [f32],
    f: &'a mut Vec<f32>,
}

impl pulp::WithSimd for Transform<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let [channels, length] = self.rocket.shape;
        let (mut summed, mut out) = (Vec::new(), Vec::new());
        for series in self.x.chunks_exact(channels * length) {
            for c in &self.rocket.combos {
                c.convolve_into(series, length, &mut summed, &mut out);
                let n = out.len().max(1) as f32;
                // Counted as 0/1 sums rather than a filter, so that it vectorises.
                self.f.extend(
                    c.biases
                        .iter()
                        .map(|&b| out.iter().map(|&v| u32::from(v > b)).sum::<u32>() as f32 / n),
                );
            }
        }
    }
}

const GOLDEN: f64 = 1.618_033_988_749_895;

impl Combo {
    /// The kernel at this dilation over the sum of the chosen channels: the full length with zero
    /// padding, or only the positions where the kernel fits.
    fn convolve(&self, series: &[f32], length: usize) -> Vec<f32> {
        let mut out = Vec::new();
        self.convolve_into(series, length, &mut Vec::new(), &mut out);
        out
    }

    /// `convolve` into `out`, with `summed` as scratch. Each output is 0 plus w_j·x_j over the taps
    /// j = 0..8 in order, a tap in the padding adding nothing; computed tap by tap over the outputs
    /// that tap reaches (vectorised, the same sums in the same order).
    #[inline(always)]
    fn convolve_into(
        &self,
        series: &[f32],
        length: usize,
        summed: &mut Vec<f32>,
        out: &mut Vec<f32>,
    ) {
        summed.clear();
        summed.resize(length, 0.0);
        for &ch in &self.channels {
            let row = &series[ch * length..][..length];
            summed.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
        let d = self.dilation;
        let half = (KERNEL_LENGTH / 2) * d;
        let (start, end) = if self.padded {
            (0, length)
        } else {
            (half.min(length), length.saturating_sub(half))
        };
        let end = end.max(start);
        out.clear();
        out.resize(end - start, 0.0);
        for j in 0..KERNEL_LENGTH {
            let w = if self.twos.contains(&j) { 2.0 } else { -1.0 };
            // Output t reads position t + j·d − half: inside the series for lo ≤ t < hi.
            let shift = j * d;
            let lo = start.max(half.saturating_sub(shift));
            let hi = end.min((length + half).saturating_sub(shift));
            if lo < hi {
                let from = lo + shift - half;
                for (o, &x) in out[lo - start..hi - start].iter_mut().zip(&summed[from..]) {
                    *o += w * x;
                }
            }
        }
    }
}

/// The 84 ways to put weight 2 at three of nine positions.
fn kernel_positions() -> Vec<[usize; 3]> {
    let mut k = Vec::with_capacity(KERNELS);
    for a in 0..KERNEL_LENGTH {
        for b in a + 1..KERNEL_LENGTH {
            for c in b + 1..KERNEL_LENGTH {
                k.push([a, b, c]);
            }
        }
    }
    k
}

/// Dilations spread log-uniformly from 1 to (T − 1) / 8, with how many features each gets (the
/// reference implementation's `_fit_dilations`).
fn dilations(length: usize) -> Vec<(usize, usize)> {
    let per_kernel = FEATURES / KERNELS;
    let count = per_kernel.min(MAX_DILATIONS_PER_KERNEL);
    let multiplier = per_kernel as f64 / count as f64;
    let max_exponent = (((length.max(KERNEL_LENGTH) - 1) as f64) / (KERNEL_LENGTH - 1) as f64)
        .log2()
        .max(0.0);
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in 0..count {
        let e = if count > 1 {
            max_exponent * i as f64 / (count - 1) as f64
        } else {
            0.0
        };
        let d = 2f64.powf(e).floor() as usize;
        match out.last_mut() {
            Some((last, n)) if *last == d => *n += 1,
            _ => out.push((d, 1)),
        }
    }
    for (_, n) in out.iter_mut() {
        *n = (*n as f64 * multiplier) as usize;
    }
    let mut remainder = per_kernel - out.iter().map(|(_, n)| n).sum::<usize>();
    let mut i = 0;
    while remainder > 0 {
        out[i].1 += 1;
        remainder -= 1;
        i = (i + 1) % out.len();
    }
    out
}

/// The `q` quantile of sorted `v` (linear interpolation, as numpy's default).
fn quantile(v: &[f32], q: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = q * (v.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos.fract() as f32);
    let hi = (lo + 1).min(v.len() - 1);
    v[lo] + frac * (v[hi] - v[lo])
}

/// A one-vs-rest ridge classifier on standardised features, its penalty chosen from
/// 10⁻³ … 10³ by exact leave-one-out error (dual form: the few-shot case has far fewer series
/// than features).
pub struct Ridge {
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// Training rows (standardised, `[n, f]`), dual coefficients `[n, classes]` and the target means.
    rows: Vec<f64>,
    coef: Vec<f64>,
    offset: Vec<f64>,
    pub alpha: f64,
}

impl Ridge {
    /// Fits on `features` (`[n, f]` row-major) with labels in `0..classes`.
    pub fn fit(features: &[f32], labels: &[usize], classes: usize) -> Self {
        let n = labels.len();
        let f = features.len() / n.max(1);
        let col = |j: usize| features.iter().skip(j).step_by(f).map(|&v| v as f64);
        let mean: Vec<f64> = (0..f).map(|j| col(j).sum::<f64>() / n as f64).collect();
        let scale: Vec<f64> = (0..f)
            .map(|j| {
                let var = col(j).map(|v| (v - mean[j]).powi(2)).sum::<f64>() / n as f64;
                if var > 0.0 {
                    1.0 / var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let rows = standardise(features, &mean, &scale);
        // Targets ±1 per class, centred (the intercept).
        let mut y: Vec<f64> = labels
            .iter()
            .flat_map(|&l| (0..classes).map(move |c| if c == l { 1.0 } else { -1.0 }))
            .collect();
        let offset: Vec<f64> = (0..classes)
            .map(|c| y.iter().skip(c).step_by(classes).sum::<f64>() / n as f64)
            .collect();
        y.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v -= offset[i % classes]);
        let gram = times_transposed(&rows, &rows, f);
        let mut best = (f64::INFINITY, 1.0, Vec::new());
        for i in 0..10 {
            let alpha = 10f64.powf(-3.0 + 6.0 * i as f64 / 9.0);
            // Dual coefficients A = (K + αI)⁻¹ Y; the leave-one-out residual of row i is
            // A_i / (K + αI)⁻¹_ii.
            let Some((coef, diag)) = solve_spd(&gram, n, alpha, &y, classes) else {
                continue;
            };
            let loo: f64 = (0..n)
                .map(|r| {
                    coef[r * classes..(r + 1) * classes]
                        .iter()
                        .map(|a| (a / diag[r]).powi(2))
                        .sum::<f64>()
                })
                .sum();
            if loo < best.0 {
                best = (loo, alpha, coef);
            }
        }
        let (_, alpha, coef) = best;
        Self {
            mean,
            scale,
            rows,
            coef,
            offset,
            alpha,
        }
    }

    /// The class of each row of `features`.
    pub fn predict(&self, features: &[f32]) -> Vec<usize> {
        self.scores(features).iter().map(|s| argmax(s)).collect()
    }

    /// The decision score of every class for each row of `features`.
    pub fn scores(&self, features: &[f32]) -> Vec<Vec<f64>> {
        let f = self.mean.len();
        let classes = self.offset.len();
        let x = standardise(features, &self.mean, &self.scale);
        // Kernel against every training row, [m, n].
        let k = times_transposed(&x, &self.rows, f);
        let n = self.rows.len() / f.max(1);
        k.chunks_exact(n.max(1))
            .take(x.len() / f.max(1))
            .map(|kr| {
                (0..classes)
                    .map(|c| {
                        self.offset[c]
                            + kr.iter()
                                .enumerate()
                                .map(|(i, a)| a * self.coef[i * classes + c])
                                .sum::<f64>()
                    })
                    .collect()
            })
            .collect()
    }
}

/// `(v − mean) · scale` per column, row-major f64.
fn standardise(features: &[f32], mean: &[f64], scale: &[f64]) -> Vec<f64> {
    let f = mean.len().max(1);
    features
        .chunks_exact(f)
        .flat_map(|r| {
            r.iter()
                .zip(mean.iter().zip(scale))
                .map(|(&v, (m, s))| (v as f64 - m) * s)
        })
        .collect()
}

/// A · Bᵀ for row-major `a` `[m, f]` and `b` `[n, f]`: row-major `[m, n]`.
fn times_transposed(a: &[f64], b: &[f64], f: usize) -> Vec<f64> {
    let (m, n) = (a.len() / f.max(1), b.len() / f.max(1));
    let mut out = vec![0f64; m * n];
    if m == 0 || n == 0 || f == 0 {
        return out;
    }
    assert!(a.len() == m * f && b.len() == n * f, "whole rows");
    // SAFETY: dst is m × n (row stride n), lhs is a: m × f (row stride f), rhs is bᵀ: f × n read
    // from b (element (p, j) at j·f + p); the lengths are checked above and every stride is
    // within them.
    unsafe {
        gemm::gemm(
            m,
            n,
            f,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            f as isize,
            b.as_ptr(),
            f as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    out
}

/// For a symmetric positive semi-definite `k` (`n × n`): `(K + αI)⁻¹ Y` (`y` is `[n, classes]`)
/// and the diagonal of `(K + αI)⁻¹`, by Cholesky; `None` if it is not positive definite. Written
/// here rather than taken from nalgebra: the matrices are at most a few hundred rows, and
/// nalgebra's numeric dependencies would change features that burn's build shares.
fn solve_spd(
    k: &[f64],
    n: usize,
    alpha: f64,
    y: &[f64],
    classes: usize,
) -> Option<(Vec<f64>, Vec<f64>)> {
    // L (lower, row-major n × n) with L Lᵀ = K + αI.
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let diag = if i == j { alpha } else { 0.0 };
            let s = k[i * n + j] + diag - dot(&l[i * n..i * n + j], &l[j * n..j * n + j]);
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    // M = L⁻¹ (lower), row by row: (K + αI)⁻¹ = Mᵀ M, so its diagonal is the column sums of M².
    let mut m = vec![0f64; n * n];
    for i in 0..n {
        m[i * n + i] = 1.0 / l[i * n + i];
        for c in 0..i {
            let s: f64 = (c..i).map(|p| l[i * n + p] * m[p * n + c]).sum();
            m[i * n + c] = -s / l[i * n + i];
        }
    }
    let diag = (0..n)
        .map(|i| (i..n).map(|p| m[p * n + i] * m[p * n + i]).sum())
        .collect();
    // A = Mᵀ (M Y).
    let mut my = vec![0f64; n * classes];
    for i in 0..n {
        for p in 0..=i {
            let w = m[i * n + p];
            for c in 0..classes {
                my[i * classes + c] += w * y[p * classes + c];
            }
        }
    }
    let mut a = vec![0f64; n * classes];
    for p in 0..n {
        for i in 0..=p {
            let w = m[p * n + i];
            for c in 0..classes {
                a[i * classes + c] += w * my[p * classes + c];
            }
        }
    }
    Some((a, diag))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Test accuracy of MiniRocket + ridge trained on `train` (normalised series of `shape`, labels).
pub fn accuracy(
    train: (&[f32], &[usize]),
    test: (&[f32], &[usize]),
    shape: [usize; 2],
    classes: usize,
    seed: u64,
) -> f64 {
    let rocket = MiniRocket::fit(train.0, shape, seed);
    let ridge = Ridge::fit(&rocket.transform(train.0), train.1, classes);
    let predicted = ridge.predict(&rocket.transform(test.0));
    let right = predicted.iter().zip(test.1).filter(|(p, l)| p == l).count();
    right as f64 / test.1.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution output by output, as written in the paper: the reference for the
    /// tap-by-tap loop.
    fn direct(c: &Combo, series: &[f32], length: usize) -> Vec<f32> {
        let mut summed = vec![0f32; length];
        for &ch in &c.channels {
            for (s, v) in summed.iter_mut().zip(&series[ch * length..][..length]) {
                *s += v;
            }
        }
        let half = (KERNEL_LENGTH / 2) * c.dilation;
        let (start, end) = if c.padded {
            (0, length)
        } else {
            (half.min(length), length.saturating_sub(half))
        };
        (start..end.max(start))
            .map(|t| {
                let mut acc = 0f32;
                for j in 0..KERNEL_LENGTH {
                    if let Some(p) = (t + j * c.dilation)
                        .checked_sub(half)
                        .filter(|&p| p < length)
                    {
                        let w = if c.twos.contains(&j) { 2.0 } else { -1.0 };
                        acc += w * summed[p];
                    }
                }
                acc
            })
            .collect()
    }

    #[test]
    fn the_tap_by_tap_convolution_is_the_direct_one_bit_for_bit() {
        for shape in [[1, 7], [3, 29], [2, 100], [6, 251]] {
            let w = shape[0] * shape[1];
            let x: Vec<f32> = (0..8 * w)
                .map(|i| ((i as f32) * 0.37).sin() * (1.0 + (i % 13) as f32))
                .collect();
            let rocket = MiniRocket::fit(&x, shape, 1);
            for series in x.chunks_exact(w) {
                for c in &rocket.combos {
                    let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(c.convolve(series, shape[1])),
                        bits(direct(c, series, shape[1])),
                        "{shape:?} dilation {} padded {}",
                        c.dilation,
                        c.padded
                    );
                }
            }
        }
    }

    #[test]
    fn dilations_share_out_every_feature_of_a_kernel() {
        for length in [9, 25, 100, 251] {
            let d = dilations(length);
            assert_eq!(d.iter().map(|(_, n)| n).sum::<usize>(), FEATURES / KERNELS);
            assert_eq!(d[0].0, 1);
            assert!(
                d.last().unwrap().0 <= (length - 1) / 8 + 1,
                "{length}: {d:?}"
            );
        }
    }

    #[test]
    fn features_of_a_tiny_input_match_a_hand_computation() {
        // Length 9: every combination has dilation 1 (119 features per kernel). The transform is
        // fitted on an impulse, so each combination's biases are quantiles of its own weights.
        let impulse = [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let ones = [1.0f32; 9];
        let rocket = MiniRocket::fit(&impulse, [1, 9], 0);
        assert_eq!(rocket.features(), KERNELS * 119);
        let f = rocket.transform(&[impulse, ones].concat());
        let (fi, fo) = f.split_at(rocket.features());
        // Kernel 0 (weight 2 at positions 0, 1, 2), padded. On the impulse the output is the
        // weights reversed, [-1 ×6, 2, 2, 2]; biases at the quantiles frac(iφ) = 0.618, 0.236,
        // 0.854 of those sorted values are -1, -1, 2. So the impulse has 3 of 9 values above
        // -1 and none above 2.
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(
            close(&fi[..3], &[3.0 / 9.0, 3.0 / 9.0, 0.0]),
            "{:?}",
            &fi[..3]
        );
        // On ones, with zero padding, the output over t = 0..8 is -5, -6, -4, -2, 0, 1, 2, 3, 4:
        // 5 values above -1 and 2 above 2.
        assert!(
            close(&fo[..3], &[5.0 / 9.0, 5.0 / 9.0, 2.0 / 9.0]),
            "{:?}",
            &fo[..3]
        );
        // Kernel 1 (2 at 0, 1, 3) is not padded: only t = 4 fits, where the impulse meets weight
        // -1 (every bias is -1) and ones give 6 - 6 = 0.
        assert!(fi[119..238].iter().all(|&v| v == 0.0));
        assert!(fo[119..238].iter().all(|&v| v == 1.0));
    }

    #[test]
    fn the_solve_inverts() {
        let k = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
        let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        // With Y = I the coefficients are the inverse itself.
        let (inv, diag) = solve_spd(&k, 3, 0.1, &identity, 3).unwrap();
        for (i, j) in (0..3).flat_map(|i| (0..3).map(move |j| (i, j))) {
            let product: f64 = (0..3)
                .map(|p| (k[i * 3 + p] + if i == p { 0.1 } else { 0.0 }) * inv[p * 3 + j])
                .sum();
            assert!((product - identity[i * 3 + j]).abs() < 1e-12);
        }
        for i in 0..3 {
            assert!((diag[i] - inv[i * 3 + i]).abs() < 1e-12);
        }
    }

    #[test]
    fn the_product_is_a_times_b_transposed() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, -1.0, 2.0, 1.0, 0.5, 0.0, 0.0, 1.0];
        let p = times_transposed(&a, &b, 3);
        let want = [-2.0, 5.5, 3.0, -2.0, 16.0, 6.0];
        assert_eq!(p, want);
    }

    #[test]
    fn it_tells_apart_series_that_differ_only_in_frequency() {
        // Two classes of noisy sines, slow and fast; few training series.
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let mut make = |n: usize| {
            let mut x = Vec::new();
            let mut y = Vec::new();
            for i in 0..n {
                let class = i % 2;
                let f = if class == 0 { 0.05 } else { 0.15 };
                let phase = rng.random_range(0.0..std::f64::consts::TAU);
                x.extend((0..64).map(|t| {
                    (f * std::f64::consts::TAU * t as f64 + phase).sin() as f32
                        + rng.random_range(-0.3..0.3)
                }));
                y.push(class);
            }
            (x, y)
        };
        let (tx, ty) = make(10);
        let (vx, vy) = make(100);
        let acc = accuracy((&tx, &ty), (&vx, &vy), [1, 64], 2, 0);
        assert!(acc > 0.95, "{acc}");
    }
}
