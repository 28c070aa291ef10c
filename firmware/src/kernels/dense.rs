//! Dense (fully connected) int8 layer: four output rows at a time, sharing each unpacked input.
//!
//! The input is unpacked once per layer into i16 lane pairs `(x0, x2), (x1, x3)` per block of 4 —
//! the lane order `SXTB16` gives a packed weight word — so the inner loop per row and block is
//! one load, two `SXTB16` and two `SMLAD`: 4 multiply-accumulates in 5 instructions.

use super::requant::requantize;
use super::Kernel;
use crate::kq8::Dense;

/// `out[o] = requant(bias[row][o] + Σ w[o][i] · x[i])` for every (padded) output of the layer.
/// `x` holds at least `in_dim` values, `x16` at least `in_dim / 2` words, `out` at least `out_dim`.
pub fn dense(
    d: &Dense,
    bias_row: usize,
    x: &[i8],
    x16: &mut [u32],
    out: &mut [i8],
    kernel: Kernel,
) {
    let n_in = d.in_dim;
    let x16 = &mut x16[..n_in / 2];
    unpack(&x[..n_in], x16);
    let rows = d
        .weights
        .chunks_exact(4 * n_in)
        .zip(out[..d.out_dim].chunks_exact_mut(4));
    for (g, (w, y)) in rows.enumerate() {
        let first = bias_row * d.out_dim + 4 * g;
        let mut acc = [0i32; 4];
        for (r, a) in acc.iter_mut().enumerate() {
            *a = i32_at(d.bias, 4 * (first + r));
        }
        match kernel {
            Kernel::Dsp => dot4_dsp(w, x16, &mut acc),
            Kernel::Scalar => dot4_scalar(w, x16, &mut acc),
        }
        for (r, (a, v)) in acc.iter().zip(y.iter_mut()).enumerate() {
            let o = 4 * g + r;
            *v = requantize(
                *a,
                i32_at(d.mult, 4 * o),
                d.shift[o] as i8,
                d.out_zp,
                d.relu,
            );
        }
    }
}

/// i8 values (a multiple of 4) to i16 lane pairs, low lane first.
pub fn unpack(x: &[i8], x16: &mut [u32]) {
    for (b, w) in x.chunks_exact(4).zip(x16.chunks_exact_mut(2)) {
        w[0] = lanes(b[0], b[2]);
        w[1] = lanes(b[1], b[3]);
    }
}

fn lanes(lo: i8, hi: i8) -> u32 {
    (lo as i16 as u16 as u32) | ((hi as i16 as u16 as u32) << 16)
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// What `SMLAD` computes: `acc + a.lo · b.lo + a.hi · b.hi`, wrapping.
fn smlad(acc: i32, a: u32, b: u32) -> i32 {
    let lo = (a as i16 as i32) * (b as i16 as i32);
    let hi = ((a >> 16) as i16 as i32) * ((b >> 16) as i16 as i32);
    acc.wrapping_add(lo).wrapping_add(hi)
}

/// Four rows' dot products over `w` (16 bytes per input block) and the unpacked input.
fn dot4_scalar(w: &[u8], x16: &[u32], acc: &mut [i32; 4]) {
    for (blk, xs) in w.chunks_exact(16).zip(x16.chunks_exact(2)) {
        for (r, a) in acc.iter_mut().enumerate() {
            let wr = &blk[4 * r..4 * r + 4];
            *a = smlad(*a, lanes(wr[0] as i8, wr[2] as i8), xs[0]);
            *a = smlad(*a, lanes(wr[1] as i8, wr[3] as i8), xs[1]);
        }
    }
}

#[cfg(not(all(target_arch = "arm", target_feature = "dsp")))]
fn dot4_dsp(w: &[u8], x16: &[u32], acc: &mut [i32; 4]) {
    dot4_scalar(w, x16, acc)
}

/// The same sums with the DSP extension: two blocks (32 MACs) per loop turn in 44 instructions.
#[cfg(all(target_arch = "arm", target_feature = "dsp"))]
fn dot4_dsp(w: &[u8], x16: &[u32], acc: &mut [i32; 4]) {
    let blocks = (w.len() / 16).min(x16.len() / 2);
    let pairs = blocks / 2;
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    if pairs > 0 {
        // SAFETY: the loop reads `pairs · 32` weight bytes and `pairs · 4` input words, both
        // within the slices (checked above); LDR tolerates unaligned weights on ARMv7E-M and the
        // input words are u32-aligned for LDRD.
        unsafe {
            let end = x16.as_ptr().add(pairs * 4);
            core::arch::asm!(
                "2:",
                "ldrd {xa}, {xb}, [{x}], #8",
                "ldr {v}, [{w}], #4",
                "sxtb16 {t}, {v}, ror #8",
                "sxtb16 {v}, {v}",
                "smlad {a0}, {v}, {xa}, {a0}",
                "smlad {a0}, {t}, {xb}, {a0}",
                "ldr {v}, [{w}], #4",
                "sxtb16 {t}, {v}, ror #8",
                "sxtb16 {v}, {v}",
                "smlad {a1}, {v}, {xa}, {a1}",
                "smlad {a1}, {t}, {xb}, {a1}",
                "ldr {v}, [{w}], #4",
                "sxtb16 {t}, {v}, ror #8",
                "sxtb16 {v}, {v}",
                "smlad {a2}, {v}, {xa}, {a2}",
                "smlad {a2}, {t}, {xb}, {a2}",
                "ldr {v}, [{w}], #4",
                "sxtb16 {t}, {v}, ror #8",
                "sxtb16 {v}, {v}",
                "smlad {a3}, {v}, {xa}, {a3}",
                "smlad {a3}, {t}, {xb}, {a3}",
                "ldrd {xa}, {xb}, [{x}], #8",
                "ldr {v}, [{w}], #4",
                "sxtb16 {t}, {v}, ror #8",
                "sxtb16 {v}, {v}",
                "smlad {a0}, {v}, {xa}, {a0}",
                "smlad {a0}, {t}, {xb}, {a0}",
                "ldr {v}, [{w}], #4",
                "sxtb16 {t}, {v}, ror #8",
                "sxtb16 {v}, {v}",
                "smlad {a1}, {v}, {xa}, {a1}",
                "smlad {a1}, {t}, {xb}, {a1}",
                "ldr {v}, [{w}], #4",
                "sxtb16 {t}, {v}, ror #8",
                "sxtb16 {v}, {v}",
                "smlad {a2}, {v}, {xa}, {a2}",
                "smlad {a2}, {t}, {xb}, {a2}",
                "ldr {v}, [{w}], #4",
                "sxtb16 {t}, {v}, ror #8",
                "sxtb16 {v}, {v}",
                "smlad {a3}, {v}, {xa}, {a3}",
                "smlad {a3}, {t}, {xb}, {a3}",
                "cmp {x}, {end}",
                "bne 2b",
                x = inout(reg) x16.as_ptr() => _,
                w = inout(reg) w.as_ptr() => _,
                end = in(reg) end,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                xa = out(reg) _,
                xb = out(reg) _,
                v = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
    let mut tail = [a0, a1, a2, a3];
    let done = pairs * 2;
    if blocks > done {
        dot4_scalar(
            &w[done * 16..blocks * 16],
            &x16[done * 2..blocks * 2],
            &mut tail,
        );
    }
    *acc = tail;
}
