//! Conv1d int8 layer, stride 1, "same" padding, with the input's nearest upsampling and the
//! output's crop folded into its indexing: per output step, the `in_ch × k` window is gathered
//! (the zero point where it hangs over an edge) and run through the dense kernel for every output
//! channel at once, so the DSP path's 4-rows-per-input-block loop does the multiply-accumulates.

use super::dense::dense;
use super::Kernel;
use crate::kq8::Conv;

/// `out[o · out_len + t]` for every output channel `o` and step `t`. `x` holds the input
/// (`in_ch × in_len`), `window` and `column` at least the dense view's input and output widths,
/// `x16` at least half the window.
pub fn conv(
    c: &Conv,
    x: &[i8],
    window: &mut [i8],
    column: &mut [i8],
    x16: &mut [u32],
    out: &mut [i8],
    kernel: Kernel,
) {
    let (k, up) = (c.kernel, c.up);
    let pad = k / 2;
    let long = c.in_len * up;
    let taps = c.in_ch * k;
    window[taps..c.dense.in_dim].fill(0);
    for t in 0..c.out_len {
        // Steps t − pad … t + pad of the upsampled input; inside it they all exist.
        let inside = t >= pad && t + pad < long;
        for (ch, w) in window[..taps].chunks_exact_mut(k).enumerate() {
            let row = &x[ch * c.in_len..(ch + 1) * c.in_len];
            if inside {
                let first = t - pad;
                for (j, v) in w.iter_mut().enumerate() {
                    *v = row[(first + j) / up];
                }
            } else {
                for (j, v) in w.iter_mut().enumerate() {
                    let s = (t + j).wrapping_sub(pad);
                    *v = if s < long { row[s / up] } else { c.in_zp };
                }
            }
        }
        dense(&c.dense, 0, window, x16, column, kernel);
        for (o, v) in column[..c.out_ch].iter().enumerate() {
            out[o * c.out_len + t] = *v;
        }
    }
}
