//! Seeded latents → samples in real units. Sample `i` of class `c` always gets the same latent for a
//! seed. Every call runs the same plan (the last batch is padded to full size), so the same seed and
//! `--batch` give the same bytes whatever `--n` (a longer run extends a shorter one) and `--threads`.
//! Another batch size runs other matrix kernels: values then agree to float rounding (~1e-7), not bitwise.

use crate::meta::Metadata;
use crate::model::Generator;
use anyhow::{bail, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;
use std::collections::BTreeMap;
use std::sync::mpsc;

/// Which classes to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassChoice {
    /// Every class in order (the only choice for an unconditional generator).
    All,
    One(usize),
}

#[derive(Debug, Clone)]
pub struct Request {
    /// Samples per class.
    pub n: usize,
    pub classes: ClassChoice,
    pub seed: u64,
    /// Rows per call of the model.
    pub batch: usize,
    /// Worker threads, each running whole batches.
    pub threads: usize,
}

/// One generated batch: `labels[i]` is the class index of row `i` (0 when unconditional).
pub struct Chunk {
    pub labels: Vec<usize>,
    /// `[rows, sample_len]` row-major, real units.
    pub values: Vec<f32>,
}

/// The latent of one sample: its own PCG stream keyed by (seed, class, index).
pub fn latent(seed: u64, class: usize, index: u64, out: &mut [f32]) {
    let key = splitmix(splitmix(seed) ^ splitmix((class as u64) << 48 ^ index));
    let mut rng = Pcg64Mcg::seed_from_u64(key);
    for v in out.iter_mut() {
        *v = StandardNormal.sample(&mut rng);
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Request {
    /// Total rows across the chosen classes.
    pub fn total(&self, g: &Generator) -> usize {
        self.n * self.class_list(g).len()
    }

    fn class_list(&self, g: &Generator) -> Vec<usize> {
        match self.classes {
            ClassChoice::One(c) => vec![c],
            ClassChoice::All => (0..g.meta.classes.len().max(1)).collect(),
        }
    }

    fn check(&self, g: &Generator) -> Result<()> {
        if self.n == 0 {
            bail!("--n must be at least 1");
        }
        if self.batch == 0 || self.batch > 1 << 16 {
            bail!("--batch must be between 1 and 65536, got {}", self.batch);
        }
        if self.threads == 0 || self.threads > 256 {
            bail!("--threads must be between 1 and 256, got {}", self.threads);
        }
        if let ClassChoice::One(c) = self.classes {
            if c >= g.meta.classes.len() {
                bail!("class index {c} out of range");
            }
        }
        if self.n.checked_mul(self.class_list(g).len()).is_none() {
            bail!("--n {} is too large", self.n);
        }
        Ok(())
    }
}

/// The batch jobs: (class, first index, rows), in output order.
fn jobs(req: &Request, g: &Generator) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for c in req.class_list(g) {
        let mut start = 0;
        while start < req.n {
            let rows = req.batch.min(req.n - start);
            out.push((c, start, rows));
            start += rows;
        }
    }
    out
}

/// The model inputs for `rows` samples of `class` from index `start`, padded with zero latents to
/// `batch` rows so every call runs the one plan of that size: `z` and, when conditional, one-hot rows.
pub fn batch_inputs(
    m: &Metadata,
    seed: u64,
    class: usize,
    start: usize,
    rows: usize,
    batch: usize,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut z = vec![0f32; batch * m.latent];
    for (i, row) in z.chunks_exact_mut(m.latent).take(rows).enumerate() {
        latent(seed, class, (start + i) as u64, row);
    }
    let onehot = m.is_conditional().then(|| {
        let k = m.classes.len();
        let mut v = vec![0f32; batch * k];
        v.iter_mut().skip(class).step_by(k).for_each(|x| *x = 1.0);
        v
    });
    (z, onehot)
}

fn run_job(
    g: &Generator,
    seed: u64,
    batch: usize,
    (class, start, rows): (usize, usize, usize),
) -> Result<Chunk> {
    let m = &g.meta;
    let (z, onehot) = batch_inputs(m, seed, class, start, rows, batch);
    let plan = g.plan(batch)?;
    let mut values = g.run(&plan, batch, z, onehot)?;
    values.truncate(rows * m.sample_len());
    let per_channel = m.output_shape[1..].iter().product();
    m.denorm.apply(&mut values, per_channel);
    Ok(Chunk {
        labels: vec![class; rows],
        values,
    })
}

/// Generates and hands each chunk to `sink` in order; workers run batches in parallel.
pub fn generate(
    g: &Generator,
    req: &Request,
    mut sink: impl FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    req.check(g)?;
    let jobs = jobs(req, g);
    if req.threads == 1 || jobs.len() == 1 {
        for job in jobs {
            sink(run_job(g, req.seed, req.batch, job)?)?;
        }
        return Ok(());
    }
    let threads = req.threads.min(jobs.len());
    std::thread::scope(|s| -> Result<()> {
        // Bounded: workers stay at most a few batches ahead of the writer.
        let (tx, rx) = mpsc::sync_channel::<(usize, Result<Chunk>)>(threads * 2);
        for t in 0..threads {
            let tx = tx.clone();
            let jobs = &jobs;
            s.spawn(move || {
                for k in (t..jobs.len()).step_by(threads) {
                    let r = run_job(g, req.seed, req.batch, jobs[k]);
                    let failed = r.is_err();
                    if tx.send((k, r)).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Chunk> = BTreeMap::new();
        let mut next = 0;
        for (k, r) in rx.iter() {
            pending.insert(k, r?);
            while let Some(chunk) = pending.remove(&next) {
                sink(chunk)?;
                next += 1;
            }
        }
        if next != jobs.len() {
            bail!("generation stopped after {next} of {} batches", jobs.len());
        }
        Ok(())
    })
}
