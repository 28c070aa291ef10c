//! Fixed MiniRocket-style features of an int8 window (Dempster, Schmidt & Webb 2021), in integers
//! so that the host and the Cortex-M4 compute the same bits.
//!
//! The 84 kernels of length 9 weigh 2 at three positions and −1 at the other six, so a kernel's
//! output is `3 · (x[a] + x[b] + x[c]) − Σ x[j]` over its nine taps: the sum is shared by every
//! kernel of a dilation, and each kernel costs three additions per step. Four dilations (powers of
//! two up to `(T − 1) / 8`), channels summed over a subset fixed per (dilation, quarter of the
//! kernels), two biases per (kernel, dilation) taken at quantiles of the output on windows given
//! at fit time; a feature is the proportion of steps above a bias (PPV). Padding alternates
//! between combinations, as in the paper. 84 × 4 × 2 = 672 features, whatever the window's shape.

use crate::Error;
use rand_core::Rng;
use rand_pcg::Pcg32;

pub const KERNELS: usize = 84;
pub const DILATIONS: usize = 4;
/// Kernels share a channel subset in groups of `KERNELS / GROUPS`.
pub const GROUPS: usize = 4;
pub const BIASES: usize = 2;
pub const FEATURES: usize = KERNELS * DILATIONS * BIASES;
/// The longest window the extractor takes (its scratch lives on the stack).
pub const MAX_LENGTH: usize = 512;
/// The most channels (a subset is a 32-bit mask).
pub const MAX_CHANNELS: usize = 32;
const TAPS: usize = 9;
/// Room for a padded series at the largest dilation (`8 · d ≤ T`).
const PADDED: usize = 2 * MAX_LENGTH;

/// The fitted extractor.
#[derive(Debug, Clone)]
pub struct Features {
    channels: usize,
    length: usize,
    zero: i8,
    dilations: [usize; DILATIONS],
    /// Channel mask per (dilation, group).
    masks: [[u32; GROUPS]; DILATIONS],
    /// Per (dilation, kernel): its biases.
    biases: [[[i32; BIASES]; KERNELS]; DILATIONS],
}

/// Windows fitted on: one per (dilation, group), from the caller.
pub const FIT_WINDOWS: usize = DILATIONS * GROUPS;

/// Fills fit window `i` into the buffer.
pub type FitWindow<'f> = dyn FnMut(usize, &mut [i8]) -> Result<(), Error> + 'f;

impl Features {
    /// An extractor of nothing (for `const` initialisers; all zero, so a `static` holding it
    /// costs no flash); [`Features::fit`] makes real ones.
    pub const EMPTY: Features = Features {
        channels: 0,
        length: 0,
        zero: 0,
        dilations: [0; DILATIONS],
        masks: [[0; GROUPS]; DILATIONS],
        biases: [[[0; BIASES]; KERNELS]; DILATIONS],
    };

    /// Fits channel subsets (from `seed`) and biases to windows of `channels × length` int8
    /// values whose zero is `zero`: `window(i, buffer)` fills window `i` of `FIT_WINDOWS` (from
    /// the generator, say) into `buffer`, which is `scratch` (`channels × length` long).
    #[inline(never)]
    pub fn fit(
        channels: usize,
        length: usize,
        zero: i8,
        seed: u64,
        scratch: &mut [i8],
        window: &mut FitWindow<'_>,
    ) -> Result<Self, Error> {
        if !(1..=MAX_CHANNELS).contains(&channels) || !(TAPS..=MAX_LENGTH).contains(&length) {
            return Err(Error::BadShape {
                need: (channels.clamp(1, MAX_CHANNELS) * length.clamp(TAPS, MAX_LENGTH)) as u32,
                have: (channels * length) as u32,
            });
        }
        if scratch.len() != channels * length {
            return Err(Error::BadShape {
                need: (channels * length) as u32,
                have: scratch.len() as u32,
            });
        }
        let mut rng = Pcg32::new(seed, 0xda3e_39cb_94b9_5bdb);
        let mut f = Features {
            channels,
            length,
            zero,
            dilations: dilations(length),
            masks: [[0; GROUPS]; DILATIONS],
            biases: [[[0; BIASES]; KERNELS]; DILATIONS],
        };
        for masks in &mut f.masks {
            for m in masks.iter_mut() {
                *m = channel_subset(&mut rng, channels);
            }
        }
        let mut out = [0i32; MAX_LENGTH];
        let mut conv = Convolver::new();
        let mut n = 0u32;
        for di in 0..DILATIONS {
            for g in 0..GROUPS {
                window(di * GROUPS + g, scratch)?;
                f.convolver(scratch, di, g, &mut conv);
                for k in group(g) {
                    let steps = conv.kernel(k, f.padded(di, k), &mut out);
                    let sorted = &mut out[..steps];
                    sorted.sort_unstable();
                    for b in &mut f.biases[di][k] {
                        n = n.wrapping_add(1);
                        *b = sorted[quantile_index(n, steps)];
                    }
                }
            }
        }
        Ok(f)
    }

