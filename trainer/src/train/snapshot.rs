//! A trainer's whole state at one step — networks, optimizer moments, EMA, augmentation and RNG —
//! kept in memory for a rollback and written to disk for a resume. burn tensors are immutable and
//! shared, so a snapshot costs references, not copies; running states (BatchNorm statistics,
//! spectral-norm vectors) are mutable and shared between clones, so a snapshot holds `valid()`
//! copies, which own theirs.

use super::{Augmenter, Ema, Trainer};
use crate::model::{Discriminator, Generator};
use crate::rundir::{read_cbor, write_atomic_with, write_cbor};
use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone)]
pub struct Snapshot {
    pub step: usize,
    g: Generator,
    d: Discriminator,
    ema: Option<Ema>,
    opt_g: ModuleOptimizer,
    opt_d: ModuleOptimizer,
    augmenter: Option<Augmenter>,
    rng: Pcg64Mcg,
}

/// The part of a snapshot that is not tensors.
#[derive(Serialize, Deserialize)]
struct Scalars {
    step: usize,
    rng: Pcg64Mcg,
    augmenter: Option<Augmenter>,
}

const GENERATOR: &str = "generator.bpk";
const GENERATOR_RAW: &str = "generator-raw.bpk";
const DISCRIMINATOR: &str = "discriminator.bpk";
const OPTIM_G: &str = "optim-g.bpk";
const OPTIM_D: &str = "optim-d.bpk";
const SCALARS: &str = "snapshot.cbor";

impl Trainer {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            step: self.step,
            g: self.g.valid(),
            d: self.d.valid(),
            ema: self.ema.clone(),
            opt_g: self.opt_g.clone(),
            opt_d: self.opt_d.clone(),
            augmenter: self.augmenter.clone(),
            rng: self.rng.clone(),
        }
    }

    /// Returns to `s`. The random stream moves on by `retry` so a retried stretch does not replay
    /// the same batches (deterministic all the same).
    pub fn restore(&mut self, s: &Snapshot, retry: usize) {
        self.resume_from(s);
        self.rng.advance((retry as u128) << 64);
        self.faults.clear_active();
    }

    /// Takes `s`'s state exactly (a resume: nothing is cleared or advanced).
    pub fn resume_from(&mut self, s: &Snapshot) {
        self.step = s.step;
        self.g = s.g.clone().train();
        self.d = s.d.clone().train();
        self.ema = s.ema.clone();
        self.opt_g = s.opt_g.clone();
        self.opt_d = s.opt_d.clone();
        self.augmenter = s.augmenter.clone();
        self.rng = s.rng.clone();
    }
}

impl Snapshot {
    /// Writes the snapshot into `dir` (each file atomically): the sampling generator (EMA weights),
    /// raw G, D, both optimizers' moments, and the step, RNG and augmentation state.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // `valid()` again: `apply` writes running states, which a clone would share.
        let g = match &self.ema {
            Some(ema) => ema.apply(self.g.valid()),
            None => self.g.clone(),
        };
        save_module(g, &dir.join(GENERATOR))?;
        save_module(self.g.clone(), &dir.join(GENERATOR_RAW))?;
        save_module(self.d.clone(), &dir.join(DISCRIMINATOR))?;
        for (opt, name) in [(&self.opt_g, OPTIM_G), (&self.opt_d, OPTIM_D)] {
            let path = dir.join(name);
            write_atomic_with(&path, |tmp| {
                opt.save(tmp)
                    .map_err(|e| anyhow::anyhow!("cannot save {}: {e:?}", path.display()))
            })?;
        }
        let scalars = Scalars {
            step: self.step,
            rng: self.rng.clone(),
            augmenter: self.augmenter.clone(),
        };
        write_cbor(&dir.join(SCALARS), &scalars)
    }

    /// Reads a snapshot written by `save`, shaped like `t` (same config and data).
    pub fn load(dir: &Path, t: &Trainer) -> Result<Snapshot> {
        let s: Scalars = read_cbor(&dir.join(SCALARS))?;
        let g = load_module(t.g.valid(), &dir.join(GENERATOR_RAW))?;
        let ema = match &t.ema {
            Some(e) => Some(Ema::new(
                &load_module(t.g.valid(), &dir.join(GENERATOR))?,
                e.decay,
            )),
            None => None,
        };
        let load_opt = |opt: &ModuleOptimizer, name: &str| -> Result<ModuleOptimizer> {
            let path = dir.join(name);
            opt.clone()
                .load(&path)
                .map_err(|e| anyhow::anyhow!("cannot load {}: {e:?}", path.display()))
        };
        Ok(Snapshot {
            step: s.step,
            g,
            d: load_module(t.d.valid(), &dir.join(DISCRIMINATOR))?,
            ema,
            opt_g: load_opt(&t.opt_g, OPTIM_G)?,
            opt_d: load_opt(&t.opt_d, OPTIM_D)?,
            augmenter: s.augmenter,
            rng: s.rng,
        })
    }
}

pub fn save_module<M: Module>(m: M, path: &Path) -> Result<()> {
    write_atomic_with(path, |tmp| {
        m.save_file(tmp)
            .map_err(|e| anyhow::anyhow!("cannot save {}: {e:?}", path.display()))
    })
}

/// `m` with the parameters stored at `path`.
pub fn load_module<M: Module>(m: M, path: &Path) -> Result<M> {
    m.try_load_file(path)
        .map_err(|e| anyhow::anyhow!("cannot load {}: {e:?}", path.display()))
}
