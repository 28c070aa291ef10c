//! Dense (fully connected) int8 layer: four output rows at a time, sharing each unpacked input.
//!
//! The input is unpacked once per layer into i16 lane pairs `(x0, x2), (x1, x3)` per block of 4 —
//! the lane order `SXTB16` gives a packed weight word — so the inner loop per row and block is
//! one load, two `SXTB16` and two `SMLAD`: 4 multiply-accumulates in 5 instructions.

use super::requant::scale;
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
    match kernel {
        Kernel::Dsp => unpack(&x[..n_in], x16),
        Kernel::Scalar => unpack_scalar(&x[..n_in], x16),
    }
    dense_unpacked(d, bias_row, x16, out, kernel);
}

/// [`dense`] on an input already unpacked into lane pairs (`x16` holds at least `in_dim / 2` words).
pub fn dense_unpacked(d: &Dense, bias_row: usize, x16: &[u32], out: &mut [i8], kernel: Kernel) {
    let (n_in, n_out) = (d.in_dim, d.out_dim);
    let x16 = &x16[..n_in / 2];
    let bias = &d.bias[4 * bias_row * n_out..][..4 * n_out];
    if kernel == Kernel::Dsp && layer_dsp(d, bias, x16, &mut out[..n_out]) {
        return;
    }
    // requantize(), with the zero point and clamp hoisted out of the loop.
    let zp = d.out_zp as i32;
    let lo = if d.relu { zp } else { -128 };
    // Zipped fixed-size chunks: no index arithmetic or bounds checks per output.
    let groups = d
        .weights
        .chunks_exact(4 * n_in)
        .zip(out[..n_out].chunks_exact_mut(4))
        .zip(bias.chunks_exact(16).zip(d.mult.chunks_exact(16)))
        .zip(d.shift.chunks_exact(4));
    for (((w, y), (b, m)), s) in groups {
        let mut acc = [i32_at(b, 0), i32_at(b, 4), i32_at(b, 8), i32_at(b, 12)];
        dot4_scalar(w, x16, &mut acc);
        for r in 0..4 {
            let v = scale(acc[r], i32_at(m, 4 * r), s[r] as i8).saturating_add(zp);
            y[r] = v.clamp(lo, 127) as i8;
        }
    }
}

/// Where the whole-layer kernel is; it reads and advances these in memory (`#[repr(C)]`: the
/// asm uses the offsets).
#[cfg(all(target_arch = "arm", feature = "dsp"))]
#[repr(C)]
struct Cursor {
    bias: *const u8,    // 0
    w: *const u8,       // 4
    x: *const u32,      // 8
    x_end8: *const u32, // 12: end of the part done 8 blocks per turn
    mult: *const u8,    // 16
    shift: *const u8,   // 20
    out: *mut i8,       // 24
    zp: i32,            // 28
    lo: i32,            // 32
    out_end: *mut i8,   // 36
    x_end: *const u32,  // 40
}

#[cfg(not(all(target_arch = "arm", feature = "dsp")))]
fn layer_dsp(_: &Dense, _: &[u8], _: &[u32], _: &mut [i8]) -> bool {
    false
}

