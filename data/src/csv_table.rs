//! `N × D` numeric CSV: one sample per row, an optional header row.

use super::Dataset;
use anyhow::{bail, Context, Result};
use std::path::Path;

pub fn read_csv(path: &Path) -> Result<Dataset> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot open data file {}", path.display()))?;
    parse_csv(path, &bytes)
}

/// The CSV bytes of `path` (named in errors).
pub fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Dataset> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let mut dim = 0usize;
    let mut points = Vec::new();
    let mut first = true;
    let mut header: Option<Vec<String>> = None;
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: unreadable CSV", path.display()))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        // A first row with no number in it is a header.
        if first && record.iter().all(|f| f.trim().parse::<f64>().is_err()) {
            first = false;
            header = Some(record.iter().map(|f| f.trim().to_string()).collect());
            continue;
        }
        first = false;
        if dim == 0 {
            dim = record.len();
        } else if record.len() != dim {
            bail!(
                "{}:{line}: expected {dim} columns (as in the first data row), found {}",
                path.display(),
                record.len()
            );
        }
        for (col, field) in record.iter().enumerate() {
            let v: f32 = field.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "{}:{line}: column {}: `{}` is not a number",
                    path.display(),
                    col + 1,
                    field.trim()
                )
            })?;
            if !v.is_finite() {
                bail!(
                    "{}:{line}: column {}: `{}` is not finite (NaN/Inf are not allowed in data)",
                    path.display(),
                    col + 1,
                    field.trim()
                );
            }
            points.push(v);
        }
    }
    if points.is_empty() {
        bail!("{}: no data rows", path.display());
    }
    if points.len() / dim < 2 {
        bail!("{}: needs at least 2 data rows, found 1", path.display());
    }
    let columns = match header {
        Some(h) if h.len() == dim => h,
        _ => (0..dim).map(|i| format!("c{i}")).collect(),
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "csv".into());
    Ok(Dataset {
        name,
        dim,
        points,
        columns,
        ..Default::default()
    })
}
