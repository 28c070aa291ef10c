//! Training data: the built-in mixtures and series (Sines, the bundled BasicMotions), readers for
//! `N × D` CSV tables, labelled-series CSV and UEA `.ts` files, and normalisation.

mod builtin;
mod csv_table;
mod normalize;
mod series;
pub mod sines;

pub use builtin::{builtin, Mixture, BUILTIN_NAMES};
pub use csv_table::{parse_csv, read_csv};
pub use normalize::Normalizer;
pub use series::{
    is_series_header, parse_series_csv, parse_ts, read_series_csv, read_test_file, read_ts,
};

use anyhow::Result;
use std::path::Path;

/// `n` points of dimension `dim`, row-major, in the data's own units.
#[derive(Debug, Clone, Default)]
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
    /// Class index of each training row (empty when unlabelled).
    pub labels: Vec<usize>,
    /// `[channels, length]` when each row is a channel-major series.
    pub shape: Option<[usize; 2]>,
    /// Held-out rows of the same file (the `test` split), for evaluation only.
    pub test: Option<Split>,
    /// What `--data` said (a built-in name or a path), so evaluation can read the data again.
    pub source: String,
}

/// Column names of channel-major series rows: `c0_t0, …, c0_t{T-1}, c1_t0, …`.
pub fn series_columns(channels: usize, length: usize) -> Vec<String> {
    (0..channels)
        .flat_map(|c| (0..length).map(move |t| format!("c{c}_t{t}")))
        .collect()
}

/// Rows and their class indices.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub points: Vec<f32>,
    pub labels: Vec<usize>,
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

/// `--data` takes a built-in name or a path to a CSV (plain `N × D`, or labelled series when the
/// header starts `split,label` or `label`) or `.ts` file.
pub fn load(spec: &str, seed: u64) -> Result<Dataset> {
    let mut ds = load_any(spec, seed)?;
    ds.source = match BUILTIN_NAMES.contains(&spec) {
        true => spec.to_string(),
        false => std::fs::canonicalize(spec).map_or(spec.to_string(), |p| p.display().to_string()),
    };
    Ok(ds)
}

fn load_any(spec: &str, seed: u64) -> Result<Dataset> {
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
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ts"))
    {
        return read_ts(path);
    }
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot open data file {}: {e}", path.display()))?;
    parse(path, &bytes)
}

/// A data file's bytes, told apart as `load` does: `.ts` by its extension, a labelled-series CSV by
/// its header, else an `N × D` table. `path` names the file in errors; nothing else is read.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Dataset> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ts"))
    {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text ({e})", path.display()))?;
        return parse_ts(path, text);
    }
    let head = bytes
        .split(|&b| b == b'\n')
        .map(String::from_utf8_lossy)
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap_or_default();
    if is_series_header(&head) {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text ({e})", path.display()))?;
        parse_series_csv(path, text)
    } else {
        parse_csv(path, bytes)
    }
}
