//! `keel bench speed`: Keel's training step against a PyTorch peer doing the same work, in one
//! invocation. Before any timing, the bench checks that the peer *is* the same work: it writes
//! Keel's initial weights and one fixed batch, the peer loads them, and the parameter counts and
//! both losses must agree.

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use keel_trainer::config::{ConfigBuilder, TrainConfig, DEFAULT_RECIPE};
use keel_trainer::model::generator::GenMode;
use keel_trainer::objective::{d_loss, g_loss, grad_sq_penalty, gradient_penalty};
use keel_trainer::train::{normal_tensor, one_hot, uniform_tensor, TrainData, Trainer};
use keel_trainer::watch::median;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Relative agreement asked of the peer's losses on the fixed batch (float32, sums in another order).
const LOSS_TOLERANCE: f64 = 1e-4;
/// Ratio of steps per second this project aims for.
const TARGET: f64 = 2.0;

#[derive(clap::Args, Debug)]
pub struct SpeedArgs {
    /// Generator steps per timed run (after 20 untimed).
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Alternating rounds (ours, peer) per case.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Python interpreter with torch installed.
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// Threads for both sides (rayon for burn's flex backend, torch.set_num_threads for the peer).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Comma-separated cases: nsgan and wgangp (2-D, 3×128 MLPs, batch 256), series (the default
    /// BasicMotions run: conditional G, projection D, R1, batch 64).
    #[arg(long, default_value = "nsgan,wgangp,series", value_delimiter = ',')]
    cases: Vec<String>,
    /// The 2-D PyTorch peer (the team's baseline) and the series peer.
    #[arg(long, default_value = "trainer/bench/peer_gan.py")]
    peer: PathBuf,
    #[arg(long, default_value = "trainer/bench/peer_series.py")]
    series_peer: PathBuf,
}

#[derive(Clone, Copy, PartialEq)]
enum Case {
    NsGan,
    WganGp,
    Series,
}

impl Case {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "nsgan" => Case::NsGan,
            "wgangp" => Case::WganGp,
            "series" => Case::Series,
            _ => bail!("unknown case `{s}` in --cases (nsgan, wgangp, series)"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Case::NsGan => "NS-GAN (2-D)",
            Case::WganGp => "WGAN-GP, n_critic 5 (2-D)",
            Case::Series => "series: BasicMotions default (R1, projection D)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Case::NsGan => "nsgan",
            Case::WganGp => "wgangp",
            Case::Series => "series",
        }
    }

    /// The configuration Keel trains with; the peers hard-code the same.
    fn config(self, steps: usize) -> Result<TrainConfig> {
        let b = match self {
            Case::Series => ConfigBuilder::new().recipe_for(DEFAULT_RECIPE, true)?,
            _ => {
                let b = ConfigBuilder::new()
                    .set("model.g_width=128")?
                    .set("model.d_width=128")?
                    .set("model.g_depth=3")?
                    .set("model.d_depth=3")?
                    .set("model.latent=2")?
                    .set("train.batch=256")?
                    .set("optim.lr_g=1e-4")?
                    .set("optim.lr_d=1e-4")?
                    .set("optim.beta1=0.5")?
                    .set("optim.beta2=0.9")?;
                if self == Case::WganGp {
                    b.set("loss.kind=wasserstein")?
                        .set("penalty.gp=10")?
                        .set("train.n_critic=5")?
                } else {
                    b.set("loss.kind=non-saturating")?
                }
            }
        };
        b.set(&format!("train.steps={steps}"))?.build()
    }
}

/// What a case trains on: grid25's points, or BasicMotions' normalised training windows.
struct Data {
    points: Vec<f32>,
    dim: usize,
    labels: Vec<usize>,
    classes: usize,
    shape: Option<[usize; 2]>,
}

impl Data {
    fn load(case: Case) -> Result<Self> {
        if case != Case::Series {
            let d = keel_trainer::data::builtin("grid25", 0).expect("built-in");
            return Ok(Self {
                points: d.points,
                dim: 2,
                labels: Vec::new(),
                classes: 0,
                shape: None,
            });
        }
        let d = keel_trainer::data::load("basicmotions", 0)?;
        let points = keel_trainer::data::Normalizer::fit_dataset(&d).forward(&d.points);
        Ok(Self {
            points,
            dim: d.dim,
            labels: d.labels.clone(),
            classes: d.classes.len(),
            shape: d.shape,
        })
    }