    /// Values a window holds.
    pub fn window_len(&self) -> usize {
        self.channels * self.length
    }

    /// The features of `window` (`channels × length`, channel-major) into `out`. (Not inlined:
    /// one frame of ~8 KB on the device's stack, however many callers.)
    #[inline(never)]
    pub fn transform(&self, window: &[i8], out: &mut [f32; FEATURES]) -> Result<(), Error> {
        if window.len() != self.window_len() {
            return Err(Error::BadShape {
                need: self.window_len() as u32,
                have: window.len() as u32,
            });
        }
        let mut steps_out = [0i32; MAX_LENGTH];
        let mut conv = Convolver::new();
        let mut at = 0;
        for di in 0..DILATIONS {
            for g in 0..GROUPS {
                self.convolver(window, di, g, &mut conv);
                for k in group(g) {
                    let steps = conv.kernel(k, self.padded(di, k), &mut steps_out);
                    let values = &steps_out[..steps];
                    for (b, &bias) in self.biases[di][k].iter().enumerate() {
                        let above = values.iter().filter(|&&v| v > bias).count();
                        out[at + b] = above as f32 / steps as f32;
                    }
                    at += BIASES;
                }
            }
        }
        // Order: dilation, then kernel (groups are contiguous kernel ranges), then bias.
        debug_assert_eq!(at, FEATURES);
        Ok(())
    }

    /// Padded (every step) or not (only where all nine taps fall inside), alternating; a
    /// dilation too large to leave a step unpadded is padded.
    fn padded(&self, di: usize, k: usize) -> bool {
        (di + k).is_multiple_of(2) || TAPS.saturating_sub(1) * self.dilations[di] >= self.length
    }

    /// Loads into `c` the summed channels of group `g` at dilation `di`, zero-padded, and the
    /// nine-tap sums (in place: one convolver's 6 KB serve a whole window, on the device's stack).
    fn convolver(&self, window: &[i8], di: usize, g: usize, c: &mut Convolver) {
        let (t, d) = (self.length, self.dilations[di]);
        let half = (TAPS / 2) * d;
        c.length = t;
        c.dilation = d;
        c.s[..t + 2 * half].fill(0);
        let mask = self.masks[di][g];
        for ch in 0..self.channels {
            if mask & (1 << ch) == 0 {
                continue;
            }
            let row = &window[ch * t..(ch + 1) * t];
            for (s, &v) in c.s[half..half + t].iter_mut().zip(row) {
                *s += v as i32 - self.zero as i32;
            }
        }
        for (i, sum) in c.sum[..t].iter_mut().enumerate() {
            *sum = (0..TAPS).map(|j| c.s[i + j * d]).sum();
        }
    }
}

/// One (dilation, group)'s summed series, padded with `4 · d` zeros each side, and the sum of
/// the nine taps at every step.
struct Convolver {
    s: [i32; PADDED],
    sum: [i32; MAX_LENGTH],
    length: usize,
    dilation: usize,
}

impl Convolver {
    const fn new() -> Self {
        Convolver {
            s: [0; PADDED],
            sum: [0; MAX_LENGTH],
            length: 0,
            dilation: 1,
        }
    }

