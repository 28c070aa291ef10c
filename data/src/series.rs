//! Labelled multichannel series: Keel's CSV (`split,label,c0_t0,…`, channel-major, one sample per
//! row) and the `.ts` files of the UEA/UCR archive (equal-length series). Every error names the file,
//! the line and the field, and nothing is returned half-read.

use super::{Dataset, Split};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// One labelled sample as read: its split, label, values (channel-major) and source line.
struct Row {
    train: bool,
    label: String,
    values: Vec<f32>,
    line: u64,
}

fn number(path: &Path, line: u64, field: &str, text: &str) -> Result<f32> {
    let t = text.trim();
    let v: f32 = t.parse().map_err(|_| {
        anyhow!(
            "{}:{line}: field `{field}`: `{t}` is not a number",
            path.display()
        )
    })?;
    if !v.is_finite() {
        bail!(
            "{}:{line}: field `{field}`: `{t}` is not finite (NaN/Inf are not allowed in data)",
            path.display()
        );
    }
    Ok(v)
}

/// `cK_tJ` → (K, J).
fn channel_step(name: &str) -> Option<(usize, usize)> {
    let (c, t) = name.strip_prefix('c')?.split_once("_t")?;
    Some((c.parse().ok()?, t.parse().ok()?))
}

/// Whether a CSV header row announces labelled series (`split,label,…`, or `label,…` / `class,…`
/// as `keel-run generate` writes them).
pub fn is_series_header(first_line: &str) -> bool {
    let first = first_line
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(first.as_str(), "split" | "label" | "class")
}

fn is_label_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("label") || name.eq_ignore_ascii_case("class")
}

/// Reads a labelled-series CSV. `split` may be absent (every row is training data).
pub fn read_series_csv(path: &Path) -> Result<Dataset> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot open data file {}", path.display()))?;
    parse_series_csv(path, &text)
}

/// The CSV text of `path` (named in errors).
pub fn parse_series_csv(path: &Path, text: &str) -> Result<Dataset> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            Some(r) => {
                let r = r.with_context(|| format!("{}: unreadable CSV", path.display()))?;
                if r.iter().any(|f| !f.trim().is_empty()) {
                    break r;
                }
            }
            None => bail!("{}: empty file (no header row)", path.display()),
        }
    };
    let header_line = header.position().map_or(1, |p| p.line());
    let names: Vec<String> = header.iter().map(|f| f.trim().to_string()).collect();
    let has_split = names
        .first()
        .is_some_and(|n| n.eq_ignore_ascii_case("split"));
    let label_col = usize::from(has_split);
    if !names.get(label_col).is_some_and(|n| is_label_name(n)) {
        bail!(
            "{}:{header_line}: no `label` column: a labelled series CSV starts `split,label,c0_t0,…` (or `label,c0_t0,…`), found `{}`",
            path.display(),
            names.iter().take(3).cloned().collect::<Vec<_>>().join(",")
        );
    }
    let first = label_col + 1;
    let value_names = &names[first..];
    let (channels, length) = series_shape(path, header_line, value_names)?;
    let width = first + channels * length;

    let mut rows = Vec::new();
    for record in records {
        let record = record.with_context(|| format!("{}: unreadable CSV", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != width {
            bail!(
                "{}:{line}: expected {width} fields ({}label and {channels}×{length} values, as in the header), found {}: every series must have the same length",
                path.display(),
                if has_split { "split, " } else { "" },
                record.len()
            );
        }
        let train = if has_split {
            match record[0].trim().to_ascii_lowercase().as_str() {
                "train" => true,
                "test" => false,
                other => bail!(
                    "{}:{line}: field `split`: `{other}` is neither `train` nor `test`",
                    path.display()
                ),
            }
        } else {
            true
        };
        let label = record[label_col].trim().to_string();
        if label.is_empty() {
            bail!("{}:{line}: field `label` is empty", path.display());
        }
        let values = record
            .iter()
            .skip(first)
            .zip(value_names)
            .map(|(f, name)| number(path, line, name, f))
            .collect::<Result<Vec<f32>>>()?;
        rows.push(Row {
            train,
            label,
            values,
            line,
        });
    }
    assemble(path, rows, channels, length, value_names.to_vec())
}

/// C and T from `cK_tJ` names, which must be complete and channel-major.
fn series_shape(path: &Path, line: u64, names: &[String]) -> Result<(usize, usize)> {
    if names.is_empty() {
        bail!("{}:{line}: no value columns after `label`", path.display());
    }
    let parsed: Vec<(usize, usize)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            channel_step(n).ok_or_else(|| {
                anyhow!(
                    "{}:{line}: column {}: `{n}` is not a series column name `cK_tJ` (channel K, step J)",
                    path.display(),
                    i + 3
                )
            })
        })
        .collect::<Result<_>>()?;
    let channels = parsed.iter().map(|p| p.0).max().unwrap_or(0) + 1;
    if !names.len().is_multiple_of(channels) {
        bail!(
            "{}:{line}: {} value columns do not split into {channels} channels of equal length",
            path.display(),
            names.len()
        );
    }
    let length = names.len() / channels;
    for (i, &(c, t)) in parsed.iter().enumerate() {
        if (c, t) != (i / length, i % length) {
            bail!(
                "{}:{line}: column `{}` is out of place: expected `c{}_t{}` (values are channel-major: all steps of c0, then c1, …)",
                path.display(),
                names[i],
                i / length,
                i % length
            );
        }
    }
    Ok((channels, length))
}

