//! Flush-to-zero and denormals-are-zero for a scope of this thread's float arithmetic.
//!
//! Adam's second moment of a weight whose gradient is exactly zero (a dead ReLU unit's) decays by
//! β₂ every step until it sticks at a few ulps of the smallest subnormal (0.9 × 3·2⁻¹⁴⁹ rounds
//! back to 3·2⁻¹⁴⁹), and every later step multiplies and square-roots it through the CPU's slow
//! microcoded path. Flushed, it is zero; √v + ε is then ε, which it already was in f32.

/// Sets FTZ and DAZ while alive; restores the caller's setting when dropped.
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

impl FlushDenormals {
    #[allow(deprecated)] // `_mm_getcsr`/`_mm_setcsr`: deprecated for misuse, the one way to reach MXCSR
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: reading and writing MXCSR's FTZ and DAZ bits changes only how this thread
            // rounds subnormal floats; the previous value is restored on drop.
            let saved = unsafe { std::arch::x86_64::_mm_getcsr() };
            unsafe { std::arch::x86_64::_mm_setcsr(saved | FTZ_DAZ) };
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for FlushDenormals {
    #[allow(deprecated)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the value read in `new`.
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::FlushDenormals;
    use std::hint::black_box;

    #[test]
    fn subnormals_flush_inside_the_scope_and_not_after() {
        let tiny = f32::MIN_POSITIVE;
        {
            let _flush = FlushDenormals::new();
            if cfg!(target_arch = "x86_64") {
                assert_eq!(black_box(tiny) / black_box(2.0), 0.0);
            }
        }
        assert!((black_box(tiny) / black_box(2.0)).is_subnormal());
    }
}
