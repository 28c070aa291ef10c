//! The int8 latent: a seeded PCG32 per sample and the model's quantized-normal CDF table.
//!
//! Sample `(seed, class, index)` always gets the same latent on every target, whatever order the
//! samples are made in: its generator is seeded from those three numbers alone.

use crate::kq8::{Model, CDF_ENTRIES};
use rand_core::Rng;
use rand_pcg::Pcg32;

/// The PRNG of one sample.
pub fn sample_rng(seed: u64, class: u16, index: u32) -> Pcg32 {
    let key = ((class as u64) << 32) | index as u64;
    Pcg32::new(splitmix64(seed ^ splitmix64(key)), key)
}

/// Fills `z` with int8 latent levels drawn from the model's CDF.
pub fn fill(model: &Model, rng: &mut Pcg32, z: &mut [i8]) {
    for v in z {
        *v = level(model, rng.next_u32());
    }
}

/// `−128 + #{k : t[k] ≤ u}` by binary search over the 255 ascending thresholds.
pub fn level(model: &Model, u: u32) -> i8 {
    let (mut lo, mut hi) = (0usize, CDF_ENTRIES);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if model.cdf(mid) <= u {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    (lo as i32 - 128) as i8
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
