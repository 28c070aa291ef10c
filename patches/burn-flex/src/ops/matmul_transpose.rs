//! Keel patch: a right operand that is a transposed view (`x · Wᵀ`) is transposed once, with 8×8
//! AVX shuffles, before gemm sees it.
//!
//! burn-flex hands gemm C = A·B as Cᵀ = Bᵀ·Aᵀ (C is row-major), so gemm's left operand is Bᵀ. When
//! B is a transposed row-major matrix (every backward product through a Linear, and an in-graph
//! input gradient), that operand is row-major in gemm's terms and gemm packs it into column panels
//! one float at a time: a scalar gather of k·n floats per product. Written row-major here first,
//! the same operand is column-major to gemm, which then reads it where it lies. Only the copy
//! changes: gemm runs the same kernel on the same values with the same k-blocking (which depends on
//! k alone), so C is bit-identical.

use alloc::vec::Vec;

/// Below this many elements gemm's own packing is as cheap as the call here.
const MIN_ELEMS: usize = 4096;

/// Side of the square tiles the transpose walks.
const TILE: usize = 64;

/// Whether `B` (k × n, strides `b_rs`, `b_cs`) is a transposed contiguous matrix worth
/// transposing for gemm: column-major with unit row stride.
pub(crate) fn worth_transposing(k: usize, n: usize, b_rs: isize, b_cs: isize) -> bool {
    b_rs == 1 && b_cs >= k as isize && k >= 8 && n >= 16 && k.saturating_mul(n) >= MIN_ELEMS
}

/// B (k × n, column-major: element (p, j) at `b + j·b_cs + p`) written row-major into a new buffer
/// of k·n floats (element (p, j) at `p·n + j`).
///
/// # Safety
/// `b` must address every element (p, j) for p < k, j < n at `j·b_cs + p`.
pub(crate) unsafe fn row_major_copy(b: *const f32, k: usize, n: usize, b_cs: isize) -> Vec<f32> {
    let mut out = take_scratch();
    out.clear();
    out.reserve(k * n);
    // SAFETY: every source index is in bounds (above); `out` has room for k·n floats.
    unsafe { transpose_block(b, n, k, b_cs as usize, out.as_mut_ptr(), n) };
    // SAFETY: all k·n elements were written.
    unsafe { out.set_len(k * n) };
    out
}

/// `dst[c·ds + r] = src[r·ss + c]` for a `rows × cols` block: the 8×8 AVX shuffles where the CPU
/// has them. Only moves 4-byte elements; their bits are untouched.
///
/// # Safety
/// `src` must address `r·ss + c` and `dst` must address `c·ds + r` for every r < rows, c < cols.
pub(crate) unsafe fn transpose_block(
    src: *const f32,
    rows: usize,
    cols: usize,
    ss: usize,
    dst: *mut f32,
    ds: usize,
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the caller vouches for the indices.
        unsafe { transpose_avx(src, rows, cols, ss, dst, ds) };
        return;
    }
    unsafe { transpose_scalar(src, rows, cols, ss, dst, ds, 0, 0) };
}

#[cfg(feature = "std")]
std::thread_local! {
    /// One buffer per thread, reused: a fresh allocation of this size costs page faults each time.
    static SCRATCH: core::cell::Cell<Vec<f32>> = const { core::cell::Cell::new(Vec::new()) };
}

#[cfg(feature = "std")]
std::thread_local! {
    /// `product_by_columns`' second buffer (C column-major), beside `SCRATCH` (Aᵀ).
    static SCRATCH_C: core::cell::Cell<Vec<f32>> = const { core::cell::Cell::new(Vec::new()) };
}

fn take_scratch() -> Vec<f32> {
    #[cfg(feature = "std")]
    return SCRATCH.with(|s| s.take());
    #[cfg(not(feature = "std"))]
    Vec::new()
}

/// Hands a buffer from `row_major_copy` back for the next product on this thread.
pub(crate) fn give_back(v: Vec<f32>) {
    #[cfg(feature = "std")]
    SCRATCH.with(|s| s.set(v));
    #[cfg(not(feature = "std"))]
    drop(v);
}

/// Whether `A·B` (A `m × k`, B `k × n` a transposed contiguous matrix) moves fewer floats by
/// columns (`product_by_columns`: Aᵀ and C transposed, m·k + m·n) than with B made row-major
/// (`row_major_copy`: k·n). So for `x · Wᵀ` with a batch smaller than the layer: an input
/// gradient through a Linear, and its in-graph form for a penalty.
pub(crate) fn cheaper_by_columns(m: usize, k: usize, n: usize) -> bool {
    m >= 16 && m.saturating_mul(k.saturating_add(n)) < k.saturating_mul(n)
}

