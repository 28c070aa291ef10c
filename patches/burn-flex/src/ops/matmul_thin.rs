//! Keel patch: f32 products with k ≤ 2, written row by row.
//!
//! gemm sends every product with k ≤ 2 (a layer on 2-D inputs; the outer product through a
//! one-column layer in the backward pass) to `gemm_common::gevv`, which walks C column by column —
//! through burn-flex's row-major C that is a store every `n` floats — in code compiled without AVX.
//! Here each row of C is one contiguous pass. Every element gets gevv's arithmetic with
//! `read_dst = false` and β = 1: a₀·b₀ for k = 1, and a₁·b₁ + a₀·b₀ for k = 2 (each product rounded,
//! then the sum: gemm_basic's `mul_add` is `a * b + c`, not fused), so C is bit-identical.

use alloc::vec::Vec;

/// C = A·B for `k` ∈ {1, 2}: A is `m × k` and B `k × n`, both given by pointer and strides (in
/// elements, possibly a transposed view); C is row-major `m × n` at `out`, every element written.
///
/// # Safety
/// `a` and `b` must address every element their shapes and strides reach; `out` must be valid for
/// `m * n` writes.
pub(crate) unsafe fn thin_product_f32(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    a_rs: isize,
    a_cs: isize,
    b: *const f32,
    b_rs: isize,
    b_cs: isize,
    out: *mut f32,
) {
    debug_assert!((1..=2).contains(&k));
    if m == 0 || n == 0 {
        return; // nothing to write (and rows of length 0 cannot be chunked)
    }
    // B's rows, contiguous (B may be a transposed view): 2n floats at most.
    let row = |p: usize| -> Vec<f32> {
        (0..n)
            .map(|j| unsafe { *b.offset(p as isize * b_rs + j as isize * b_cs) })
            .collect()
    };
    let b0 = row(0);
    let b1 = if k == 2 { row(1) } else { Vec::new() };
    let a_at = |i: usize, p: usize| unsafe { *a.offset(i as isize * a_rs + p as isize * a_cs) };
    let c = unsafe { core::slice::from_raw_parts_mut(out, m * n) };
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        unsafe { rows_avx512(c, n, &a_at, &b0, &b1) };
        return;
    }
    rows(c, n, &a_at, &b0, &b1);
}

/// The rows of C, for the widest vectors the build allows.
#[inline(always)]
fn rows(c: &mut [f32], n: usize, a_at: &dyn Fn(usize, usize) -> f32, b0: &[f32], b1: &[f32]) {
    for (i, c_row) in c.chunks_exact_mut(n).enumerate() {
        let a0 = a_at(i, 0);
        if b1.is_empty() {
            for (c, &x0) in c_row.iter_mut().zip(b0) {
                *c = a0 * x0;
            }
        } else {
            let a1 = a_at(i, 1);
            for ((c, &x0), &x1) in c_row.iter_mut().zip(b0).zip(b1) {
                *c = a1 * x1 + a0 * x0;
            }
        }
    }
}

/// `rows` compiled for AVX-512: 16 floats per instruction, the same operations per element.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512(
    c: &mut [f32],
    n: usize,
    a_at: &dyn Fn(usize, usize) -> f32,
    b0: &[f32],
    b1: &[f32],
) {
    rows(c, n, a_at, b0, b1)
}

#[cfg(test)]
pub(super) mod tests {
    use super::thin_product_f32;
    use alloc::vec::Vec;

    /// Values over several binades, so that the rounding of each product and of the sum shows.
    pub(in crate::ops) fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let unit = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                unit * (1u32 << ((s >> 20) % 12)) as f32
            })
            .collect()
    }

    #[test]
    fn k_of_one_and_two_is_gemms_product_bit_for_bit() {
        for &(m, n, k) in &[
            (256, 128, 2),
            (512, 128, 1),
            (7, 33, 2),
            (1, 1, 1),
            (64, 600, 2),
            (0, 5, 1),
            (4, 0, 2),
            (3, 17, 1),
        ] {
            let a = values(m * k, 1 + m as u64);
            let b = values(k * n, 2 + n as u64);
            // A row-major or a transposed view; B row-major or a transposed view.
            for (a_rs, a_cs) in [(k as isize, 1), (1, m as isize)] {
                for (b_rs, b_cs) in [(n as isize, 1), (1, k as isize)] {
                    let mut ours = alloc::vec![f32::NAN; m * n];
                    let mut gemms = alloc::vec![f32::NAN; m * n];
                    unsafe {
                        thin_product_f32(
                            m,
                            n,
                            k,
                            a.as_ptr(),
                            a_rs,
                            a_cs,
                            b.as_ptr(),
                            b_rs,
                            b_cs,
                            ours.as_mut_ptr(),
                        );
                        // As burn-flex calls gemm: C row-major, not read.
                        super::super::matmul::gemm_call(
                            m,
                            n,
                            k,
                            gemms.as_mut_ptr(),
                            1,
                            n as isize,
                            a.as_ptr(),
                            a_cs,
                            a_rs,
                            b.as_ptr(),
                            b_cs,
                            b_rs,
                            gemm::Parallelism::None,
                        );
                    }
                    let same = ours
                        .iter()
                        .zip(&gemms)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "m {m} n {n} k {k}, strides a ({a_rs}, {a_cs}) b ({b_rs}, {b_cs})"
                    );
                }
            }
        }
    }
}