/// Reads a UEA/UCR `.ts` file. A sibling `…_TEST.ts` of a `…_TRAIN.ts` becomes the test split.
pub fn read_ts(path: &Path) -> Result<Dataset> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot open data file {}", p.display()))
    };
    let train = read(path)?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let test_path = stem
        .as_deref()
        .and_then(|s| s.strip_suffix("_TRAIN"))
        .map(|base| path.with_file_name(format!("{base}_TEST.ts")))
        .filter(|t| t.exists());
    match test_path {
        Some(t) => parse_ts_pair(path, &train, Some((&t, &read(&t)?))),
        None => parse_ts_pair(path, &train, None),
    }
}

/// A `.ts` training text (named `path` in errors and in the dataset's name, less `_TRAIN`) and,
/// when given, its test text: one dataset whose test split is the second file.
pub fn parse_ts_pair(path: &Path, train: &str, test: Option<(&Path, &str)>) -> Result<Dataset> {
    let (mut rows, shape) = ts_rows(path, train, true)?;
    if let Some((test, text)) = test {
        let (test_rows, test_shape) = ts_rows(test, text, false)?;
        if test_shape != shape {
            bail!(
                "{}: series are {}×{}, the training file's are {}×{}",
                test.display(),
                test_shape.0,
                test_shape.1,
                shape.0,
                shape.1
            );
        }
        rows.extend(test_rows);
    }
    let (channels, length) = shape;
    let names = super::series_columns(channels, length);
    assemble(path, rows, channels, length, names)
}

/// The `.ts` text of `path` (named in errors), without looking for a sibling test file.
pub fn parse_ts(path: &Path, text: &str) -> Result<Dataset> {
    parse_ts_pair(path, text, None)
}

fn ts_rows(path: &Path, text: &str, train: bool) -> Result<(Vec<Row>, (usize, usize))> {
    let mut in_data = false;
    let mut declared: BTreeMap<String, String> = BTreeMap::new();
    let mut shape: Option<(usize, usize)> = None;
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if !in_data {
            in_data = ts_header_line(path, line, l, &mut declared)?;
            continue;
        }
        let (row, s) = ts_data_line(path, line, l, train)?;
        match shape {
            None => shape = Some(s),
            Some(prev) if prev != s => bail!(
                "{}:{line}: {} dimensions × {} steps, earlier lines have {} × {}: series of unequal length or dimension",
                path.display(),
                s.0,
                s.1,
                prev.0,
                prev.1
            ),
            _ => {}
        }
        rows.push(row);
    }
    if !in_data {
        bail!("{}: no `@data` line: not a .ts file", path.display());
    }
    let Some(shape) = shape else {
        bail!("{}: no data after @data", path.display());
    };
    Ok((rows, shape))
}

/// One `@key value` line before the data, recorded in `declared`; true at `@data`, after checking
/// that the declared series are labelled and of equal length.
fn ts_header_line(
    path: &Path,
    line: u64,
    l: &str,
    declared: &mut BTreeMap<String, String>,
) -> Result<bool> {
    let Some(tag) = l.strip_prefix('@') else {
        bail!(
            "{}:{line}: expected an `@` header line or `@data` before the data",
            path.display()
        );
    };
    let (key, value) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
    let key = key.to_ascii_lowercase();
    if key != "data" {
        declared.insert(key, value.trim().to_ascii_lowercase());
        return Ok(false);
    }
    if declared
        .get("classlabel")
        .is_some_and(|v| v.starts_with("false"))
    {
        bail!(
            "{}:{line}: `@classLabel false`: Keel trains class-conditional models and needs labelled series",
            path.display()
        );
    }
    if declared.get("equallength").is_some_and(|v| v == "false") {
        bail!(
            "{}:{line}: `@equalLength false`: Keel needs series of equal length (resample them first)",
            path.display()
        );
    }
    Ok(true)
}

