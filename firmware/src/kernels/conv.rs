//! Conv1d int8 layer, stride 1, "same" padding, with the input's nearest upsampling and the
//! output's crop folded into its indexing.
//!
//! The input is unpacked once per layer, time-major, into the dense kernel's i16 lane pairs: row s
//! holds the `pad4(in_ch)` channels of step `s − k/2` of the upsampled input (the zero point
//! outside it). The window of output step t is then rows t … t + k − 1, contiguous, so each step is
//! one call of the dense kernel (4 output rows per pass, 4 MACs per 5 instructions on the DSP path)
//! over `k · pad4(in_ch)` unpacked inputs, with no gather and no per-step unpacking. Between two
//! convolutions activations are time-major: a step's channels are then one contiguous run, unpacked
//! with word loads, and a step's outputs are written in place.

use super::dense::{dense_unpacked, lanes, unpack, unpack_scalar};
use super::Kernel;
use crate::kq8::{pad4, Conv};

/// Every output channel `o` and step `t`: at `out[t · out_ch + o]` when the output is time-major,
/// else `out[o · out_len + t]`. `x` holds the input, `column` at least `pad4(out_ch)` values, `x16`
/// at least [`Conv::x16_words`].
pub fn conv(
    c: &Conv,
    x: &[i8],
    column: &mut [i8],
    x16: &mut [u32],
    out: &mut [i8],
    kernel: Kernel,
) {
    let row = pad4(c.in_ch) / 2; // words per unpacked step
    unpack_input(c, x, &mut x16[..c.x16_words()], kernel);
    for t in 0..c.out_len {
        let window = &x16[t * row..];
        if c.out_time_major {
            // out_ch is a multiple of 4 (checked on load): the step's rows are exactly its outputs.
            let step = &mut out[t * c.out_ch..(t + 1) * c.out_ch];
            dense_unpacked(&c.dense, 0, window, step, kernel);
        } else {
            dense_unpacked(&c.dense, 0, window, column, kernel);
            for (o, v) in column[..c.out_ch].iter().enumerate() {
                out[o * c.out_len + t] = *v;
            }
        }
    }
}

/// The upsampled, zero-point-padded input as time-major lane pairs, one row of `pad4(in_ch)`
/// lanes per step.
fn unpack_input(c: &Conv, x: &[i8], x16: &mut [u32], kernel: Kernel) {
    let (chp, pad, long, n) = (pad4(c.in_ch), c.kernel / 2, c.in_len * c.up, c.in_len);
    for (s, words) in x16.chunks_exact_mut(chp / 2).enumerate() {
        // Step s − pad of the upsampled input is step u of the input.
        let u = s.checked_sub(pad).filter(|&u| u < long).map(|u| u / c.up);
        match u {
            // A time-major step with every channel real: one contiguous run.
            Some(u) if c.in_time_major && c.in_ch == chp => {
                let run = &x[u * chp..(u + 1) * chp];
                match kernel {
                    Kernel::Dsp => unpack(run, words),
                    Kernel::Scalar => unpack_scalar(run, words),
                }
            }
            // Channel-major with every channel real: four strided loads per pair of words.
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
                    Some(u) if ch < c.in_ch && c.in_time_major => x[u * c.in_ch + ch],
                    Some(u) if ch < c.in_ch => x[ch * n + u],
                    _ => c.in_zp,
                };
                for (k, pair) in words.chunks_exact_mut(2).enumerate() {
                    let ch = 4 * k;
                    pair[0] = lanes(value(ch), value(ch + 2));
                    pair[1] = lanes(value(ch + 1), value(ch + 3));
                }
            }
        }
    }
}
