//! Training data: the built-in mixtures, a CSV reader for `N × D` tables, and normalisation.

mod builtin;
mod csv_table;
mod normalize;

pub use builtin::{builtin, Mixture, BUILTIN_NAMES};
pub use csv_table::read_csv;
pub use normalize::Normalizer;

use anyhow::Result;
use std::path::Path;

/// `n` points of dimension `dim`, row-major, in the data's own units.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub dim: usize,
    pub points: Vec<f32>,
    /// Column names, one per dimension (from a CSV header, else `c0`, `c1`, …).
    pub columns: Vec<String>,
    /// Class names of a labelled dataset; empty when unlabelled.
    pub classes: Vec<String>,
    /// The generating mixture, when the dataset knows its modes (built-in sets).
    pub mixture: Option<Mixture>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.points.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.points[i * self.dim..(i + 1) * self.dim]
    }
}

/// `--data` takes a built-in name or a path to a CSV file.
pub fn load(spec: &str, seed: u64) -> Result<Dataset> {
    if let Some(ds) = builtin(spec, seed) {
        return Ok(ds);
    }
    let path = Path::new(spec);
    if !path.exists() {
        anyhow::bail!(
            "unknown dataset `{spec}`: not a built-in ({}) and no such file",
            BUILTIN_NAMES.join(", ")
        );
    }
    read_csv(path)
}
