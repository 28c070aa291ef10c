//! The resumable checkpoint (`RUN/checkpoint/resume/`): the trainer's snapshot, the watchdog's memory
//! and snapshots, the state an `auto` run keeps if it ends worse (`best/`), and the run's own record (configs, data CRC, faults, metrics rows so far), as one
//! sealed directory that replaces the previous one only once complete. `keel train --resume` reads
//! it back and the run goes on exactly as if never stopped.

use crate::artifacts::Row;
use crate::config::TrainConfig;
use crate::converge::Convergence;
use crate::data::Dataset;
use crate::eval::ModeMetrics;
use crate::rundir::{self, RunDirWriter};
use crate::train::{Fault, Faults, Snapshot, StepStats, Trainer};
use crate::watch::Watchdog;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the checkpoint's layout. A resume refuses any other: a checkpoint is a run's
/// working state, not an archive, and is finished by the keel that started it. 2: the watchdog's
/// memory kept per detector (none of version 1 carried the field: they read as 0). 3: the best
/// state of an `auto` run (`best/`).
pub(crate) const CHECKPOINT_FORMAT: u32 = 3;

/// A checkpoint's record of the run itself (the trainer and watchdog have their own files).
#[derive(Serialize, Deserialize)]
pub(crate) struct RunState {
    #[serde(default)]
    pub(crate) format: u32,
    /// The configuration the run started with (it rebuilds the trainer), and the one it runs with
    /// now (the watchdog's remedies change it).
    pub(crate) config: TrainConfig,
    pub(crate) current: TrainConfig,
    pub(crate) recipe: String,
    /// `--data` and a CRC of the rows it gave: a resume refuses data that changed.
    pub(crate) source: String,
    pub(crate) data_crc: u32,
    /// Faults as given, and what is still armed.
    pub(crate) faults: Vec<Fault>,
    pub(crate) armed: Faults,
    /// The trainer's step.
    pub(crate) step: usize,
    pub(crate) train_seconds: f64,
    pub(crate) history: Vec<Row>,
    pub(crate) latest: Option<ModeMetrics>,
    pub(crate) last: StepStats,
    /// When to stop (`train.steps = "auto"`) and the plateau schedule's state.
    #[serde(default)]
    pub(crate) convergence: Convergence,
}

/// Files of a checkpoint (`RUN/checkpoint/resume/`).
const RUN: &str = "run.cbor";
const TRAINER: &str = "trainer";
const WATCH: &str = "watch";
const BEST: &str = "best";

/// CRC-32 of a dataset's rows and labels.
pub(crate) fn data_crc(d: &Dataset) -> u32 {
    let mut bytes: Vec<u8> = d.points.iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes.extend(d.labels.iter().flat_map(|&l| (l as u64).to_le_bytes()));
    rundir::crc32(&bytes)
}

/// An interrupted run, opened for `keel train --resume`.
pub struct Resume {
    pub(crate) dir: RunDirWriter,
    pub(crate) ckpt: PathBuf,
    pub(crate) state: RunState,
    pub data: Dataset,
}

impl Resume {
    /// The interrupted run that was writing `target`: its staging directory, verified checkpoint
    /// and data (which must be what it trained on).
    pub fn open(target: &Path) -> Result<Self> {
        let dir = RunDirWriter::reopen(target)?;
        let ckpt = rundir::existing_dir(&dir.path(rundir::RESUME)).with_context(|| {
            format!(
                "{} has no checkpoint yet (the run stopped before its first, at train.checkpoint_every steps): start it again with --force",
                dir.staging.display()
            )
        })?;
        rundir::verify(&ckpt)
            .with_context(|| format!("the checkpoint in {} is damaged", ckpt.display()))?;
        let state: RunState = rundir::read_cbor(&ckpt.join(RUN))?;
        if state.format != CHECKPOINT_FORMAT {
            bail!(
                "the checkpoint in {} has checkpoint format {}, this keel reads {CHECKPOINT_FORMAT}: finish the run with the keel that started it, or start it again with --force",
                ckpt.display(),
                state.format
            );
        }
        let data = crate::data::load(&state.source, state.config.train.seed)
            .with_context(|| format!("cannot load the run's data `{}`", state.source))?;
        if data_crc(&data) != state.data_crc {
            bail!(
                "the data `{}` changed since the run started (CRC {:08x}, was {:08x}); a resumed run must see the same rows",
                state.source,
                data_crc(&data),
                state.data_crc
            );
        }
        Ok(Self {
            dir,
            ckpt,
            state,
            data,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.state.config
    }

    pub fn recipe(&self) -> &str {
        &self.state.recipe
    }

    /// The step the checkpoint holds.
    pub fn step(&self) -> usize {
        self.state.step
    }
}

/// Writes the resumable checkpoint: the trainer, the watchdog, the best state so far and the
/// run's record, as one directory that replaces the previous one only once complete.
pub(crate) fn save(
    dir: &RunDirWriter,
    trainer: &Trainer,
    watchdog: Option<&Watchdog>,
    best: Option<&Snapshot>,
    state: &RunState,
) -> Result<()> {
    rundir::replace_dir(&dir.path(rundir::RESUME), |tmp| {
        trainer.snapshot().save(&tmp.join(TRAINER))?;
        if let Some(b) = best {
            b.save(&tmp.join(BEST))?;
        }
        if let Some(w) = watchdog {
            let d = tmp.join(WATCH);
            std::fs::create_dir_all(&d)?;
            w.save(&d)?;
        }
        rundir::write_cbor(&tmp.join(RUN), state)
    })
    .context("cannot write the checkpoint")
}

/// Puts a checkpoint's state into a freshly built trainer and watchdog (same config and data).
pub(crate) fn restore(
    ckpt: &Path,
    state: &RunState,
    trainer: &mut Trainer,
    watchdog: Option<&mut Watchdog>,
) -> Result<()> {
    trainer.resume_from(&Snapshot::load(&ckpt.join(TRAINER), trainer)?);
    trainer.cfg = state.current.clone();
    trainer.faults = state.armed.clone();
    if let Some(w) = watchdog {
        w.resume(&ckpt.join(WATCH), trainer)?;
    }
    Ok(())
}

/// The best state a checkpoint holds, if any (shaped like `trainer`).
pub(crate) fn load_best(ckpt: &Path, trainer: &Trainer) -> Result<Option<Snapshot>> {
    let dir = ckpt.join(BEST);
    match dir.is_dir() {
        true => Snapshot::load(&dir, trainer).map(Some),
        false => Ok(None),
    }
}