    fn train_data(&self) -> TrainData {
        TrainData {
            points: self.points.clone(),
            dim: self.dim,
            labels: self.labels.clone(),
            classes: self.classes,
            shape: self.shape,
        }
    }
}

pub fn speed(a: SpeedArgs) -> Result<()> {
    let cases = a
        .cases
        .iter()
        .map(|s| Case::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let has_torch = Command::new(&a.python)
        .args(["-c", "import torch"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_torch {
        bail!(
            "the PyTorch peer needs a Python with torch at {}; create it with\n  python3 -m venv .venv && .venv/bin/pip install torch numpy\n(or pass --python PATH)",
            a.python.display()
        );
    }
    for p in [&a.peer, &a.series_peer] {
        if !p.exists() {
            bail!(
                "peer script {} not found (run from the repository root or pass --peer / --series-peer)",
                p.display()
            );
        }
    }
    // flex runs on rayon's global pool, created at the first tensor op: size it before any.
    std::env::set_var("RAYON_NUM_THREADS", a.threads.to_string());
    println!("{}\n", cpu_line());
    let tmp = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for case in cases {
        let data = Data::load(case)?;
        let dir = tmp.path().join(case.key());
        std::fs::create_dir_all(&dir)?;
        println!("{}", check_peer(case, &data, &a, &dir)?);
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for _ in 0..a.rounds {
            ours.push(ours_steps_per_s(case, &data, a.steps, a.threads)?);
            peer.push(peer_steps_per_s(case, &a, &dir)?);
        }
        rows.push((case, median(&ours), median(&peer)));
    }
    println!("\n| case | Keel steps/s (median) | PyTorch steps/s (median) | ratio |\n| --- | --- | --- | --- |");
    let mut verdict = true;
    for (case, o, p) in &rows {
        verdict &= o / p >= TARGET;
        println!("| {} | {o:.1} | {p:.1} | {:.2}× |", case.name(), o / p);
    }
    println!(
        "\n{} generator steps per run after 20 untimed, {} alternating rounds, {} thread(s) each. 2-D: \
batch 256, 3×128 ReLU MLPs, z-dim 2, Adam 1e-4 (0.5, 0.9), WGAN-GP λ 10. Series: the default recipe \
on BasicMotions. Verdict: {}",
        a.steps,
        a.rounds,
        a.threads,
        if verdict {
            format!("Keel ≥ {TARGET}× the peer on every case")
        } else {
            format!("below the {TARGET}× target")
        }
    );
    Ok(())
}

/// `lscpu`'s model name and the AVX-512 flags: the ratio depends on them.
fn cpu_line() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let avx512: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| f.starts_with("avx512"))
        .collect();
    format!(
        "CPU: {} · AVX-512: {}",
        field("model name"),
        if avx512.is_empty() {
            "none".to_string()
        } else {
            avx512.join(" ")
        }
    )
}

/// Generator steps per second of ours, in process.
/// Keel's steps per second, in a pool of `threads` threads as `keel train --threads` runs.
fn ours_steps_per_s(case: Case, data: &Data, steps: usize, threads: usize) -> Result<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(super::train::TRAIN_STACK_BYTES)
        .build()
        .context("cannot start the training threads")?;
    pool.install(|| ours_in_pool(case, data, steps))
}

fn ours_in_pool(case: Case, data: &Data, steps: usize) -> Result<f64> {
    let cfg = case.config(steps)?;
    let device = Device::flex().autodiff();
    let mut t = Trainer::new(cfg, data.train_data(), device)?;
    for _ in 0..20 {
        t.step(); // warm-up
    }
    let start = Instant::now();
    for _ in 0..steps {
        t.step();
    }
    Ok(steps as f64 / start.elapsed().as_secs_f64())
}

