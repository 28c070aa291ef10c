//! Conv1d int8 layer, stride 1, "same" padding, with the input's nearest upsampling and the
//! output's crop folded into its indexing.
//!
//! The input is unpacked once per layer, time-major, into the dense kernel's i16 lane pairs: row s
//! holds the `pad4(in_ch)` channels of step `s − k/2` of the upsampled input (the zero point
//! outside it). The window of output step t is then rows t … t + k − 1, contiguous, so each step is
//! one call of the dense kernel (4 output rows per pass, 4 MACs per 5 instructions on the DSP path)
//! over `k · pad4(in_ch)` unpacked inputs, with no gather and no per-step unpacking.

use super::dense::{dense_unpacked, lanes};
use super::Kernel;
use crate::kq8::{pad4, Conv};

/// `out[o · out_len + t]` for every output channel `o` and step `t`. `x` holds the input
/// (`in_ch × in_len`, channel-major), `column` at least `pad4(out_ch)` values, `x16` at least
/// [`Conv::x16_words`].
pub fn conv(
    c: &Conv,
    x: &[i8],
    column: &mut [i8],
    x16: &mut [u32],
    out: &mut [i8],
    kernel: Kernel,
) {
    let (chp, pad, long) = (pad4(c.in_ch), c.kernel / 2, c.in_len * c.up);
    let row = chp / 2; // words per unpacked step
    let x16 = &mut x16[..c.x16_words()];
    let (zp, n) = (c.in_zp, c.in_len);
    for (s, words) in x16.chunks_exact_mut(row).enumerate() {
        // Step s − pad of the upsampled input is step u of the input.
        let u = s.checked_sub(pad).filter(|&u| u < long).map(|u| u / c.up);
        match u {
            // Every channel real: four strided loads per pair of words.
            Some(u) if c.in_ch == chp => {
                let col = &x[u..];
                for (k, pair) in words.chunks_exact_mut(2).enumerate() {
                    let at = 4 * k * n;
                    let v = [col[at], col[at + n], col[at + 2 * n], col[at + 3 * n]];
                    pair[0] = lanes(v[0], v[2]);
                    pair[1] = lanes(v[1], v[3]);
                }
            }
            _ => {
                let value = |ch: usize| match u {
                    Some(u) if ch < c.in_ch => x[ch * n + u],
                    _ => zp,
                };
                for (k, pair) in words.chunks_exact_mut(2).enumerate() {
                    let ch = 4 * k;
                    pair[0] = lanes(value(ch), value(ch + 2));
                    pair[1] = lanes(value(ch + 1), value(ch + 3));
                }
            }
        }
    }
    for t in 0..c.out_len {
        dense_unpacked(&c.dense, 0, &x16[t * row..], column, kernel);
        for (o, v) in column[..c.out_ch].iter().enumerate() {
            out[o * c.out_len + t] = *v;
        }
    }
}
