//! A run directory and the atomic writes that fill it. A run is written into a staging directory
//! beside the target and renamed into place when complete, so a failed or killed run never leaves a
//! directory that later commands trust; every file inside is written temp-file → fsync → rename.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.toml";
pub const METRICS: &str = "metrics.csv";
pub const SUMMARY: &str = "summary.json";
pub const GENERATOR: &str = "generator.bpk";
pub const GENERATOR_META: &str = "generator.json";
pub const DISCRIMINATOR: &str = "checkpoint/discriminator.bpk";
pub const GENERATOR_RAW: &str = "checkpoint/generator-raw.bpk";
pub const SAMPLES_PNG: &str = "samples.png";
pub const LOSSES_PNG: &str = "losses.png";
/// The watchdog's log, one JSON event per line.
pub const EVENTS: &str = "events.jsonl";
/// The watchdog's last trusted snapshot.
pub const HEALTHY: &str = "checkpoint/healthy";
/// The latest resumable checkpoint (`keel train --resume`).
pub const RESUME: &str = "checkpoint/resume";
/// `keel-run quantize`'s report beside `generator.kq8`.
pub const QUANTIZE_REPORT: &str = "quantize.json";
/// `keel eval`'s directory and the files it holds.
pub const EVAL_DIR: &str = "eval";
pub const EVAL_JSON: &str = "eval.json";
pub const EVAL_REPORT: &str = "report.md";
/// Lists every file of a sealed directory with its size and CRC-32.
pub const MANIFEST: &str = "MANIFEST";

/// Every output file is written atomically (temp → fsync → rename), with the runtime's own writer.
pub use keel_contract::write_atomic;

/// Runs `write` against a temporary path next to `path`, then renames it into place.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension(format!("partial-{}", std::process::id()));
    let result = write(&tmp).and_then(|_| {
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `value` as CBOR to `path` atomically.
pub fn write_cbor<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    write_atomic(path, &bytes)
}

pub fn read_cbor<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    ciborium::from_reader(bytes.as_slice())
        .with_context(|| format!("{} is not a valid Keel checkpoint file", path.display()))
}

/// Replaces directory `target` by what `fill` writes into a fresh one beside it, sealed with a
/// MANIFEST. A crash leaves either the old directory (at `target`, or at `target.old` between the
/// two renames; `existing_dir` finds it) or the new one, never a mix.
pub fn replace_dir(target: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let new = target.with_extension("new");
    let old = target.with_extension("old");
    if new.exists() {
        std::fs::remove_dir_all(&new)
            .with_context(|| format!("cannot remove {}", new.display()))?;
    }
    std::fs::create_dir_all(&new).with_context(|| format!("cannot create {}", new.display()))?;
    let written = fill(&new).and_then(|_| seal(&new));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&new);
        return Err(e);
    }
    if target.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        std::fs::rename(target, &old)
            .with_context(|| format!("cannot replace {}", target.display()))?;
    }
    std::fs::rename(&new, target).with_context(|| format!("cannot write {}", target.display()))?;
    sync_dir(target.parent().unwrap_or(Path::new(".")));
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// `target` as `replace_dir` left it: itself, or its previous version when a crash fell between
/// the two renames.
pub fn existing_dir(target: &Path) -> Option<PathBuf> {
    [target.to_path_buf(), target.with_extension("old")]
        .into_iter()
        .find(|p| p.join(MANIFEST).is_file())
}

