//! Timing of the runtime on one model: latency per call at batch 1, throughput at batch 256 with
//! one and two threads (each thread runs whole batches on its own state, as `generate` does).

use crate::generate::latent;
use crate::model::Generator;
use anyhow::Result;
use serde::Serialize;
use std::time::{Duration, Instant};
use tract_onnx::prelude::*;

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub batch: usize,
    pub threads: usize,
    /// Median wall time of one call, µs.
    pub median_us: f64,
    pub p90_us: f64,
    /// Samples per second over all threads, from the median call (as the onnxruntime peer reports).
    pub samples_per_s: f64,
}

/// Inputs for `rows` samples of class 0 (fixed seed: timing does not depend on values).
fn inputs(g: &Generator, rows: usize) -> Result<TVec<TValue>> {
    let m = &g.meta;
    let mut z = vec![0f32; rows * m.latent];
    for (i, r) in z.chunks_exact_mut(m.latent).enumerate() {
        latent(0, 0, i as u64, r);
    }
    let mut v: TVec<TValue> = tvec![Tensor::from_shape(&[rows, m.latent], &z)?.into()];
    if m.is_conditional() {
        let k = m.classes.len();
        let mut c = vec![0f32; rows * k];
        c.iter_mut().step_by(k).for_each(|x| *x = 1.0);
        v.push(Tensor::from_shape(&[rows, k], &c)?.into());
    }
    Ok(v)
}

/// Times `threads` threads each calling the batch-`batch` plan for about `budget`.
pub fn time(g: &Generator, batch: usize, threads: usize, budget: Duration) -> Result<Timing> {
    let plan = g.plan(batch)?;
    let input = inputs(g, batch)?;
    let per_thread: Vec<Result<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let plan = plan.clone();
                let input = input.clone();
                s.spawn(move || -> Result<Vec<f64>> {
                    let mut state = plan.spawn()?;
                    // Warm-up: caches, allocator, branch predictors.
                    let warm = Instant::now();
                    while warm.elapsed() < budget / 10 {
                        state.run(input.clone())?;
                    }
                    let mut times = Vec::new();
                    let start = Instant::now();
                    while start.elapsed() < budget {
                        let t = Instant::now();
                        state.run(input.clone())?;
                        times.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                    Ok(times)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let mut all = Vec::new();
    for r in per_thread {
        all.extend(r?);
    }
    all.sort_by(f64::total_cmp);
    let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
    Ok(Timing {
        batch,
        threads,
        median_us: q(0.5),
        p90_us: q(0.9),
        samples_per_s: (batch * threads) as f64 * 1e6 / q(0.5),
    })
}
