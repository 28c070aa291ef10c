//! Standardisation fitted on the training data only; the model trains in normalised units.
//! Per column for `N × D` tables, per channel for series (one mean and std over every step).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Normalizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Consecutive values that share one entry: 1 for tables, the series length for series.
    #[serde(default = "one")]
    pub span: usize,
}

fn one() -> usize {
    1
}

impl Normalizer {
    /// Per channel for series, per column for tables.
    pub fn fit_dataset(d: &super::Dataset) -> Self {
        match d.shape {
            Some([c, t]) => Self::fit_series(&d.points, c, t),
            None => Self::fit(&d.points, d.dim),
        }
    }

    /// Per channel of channel-major series rows `[channels × length]`.
    pub fn fit_series(points: &[f32], channels: usize, length: usize) -> Self {
        // A series of C channels is, per channel, just more rows of one column.
        let n = points.len() / (channels * length);
        let mut per_channel = vec![Vec::with_capacity(n * length); channels];
        for (i, &v) in points.iter().enumerate() {
            per_channel[(i / length) % channels].push(v);
        }
        let mut mean = Vec::new();
        let mut std = Vec::new();
        for c in per_channel {
            let f = Self::fit(&c, 1);
            mean.push(f.mean[0]);
            std.push(f.std[0]);
        }
        Self {
            mean,
            std,
            span: length,
        }
    }

    /// Column (or channel) of flat index `i`.
    fn entry(&self, i: usize) -> usize {
        (i / self.span) % self.mean.len()
    }

    pub fn fit(points: &[f32], dim: usize) -> Self {
        let n = (points.len() / dim) as f64;
        let mut mean = vec![0.0; dim];
        for row in points.chunks(dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; dim];
        for row in points.chunks(dim) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        // A constant column keeps unit scale rather than dividing by zero.
        let std = var
            .iter()
            .map(|s| (s / n).sqrt())
            .map(|s| if s > 1e-12 { s } else { 1.0 })
            .collect();
        Self { mean, std, span: 1 }
    }

    pub fn forward(&self, points: &[f32]) -> Vec<f32> {
        points
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = self.entry(i);
                ((v as f64 - self.mean[c]) / self.std[c]) as f32
            })
            .collect()
    }

    pub fn inverse(&self, points: &[f32]) -> Vec<f32> {
        points
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = self.entry(i);
                (v as f64 * self.std[c] + self.mean[c]) as f32
            })
            .collect()
    }
}