fn peer_steps_per_s(case: Case, a: &SpeedArgs, dir: &Path) -> Result<f64> {
    let steps = a.steps.to_string();
    let mut cmd = Command::new(&a.python);
    cmd.env("OMP_NUM_THREADS", a.threads.to_string());
    match case {
        Case::Series => cmd
            .arg(&a.series_peer)
            .args(["--steps", &steps, "--threads", &a.threads.to_string()])
            .arg("--data")
            .arg(dir),
        _ => cmd
            .arg(&a.peer)
            .args([
                "--method",
                case.key(),
                "--dataset",
                "grid",
                "--zdim",
                "2",
                "--threads",
                &a.threads.to_string(),
                "--steps",
                &steps,
                "--eval-every",
                &steps,
            ])
            .arg("--out-dir")
            .arg(dir),
    };
    let v = run_json(&mut cmd)?;
    v["g_steps_per_s"]
        .as_f64()
        .context("peer JSON lacks g_steps_per_s")
}

fn run_json(cmd: &mut Command) -> Result<serde_json::Value> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("peer failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).context("peer printed no JSON")
}

/// Named f32 tensors in one little-endian file, with a JSON index of offsets and shapes.
#[derive(Default)]
struct Tensors {
    values: Vec<f32>,
    index: BTreeMap<String, (usize, Vec<usize>)>,
}

impl Tensors {
    fn put<const D: usize>(&mut self, name: &str, t: Tensor<D>) -> Result<()> {
        let dims = t.dims().to_vec();
        let v = t
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        self.index.insert(name.into(), (self.values.len(), dims));
        self.values.extend(v);
        Ok(())
    }

    fn write(&self, dir: &Path, mut manifest: serde_json::Value) -> Result<()> {
        let bytes: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("tensors.f32"), bytes)?;
        manifest["tensors"] = serde_json::to_value(&self.index)?;
        std::fs::write(dir.join("manifest.json"), manifest.to_string())?;
        Ok(())
    }
}