    /// Kernel `k`'s outputs into `out`; returns how many steps (all, or the unpadded ones).
    fn kernel(&self, k: usize, padded: bool, out: &mut [i32; MAX_LENGTH]) -> usize {
        let [a, b, c] = TWOS[k];
        let d = self.dilation;
        let (start, end) = if padded {
            (0, self.length)
        } else {
            (4 * d, self.length - 4 * d)
        };
        for (o, t) in out.iter_mut().zip(start..end) {
            let three = self.s[t + a * d] + self.s[t + b * d] + self.s[t + c * d];
            *o = 3 * three - self.sum[t];
        }
        end - start
    }
}

/// Positions (of 9) that weigh 2, for each of the 84 kernels, in lexicographic order.
const TWOS: [[usize; 3]; KERNELS] = {
    let mut k = [[0; 3]; KERNELS];
    let mut i = 0;
    let mut a = 0;
    while a < TAPS {
        let mut b = a + 1;
        while b < TAPS {
            let mut c = b + 1;
            while c < TAPS {
                k[i] = [a, b, c];
                i += 1;
                c += 1;
            }
            b += 1;
        }
        a += 1;
    }
    k
};

/// The kernels of group `g`.
fn group(g: usize) -> core::ops::Range<usize> {
    let per = KERNELS / GROUPS;
    g * per..(g + 1) * per
}

/// Powers of two from 1 to the largest with `8 · d < T`, spread over `DILATIONS` (repeats where
/// the window is short).
fn dilations(length: usize) -> [usize; DILATIONS] {
    let top = (length.saturating_sub(1) / (TAPS - 1)).max(1);
    let max_exp = (usize::BITS - 1 - top.leading_zeros()) as usize;
    let mut d = [1; DILATIONS];
    for (i, v) in d.iter_mut().enumerate() {
        // round(i · max_exp / (DILATIONS − 1)) in integers.
        let e = (2 * i * max_exp + (DILATIONS - 1)) / (2 * (DILATIONS - 1));
        *v = 1 << e;
    }
    d
}

/// A random subset of 1, 2, 4 or 8 channels (as many as there are), as a mask.
fn channel_subset(rng: &mut Pcg32, channels: usize) -> u32 {
    let most = channels.min(TAPS - 1);
    let levels = usize::BITS - most.leading_zeros(); // 1 + ⌊log2 most⌋
    let count = 1usize << (rng.next_u32() % levels);
    let mut order = [0u8; MAX_CHANNELS];
    for (i, o) in order.iter_mut().enumerate().take(channels) {
        *o = i as u8;
    }
    // The first `count` of a partial Fisher–Yates shuffle.
    for i in 0..count {
        let j = i + (rng.next_u32() as usize) % (channels - i);
        order.swap(i, j);
    }
    order[..count].iter().fold(0, |m, &c| m | 1 << c)
}

/// Index of the low-discrepancy quantile `frac(n · φ)` in `steps` sorted values (Fibonacci
/// hashing in 32-bit fixed point).
fn quantile_index(n: u32, steps: usize) -> usize {
    let q = n.wrapping_mul(0x9e37_79b9) as u64; // frac(n / φ) = frac(n · φ), × 2^32
    ((q * (steps.max(1) - 1) as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dilations_fit_the_window() {
        assert_eq!(dilations(100), [1, 2, 4, 8]);
        assert_eq!(dilations(251), [1, 2, 8, 16]);
        assert_eq!(dilations(25), [1, 1, 2, 2]);
        assert_eq!(dilations(9), [1, 1, 1, 1]);
        for t in TAPS..=MAX_LENGTH {
            assert!(
                dilations(t).iter().all(|&d| 8 * d < t.max(9) || d == 1),
                "{t}"
            );
        }
    }

    #[test]
    fn the_kernels_are_every_choice_of_three_positions() {
        assert_eq!(TWOS[0], [0, 1, 2]);
        assert_eq!(TWOS[KERNELS - 1], [6, 7, 8]);
        for w in TWOS.windows(2) {
            assert!(w[0] < w[1]);
        }
    }
}