/// C = A·B, row-major `m × n`, computed as a column-major C by gemm: A (row-major, row stride
/// `a_rs`) is transposed into a scratch buffer, which makes it column-major to gemm; B (element
/// (p, j) at `b + j·b_cs + p`) is read where it lies; C is transposed back at the end. gemm then
/// does not swap the product (its C is already column-major), and each element of C is the same
/// fused multiply-add chain over k as `row_major_copy`'s route gives it (a·b and b·a are the same
/// product; the k-blocking depends on k alone), so the result is bit-identical.
///
/// # Safety
/// `a` must address `i·a_rs + p` (a_rs ≥ k) and `b` must address `j·b_cs + p` for every i < m,
/// p < k, j < n.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product_by_columns(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    a_rs: usize,
    b: *const f32,
    b_cs: isize,
    parallelism: gemm::Parallelism,
) -> Vec<f32> {
    let mut at = take_scratch();
    at.clear();
    at.reserve(m * k);
    #[cfg(feature = "std")]
    let mut cc = SCRATCH_C.with(|s| s.take());
    #[cfg(not(feature = "std"))]
    let mut cc = Vec::new();
    cc.clear();
    cc.reserve(m * n);
    let mut out = Vec::with_capacity(m * n);
    unsafe {
        // Aᵀ: element (i, p) at p·m + i.
        transpose_block(a, m, k, a_rs, at.as_mut_ptr(), m);
        at.set_len(m * k);
        gemm::gemm(
            m,
            n,
            k,
            cc.as_mut_ptr(),
            m as isize,
            1,
            false,
            at.as_ptr(),
            m as isize,
            1,
            b,
            b_cs,
            1,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
        cc.set_len(m * n);
        // Column-major C (n rows of m in memory) to row-major.
        transpose_block(cc.as_ptr(), n, m, m, out.as_mut_ptr(), n);
        out.set_len(m * n);
    }
    give_back(at);
    #[cfg(feature = "std")]
    SCRATCH_C.with(|s| s.set(cc));
    out
}

/// dst[c·ds + r] = src[r·ss + c] for r ≥ r0 or c ≥ c0 (the edges the 8×8 blocks left).
#[allow(clippy::too_many_arguments)]
unsafe fn transpose_scalar(
    src: *const f32,
    rows: usize,
    cols: usize,
    ss: usize,
    dst: *mut f32,
    ds: usize,
    r0: usize,
    c0: usize,
) {
    for r in 0..rows {
        let from = if r < r0 { c0 } else { 0 };
        for c in from..cols {
            unsafe { *dst.add(c * ds + r) = *src.add(r * ss + c) };
        }
    }
}

/// The transpose of a `rows × cols` matrix (row stride `ss`) into `dst` (row stride `ds`), in
/// 8×8 blocks of 256-bit loads, shuffles and stores.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx")]
unsafe fn transpose_avx(
    src: *const f32,
    rows: usize,
    cols: usize,
    ss: usize,
    dst: *mut f32,
    ds: usize,
) {
    use core::arch::x86_64::*;
    let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
    // Tiles of TILE × TILE floats (16 KiB read, 16 KiB written) stay in L1 between the 8×8 blocks
    // that share their cache lines.
    for rt in (0..r8).step_by(TILE) {
        for ct in (0..c8).step_by(TILE) {
            for c in (ct..c8.min(ct + TILE)).step_by(8) {
                for r in (rt..r8.min(rt + TILE)).step_by(8) {
                    unsafe {
                        let s = src.add(r * ss + c);
                        let x0 = _mm256_loadu_ps(s);
                        let x1 = _mm256_loadu_ps(s.add(ss));
                        let x2 = _mm256_loadu_ps(s.add(2 * ss));
                        let x3 = _mm256_loadu_ps(s.add(3 * ss));
                        let x4 = _mm256_loadu_ps(s.add(4 * ss));
                        let x5 = _mm256_loadu_ps(s.add(5 * ss));
                        let x6 = _mm256_loadu_ps(s.add(6 * ss));
                        let x7 = _mm256_loadu_ps(s.add(7 * ss));
                        let t0 = _mm256_unpacklo_ps(x0, x1);
                        let t1 = _mm256_unpackhi_ps(x0, x1);
                        let t2 = _mm256_unpacklo_ps(x2, x3);
                        let t3 = _mm256_unpackhi_ps(x2, x3);
                        let t4 = _mm256_unpacklo_ps(x4, x5);
                        let t5 = _mm256_unpackhi_ps(x4, x5);
                        let t6 = _mm256_unpacklo_ps(x6, x7);
                        let t7 = _mm256_unpackhi_ps(x6, x7);
                        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                        let d = dst.add(c * ds + r);
                        _mm256_storeu_ps(d, _mm256_permute2f128_ps::<0x20>(u0, u4));
                        _mm256_storeu_ps(d.add(ds), _mm256_permute2f128_ps::<0x20>(u1, u5));
                        _mm256_storeu_ps(d.add(2 * ds), _mm256_permute2f128_ps::<0x20>(u2, u6));
                        _mm256_storeu_ps(d.add(3 * ds), _mm256_permute2f128_ps::<0x20>(u3, u7));
                        _mm256_storeu_ps(d.add(4 * ds), _mm256_permute2f128_ps::<0x31>(u0, u4));
                        _mm256_storeu_ps(d.add(5 * ds), _mm256_permute2f128_ps::<0x31>(u1, u5));
                        _mm256_storeu_ps(d.add(6 * ds), _mm256_permute2f128_ps::<0x31>(u2, u6));
                        _mm256_storeu_ps(d.add(7 * ds), _mm256_permute2f128_ps::<0x31>(u3, u7));
                    }
                }
            }
        }
    }
    // The edges: rows past r8 (every column) and columns past c8 (every row).
    unsafe { transpose_scalar(src, rows, cols, ss, dst, ds, r8, c8) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::matmul_thin::tests::values;

    #[test]
    fn row_major_copy_is_the_transpose_for_every_edge() {
        for (k, n, pad) in [
            (8, 16, 0),
            (13, 21, 3),
            (256, 600, 0),
            (600, 256, 5),
            (9, 8, 1),
        ] {
            let cs = k + pad; // column stride of B (a transposed view of an n × (k + pad) matrix)
            let w: Vec<f32> = (0..n * cs).map(|i| i as f32 * 0.5 - 7.0).collect();
            let got = unsafe { row_major_copy(w.as_ptr(), k, n, cs as isize) };
            for p in 0..k {
                for j in 0..n {
                    assert_eq!(got[p * n + j], w[j * cs + p], "k {k} n {n} at ({p}, {j})");
                }
            }
        }
    }

    /// `x · Wᵀ` by columns and as burn-flex calls gemm on the view: the same bits, for shapes
    /// with a ragged m, n or k, k across two k-blocks (600, 1100) and a padded row stride of A.
    #[test]
    fn product_by_columns_is_gemm_of_the_view_bit_for_bit() {
        for &(m, n, k, pad) in &[
            (64, 600, 256, 0),
            (64, 256, 256, 0),
            (64, 256, 600, 3),
            (16, 40, 13, 0),
            (37, 129, 70, 5),
            (50, 1000, 1100, 0),
        ] {
            let a_rs = k + pad;
            let a = values(m * a_rs, 7 + m as u64);
            let w = values(n * k, 8 + n as u64); // W is n × k row-major; B = Wᵀ
            let mut view = vec![f32::NAN; m * n];
            let cols = unsafe {
                crate::ops::matmul::gemm_call(
                    m,
                    n,
                    k,
                    view.as_mut_ptr(),
                    1,
                    n as isize,
                    a.as_ptr(),
                    1,
                    a_rs as isize,
                    w.as_ptr(),
                    k as isize,
                    1,
                    gemm::Parallelism::None,
                );
                product_by_columns(
                    m,
                    k,
                    n,
                    a.as_ptr(),
                    a_rs,
                    w.as_ptr(),
                    k as isize,
                    gemm::Parallelism::None,
                )
            };
            let same = view
                .iter()
                .zip(&cols)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "m {m} n {n} k {k}");
        }
    }

    /// gemm on the transposed view and on its row-major copy: the same bits (k = 600 spans two
    /// k-blocks of gemm's kernel).
    #[test]
    fn gemm_of_the_row_major_copy_is_gemm_of_the_view_bit_for_bit() {
        for &(m, n, k) in &[
            (64, 600, 256),
            (64, 256, 600),
            (128, 256, 256),
            (256, 128, 128),
            (17, 40, 13),
            (64, 24, 9),
        ] {
            let a = values(m * k, 3 + m as u64);
            let w = values(n * k, 4 + n as u64); // W is n × k row-major; B = Wᵀ
            let copy = unsafe { row_major_copy(w.as_ptr(), k, n, k as isize) };
            let (mut view, mut rows) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            unsafe {
                for (c, b, b_rs, b_cs) in [
                    (&mut view, w.as_ptr(), 1, k as isize),
                    (&mut rows, copy.as_ptr(), n as isize, 1),
                ] {
                    // As burn-flex calls gemm: C row-major, A row-major.
                    crate::ops::matmul::gemm_call(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b,
                        b_cs,
                        b_rs,
                        gemm::Parallelism::None,
                    );
                }
            }
            let same = view
                .iter()
                .zip(&rows)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "m {m} n {n} k {k}");
        }
    }
}
