//! Requantization without floats: the CMSIS-NN single-rounding scheme, `acc · M` with
//! `M = mult · 2^(shift − 31)`, rounded half up. Identical on every target.

/// `zp + round(acc · mult / 2^(31 − shift))`, clamped to i8; ReLU clamps at `zp` from below.
/// `shift` must lie in −31..=30 (the `.kq8` reader refuses anything else).
#[inline(always)]
pub fn requantize(acc: i32, mult: i32, shift: i8, zp: i8, relu: bool) -> i8 {
    let total = (31 - shift as i32).clamp(1, 62) as u32;
    let v = ((acc as i64 * mult as i64) + (1i64 << (total - 1))) >> total;
    let lo = if relu { zp as i64 } else { -128 };
    (v + zp as i64).clamp(lo, 127) as i8
}

/// `(mult, shift)` with `mult · 2^(shift − 31) ≈ m`, `mult` in [2^30, 2^31): frexp as CMSIS-NN and
/// TFLite do it. Host only (the quantizer); a multiplier too small to represent becomes 0.
pub fn quantize_multiplier(m: f64) -> (i32, i8) {
    if m.is_nan() || m <= 0.0 || m.is_infinite() {
        return (0, 0);
    }
    let mut exp = 0i32;
    let mut frac = m;
    while frac >= 1.0 {
        frac /= 2.0;
        exp += 1;
    }
    while frac < 0.5 {
        frac *= 2.0;
        exp -= 1;
    }
    let mut q = (frac * (1u64 << 31) as f64 + 0.5) as i64; // frac > 0: round half up
    if q == 1i64 << 31 {
        q /= 2;
        exp += 1;
    }
    if exp < -31 {
        return (0, 0);
    }
    (q as i32, exp.min(30) as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplier_round_trips() {
        for &m in &[0.5, 0.75, 1.0, 1.9, 3.0e-3, 1.7e-6, 123.4] {
            let (q, s) = quantize_multiplier(m);
            let back = q as f64 * 2f64.powi(s as i32 - 31);
            assert!((back / m - 1.0).abs() < 1e-9, "{m}: {back}");
            assert!((1 << 30..=i32::MAX).contains(&q));
        }
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(1e-12), (0, 0));
    }

    #[test]
    fn requantize_rounds_and_clamps() {
        let (m, s) = quantize_multiplier(0.25);
        assert_eq!(requantize(10, m, s, 0, false), 3); // 2.5 rounds half up
        assert_eq!(requantize(-10, m, s, 0, false), -2); // −2.5 rounds half up
        assert_eq!(requantize(1000, m, s, 5, false), 127);
        assert_eq!(requantize(-1000, m, s, 5, false), -128);
        assert_eq!(requantize(-40, m, s, -100, true), -100); // ReLU: clamp at the zero point
        let (m, s) = quantize_multiplier(0.0123);
        for acc in [-100_000, -77, 0, 3, 5_000, 123_456] {
            let want = (acc as f64 * 0.0123).round().clamp(-128.0, 127.0) as i8;
            assert!(
                (requantize(acc, m, s, 0, false) as i32 - want as i32).abs() <= 1,
                "{acc}"
            );
        }
    }
}
