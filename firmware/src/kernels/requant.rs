//! Requantization without floats: CMSIS-NN's single-rounding `arm_nn_requantize`,
//! `M = mult · 2^(shift − 31)` with `mult` in [2^30, 2^31), the exact 64-bit product rounded
//! half up once. For `shift ≤ −2` (every layer seen so far) it is the product's high word
//! (one `SMMUL`) and two shifts; larger multipliers take a 64-bit path with the same result.

/// `zp + round(acc · M)`, clamped to i8 (and at `zp` from below for ReLU). `shift` must lie in
/// −31..=30 (the `.kq8` reader refuses anything else).
#[inline(always)]
pub fn requantize(acc: i32, mult: i32, shift: i8, zp: i8, relu: bool) -> i8 {
    let lo = if relu { zp as i32 } else { -128 };
    scale(acc, mult, shift)
        .saturating_add(zp as i32)
        .clamp(lo, 127) as i8
}

/// `round(acc · mult / 2^(31 − shift))`, half up, saturated to i32.
#[inline(always)]
pub fn scale(acc: i32, mult: i32, shift: i8) -> i32 {
    let prod = acc as i64 * mult as i64;
    let shift = shift as i32;
    if shift <= -2 {
        // prod >> (30 − shift) is the high word shifted by −2 − shift (0..=29).
        let r = ((prod >> 32) as i32) >> (-2 - shift).min(31);
        (r >> 1) + (r & 1)
    } else {
        let r = prod >> (30 - shift).clamp(0, 62);
        ((r >> 1) + (r & 1)).clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
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
        assert_eq!(requantize(9, m, s, 0, false), 2);
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