/// The whole layer in one `asm!` block where it can (every shift ≤ −2, the flag the reader
/// checked). Per group of 4 rows: 170 instructions per 8 input blocks (128 MACs), 23 per block
/// left over, then 11 per output to requantize (14 with a ReLU clamp above −128). Returns false
/// when the layer does not qualify.
#[cfg(all(target_arch = "arm", feature = "dsp"))]
fn layer_dsp(d: &Dense, bias: &[u8], x16: &[u32], out: &mut [i8]) -> bool {
    let (n_in, n_out) = (d.in_dim, d.out_dim);
    let fits =
        d.weights.len() >= n_in * n_out && bias.len() >= 4 * n_out && d.mult.len() >= 4 * n_out;
    if !d.high_word
        || n_in % 4 != 0
        || n_in == 0
        || n_out % 4 != 0
        || n_out == 0
        || x16.len() < n_in / 2
        || out.len() < n_out
        || d.shift.len() < n_out
        || !fits
    {
        return false;
    }
    let zp = d.out_zp as i32;
    let lo = if d.relu { zp } else { -128 };
    let mut c = Cursor {
        bias: bias.as_ptr(),
        w: d.weights.as_ptr(),
        x: x16.as_ptr(),
        // SAFETY (the adds): within or one past the slices checked above.
        x_end8: unsafe { x16.as_ptr().add(n_in / 32 * 16) },
        mult: d.mult.as_ptr(),
        shift: d.shift.as_ptr(),
        out: out.as_mut_ptr(),
        zp,
        lo,
        out_end: unsafe { out.as_mut_ptr().add(n_out) },
        x_end: unsafe { x16.as_ptr().add(n_in / 2) },
    };
    let p: *mut Cursor = &mut c;
    // One input block (4 inputs) for the 4 rows: LDRD of the two unpacked input pairs, then per row
    // LDR of its 4 weights, SXTB16 into two lane pairs, two SMLAD.
    macro_rules! block {
        () => {
            concat!(
                "ldrd {xa}, {xb}, [{x}], #8\n",
                "ldr {v}, [{w}], #4\n",
                "sxtb16 {t}, {v}, ror #8\n",
                "sxtb16 {v}, {v}\n",
                "smlad {a0}, {v}, {xa}, {a0}\n",
                "smlad {a0}, {t}, {xb}, {a0}\n",
                "ldr {v}, [{w}], #4\n",
                "sxtb16 {t}, {v}, ror #8\n",
                "sxtb16 {v}, {v}\n",
                "smlad {a1}, {v}, {xa}, {a1}\n",
                "smlad {a1}, {t}, {xb}, {a1}\n",
                "ldr {v}, [{w}], #4\n",
                "sxtb16 {t}, {v}, ror #8\n",
                "sxtb16 {v}, {v}\n",
                "smlad {a2}, {v}, {xa}, {a2}\n",
                "smlad {a2}, {t}, {xb}, {a2}\n",
                "ldr {v}, [{w}], #4\n",
                "sxtb16 {t}, {v}, ror #8\n",
                "sxtb16 {v}, {v}\n",
                "smlad {a3}, {v}, {xa}, {a3}\n",
                "smlad {a3}, {t}, {xb}, {a3}\n",
            )
        };
    }
    macro_rules! requant {
        ($a:literal, $($clamp:literal),*) => {
            concat!(
                "ldr {t}, [{x}], #4\n",
                "smmul ", $a, ", ", $a, ", {t}\n",
                "ldrsb {t}, [{w}], #1\n",
                "mvn {t}, {t}\n",
                "sub {t}, {t}, #1\n",
                "asr ", $a, ", ", $a, ", {t}\n",
                "and {t}, ", $a, ", #1\n",
                "add ", $a, ", {t}, ", $a, ", asr #1\n",
                "add ", $a, ", ", $a, ", {xb}\n",
                "ssat ", $a, ", #8, ", $a, "\n",
                $($clamp, " ", $a, ", {v}\n", "it lt\n", "movlt ", $a, ", {v}\n",)*
                "strb ", $a, ", [{xa}], #1\n",
            )
        };
    }
    macro_rules! layer {
        ($($clamp:literal),*) => {
            // SAFETY: every pointer walks inside the slices checked above: per group 16 bytes
            // of bias and multipliers, 4 shifts, 4 outputs, 64 · in / 16 weight bytes, and the
            // whole unpacked input; the group loop stops at `out_end`.
            unsafe {
                core::arch::asm!(
                    "1:",
                    "ldr {t}, [{p}, #0]",
                    "ldr {a0}, [{t}], #4",
                    "ldr {a1}, [{t}], #4",
                    "ldr {a2}, [{t}], #4",
                    "ldr {a3}, [{t}], #4",
                    "str {t}, [{p}, #0]",
                    "ldrd {w}, {x}, [{p}, #4]",
                    "ldr {e}, [{p}, #12]",
                    "cmp {x}, {e}",
                    "beq 3f",
                    "2:",
                    block!(), block!(), block!(), block!(),
                    block!(), block!(), block!(), block!(),
                    "cmp {x}, {e}",
                    "bne 2b",
                    "3:",
                    "ldr {e}, [{p}, #40]",
                    "cmp {x}, {e}",
                    "beq 5f",
                    "4:",
                    block!(),
                    "cmp {x}, {e}",
                    "bne 4b",
                    "5:",
                    "str {w}, [{p}, #4]",
                    "ldrd {x}, {w}, [{p}, #16]",
                    "ldrd {xa}, {xb}, [{p}, #24]",
                    "ldr {v}, [{p}, #32]",
                    requant!("{a0}", $($clamp),*),
                    requant!("{a1}", $($clamp),*),
                    requant!("{a2}", $($clamp),*),
                    requant!("{a3}", $($clamp),*),
                    "strd {x}, {w}, [{p}, #16]",
                    "str {xa}, [{p}, #24]",
                    "ldr {t}, [{p}, #36]",
                    "cmp {xa}, {t}",
                    "bne 1b",
                    p = in(reg) p,
                    a0 = out(reg) _,
                    a1 = out(reg) _,
                    a2 = out(reg) _,
                    a3 = out(reg) _,
                    x = out(reg) _,
                    w = out(reg) _,
                    xa = out(reg) _,
                    xb = out(reg) _,
                    v = out(reg) _,
                    t = out(reg) _,
                    e = out(reg) _,
                    options(nostack),
                );
            }
        };
    }
    if lo == -128 {
        layer!();
    } else {
        layer!("cmp");
    }
    true
}

#[cfg(not(all(target_arch = "arm", feature = "dsp")))]
pub(crate) fn unpack(x: &[i8], x16: &mut [u32]) {
    unpack_scalar(x, x16)
}

/// [`unpack_scalar`] with two `SXTB16` per word of input.
#[cfg(all(target_arch = "arm", feature = "dsp"))]
pub(crate) fn unpack(x: &[i8], x16: &mut [u32]) {
    for (b, w) in x.chunks_exact(4).zip(x16.chunks_exact_mut(2)) {
        let word = u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]);
        let (even, odd): (u32, u32);
        // SAFETY: register-only sign extension.
        unsafe {
            core::arch::asm!(
                "sxtb16 {e}, {v}",
                "sxtb16 {o}, {v}, ror #8",
                v = in(reg) word, e = out(reg) even, o = out(reg) odd,
                options(pure, nomem, nostack),
            );
        }
        w[0] = even;
        w[1] = odd;
    }
}

/// i8 values (a multiple of 4) to i16 lane pairs `(x0, x2), (x1, x3)`, low lane first.
pub fn unpack_scalar(x: &[i8], x16: &mut [u32]) {
    for (b, w) in x.chunks_exact(4).zip(x16.chunks_exact_mut(2)) {
        w[0] = lanes(b[0], b[2]);
        w[1] = lanes(b[1], b[3]);
    }
}

pub fn lanes(lo: i8, hi: i8) -> u32 {
    (lo as i16 as u16 as u32) | ((hi as i16 as u16 as u32) << 16)
}

#[inline(always)]
fn i32_at(b: &[u8], at: usize) -> i32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => i32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
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
