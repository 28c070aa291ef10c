//! Mode coverage of 2-D samples against a known mixture (the VEEGAN / PacGAN protocol that
//! training reports): nearest mode, high quality within 3 std, a mode captured with ≥ 1 HQ sample.

use crate::meta::Modes;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModeScore {
    pub modes: usize,
    pub total: usize,
    pub hq_pct: f64,
}

/// `points` are 2-D, row-major, in real units.
pub fn mode_score(points: &[f32], m: &Modes) -> ModeScore {
    let mut captured = vec![false; m.centres.len()];
    let mut hq = 0usize;
    for p in points.chunks_exact(2) {
        let d2 = |c: &[f64; 2]| (p[0] as f64 - c[0]).powi(2) + (p[1] as f64 - c[1]).powi(2);
        let nearest =
            (0..m.centres.len()).min_by(|&a, &b| d2(&m.centres[a]).total_cmp(&d2(&m.centres[b])));
        if let Some(k) = nearest.filter(|&k| d2(&m.centres[k]).sqrt() <= 3.0 * m.std) {
            captured[k] = true;
            hq += 1;
        }
    }
    ModeScore {
        modes: captured.iter().filter(|&&c| c).count(),
        total: m.centres.len(),
        hq_pct: 100.0 * hq as f64 / (points.len() / 2).max(1) as f64,
    }
}
