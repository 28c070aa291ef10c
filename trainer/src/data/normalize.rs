//! Per-column standardisation, fitted on the training data; the model trains in normalised units.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Normalizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Normalizer {
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
        Self { mean, std }
    }

    pub fn forward(&self, points: &[f32]) -> Vec<f32> {
        let dim = self.mean.len();
        points
            .iter()
            .enumerate()
            .map(|(i, &v)| ((v as f64 - self.mean[i % dim]) / self.std[i % dim]) as f32)
            .collect()
    }

    pub fn inverse(&self, points: &[f32]) -> Vec<f32> {
        let dim = self.mean.len();
        points
            .iter()
            .enumerate()
            .map(|(i, &v)| (v as f64 * self.std[i % dim] + self.mean[i % dim]) as f32)
            .collect()
    }
}
