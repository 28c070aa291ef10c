//! How close the CPU backend's matrix products come to what this core can do, on the largest
//! products of a series step (docs/benchmarks.md, "The matmul ceiling"). Per shape, alternated in
//! one invocation:
//! - `gemm`: the `gemm` crate called as burn-flex calls it (row-major, one thread, C written once),
//!   its operands rotating through 16 copies (4 MB and more, past the 2 MB L2), as a training
//!   step's weights do between their uses;
//! - `gemm, hot`: the same with one copy, so the operands stay in the caches;
//! - `hand`: a hand-written AVX-512 product (6 × 64 register tiles, each element one FMA chain over
//!   k in order, the chain gemm runs) on the rotating copies; its results are compared with gemm's
//!   bit for bit;
//! - `peak`: 24 independent FMA chains and no memory at all: what no product can pass.
//!
//! Then how many of burn-flex's own buffers start on a 64-byte boundary, and the time of a whole
//! series step's products through burn-flex with nothing else between them.
//!
//! Buffers start on a 64-byte boundary, as burn-flex's do; `OFFSET` floats moves every one off it.
//!
//! `cargo run --release -p keel-trainer --example matmul_ceiling [-- ROUNDS [OFFSET]]`

// Everything but `main` measures AVX-512 code: elsewhere it is compiled and not called.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::time::Instant;

// `keel`'s allocator, so burn-flex's buffers are placed as in a training run (glibc's put large
// ones 16 bytes past a page boundary).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// (m, k, n): C (m × n) = X (m × k) · W (k × n), the series step's biggest products (batch 64,
/// or real and fake together, 128; layers 256 wide; 6 × 100 = 600 values a window).
const SHAPES: [(usize, usize, usize); 5] = [
    (64, 256, 256),
    (64, 256, 600),
    (64, 600, 256),
    (128, 256, 256),
    (128, 600, 256),
];
/// Every 2-D product of one series step, in order: (m, k, n, then the row and column strides of
/// the left and the right operand; a column stride of 1 is row-major). D's update (G's forward,
/// D's forward on real and fake together, R1's input gradient, the backward pass), then G's.
/// Logged around burn-flex's `matmul_2d_strided` in a BasicMotions run.
const STEP: [(usize, usize, usize, usize, usize, usize, usize); 46] = [
    (64, 36, 256, 36, 1, 256, 1),
    (64, 256, 256, 256, 1, 256, 1),
    (64, 256, 256, 256, 1, 256, 1),
    (64, 256, 600, 256, 1, 600, 1),
    (128, 600, 256, 600, 1, 256, 1),
    (128, 256, 256, 256, 1, 256, 1),
    (128, 256, 256, 256, 1, 256, 1),
    (128, 4, 256, 4, 1, 256, 1),
    (128, 256, 1, 256, 1, 1, 1),
    (64, 256, 256, 256, 1, 1, 256),
    (64, 256, 256, 256, 1, 1, 256),
    (64, 256, 600, 256, 1, 1, 256),
    (128, 1, 256, 1, 1, 1, 1),
    (256, 128, 1, 1, 256, 1, 1),
    (128, 256, 256, 256, 1, 1, 256),
    (256, 128, 256, 1, 256, 256, 1),
    (64, 600, 256, 600, 1, 256, 1),
    (256, 64, 600, 1, 256, 600, 1),
    (64, 256, 256, 256, 1, 256, 1),
    (256, 64, 256, 1, 256, 256, 1),
    (128, 256, 256, 256, 1, 1, 256),
    (256, 128, 256, 1, 256, 256, 1),
    (64, 256, 256, 256, 1, 256, 1),
    (256, 64, 256, 1, 256, 256, 1),
    (4, 128, 256, 1, 4, 256, 1),
    (600, 128, 256, 1, 600, 256, 1),
    (64, 36, 256, 36, 1, 256, 1),
    (64, 256, 256, 256, 1, 256, 1),
    (64, 256, 256, 256, 1, 256, 1),
    (64, 256, 600, 256, 1, 600, 1),
    (64, 600, 256, 600, 1, 256, 1),
    (64, 256, 256, 256, 1, 256, 1),
    (64, 256, 256, 256, 1, 256, 1),
    (64, 4, 256, 4, 1, 256, 1),
    (64, 256, 1, 256, 1, 1, 1),
    (64, 1, 256, 1, 1, 1, 1),
    (64, 256, 256, 256, 1, 1, 256),
    (64, 256, 256, 256, 1, 1, 256),
    (64, 256, 600, 256, 1, 1, 256),
    (64, 600, 256, 600, 1, 1, 600),
    (256, 64, 600, 1, 256, 600, 1),
    (64, 256, 256, 256, 1, 1, 256),
    (256, 64, 256, 1, 256, 256, 1),
    (64, 256, 256, 256, 1, 1, 256),
    (256, 64, 256, 1, 256, 256, 1),
    (36, 64, 256, 1, 36, 256, 1),
];
const COPIES: usize = 16;
/// Multiply-adds per timed measurement (~0.1 s at this core's rates).
const WORK: f64 = 8e9;

