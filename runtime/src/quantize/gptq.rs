//! Weight rounding that minds the data (GPTQ, Frantar et al. 2023): quantize a dense layer's input
//! columns one at a time and push each column's rounding error onto the columns not yet quantized,
//! weighted by the inverse of the inputs' second-moment matrix. Plain round-to-nearest keeps each
//! weight close; this keeps each *output* close, which is what a generator's samples depend on.

/// Rounds `w` (row-major `out × in`) to `q · scale[row]` with `|q| ≤ 127`, given calibration
/// inputs `x` (row-major `n × in`). Returns the int8 weights; falls back to round-to-nearest when
/// the inputs give no usable curvature.
pub fn round_weights(
    w: &[f32],
    out_dim: usize,
    in_dim: usize,
    scale: &[f32],
    x: &[f32],
) -> Vec<i8> {
    let nearest = || {
        (0..out_dim * in_dim)
            .map(|k| (w[k] / scale[k / in_dim]).round().clamp(-127.0, 127.0) as i8)
            .collect()
    };
    let n = x.len() / in_dim.max(1);
    if n == 0 {
        return nearest();
    }
    // H = XᵀX / n, damped; inputs that are always zero get weight 0 (they never matter).
    let mut h = vec![0f64; in_dim * in_dim];
    for row in x.chunks_exact(in_dim) {
        for i in 0..in_dim {
            let xi = row[i] as f64;
            if xi != 0.0 {
                for j in 0..in_dim {
                    h[i * in_dim + j] += xi * row[j] as f64;
                }
            }
        }
    }
    h.iter_mut().for_each(|v| *v /= n as f64);
    let mut w: Vec<f64> = w.iter().map(|&v| v as f64).collect();
    let mean_diag = (0..in_dim).map(|i| h[i * in_dim + i]).sum::<f64>() / in_dim as f64;
    for i in 0..in_dim {
        if h[i * in_dim + i] == 0.0 {
            h[i * in_dim + i] = 1.0;
            (0..out_dim).for_each(|o| w[o * in_dim + i] = 0.0);
        }
        h[i * in_dim + i] += 0.01 * mean_diag.max(1e-12);
    }
    // U: the upper Cholesky factor of H⁻¹.
    let Some(u) = cholesky(&h, in_dim)
        .and_then(|l| inverse_lower(&l, in_dim))
        .and_then(|li| {
            // H⁻¹ = L⁻ᵀ L⁻¹; its Cholesky factor gives the per-column update rows.
            let hinv = lower_t_times_lower(&li, in_dim);
            cholesky(&hinv, in_dim).map(|l2| transpose(&l2, in_dim))
        })
    else {
        return nearest();
    };
    let mut q = vec![0i8; out_dim * in_dim];
    for i in 0..in_dim {
        let d = u[i * in_dim + i];
        for o in 0..out_dim {
            let s = scale[o] as f64;
            let v = w[o * in_dim + i];
            let qi = (v / s).round().clamp(-127.0, 127.0);
            q[o * in_dim + i] = qi as i8;
            let err = (v - qi * s) / d;
            for j in i + 1..in_dim {
                w[o * in_dim + j] -= err * u[i * in_dim + j];
            }
        }
    }
    q
}

/// Lower-triangular L with A = L Lᵀ, or None when A is not positive definite.
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// L⁻¹ of a lower-triangular L (forward substitution, column by column).
fn inverse_lower(l: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut inv = vec![0f64; n * n];
    for c in 0..n {
        for i in c..n {
            let s: f64 = (if i == c { 1.0 } else { 0.0 })
                - (c..i).map(|k| l[i * n + k] * inv[k * n + c]).sum::<f64>();
            inv[i * n + c] = s / l[i * n + i];
        }
    }
    inv.iter().all(|v| v.is_finite()).then_some(inv)
}

/// Mᵀ M for a lower-triangular M (= H⁻¹ when M = L⁻¹).
fn lower_t_times_lower(m: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (i.max(j)..n).map(|k| m[k * n + i] * m[k * n + j]).sum();
        }
    }
    out
}

fn transpose(a: &[f64], n: usize) -> Vec<f64> {
    (0..n * n).map(|k| a[(k % n) * n + k / n]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On correlated inputs GPTQ's outputs are closer to the float layer's than rounding each
    /// weight to nearest, and every weight stays in range.
    #[test]
    fn beats_round_to_nearest_on_outputs() {
        let (out_dim, in_dim, n) = (8, 16, 400);
        let mut seed = 1u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let w: Vec<f32> = (0..out_dim * in_dim).map(|_| rnd()).collect();
        let x: Vec<f32> = (0..n)
            .flat_map(|_| {
                let common = rnd();
                (0..in_dim)
                    .map(|_| common + 0.3 * rnd())
                    .collect::<Vec<_>>()
            })
            .collect();
        let scale: Vec<f32> = (0..out_dim)
            .map(|o| {
                w[o * in_dim..(o + 1) * in_dim]
                    .iter()
                    .fold(0f32, |m, v| m.max(v.abs()))
                    / 127.0
            })
            .collect();
        let err = |q: &[i8]| -> f64 {
            x.chunks_exact(in_dim)
                .map(|row| {
                    (0..out_dim)
                        .map(|o| {
                            let d: f32 = (0..in_dim)
                                .map(|i| {
                                    (w[o * in_dim + i] - q[o * in_dim + i] as f32 * scale[o])
                                        * row[i]
                                })
                                .sum();
                            (d as f64).powi(2)
                        })
                        .sum::<f64>()
                })
                .sum()
        };
        let rtn: Vec<i8> = (0..out_dim * in_dim)
            .map(|k| (w[k] / scale[k / in_dim]).round() as i8)
            .collect();
        let g = round_weights(&w, out_dim, in_dim, &scale, &x);
        assert!(g.iter().all(|&v| (-127..=127).contains(&v)));
        assert!(
            err(&g) < 0.5 * err(&rtn),
            "gptq {} vs nearest {}",
            err(&g),
            err(&rtn)
        );
    }
}