fn sync_dir(dir: &Path) {
    // Makes the renames durable; not every platform can open a directory, and that is not an error.
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 (IEEE) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// Files under `dir` (recursively), relative, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        for e in
            std::fs::read_dir(&here).with_context(|| format!("cannot list {}", here.display()))?
        {
            let e = e?;
            let r = rel.join(e.file_name());
            if e.file_type()?.is_dir() {
                stack.push(r);
            } else {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `dir/MANIFEST`: one `crc32 size path` line per file.
pub fn seal(dir: &Path) -> Result<()> {
    let mut text = String::new();
    for rel in files_under(dir)? {
        let bytes = std::fs::read(dir.join(&rel))?;
        text.push_str(&format!(
            "{:08x} {} {}\n",
            crc32(&bytes),
            bytes.len(),
            rel.display()
        ));
    }
    write_atomic(&dir.join(MANIFEST), text.as_bytes())
}

/// Checks every file that `dir/MANIFEST` lists: a missing, truncated or altered one is an error
/// naming it.
pub fn verify(dir: &Path) -> Result<()> {
    let m = dir.join(MANIFEST);
    let text =
        std::fs::read_to_string(&m).with_context(|| format!("cannot read {}", m.display()))?;
    for (i, line) in text.lines().enumerate() {
        let bad = || anyhow::anyhow!("{} line {}: not `crc32 size path`", m.display(), i + 1);
        let mut parts = line.splitn(3, ' ');
        let (Some(crc), Some(size), Some(rel)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let crc = u32::from_str_radix(crc, 16).map_err(|_| bad())?;
        let size: usize = size.parse().map_err(|_| bad())?;
        let p = dir.join(rel);
        let bytes = std::fs::read(&p).with_context(|| format!("{} is missing", p.display()))?;
        if bytes.len() != size || crc32(&bytes) != crc {
            bail!(
                "{} is damaged ({} bytes, CRC {:08x}; the manifest says {size} bytes, CRC {crc:08x})",
                p.display(),
                bytes.len(),
                crc32(&bytes)
            );
        }
    }
    Ok(())
}

/// A run directory being written: files go to `staging` (`.NAME.partial` beside the target, locked
/// while a process writes it), `commit` moves it to `target`. A killed run leaves its staging
/// directory and checkpoint for `keel train --resume`.
pub struct RunDirWriter {
    pub target: PathBuf,
    pub staging: PathBuf,
    force: bool,
    /// Held open: its lock says a process is writing the staging directory.
    _lock: std::fs::File,
}

const LOCK: &str = ".lock";

/// The staging directory of `target`.
pub fn staging_of(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    parent_of(target).join(format!(".{name}.partial"))
}

fn parent_of(target: &Path) -> &Path {
    target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Locks `staging/.lock`, or says which run holds it.
fn lock(staging: &Path, target: &Path) -> Result<std::fs::File> {
    let p = staging.join(LOCK);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .with_context(|| format!("cannot write into {}: is it writable?", staging.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another keel process is writing {} (in {}); wait for it or choose another --out",
            target.display(),
            staging.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", p.display()))
        }
    }
}

impl RunDirWriter {
    pub fn create(target: &Path, force: bool) -> Result<Self> {
        if target.exists() && !force {
            bail!("output directory {} already exists; choose another --out or pass --force to replace it", target.display());
        }
        let parent = parent_of(target);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let staging = staging_of(target);
        if staging.exists() {
            let _held = lock(&staging, target)?;
            if existing_dir(&staging.join(RESUME)).is_some() && !force {
                bail!(
                    "{} holds an interrupted run of {}: continue it with `keel train --resume {}`, or pass --force to start over",
                    staging.display(),
                    target.display(),
                    target.display()
                );
            }
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot remove {}", staging.display()))?;
        }
        std::fs::create_dir_all(staging.join("checkpoint"))
            .with_context(|| format!("cannot write into {}: is it writable?", parent.display()))?;
        Ok(Self {
            _lock: lock(&staging, target)?,
            target: target.to_path_buf(),
            staging,
            force,
        })
    }

    /// The staging directory of an interrupted run of `target`, locked for this process.
    pub fn reopen(target: &Path) -> Result<Self> {
        let staging = staging_of(target);
        if !staging.is_dir() {
            if target.join(SUMMARY).is_file() {
                bail!("{} is a finished run: nothing to resume", target.display());
            }
            bail!(
                "no interrupted run of {} (looked for {})",
                target.display(),
                staging.display()
            );
        }
        Ok(Self {
            _lock: lock(&staging, target)?,
            target: target.to_path_buf(),
            staging,
            force: true,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// Moves the finished run into place (replacing an old one only now, under --force).
    pub fn commit(self) -> Result<PathBuf> {
        let _ = std::fs::remove_file(self.staging.join(LOCK));
        if self.target.exists() {
            if !self.force {
                bail!(
                    "output directory {} appeared while training; the run is left in {}",
                    self.target.display(),
                    self.staging.display()
                );
            }
            let old = self.staging.with_extension("old");
            std::fs::rename(&self.target, &old)
                .with_context(|| format!("cannot replace {}", self.target.display()))?;
            std::fs::rename(&self.staging, &self.target)?;
            std::fs::remove_dir_all(&old).ok();
        } else {
            std::fs::rename(&self.staging, &self.target)
                .with_context(|| format!("cannot create {}", self.target.display()))?;
        }
        sync_dir(parent_of(&self.target));
        Ok(self.target)
    }

    /// Removes the staging directory of a failed run.
    pub fn abandon(&self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}
