//! Sample writers: CSV (header, one sample per row, class name first when conditional) and NPY
//! (float32 `[rows, …shape]`; class indices beside it in `NAME.labels.npy`). A file is written to a
//! temporary name in the same directory and renamed into place only when complete.

use crate::generate::Chunk;
use crate::meta::Metadata;
use anyhow::{bail, Context, Result};
use keel_contract::AtomicFile;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Npy,
}

impl Format {
    /// From the output name: `.npy` → NPY, anything else (and stdout) → CSV.
    pub fn for_path(out: &str) -> Format {
        if out.to_ascii_lowercase().ends_with(".npy") {
            Format::Npy
        } else {
            Format::Csv
        }
    }
}

/// A destination that appears complete or not at all (stdout streams as it goes).
pub enum Destination {
    Stdout(BufWriter<std::io::Stdout>),
    File(AtomicFile),
}

impl Destination {
    /// `-` is stdout. For a file the temporary is created now, so an unwritable place fails before any work.
    pub fn open(out: &str) -> Result<Destination> {
        if out == "-" {
            return Ok(Destination::Stdout(BufWriter::new(std::io::stdout())));
        }
        let path = PathBuf::from(out);
        if path.is_dir() {
            bail!("--out {out}: is a directory; give a file name such as {out}/samples.csv");
        }
        let file = AtomicFile::create(&path).with_context(|| {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            format!(
                "--out {out}: cannot write in {}",
                dir.unwrap_or(Path::new(".")).display()
            )
        })?;
        Ok(Destination::File(file))
    }

    /// Writes bytes as they are (a binary file such as a `.kq8`).
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let name = self.name();
        self.writer()
            .write_all(bytes)
            .with_context(|| format!("cannot write {name}"))
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Destination::Stdout(w) => w,
            Destination::File(f) => f,
        }
    }

    fn name(&self) -> String {
        match self {
            Destination::Stdout(_) => "stdout".into(),
            Destination::File(f) => f.path().display().to_string(),
        }
    }

    /// Flushes, syncs and renames the file into place.
    pub fn finish(self) -> Result<()> {
        match self {
            Destination::Stdout(mut w) => w.flush().context("cannot write to stdout"),
            Destination::File(f) => f.commit(),
        }
    }
}

/// Writes chunks in one format; `finish` completes every file or leaves none.
pub struct SampleWriter {
    format: Format,
    main: Destination,
    labels: Option<(Destination, Vec<u8>)>,
    classes: Vec<String>,
    conditional: bool,
    line: String,
}

impl SampleWriter {
    pub fn new(out: &str, meta: &Metadata, rows: usize) -> Result<Self> {
        let format = Format::for_path(out);
        let mut main = Destination::open(out)?;
        let conditional = meta.is_conditional();
        let mut labels = None;
        match format {
            Format::Csv => {
                let mut header = if conditional {
                    "class,".to_string()
                } else {
                    String::new()
                };
                header.push_str(&meta.column_names().join(","));
                header.push('\n');
                write_all(&mut main, header.as_bytes())?;
            }
            Format::Npy => {
                if out == "-" {
                    bail!("--out -: NPY needs a file name; stdout takes CSV");
                }
                let mut shape = vec![rows];
                shape.extend(&meta.output_shape);
                write_all(&mut main, &npy_header("<f4", &shape))?;
                if conditional {
                    let lpath = labels_path(Path::new(out));
                    let d = Destination::open(&lpath.to_string_lossy())?;
                    labels = Some((d, Vec::with_capacity(rows * 8)));
                }
            }
        }
        if let Some((d, _)) = labels.as_mut() {
            write_all(d, &npy_header("<i8", &[rows]))?;
        }
        Ok(Self {
            format,
            main,
            labels,
            classes: meta.classes.clone(),
            conditional,
            line: String::new(),
        })
    }

