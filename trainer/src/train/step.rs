//! One generator step: n_critic discriminator updates, then one generator update.

use super::mlp_step::{self, class_indices, plain, Objective};
use super::{
    build_optimizer, clip_if_set, clip_weights, learning_rate, normal_tensor, uniform_tensor,
    Augmenter, Batcher, Ema, Faults,
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
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
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
    /// Augmentation probability after this step (ADA moves it).
    pub augment_p: f64,
    /// D's sign accuracy on the last D update: real above, fake below its decision threshold
    /// (0 for logits and hinge, ½ for least squares, the midpoint of the means for a critic).
    pub d_acc: f64,
}

/// What a trainer learns from: normalised rows, and their classes when labelled.
pub struct TrainData {
    pub points: Vec<f32>,
    pub dim: usize,
    /// One class index per row, or empty.
    pub labels: Vec<usize>,
    pub classes: usize,
    /// `[channels, length]` for series (augmentation needs it).
    pub shape: Option<[usize; 2]>,
}

impl TrainData {
    /// A dataset's rows, already normalised (`points`), with its labels and shape.
    pub fn from_dataset(d: &crate::data::Dataset, points: Vec<f32>) -> Self {
        Self {
            points,
            dim: d.dim,
            labels: d.labels.clone(),
            classes: d.classes.len(),
            shape: d.shape,
        }
    }

    /// Unlabelled `dim`-dimensional points.
    pub fn points(points: Vec<f32>, dim: usize) -> Self {
        Self {
            points,
            dim,
            labels: Vec::new(),
            classes: 0,
            shape: None,
        }
    }
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub device: Device,
    pub g: Generator,
    pub d: Discriminator,
    /// The EMA of G's weights, when `train.ema` > 0.
    pub ema: Option<Ema>,
    pub(super) opt_g: ModuleOptimizer,
    pub(super) opt_d: ModuleOptimizer,
    batcher: Batcher,
    /// Augmentation of D's inputs (series with `augment` enabled).
    pub augmenter: Option<Augmenter>,
    pub(super) rng: Pcg64Mcg,
    /// Generator steps taken so far.
    pub step: usize,
    /// Faults injected on purpose (`--inject`), to prove the watchdog.
    pub faults: Faults,
    /// Stand-ins that hold `g`'s and `d`'s places while the optimizer has them (`step_moved`).
    g_spare: Option<Generator>,
    d_spare: Option<Discriminator>,
}

/// `update(live)` with the module moved out of its place and `spare` standing in. burn's
/// optimizers take the module by value; handed a clone, every weight's buffer would be held twice
/// and the fused Adam would copy each one before updating it (2 % of a series step, and an
/// allocation per weight). Moved, it updates them where they lie: the same values.
fn step_moved<M>(live: &mut M, spare: &mut Option<M>, update: impl FnOnce(M) -> M) {
    let stand_in = spare
        .take()
        .expect("a spare module is in place between steps");
    let m = std::mem::replace(live, stand_in);
    *spare = Some(std::mem::replace(live, update(m)));
}

/// gemm (the CPU backend's matmul) packs a left operand that is already column-major into panels
/// once C has more than 8 × 6 columns, which is every batch-64 product here; read where it lies it is
/// faster at these sizes (alternating the setting step by step in one `keel train --data
/// basicmotions` run, one thread: 9.10 → 8.82 ms a step; grid25 3.93 → 3.85 ms). Packing only
/// copies, so the results are the same bits. The setting is process-wide and idempotent.
fn read_column_major_lhs_in_place() {
    gemm::set_lhs_packing_threshold_single_thread(256);
}

/// A copy of `m` whose weights have buffers of their own (a clone shares them).
fn unshared<M: Module>(m: &M) -> M {
    struct Fresh;
    impl burn::module::ModuleMapper for Fresh {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            param.map(|t| Tensor::from_data(t.to_data(), &t.device()))
        }
    }
    m.clone().map(&mut Fresh)
}

