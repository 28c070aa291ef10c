//! One generator step: n_critic discriminator updates, then one generator update.

use super::{
    build_optimizer, clip_global_norm, clip_weights, global_norm, learning_rate, normal_tensor,
    uniform_tensor, Batcher, Ema,
};
use crate::config::{LossKind, TrainConfig};
use crate::model::generator::GenMode;
use crate::model::{DWeights, Discriminator, Generator};
use crate::objective::{d_loss, g_loss, grad_sq_penalty, gradient_penalty, weight_penalty};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// What one generator step measured (last D update's figures for D).
#[derive(Debug, Clone, Default)]
pub struct StepStats {
    pub loss_d: f64,
    pub loss_g: f64,
    /// Mean raw D output (logit or critic value) on real and on fake samples.
    pub d_real: f64,
    pub d_fake: f64,
    /// Total penalty term added to D's loss (GP + R1 + R2 + weight penalties).
    pub penalty: f64,
    /// Global gradient norms before clipping.
    pub grad_norm_d: f64,
    pub grad_norm_g: f64,
    pub lr_g: f64,
    pub lr_d: f64,
    pub instance_noise: f64,
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub device: Device,
    pub g: Generator,
    pub d: Discriminator,
    /// The EMA of G's weights, when `train.ema` > 0.
    pub ema: Option<Ema>,
    opt_g: ModuleOptimizer,
    opt_d: ModuleOptimizer,
    batcher: Batcher,
    rng: Pcg64Mcg,
    /// Generator steps taken so far.
    pub step: usize,
}