    pub fn write(&mut self, chunk: &Chunk) -> Result<()> {
        let per_row = chunk.values.len() / chunk.labels.len().max(1);
        match self.format {
            Format::Csv => {
                use std::fmt::Write as _;
                for (row, &label) in chunk.values.chunks_exact(per_row).zip(&chunk.labels) {
                    self.line.clear();
                    if self.conditional {
                        self.line.push_str(&self.classes[label]);
                        self.line.push(',');
                    }
                    for (i, v) in row.iter().enumerate() {
                        if i > 0 {
                            self.line.push(',');
                        }
                        // `{}` prints the shortest text that reads back to the same f32.
                        write!(self.line, "{v}").expect("write to String");
                    }
                    self.line.push('\n');
                    write_all(&mut self.main, self.line.as_bytes())?;
                }
            }
            Format::Npy => {
                let bytes: Vec<u8> = chunk.values.iter().flat_map(|v| v.to_le_bytes()).collect();
                write_all(&mut self.main, &bytes)?;
                if let Some((d, buf)) = self.labels.as_mut() {
                    buf.clear();
                    buf.extend(chunk.labels.iter().flat_map(|&l| (l as i64).to_le_bytes()));
                    write_all(d, buf)?;
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        if let Some((d, _)) = self.labels {
            d.finish()?;
        }
        self.main.finish()
    }
}

/// `samples.npy` → `samples.labels.npy`.
pub fn labels_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.labels.npy"))
}

fn write_all(d: &mut Destination, bytes: &[u8]) -> Result<()> {
    let name = d.name();
    d.writer()
        .write_all(bytes)
        .with_context(|| format!("cannot write {name}"))
}

/// NPY format 1.0 header, padded so the data starts on a 64-byte boundary.
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditional() -> Metadata {
        let shape = [("keel.output_shape", "[2, 2]"), ("keel.latent", "2")];
        let denorm = (
            "keel.denorm",
            r#"{"kind":"mean_std","mean":[0,0],"std":[1,1]}"#,
        );
        Metadata::from_props(crate::meta::test_props(&[shape[0], shape[1], denorm])).unwrap()
    }

    fn chunk() -> Chunk {
        Chunk {
            labels: vec![0, 1],
            values: vec![0.5, 1.0, 1.5, 2.0, -1.0, -2.0, 3.25, 4.0],
        }
    }

    #[test]
    fn conditional_csv_names_the_class_and_npy_writes_labels_beside() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("s.csv");
        let mut w = SampleWriter::new(csv.to_str().unwrap(), &conditional(), 2).unwrap();
        w.write(&chunk()).unwrap();
        w.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&csv).unwrap(),
            "class,c0_t0,c0_t1,c1_t0,c1_t1\nwalk,0.5,1,1.5,2\nrun,-1,-2,3.25,4\n"
        );

        let npy = dir.path().join("s.npy");
        let mut w = SampleWriter::new(npy.to_str().unwrap(), &conditional(), 2).unwrap();
        w.write(&chunk()).unwrap();
        w.finish().unwrap();
        let data = std::fs::read(&npy).unwrap();
        let start = 10 + u16::from_le_bytes([data[8], data[9]]) as usize;
        assert_eq!(start % 64, 0);
        let header = String::from_utf8_lossy(&data[10..start]);
        assert!(header.contains("'shape': (2, 2, 2)"), "{header}");
        assert_eq!(data.len(), start + 8 * 4);
        assert_eq!(data[start..start + 4], 0.5f32.to_le_bytes());
        let labels = std::fs::read(dir.path().join("s.labels.npy")).unwrap();
        let start = 10 + u16::from_le_bytes([labels[8], labels[9]]) as usize;
        let header = String::from_utf8_lossy(&labels[10..start]);
        assert!(header.contains("'descr': '<i8', 'fortran_order': False, 'shape': (2,)"));
        assert_eq!(
            labels[start..],
            [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn an_unfinished_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("s.npy");
        let mut w = SampleWriter::new(npy.to_str().unwrap(), &conditional(), 2).unwrap();
        w.write(&chunk()).unwrap();
        drop(w); // an error before finish(): nothing appears, no temporary is left
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