impl Trainer {
    /// `data` is normalised. `device` must have autodiff. Augmentation needs series data.
    pub fn new(cfg: TrainConfig, data: TrainData, device: Device) -> anyhow::Result<Self> {
        let mut rng = Pcg64Mcg::seed_from_u64(cfg.train.seed);
        let TrainData {
            points,
            dim,
            labels,
            classes,
            shape,
        } = data;
        if classes > 0 && labels.len() * dim != points.len() {
            anyhow::bail!("{} labels for {} rows", labels.len(), points.len() / dim);
        }
        let augmenter = match (cfg.augment.enabled(), shape) {
            (false, _) => None,
            (true, Some(shape)) => Some(Augmenter::new(&cfg.augment, shape)),
            (true, None) => anyhow::bail!(
                "`augment` transforms series; this dataset is a table (set augment.p=0 and augment.ada_target=0)"
            ),
        };
        let g = Generator::new(&cfg.model, classes, dim, shape, &mut rng, &device)?;
        let d = match (shape, cfg.model.d_conv) {
            (_, 0) => Discriminator::new(&cfg.model, dim, classes, &mut rng, &device),
            (Some(shape), _) => {
                Discriminator::new_series(&cfg.model, shape, classes, &mut rng, &device)
            }
            (None, _) => anyhow::bail!(
                "`model.d_conv` convolves series; this dataset is a table (set model.d_conv=0)"
            ),
        };
        if let Some([_, t]) = shape {
            let mut len = t;
            for _ in 0..cfg.model.d_conv {
                if len < 2 {
                    anyhow::bail!("`model.d_conv` = {}: series of {t} steps are too short for that many stride-2 convolutions", cfg.model.d_conv);
                }
                len = len.div_ceil(2);
            }
        }
        let ema = (cfg.train.ema > 0.0).then(|| Ema::new(&g, cfg.train.ema));
        let (g_spare, d_spare) = (Some(unshared(&g)), Some(unshared(&d)));
        read_column_major_lhs_in_place();
        let opt_g = build_optimizer(&cfg.optim);
        let opt_d = build_optimizer(&cfg.optim);
        Ok(Self {
            batcher: Batcher::new(points, dim, labels, classes),
            augmenter,
            cfg,
            device,
            g,
            d,
            ema,
            opt_g,
            opt_d,
            rng,
            step: 0,
            faults: Faults::default(),
            g_spare,
            d_spare,
        })
    }

    /// Whether this update's gradients are taken by hand (`mlp_step`) rather than through burn's
    /// autodiff. Asked at every update: the watchdog's remedies change the settings mid-run (one
    /// adds instance noise, which only the graph takes).
    pub fn by_hand(&self) -> bool {
        mlp_step::applies(&self.cfg, &self.g, &self.d, &self.device)
    }

    /// D's view of a batch: instance noise, then augmentation.
    fn d_input(&mut self, x: Tensor<2>, sigma: f64) -> Tensor<2> {
        let x = self.with_noise(x, sigma);
        match &self.augmenter {
            Some(a) => a.augment(&mut self.rng, x, &self.device),
            None => x,
        }
    }