impl Trainer {
    /// `points` are the normalised training data, `dim` columns. `device` must have autodiff.
    pub fn new(cfg: TrainConfig, points: Vec<f32>, dim: usize, device: Device) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(cfg.train.seed);
        let g = Generator::new(&cfg.model, 0, dim, &mut rng, &device);
        let d = Discriminator::new(&cfg.model, dim, &mut rng, &device);
        let ema = (cfg.train.ema > 0.0).then(|| Ema::new(&g, cfg.train.ema));
        let opt_g = build_optimizer(&cfg.optim);
        let opt_d = build_optimizer(&cfg.optim);
        Self {
            batcher: Batcher::new(points, dim),
            cfg,
            device,
            g,
            d,
            ema,
            opt_g,
            opt_d,
            rng,
            step: 0,
        }
    }

    fn instance_noise(&self) -> f64 {
        let r = &self.cfg.regularize;
        if r.instance_noise_anneal == 0 {
            r.instance_noise
        } else {
            r.instance_noise * (1.0 - self.step as f64 / r.instance_noise_anneal as f64).max(0.0)
        }
    }

    fn with_noise(&mut self, x: Tensor<2>, sigma: f64) -> Tensor<2> {
        if sigma == 0.0 {
            return x;
        }
        let [b, d] = x.dims();
        x + normal_tensor(&mut self.rng, b, d, sigma, &self.device)
    }

    pub fn step(&mut self) -> StepStats {
        let cfg = self.cfg.clone();
        let (b, latent) = (cfg.train.batch, cfg.model.latent);
        let lr_g = learning_rate(&cfg.optim, cfg.optim.lr_g, self.step, cfg.train.steps);
        let lr_d = learning_rate(&cfg.optim, cfg.optim.lr_d, self.step, cfg.train.steps);
        let sigma = self.instance_noise();
        let mut stats = StepStats {
            lr_g,
            lr_d,
            instance_noise: sigma,
            ..Default::default()
        };

        for _ in 0..cfg.train.n_critic {
            let real = self.batcher.batch(&mut self.rng, b, &self.device);
            let z = normal_tensor(&mut self.rng, b, latent, 1.0, &self.device);
            // Fakes for D come from G on the inner backend: no orphan graph is left behind.
            let g_inner = self.g.valid();
            let mode = GenMode {
                train: true,
                update_stats: false,
                noise: Some(&mut self.rng),
            };
            let fake = Tensor::from_inner(g_inner.forward(z.inner(), mode));
            let real_in = self.with_noise(real.clone(), sigma);
            let fake_in = self.with_noise(fake.clone(), sigma);

            let w = self.d.weights(true);
            // R1/R2 need ∇ₓD on the same inputs: one pass gives both D(x) and the gradient.
            // Without them (and without minibatch-std, which couples the rows of a batch), real and
            // fake go through D as one batch: half the ops, larger matmuls.
            let pc = &cfg.penalty;
            let (r, r_grad, f, f_grad) = if pc.r1 == 0.0 && pc.r2 == 0.0 && !self.d.minibatch_std {
                let both = self
                    .d
                    .forward(&w, Tensor::cat(vec![real_in.clone(), fake_in.clone()], 0));
                (
                    both.clone().narrow(0, 0, b),
                    None,
                    both.narrow(0, b, b),
                    None,
                )
            } else {
                let (r, r_grad) = self.d_pass(&w, real_in.clone(), pc.r1 > 0.0);
                let (f, f_grad) = self.d_pass(&w, fake_in.clone(), pc.r2 > 0.0);
                (r, r_grad, f, f_grad)
            };
            stats.d_real = r.clone().mean().into_scalar::<f64>();
            stats.d_fake = f.clone().mean().into_scalar::<f64>();
            let mut loss = d_loss(cfg.loss.kind, r, f, cfg.loss.label_smoothing);
            let mut penalty: Option<Tensor<1>> = None;
            let mut add = |p: Tensor<1>| {
                penalty = Some(match penalty.take() {
                    Some(acc) => acc + p,
                    None => p,
                })
            };
            if pc.gp > 0.0 {
                let eps = uniform_tensor(&mut self.rng, b, 1, &self.device);
                add(gradient_penalty(
                    &self.d,
                    &w,
                    real_in.clone(),
                    fake_in.clone(),
                    eps,
                    pc.gp,
                    pc.gp_side,
                    pc.gp_target,
                ));
            }
            if let Some(g) = r_grad {
                add(grad_sq_penalty(g, pc.r1));
            }
            if let Some(g) = f_grad {
                add(grad_sq_penalty(g, pc.r2));
            }
            if let Some(p) = weight_penalty(&self.d, cfg.regularize.l1_d, cfg.regularize.l2_d) {
                add(p);
            }
            if let Some(p) = penalty {
                stats.penalty = p.clone().into_scalar::<f64>();
                loss = loss + p;
            }
            stats.loss_d = loss.clone().into_scalar::<f64>();
            let mut grads = GradientsParams::from_grads(loss.backward(), &self.d);
            stats.grad_norm_d = if cfg.regularize.grad_clip > 0.0 {
                clip_global_norm(&self.d, &mut grads, cfg.regularize.grad_clip)
            } else {
                global_norm(&self.d, &grads)
            };
            self.d = self.opt_d.step(lr_d, self.d.clone(), grads);
            if cfg.regularize.weight_clip > 0.0 {
                self.d = clip_weights(self.d.clone(), cfg.regularize.weight_clip);
            }
        }

        // Generator step through a frozen copy of D.
        let z = normal_tensor(&mut self.rng, b, latent, 1.0, &self.device);
        let mode = GenMode {
            train: true,
            update_stats: true,
            noise: Some(&mut self.rng),
        };
        let fake = self.g.forward(z, mode);
        let fake_in = self.with_noise(fake, sigma);
        let d_frozen = self.d.clone().no_grad();
        let w = d_frozen.weights(false);
        let f = d_frozen.forward(&w, fake_in);
        let r = if cfg.loss.kind == LossKind::RelativisticAverage {
            let real = self.batcher.batch(&mut self.rng, b, &self.device);
            let real_in = self.with_noise(real, sigma);
            d_frozen.forward(&w, real_in)
        } else {
            f.clone()
        };
        let mut loss = g_loss(cfg.loss.kind, r, f);
        if let Some(p) = weight_penalty(&self.g, cfg.regularize.l1_g, cfg.regularize.l2_g) {
            loss = loss + p;
        }
        stats.loss_g = loss.clone().into_scalar::<f64>();
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.g);
        stats.grad_norm_g = if cfg.regularize.grad_clip > 0.0 {
            clip_global_norm(&self.g, &mut grads, cfg.regularize.grad_clip)
        } else {
            global_norm(&self.g, &grads)
        };
        self.g = self.opt_g.step(lr_g, self.g.clone(), grads);
        self.step += 1;
        if let Some(ema) = &mut self.ema {
            ema.update(&self.g, self.step <= cfg.train.ema_start);
        }
        stats
    }

    /// D(x), with ∇ₓ Σ D(x) when `with_grad`.
    fn d_pass(
        &self,
        w: &DWeights,
        x: Tensor<2>,
        with_grad: bool,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        if with_grad {
            let (out, g) = self.d.forward_with_input_grad(w, x);
            (out, Some(g))
        } else {
            (self.d.forward(w, x), None)
        }
    }

    /// The generator that sampling and export use: EMA weights, inference mode, inner backend.
    pub fn sampling_generator(&self) -> Generator {
        match &self.ema {
            Some(ema) => ema.apply(self.g.valid()),
            None => self.g.valid(),
        }
    }
}