fn main() {
    let arg = |i: usize, default: usize| -> usize {
        std::env::args()
            .nth(i)
            .map(|s| s.parse().expect("ROUNDS and OFFSET are whole numbers"))
            .unwrap_or(default)
    };
    let (rounds, offset) = (arg(1, 3).max(1), arg(2, 0));
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // As the trainer sets it: a column-major left operand is read where it lies.
        gemm::set_lhs_packing_threshold_single_thread(256);
        println!("| m × k × n | gemm | gemm, hot | hand | FMA peak | gemm / hand | gemm / hot | gemm / peak | same bits |");
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for (m, k, n) in SHAPES {
            shape(m, k, n, rounds, offset);
        }
        println!("\nG multiply-adds per second, medians of {rounds} alternating rounds, one thread; buffers {} bytes past a 64-byte boundary.", offset * 4 % 64);
        let (aligned, all) = flex_alignment();
        println!(
            "burn-flex's own buffers at these sizes: {aligned} of {all} on a 64-byte boundary."
        );
        // One thread, as `keel train --threads 1` runs: burn-flex splits products over a larger pool.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a one-thread pool");
        let (ms, rate) = one.install(|| step_products(200 * rounds));
        println!("A series step's 46 products through burn-flex, back to back: {ms:.3} ms, {rate:.1} G multiply-adds/s.");
        return;
    }
    println!("This comparison needs an x86-64 CPU with AVX-512.");
}

/// `len` floats from `offset` floats past a 64-byte boundary.
struct Buf {
    lines: Vec<Line>,
    offset: usize,
    len: usize,
}

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([f32; 16]);

impl Buf {
    fn new(values: &[f32], offset: usize) -> Self {
        let mut b = Self {
            lines: vec![Line([0.0; 16]); (offset + values.len()).div_ceil(16)],
            offset,
            len: values.len(),
        };
        b.as_mut().copy_from_slice(values);
        b
    }

    fn as_ref(&self) -> &[f32] {
        // SAFETY: `lines` holds at least offset + len floats; Line is 16 f32 and nothing else.
        unsafe {
            std::slice::from_raw_parts(
                (self.lines.as_ptr() as *const f32).add(self.offset),
                self.len,
            )
        }
    }