/// One data line `dim0:dim1:…:label` (comma-separated values per dimension) and its
/// (dimensions, length).
fn ts_data_line(path: &Path, line: u64, l: &str, train: bool) -> Result<(Row, (usize, usize))> {
    let parts: Vec<&str> = l.split(':').collect();
    if parts.len() < 2 {
        bail!(
            "{}:{line}: a data line is `dim0:dim1:…:label`; this one has no label",
            path.display()
        );
    }
    let (dims, label) = parts.split_at(parts.len() - 1);
    let label = label[0].trim().to_string();
    if label.is_empty() {
        bail!("{}:{line}: field `label` is empty", path.display());
    }
    let len0 = dims[0].split(',').count();
    let mut values = Vec::with_capacity(dims.len() * len0);
    for (c, d) in dims.iter().enumerate() {
        let fields: Vec<&str> = d.split(',').collect();
        if fields.len() != len0 {
            bail!(
                "{}:{line}: dimension {c} has {} values, dimension 0 has {len0}: series of unequal length",
                path.display(),
                fields.len()
            );
        }
        for (t, f) in fields.iter().enumerate() {
            if f.trim() == "?" {
                bail!(
                    "{}:{line}: field `c{c}_t{t}`: missing value `?` (Keel needs complete series)",
                    path.display()
                );
            }
            values.push(number(path, line, &format!("c{c}_t{t}"), f)?);
        }
    }
    let row = Row {
        train,
        label,
        values,
        line,
    };
    Ok((row, (dims.len(), len0)))
}

/// Turns rows into a dataset: classes in order of first appearance in training rows, every class
/// present in each split that has rows, no test class unseen in training.
fn assemble(
    path: &Path,
    rows: Vec<Row>,
    channels: usize,
    length: usize,
    columns: Vec<String>,
) -> Result<Dataset> {
    let mut classes: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r.train) {
        if !classes.contains(&r.label) {
            classes.push(r.label.clone());
        }
    }
    if classes.is_empty() {
        bail!("{}: no training rows", path.display());
    }
    if length < 2 {
        bail!(
            "{}: series of {length} step(s): Keel needs at least 2",
            path.display()
        );
    }
    let dim = channels * length;
    let (mut train, mut test) = (Split::default(), Split::default());
    for r in rows {
        let Some(k) = classes.iter().position(|c| *c == r.label) else {
            bail!(
                "{}:{}: field `label`: class `{}` appears in the test split but never in training (classes: {})",
                path.display(),
                r.line,
                r.label,
                classes.join(", ")
            );
        };
        let s = if r.train { &mut train } else { &mut test };
        s.points.extend(r.values);
        s.labels.push(k);
    }
    for (name, s) in [("train", &train), ("test", &test)] {
        if s.labels.is_empty() {
            continue;
        }
        for (k, c) in classes.iter().enumerate() {
            if !s.labels.contains(&k) {
                bail!(
                    "{}: split `{name}` has no samples of class `{c}`: every class needs samples in every split",
                    path.display()
                );
            }
        }
    }
    if classes.len() < 2 && train.labels.len() < 2 {
        bail!("{}: needs at least 2 training series", path.display());
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "series".into());
    let name = name.strip_suffix("_TRAIN").unwrap_or(&name).to_string();
    Ok(Dataset {
        name,
        dim,
        points: train.points,
        columns,
        classes,
        labels: train.labels,
        shape: Some([channels, length]),
        test: (!test.labels.is_empty()).then_some(test),
        ..Default::default()
    })
}

/// Reads a held-out file (CSV or `.ts`) against the classes and shape of a trained model: every row
/// is test data, whatever its `split` field says.
pub fn read_test_file(path: &Path, classes: &[String], shape: [usize; 2]) -> Result<Split> {
    let is_ts = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ts"));
    let rows = if is_ts {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot open data file {}", path.display()))?;
        ts_rows(path, &text, false)?.0
    } else {
        let ds = read_series_csv(path)?;
        if ds.shape != Some(shape) {
            bail!(
                "{}: series are {:?}, the model makes {}×{}",
                path.display(),
                ds.shape.unwrap_or_default(),
                shape[0],
                shape[1]
            );
        }
        // Re-map this file's class order onto the model's.
        let mut split = Split::default();
        let parts =
            std::iter::once((ds.points, ds.labels)).chain(ds.test.map(|t| (t.points, t.labels)));
        for (points, labels) in parts {
            for (row, k) in points.chunks(ds.dim).zip(labels) {
                let name = &ds.classes[k];
                let Some(j) = classes.iter().position(|c| c == name) else {
                    bail!(
                        "{}: class `{name}` is not one the model was trained on ({})",
                        path.display(),
                        classes.join(", ")
                    );
                };
                split.points.extend_from_slice(row);
                split.labels.push(j);
            }
        }
        return Ok(split);
    };
    let mut split = Split::default();
    for r in rows {
        if r.values.len() != shape[0] * shape[1] {
            bail!(
                "{}:{}: series of {} values, the model makes {}×{}",
                path.display(),
                r.line,
                r.values.len(),
                shape[0],
                shape[1]
            );
        }
        let Some(j) = classes.iter().position(|c| *c == r.label) else {
            bail!(
                "{}:{}: field `label`: class `{}` is not one the model was trained on ({})",
                path.display(),
                r.line,
                r.label,
                classes.join(", ")
            );
        };
        split.points.extend(r.values);
        split.labels.push(j);
    }
    Ok(split)
}
