//! A trainer's whole state at one step — networks, optimizer moments, EMA, augmentation and RNG —
//! kept in memory for a rollback and written to disk for inspection. burn tensors are immutable and
//! shared, so a snapshot costs references, not copies.

use super::{Augmenter, Ema, Trainer};
use crate::model::{Discriminator, Generator};
use crate::rundir::{write_atomic, write_atomic_with};
use anyhow::Result;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use rand_pcg::Pcg64Mcg;
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

impl Trainer {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            step: self.step,
            g: self.g.clone(),
            d: self.d.clone(),
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
        self.step = s.step;
        self.g = s.g.clone();
        self.d = s.d.clone();
        self.ema = s.ema.clone();
        self.opt_g = s.opt_g.clone();
        self.opt_d = s.opt_d.clone();
        self.augmenter = s.augmenter.clone();
        self.rng = s.rng.clone();
        self.rng.advance((retry as u128) << 64);
        self.faults.clear_active();
    }
}

impl Snapshot {
    /// Writes the snapshot into `dir` (each file atomically): the EMA generator, raw G, D, both
    /// optimizers' moments and `snapshot.json` with its step.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let g = match &self.ema {
            Some(ema) => ema.apply(self.g.valid()),
            None => self.g.valid(),
        };
        save_module(g, &dir.join("generator.bpk"))?;
        save_module(self.g.valid(), &dir.join("generator-raw.bpk"))?;
        save_module(self.d.valid(), &dir.join("discriminator.bpk"))?;
        for (opt, name) in [(&self.opt_g, "optim-g.bpk"), (&self.opt_d, "optim-d.bpk")] {
            let path = dir.join(name);
            write_atomic_with(&path, |tmp| {
                opt.save(tmp)
                    .map_err(|e| anyhow::anyhow!("cannot save {}: {e:?}", path.display()))
            })?;
        }
        write_atomic(
            &dir.join("snapshot.json"),
            format!("{{\"step\": {}}}\n", self.step).as_bytes(),
        )
    }
}

pub fn save_module<M: Module>(m: M, path: &Path) -> Result<()> {
    write_atomic_with(path, |tmp| {
        m.save_file(tmp)
            .map_err(|e| anyhow::anyhow!("cannot save {}: {e:?}", path.display()))
    })
}