    fn as_mut(&mut self) -> &mut [f32] {
        // SAFETY: as above, borrowed mutably.
        unsafe {
            std::slice::from_raw_parts_mut(
                (self.lines.as_mut_ptr() as *mut f32).add(self.offset),
                self.len,
            )
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn shape(m: usize, k: usize, n: usize, rounds: usize, offset: usize) {
    let fill = |len: usize, seed: usize| -> Buf {
        let v: Vec<f32> = (0..len)
            .map(|i| ((i * 2_654_435_761 + seed * 97) % 1999) as f32 / 999.5 - 1.0)
            .collect();
        Buf::new(&v, offset)
    };
    let xs: Vec<Buf> = (0..COPIES).map(|c| fill(m * k, c)).collect();
    let ws: Vec<Buf> = (0..COPIES).map(|c| fill(k * n, c + 1000)).collect();
    let zeros = vec![0f32; m * n];
    let (mut c1, mut c2) = (Buf::new(&zeros, offset), Buf::new(&zeros, offset));
    gemm_product(xs[0].as_ref(), ws[0].as_ref(), c1.as_mut(), m, k, n);
    // SAFETY: AVX-512F was detected by the caller.
    unsafe { hand_product(xs[0].as_ref(), ws[0].as_ref(), c2.as_mut(), m, k, n) };
    let same = c1
        .as_ref()
        .iter()
        .zip(c2.as_ref())
        .all(|(a, b)| a.to_bits() == b.to_bits());

    let reps = (WORK / (m * k * n) as f64).ceil() as usize;
    let macs = (m * k * n * reps) as f64;
    let time = |copies: usize, f: &mut dyn FnMut(usize)| {
        let t = Instant::now();
        for r in 0..reps {
            f(r % copies);
        }
        macs / t.elapsed().as_secs_f64() / 1e9
    };
    let (mut g, mut hot, mut h, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut gemm =
            |i: usize| gemm_product(xs[i].as_ref(), ws[i].as_ref(), c1.as_mut(), m, k, n);
        g.push(time(COPIES, &mut gemm));
        hot.push(time(1, &mut gemm));
        // SAFETY: as above.
        h.push(time(COPIES, &mut |i| unsafe {
            hand_product(xs[i].as_ref(), ws[i].as_ref(), c2.as_mut(), m, k, n)
        }));
        // SAFETY: as above.
        p.push(unsafe { fma_peak(WORK) });
    }
    let (g, hot, h, p) = (median(g), median(hot), median(h), median(p));
    println!(
        "| {m} × {k} × {n} | {g:.1} | {hot:.1} | {h:.1} | {p:.1} | {:.2} | {:.2} | {:.2} | {} |",
        g / h,
        g / hot,
        g / p,
        if same { "yes" } else { "no" }
    );
}

/// How many of burn-flex's buffers start on a 64-byte boundary: fresh tensors, products and
/// element-wise results at the shapes above, as a step makes them.
fn flex_alignment() -> (usize, usize) {
    use burn::backend::Flex;
    use burn::tensor::{Device, Distribution, Tensor};
    let device = Device::flex();
    let at = |t: &Tensor<2>| -> usize {
        let f = t
            .clone()
            .try_into_primitive::<Flex>()
            .expect("a tensor on the flex device is a flex tensor");
        f.storage::<f32>().as_ptr() as usize % 64
    };
    let mut offsets = Vec::new();
    for (m, k, n) in SHAPES {
        for _ in 0..4 {
            let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
            let c = x.clone().matmul(w);
            let d = c.clone().mul(c.clone());
            offsets.extend([at(&x), at(&c), at(&d), at(&(d + 1.0))]);
        }
    }
    (offsets.iter().filter(|&&o| o == 0).count(), offsets.len())
}

/// Milliseconds and G multiply-adds per second of `STEP`'s products through burn-flex (its own
/// transposes and allocation included), with nothing else between them: each operand is made once
/// per shape and layout and reused, as a step reuses its weights.
fn step_products(steps: usize) -> (f64, f64) {
    use burn::tensor::{Device, Distribution, Tensor};
    let device = Device::flex();
    let mut made = std::collections::HashMap::new();
    let mut operand = |rows: usize, cols: usize, rs: usize, cs: usize| -> Tensor<2> {
        made.entry((rows, cols, rs, cs))
            .or_insert_with(|| {
                let normal = Distribution::Normal(0.0, 1.0);
                if cs == 1 || rows == 1 || (cols == 1 && rs == 1) {
                    Tensor::<2>::random([rows, cols], normal, &device)
                } else {
                    // Column-major: the transpose of a row-major [cols, rows].
                    Tensor::<2>::random([cols, rows], normal, &device).transpose()
                }
            })
            .clone()
    };
    let pairs: Vec<(Tensor<2>, Tensor<2>)> = STEP
        .iter()
        .map(|&(m, k, n, a, b, c, d)| (operand(m, k, a, b), operand(k, n, c, d)))
        .collect();
    let run = |times: usize| {
        for _ in 0..times {
            for (l, r) in &pairs {
                std::hint::black_box(l.clone().matmul(r.clone()));
            }
        }
    };
    run(20);
    let t = Instant::now();
    run(steps);
    let secs = t.elapsed().as_secs_f64() / steps as f64;
    let macs: usize = STEP.iter().map(|&(m, k, n, ..)| m * k * n).sum();
    (secs * 1e3, macs as f64 / secs / 1e9)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// burn-flex's 2-D row-major product: columns past the last multiple of 16 go in a gemm call of
/// their own (its patch in `gemm_columns`), C is not read.
fn gemm_product(x: &[f32], w: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    let whole = n / 16 * 16;
    let parts: &[(usize, usize)] = if n > 16 && whole != n && k <= 512 {
        &[(0, whole), (whole, n - whole)]
    } else {
        &[(0, n)]
    };
    for &(col, cols) in parts {
        // SAFETY: C is m × n, X m × k, W k × n, all row-major and of those lengths.
        unsafe {
            gemm::gemm(
                m,
                cols,
                k,
                c.as_mut_ptr().add(col),
                1,
                n as isize,
                false,
                x.as_ptr(),
                1,
                k as isize,
                w.as_ptr().add(col),
                1,
                n as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

/// k-steps per block: every row tile of X passes over a 256 × 64 panel of W read in place (64 KB,
/// from the L2). Blocks of 128 with the panel first copied together, to stay in the 48 KB L1, were
/// no faster.
const KB: usize = 256;

/// C = X · W, 6 rows × 64 columns of C in 24 registers. Each element is one FMA chain over k in
/// order, from zero; between k-blocks the partial sum waits in C, exactly (an f32 stored and
/// loaded back is the same f32), so blocking does not change a bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn hand_product(x: &[f32], w: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(x.len() >= m * k && w.len() >= k * n && c.len() >= m * n);
    for j0 in (0..n).step_by(64) {
        let width = (n - j0).min(64);
        let masks: [__mmask16; 4] = std::array::from_fn(|q| {
            let lanes = width.saturating_sub(16 * q).min(16);
            ((1u32 << lanes) - 1) as __mmask16
        });
        for k0 in (0..k).step_by(KB) {
            let steps = (k - k0).min(KB);
            let t = Tile {
                w: w.as_ptr().add(k0 * n + j0),
                ldw: n,
                steps,
                masks,
                full: width == 64,
                first: k0 == 0,
            };
            for i0 in (0..m).step_by(6) {
                let x0 = x.as_ptr().add(i0 * k + k0);
                let c0 = c.as_mut_ptr().add(i0 * n + j0);
                match (m - i0).min(6) {
                    6 => t.run::<6>(x0, k, c0, n),
                    5 => t.run::<5>(x0, k, c0, n),
                    4 => t.run::<4>(x0, k, c0, n),
                    3 => t.run::<3>(x0, k, c0, n),
                    2 => t.run::<2>(x0, k, c0, n),
                    _ => t.run::<1>(x0, k, c0, n),
                }
            }
        }
    }
}

/// A k-block of up to 64 columns of W: `masks` leave out the columns past n.
#[cfg(target_arch = "x86_64")]
struct Tile {
    w: *const f32,
    ldw: usize,
    steps: usize,
    masks: [__mmask16; 4],
    /// All 64 columns: plain loads.
    full: bool,
    first: bool,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// R rows of C (row stride `ldc`) from R rows of X (row stride `ldx`), over this k-block.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run<const R: usize>(&self, x: *const f32, ldx: usize, c: *mut f32, ldc: usize) {
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        if !self.first {
            for (r, row) in acc.iter_mut().enumerate() {
                for (q, a) in row.iter_mut().enumerate() {
                    *a = _mm512_maskz_loadu_ps(self.masks[q], c.add(r * ldc + 16 * q));
                }
            }
        }
        // Opaque, so each row is addressed from a register of its own: seen as multiples of ldx
        // they are rebuilt by an add before every broadcast.
        let rows: [usize; R] = std::hint::black_box(std::array::from_fn(|r| r * ldx));
        for s in 0..self.steps {
            let wp = self.w.add(s * self.ldw);
            let wv: [__m512; 4] = std::array::from_fn(|q| {
                if self.full {
                    _mm512_loadu_ps(wp.add(16 * q))
                } else {
                    _mm512_maskz_loadu_ps(self.masks[q], wp.add(16 * q))
                }
            });
            let xs = x.add(s);
            for (row, &off) in acc.iter_mut().zip(&rows) {
                let b = _mm512_set1_ps(*xs.add(off));
                for (a, &v) in row.iter_mut().zip(&wv) {
                    *a = _mm512_fmadd_ps(v, b, *a);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (q, &a) in row.iter().enumerate() {
                _mm512_mask_storeu_ps(c.add(r * ldc + 16 * q), self.masks[q], a);
            }
        }
    }
}

/// G multiply-adds per second of 24 independent 16-lane FMA chains (two FMA units, latency 4:
/// 8 chains would do; 24 match the kernels' register use).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_peak(work: f64) -> f64 {
    let iters = (work / (24.0 * 16.0)) as usize;
    let mut acc: [__m512; 24] = std::array::from_fn(|i| _mm512_set1_ps(i as f32 * 1e-3));
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let t = Instant::now();
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let rate = (iters * 24 * 16) as f64 / t.elapsed().as_secs_f64() / 1e9;
    std::hint::black_box(acc);
    rate
}
