//! Keel patch: element-wise loops compiled for the CPU's widest vectors.
//!
//! burn-flex builds for the baseline target (SSE2 on x86_64), so a loop such as ReLU or a bias add
//! ran four floats at a time on a CPU with AVX-512. `run` calls its closure through `pulp`'s
//! dispatcher, which picks a copy compiled with AVX-512 or AVX2 (+FMA) at run time; the closure is
//! inlined into that copy. Each element still gets the same IEEE operations (no reassociation, and
//! no contraction into FMA: Rust never fuses `a * b + c` by itself), so results are bit-identical.

/// `f()`, compiled for the widest instruction set this CPU has.
#[inline(always)]
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "std")]
    {
        struct Call<F>(F);
        impl<R, F: FnOnce() -> R> pulp::WithSimd for Call<F> {
            type Output = R;
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _: S) -> R {
                (self.0)()
            }
        }
        pulp::Arch::new().dispatch(Call(f))
    }
    #[cfg(not(feature = "std"))]
    f()
}