    /// G's input: latents joined with the one-hot classes of a conditional generator.
    fn g_input(&mut self, b: usize, y: Option<&Tensor<2>>) -> Tensor<2> {
        let z = normal_tensor(&mut self.rng, b, self.cfg.model.latent, 1.0, &self.device);
        match y {
            Some(y) => Tensor::cat(vec![z, y.clone()], 1),
            None => z,
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
        let b = cfg.train.batch;
        let spike = self.faults.lr_multiplier(self.step);
        // Schedules that need the length are refused with `auto` steps: the cap is the count here.
        let cap = cfg.train.cap(cfg.optim.lr_g);
        let lr_g = spike * learning_rate(&cfg.optim, cfg.optim.lr_g, self.step, cap);
        let lr_d = spike * learning_rate(&cfg.optim, cfg.optim.lr_d, self.step, cap);
        let sigma = self.instance_noise();
        let mut stats = StepStats {
            lr_g,
            lr_d,
            instance_noise: sigma,
            ..Default::default()
        };

        if self.faults.d_boost_now(self.step) {
            // The fault: D trains alone at a rate far above its own.
            for _ in 0..super::inject::D_BOOST_UPDATES {
                self.d_update(lr_d * super::inject::D_BOOST_LR, sigma, &mut stats, false);
            }
        }
        let poison = self.faults.nan_batch_now(self.step);
        for i in 0..cfg.train.n_critic {
            self.d_update(lr_d, sigma, &mut stats, poison && i == 0);
        }

        // Generator step through a frozen copy of D.
        let y = self
            .batcher
            .classes_like_data(&mut self.rng, b, &self.device);
        let z = self.g_input(b, y.as_ref());
        if self.by_hand() {
            let classes = y.as_ref().map(class_indices);
            let (grads, loss) = mlp_step::g_gradients(
                &self.g,
                &self.d,
                plain(z),
                classes.as_deref(),
                cfg.loss.kind,
            );
            stats.loss_g = loss;
            self.g_apply(grads, lr_g, &mut stats);
            return stats;
        }
        let mode = GenMode {
            train: true,
            update_stats: true,
            noise: Some(&mut self.rng),
        };
        let fake = self.g.forward(z, mode);
        let fake_in = self.d_input(fake, sigma);
        let d_frozen = self.d.clone().no_grad();
        let w = d_frozen.weights(false);
        let f = d_frozen.forward(&w, fake_in, y);
        let r = if cfg.loss.kind == LossKind::RelativisticAverage {
            let real = self.batcher.batch(&mut self.rng, b, &self.device);
            let real_in = self.d_input(real.x, sigma);
            d_frozen.forward(&w, real_in, real.y)
        } else {
            f.clone()
        };
        let mut loss = g_loss(cfg.loss.kind, r, f);
        if let Some(p) = weight_penalty(&self.g, cfg.regularize.l1_g, cfg.regularize.l2_g) {
            loss = loss + p;
        }
        stats.loss_g = loss.clone().into_scalar::<f64>();
        let grads = GradientsParams::from_grads(loss.backward(), &self.g);
        self.g_apply(grads, lr_g, &mut stats);
        stats
    }

    /// G's update from its gradients, then the step count, ADA's figure and the EMA.
    fn g_apply(&mut self, mut grads: GradientsParams, lr_g: f64, stats: &mut StepStats) {
        let cfg = &self.cfg;
        stats.grad_norm_g = clip_if_set(&self.g, &mut grads, cfg.regularize.grad_clip);
        let opt = &mut self.opt_g;
        step_moved(&mut self.g, &mut self.g_spare, |g| opt.step(lr_g, g, grads));
        self.step += 1;
        stats.augment_p = self.augmenter.as_ref().map_or(0.0, |a| a.p);
        if let Some(ema) = &mut self.ema {
            ema.update(&self.g, self.step <= cfg.train.ema_start);
        }
    }

    /// One discriminator update; `poison` turns the real batch into NaN (the `nan-batch` fault).
    fn d_update(&mut self, lr_d: f64, sigma: f64, stats: &mut StepStats, poison: bool) {
        let cfg = self.cfg.clone();
        let b = cfg.train.batch;
        let mut real = self.batcher.batch(&mut self.rng, b, &self.device);
        if poison {
            real.x = real.x.mul_scalar(f32::NAN);
        }
        let y = real.y;
        // Fakes share the real batch's classes, so an interpolate between them has one class.
        let z = self.g_input(b, y.as_ref());
        if self.by_hand() {
            let fake = mlp_step::generate(&self.g, plain(z));
            let classes = y.as_ref().map(class_indices);
            let (grads, t) = mlp_step::d_gradients(
                &self.d,
                plain(real.x),
                fake,
                classes.as_deref(),
                Objective::of(&cfg),
            );
            accuracy(cfg.loss.kind, &t.r, &t.f, stats);
            if cfg.penalty.r1 > 0.0 || cfg.penalty.r2 > 0.0 {
                stats.penalty = t.penalty;
            }
            stats.loss_d = t.loss;
            self.d_apply(grads, lr_d, stats);
            return;
        }
        // Fakes for D come from G on the inner backend: no orphan graph is left behind.
        let g_inner = self.g.valid();
        let mode = GenMode {
            train: true,
            update_stats: false,
            noise: Some(&mut self.rng),
        };
        let fake = Tensor::from_inner(g_inner.forward(z.inner(), mode));
        let real_in = self.d_input(real.x, sigma);
        let fake_in = self.d_input(fake, sigma);

        let w = self.d.weights(true);
        let pc = cfg.penalty.clone();
        let (r, r_grad, f, f_grad) = self.d_outputs(&w, &real_in, &fake_in, &y);
        if let Some(a) = &mut self.augmenter {
            let v = r.clone().into_data().convert::<f32>();
            a.observe(v.as_slice::<f32>().unwrap_or(&[]), b);
        }
        d_accuracy(cfg.loss.kind, &r, &f, stats);
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
                real_in,
                fake_in,
                y,
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
        let grads = GradientsParams::from_grads(loss.backward(), &self.d);
        drop(w);
        self.d_apply(grads, lr_d, stats);
    }

    /// D's update from its gradients (clipped when set), then weight clipping when set.
    fn d_apply(&mut self, mut grads: GradientsParams, lr_d: f64, stats: &mut StepStats) {
        let cfg = &self.cfg;
        stats.grad_norm_d = clip_if_set(&self.d, &mut grads, cfg.regularize.grad_clip);
        let opt = &mut self.opt_d;
        step_moved(&mut self.d, &mut self.d_spare, |d| opt.step(lr_d, d, grads));
        if cfg.regularize.weight_clip > 0.0 {
            self.d = clip_weights(self.d.clone(), cfg.regularize.weight_clip);
        }
    }

    /// D on the real and the fake batch, with ∇ₓD where R1 (real) or R2 (fake) needs it.
    fn d_outputs(
        &self,
        w: &DWeights,
        real_in: &Tensor<2>,
        fake_in: &Tensor<2>,
        y: &Option<Tensor<2>>,
    ) -> DOutputs {
        let pc = &self.cfg.penalty;
        // Real and fake go through D as one batch: larger matmuls, and one weight gradient per
        // layer instead of two summed. R1 (real) and R2 (fake) need ∇ₓD on their rows, which the
        // same pass gives. Minibatch-std couples the rows of a batch, so with it each goes alone.
        if self.d.minibatch_std {
            let (r, r_grad) = self.d_pass(w, real_in.clone(), y.clone(), pc.r1 > 0.0);
            let (f, f_grad) = self.d_pass(w, fake_in.clone(), y.clone(), pc.r2 > 0.0);
            return (r, r_grad, f, f_grad);
        }
        let b = real_in.dims()[0];
        let y2 = y
            .as_ref()
            .map(|y| Tensor::cat(vec![y.clone(), y.clone()], 0));
        let both = Tensor::cat(vec![real_in.clone(), fake_in.clone()], 0);
        let rows = match (pc.r1 > 0.0, pc.r2 > 0.0) {
            (false, false) => None,
            (true, false) => Some(0..b),
            (false, true) => Some(b..2 * b),
            (true, true) => Some(0..2 * b),
        };
        let Some(rows) = rows else {
            let out = self.d.forward(w, both, y2);
            return (out.clone().narrow(0, 0, b), None, out.narrow(0, b, b), None);
        };
        let (out, g) = self.d.forward_with_input_grad_of_rows(w, both, y2, rows);
        let (r, f) = (out.clone().narrow(0, 0, b), out.narrow(0, b, b));
        match (pc.r1 > 0.0, pc.r2 > 0.0) {
            (true, false) => (r, Some(g), f, None),
            (false, true) => (r, None, f, Some(g)),
            _ => (
                r,
                Some(g.clone().narrow(0, 0, b)),
                f,
                Some(g.narrow(0, b, b)),
            ),
        }
    }

    /// D(x), with ∇ₓ Σ D(x) when `with_grad`.
    fn d_pass(
        &self,
        w: &DWeights,
        x: Tensor<2>,
        y: Option<Tensor<2>>,
        with_grad: bool,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        if with_grad {
            let (out, g) = self.d.forward_with_input_grad(w, x, y);
            (out, Some(g))
        } else {
            (self.d.forward(w, x, y), None)
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

/// D(real), ∇ₓD(real) when asked, D(fake), ∇ₓD(fake) when asked.
type DOutputs = (Tensor<2>, Option<Tensor<2>>, Tensor<2>, Option<Tensor<2>>);

/// Mean D(real), mean D(fake) and D's accuracy at telling them apart (by sign, or against the
/// loss's own threshold).
fn d_accuracy(kind: LossKind, r: &Tensor<2>, f: &Tensor<2>, stats: &mut StepStats) {
    // On the inner backend: statistics, not part of the graph the loss differentiates.
    let (r, f) = (&r.clone().inner(), &f.clone().inner());
    stats.d_real = r.clone().mean().into_scalar::<f64>();
    stats.d_fake = f.clone().mean().into_scalar::<f64>();
    let threshold = decision_threshold(kind, stats);
    let right = r
        .clone()
        .greater_elem(threshold)
        .int()
        .sum()
        .into_scalar::<i64>()
        + f.clone()
            .lower_equal_elem(threshold)
            .int()
            .sum()
            .into_scalar::<i64>();
    stats.d_acc = right as f64 / (r.dims()[0] + f.dims()[0]) as f64;
}

/// `d_accuracy` on D's outputs as values (the hand-differentiated update's).
fn accuracy(kind: LossKind, r: &[f32], f: &[f32], stats: &mut StepStats) {
    let mean = |v: &[f32]| v.iter().map(|x| f64::from(*x)).sum::<f64>() / v.len() as f64;
    stats.d_real = mean(r);
    stats.d_fake = mean(f);
    let threshold = decision_threshold(kind, stats);
    let right = r.iter().filter(|x| f64::from(**x) > threshold).count()
        + f.iter().filter(|x| f64::from(**x) <= threshold).count();
    stats.d_acc = right as f64 / (r.len() + f.len()) as f64;
}

/// Where D's output separates real from fake: 0 for logits and hinge, ½ for least squares, the
/// midpoint of the means (already in `stats`) for a critic.
fn decision_threshold(kind: LossKind, stats: &StepStats) -> f64 {
    match kind {
        LossKind::LeastSquares => 0.5,
        LossKind::Wasserstein => 0.5 * (stats.d_real + stats.d_fake),
        _ => 0.0,
    }
}