/// Writes Keel's initial weights and a fixed batch (and, for the series peer, the training rows),
/// has the peer compute its parameter counts and losses on them, and compares with Keel's.
fn check_peer(case: Case, data: &Data, a: &SpeedArgs, dir: &Path) -> Result<String> {
    let cfg = case.config(1)?;
    let t = Trainer::new(cfg.clone(), data.train_data(), Device::flex().autodiff())?;
    let dev = t.device.clone();
    let b = cfg.train.batch;
    let mut ts = Tensors::default();
    let linears = |prefix: &str, layers: Vec<&burn::nn::Linear>, ts: &mut Tensors| -> Result<()> {
        for (i, l) in layers.into_iter().enumerate() {
            ts.put(&format!("{prefix}{i}.w"), l.weight.val())?;
            let bias = l.bias.as_ref().context("Keel's layers have biases")?;
            ts.put(&format!("{prefix}{i}.b"), bias.val())?;
        }
        Ok(())
    };
    linears(
        "g",
        t.g.hidden.iter().chain(t.g.out.iter()).collect(),
        &mut ts,
    )?;
    linears(
        "d",
        t.d.hidden.iter().chain(std::iter::once(&t.d.out)).collect(),
        &mut ts,
    )?;
    if let Some(e) = &t.d.embed {
        ts.put("embed", e.val())?;
    }
    // The fixed batch: the training rows in order (repeated when fewer than `b`), latents and ε
    // from a seeded stream.
    let mut rng = Pcg64Mcg::seed_from_u64(7);
    let n = data.points.len() / data.dim;
    let rows: Vec<f32> = (0..b)
        .flat_map(|i| &data.points[(i % n) * data.dim..(i % n + 1) * data.dim])
        .copied()
        .collect();
    let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(rows, [b, data.dim]), &dev);
    let y = (data.classes > 0).then(|| {
        let labels: Vec<usize> = (0..b).map(|i| data.labels[i % n]).collect();
        one_hot(&labels, data.classes, &dev)
    });
    let latent = cfg.model.latent;
    let z_d = normal_tensor(&mut rng, b, latent, 1.0, &dev);
    let z_g = normal_tensor(&mut rng, b, latent, 1.0, &dev);
    let eps = uniform_tensor(&mut rng, b, 1, &dev);
    let joined = |z: &Tensor<2>| match &y {
        Some(y) => Tensor::cat(vec![z.clone(), y.clone()], 1),
        None => z.clone(),
    };
    let gen = |z: Tensor<2>| {
        t.g.forward(
            z,
            GenMode {
                train: false,
                update_stats: false,
                noise: None,
            },
        )
    };
    let w = t.d.weights(false);
    let fake = gen(joined(&z_d)).detach();
    let f_g = t.d.forward(&w, gen(joined(&z_g)), y.clone());
    let kind = cfg.loss.kind;
    let (loss_d, loss_g) = match case {
        Case::Series => {
            let (r, grad) = t.d.forward_with_input_grad(&w, x.clone(), y.clone());
            let f = t.d.forward(&w, fake, y.clone());
            let l = d_loss(kind, r, f, 0.0) + grad_sq_penalty(grad, cfg.penalty.r1);
            (l, g_loss(kind, f_g.clone(), f_g))
        }
        Case::WganGp => {
            let r = t.d.forward(&w, x.clone(), None);
            let f = t.d.forward(&w, fake.clone(), None);
            let p = &cfg.penalty;
            let gp = gradient_penalty(
                &t.d,
                &w,
                x.clone(),
                fake,
                None,
                eps.clone(),
                p.gp,
                p.gp_side,
                p.gp_target,
            );
            (d_loss(kind, r, f, 0.0) + gp, g_loss(kind, f_g.clone(), f_g))
        }
        Case::NsGan => {
            let r = t.d.forward(&w, x.clone(), None);
            let f = t.d.forward(&w, fake, None);
            (d_loss(kind, r, f, 0.0), g_loss(kind, f_g.clone(), f_g))
        }
    };
    let (loss_d, loss_g) = (loss_d.into_scalar::<f64>(), loss_g.into_scalar::<f64>());
    ts.put("x", x)?;
    if let Some(y) = y {
        ts.put("y", y)?;
    }
    ts.put("z_d", z_d)?;
    ts.put("z_g", z_g)?;
    ts.put("eps", eps)?;
    let m = &cfg.model;
    ts.write(
        dir,
        serde_json::json!({
            "case": case.key(), "latent": latent, "classes": data.classes, "dim": data.dim,
            "width": m.g_width, "depth": m.g_depth, "slope": m.leaky_slope,
            "r1": cfg.penalty.r1, "gp": cfg.penalty.gp,
        }),
    )?;
    if case == Case::Series {
        let rows: Vec<u8> = data.points.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("rows.f32"), rows)?;
        let labels: Vec<u8> = data
            .labels
            .iter()
            .flat_map(|&k| (k as u32).to_le_bytes())
            .collect();
        std::fs::write(dir.join("labels.u32"), labels)?;
    }
    let v = run_json(
        Command::new(&a.python)
            .arg(&a.series_peer)
            .arg("--check")
            .arg(dir),
    )?;
    let peer = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("peer check lacks {k}"))
    };
    let (pg, pd) = (t.g.num_params() as f64, t.d.num_params() as f64);
    if peer("params_g")? != pg || peer("params_d")? != pd {
        bail!(
            "{}: the peer's networks are not Keel's: parameters G {} vs {pg}, D {} vs {pd}",
            case.name(),
            peer("params_g")?,
            peer("params_d")?
        );
    }
    let close =
        |ours: f64, theirs: f64| (ours - theirs).abs() <= LOSS_TOLERANCE * ours.abs().max(1.0);
    let (pl_d, pl_g) = (peer("loss_d")?, peer("loss_g")?);
    if !close(loss_d, pl_d) || !close(loss_g, pl_g) {
        bail!(
            "{}: the peer's loss is not Keel's on the same weights and batch: D {loss_d} vs {pl_d}, G {loss_g} vs {pl_g}",
            case.name()
        );
    }
    Ok(format!(
        "check {}: parameters G {pg} D {pd} (both); loss on a fixed batch D {loss_d:.6} vs {pl_d:.6}, G {loss_g:.6} vs {pl_g:.6}",
        case.name()
    ))
}
