//! A run directory and the atomic writes that fill it. A run is written into a staging directory
//! beside the target and renamed into place when complete, so a failed or killed run never leaves a
//! directory that later commands trust; every file inside is written temp-file → fsync → rename.

use anyhow::{bail, Context, Result};
use std::io::Write;
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

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp =
        new_temp_in(dir).with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A temporary file in `dir`, readable by others like any output (tempfile's default is 0600).
fn new_temp_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    #[cfg(unix)]
    b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    b.tempfile_in(dir)
}

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

/// A run directory being written: files go to `staging`, `commit` moves it to `target`.
pub struct RunDirWriter {
    pub target: PathBuf,
    pub staging: PathBuf,
    force: bool,
}

impl RunDirWriter {
    pub fn create(target: &Path, force: bool) -> Result<Self> {
        if target.exists() && !force {
            bail!("output directory {} already exists; choose another --out or pass --force to replace it", target.display());
        }
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir_all(staging.join("checkpoint"))
            .with_context(|| format!("cannot write into {}: is it writable?", parent.display()))?;
        Ok(Self {
            target: target.to_path_buf(),
            staging,
            force,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// Moves the finished run into place (replacing an old one only now, under --force).
    pub fn commit(self) -> Result<PathBuf> {
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
        Ok(self.target)
    }

    /// Removes the staging directory of a failed run.
    pub fn abandon(&self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}
