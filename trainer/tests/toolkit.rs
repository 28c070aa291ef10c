//! The stability toolkit against closed forms: losses, spectral norm, weight clipping, EMA and
//! global-norm gradient clipping.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use keel_trainer::config::{ConfigBuilder, LossKind, ModelConfig};
use keel_trainer::model::{Discriminator, Generator};
use keel_trainer::objective::{d_loss, g_loss};
use keel_trainer::train::{clip_global_norm, clip_weights, global_norm, Ema, TrainData, Trainer};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

fn device() -> Device {
    Device::flex().autodiff()
}

fn col(v: &[f64], device: &Device) -> Tensor<2> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v.clone(), [v.len(), 1]), device)
}

fn sp(x: f64) -> f64 {
    (1.0 + x.exp()).ln()
}

fn mean(v: impl Iterator<Item = f64> + Clone) -> f64 {
    v.clone().sum::<f64>() / v.count() as f64
}

#[test]
fn losses_match_their_closed_forms() {
    let dev = device();
    let r = [0.5, -1.0, 2.0];
    let f = [0.2, -0.3, -2.5];
    let s = 0.1; // one-sided label smoothing
    let t = 1.0 - s;
    let mr = mean(r.iter().copied());
    let mf = mean(f.iter().copied());
    let bce = |x: f64, t: f64| t * sp(-x) + (1.0 - t) * sp(x);
    let cases: Vec<(LossKind, f64, f64)> = vec![
        (
            LossKind::NonSaturating,
            mean(r.iter().map(|&x| bce(x, t))) + mean(f.iter().map(|&x| sp(x))),
            mean(f.iter().map(|&x| sp(-x))),
        ),
        (
            LossKind::Minimax,
            mean(r.iter().map(|&x| bce(x, t))) + mean(f.iter().map(|&x| sp(x))),
            -mean(f.iter().map(|&x| sp(x))),
        ),
        (LossKind::Wasserstein, mf - mr, -mf),
        (
            LossKind::Hinge,
            mean(r.iter().map(|&x| (1.0 - x).max(0.0)))
                + mean(f.iter().map(|&x| (1.0 + x).max(0.0))),
            -mf,
        ),
        (
            LossKind::LeastSquares,
            0.5 * (mean(r.iter().map(|&x| (x - t).powi(2))) + mean(f.iter().map(|&x| x * x))),
            0.5 * mean(f.iter().map(|&x| (x - 1.0).powi(2))),
        ),
        (
            LossKind::RelativisticAverage,
            mean(r.iter().map(|&x| bce(x - mf, t))) + mean(f.iter().map(|&x| sp(x - mr))),
            mean(r.iter().map(|&x| sp(x - mf))) + mean(f.iter().map(|&x| sp(-(x - mr)))),
        ),
    ];
    for (kind, want_d, want_g) in cases {
        let got_d = d_loss(kind, col(&r, &dev), col(&f, &dev), s).into_scalar::<f64>();
        let got_g = g_loss(kind, col(&r, &dev), col(&f, &dev)).into_scalar::<f64>();
        assert!(
            (got_d - want_d).abs() < 1e-5,
            "{kind:?} D loss {got_d} != {want_d}"
        );
        assert!(
            (got_g - want_g).abs() < 1e-5,
            "{kind:?} G loss {got_g} != {want_g}"
        );
    }
    // The textbook fixed point: D(x) = 1/2 everywhere gives the NS discriminator loss 2 ln 2.
    let zero = col(&[0.0, 0.0], &dev);
    let at_half = d_loss(LossKind::NonSaturating, zero.clone(), zero, 0.0).into_scalar::<f64>();
    assert!((at_half - 2.0 * 2f64.ln()).abs() < 1e-6);
}

#[test]
fn softplus_is_stable_for_large_logits() {
    let dev = device();
    let l = d_loss(
        LossKind::NonSaturating,
        col(&[200.0], &dev),
        col(&[-200.0], &dev),
        0.0,
    )
    .into_scalar::<f64>();
    assert!(l.is_finite() && l < 1e-6, "{l}");
}

/// Top singular value by power iteration on WᵀW in f64 (the reference, independent of the model code).
fn top_singular_value(w: &[f32], rows: usize, cols: usize) -> f64 {
    let mut v = vec![1.0f64; cols];
    for _ in 0..2000 {
        let wv: Vec<f64> = (0..rows)
            .map(|i| (0..cols).map(|j| w[i * cols + j] as f64 * v[j]).sum())
            .collect();
        let mut next: Vec<f64> = (0..cols)
            .map(|j| (0..rows).map(|i| w[i * cols + j] as f64 * wv[i]).sum())
            .collect();
        let n = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        next.iter_mut().for_each(|x| *x /= n);
        v = next;
    }
    let wv: Vec<f64> = (0..rows)
        .map(|i| (0..cols).map(|j| w[i * cols + j] as f64 * v[j]).sum())
        .collect();
    wv.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[test]
fn spectral_norm_converges_to_the_top_singular_value() {
    let dev = device();
    let cfg = ModelConfig {
        spectral_norm: true,
        d_width: 32,
        ..ModelConfig::default()
    };
    let d = Discriminator::new(&cfg, 2, 0, &mut Pcg64Mcg::seed_from_u64(7), &dev);
    // The persistent vector carries over: repeated steps converge without re-running from scratch.
    let mut w = d.weights(true);
    for _ in 0..200 {
        w = d.weights(true);
    }
    for (i, layer) in d.hidden.iter().enumerate() {
        let wt = layer.weight.val();
        let [rows, cols] = wt.dims();
        let data = wt.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let want = top_singular_value(&data, rows, cols);
        let got = w.sigmas[i] as f64;
        assert!(
            (got - want).abs() / want < 1e-3,
            "layer {i}: σ {got} vs top singular value {want}"
        );
        // The normalised weight has spectral norm 1.
        let wn = w.layers[i]
            .0
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((top_singular_value(&wn, rows, cols) - 1.0).abs() < 1e-3);
    }
}

fn small_config(extra: &[&str]) -> keel_trainer::config::TrainConfig {
    let mut b = ConfigBuilder::new()
        .set("model.g_width=16")
        .unwrap()
        .set("model.d_width=16")
        .unwrap()
        .set("train.batch=32")
        .unwrap();
    for kv in extra {
        b = b.set(kv).unwrap();
    }
    b.build().unwrap()
}

fn ring_points() -> Vec<f32> {
    keel_trainer::data::builtin("ring8", 0).unwrap().points
}

fn flat<M: Module>(m: &M) -> Vec<f32> {
    struct C(Vec<f32>);
    impl burn::module::ModuleVisitor for C {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.extend(
                p.val()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap(),
            );
        }
    }
    let mut c = C(Vec::new());
    m.visit(&mut c);
    c.0
}

#[test]
fn weight_clipping_bounds_parameters_and_they_still_move() {
    let dev = device();
    let cfg = ModelConfig {
        d_width: 8,
        d_activation: keel_trainer::config::Activation::LeakyRelu,
        ..ModelConfig::default()
    };
    let d = Discriminator::new(&cfg, 2, 0, &mut Pcg64Mcg::seed_from_u64(5), &dev);
    let d = clip_weights(d, 0.01);
    let before = flat(&d);
    assert!(
        before.iter().all(|v| v.abs() <= 0.01 + 1e-7),
        "clipped parameters stay in [-c, c]"
    );
    let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, -2.0, 1.0, 4.0], [2, 2]), &dev);
    let loss = d.forward(&d.weights(false), x, None).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &d);
    let g = flat_grads(&d, &grads);
    let mut opt = burn::optim::SgdConfig::new().init();
    let d = opt.step(0.1, d, grads);
    let after = flat(&d);
    // Every parameter with a gradient moves: a clamped non-leaf would be silently skipped.
    for i in 0..before.len() {
        assert_eq!(
            before[i] != after[i],
            g[i] != 0.0,
            "parameter {i}: gradient {} but {} -> {}",
            g[i],
            before[i],
            after[i]
        );
    }
    assert!(g.iter().filter(|v| **v != 0.0).count() > before.len() / 2);
    // And the trainer keeps WGAN-clip parameters in the box over several steps.
    let cfg = small_config(&[
        "loss.kind=wasserstein",
        "regularize.weight_clip=0.01",
        "optim.kind=rmsprop",
        "optim.lr_d=5e-5",
    ]);
    let mut t = Trainer::new(cfg, TrainData::points(ring_points(), 2), device()).unwrap();
    let first = {
        t.step();
        flat(&t.d)
    };
    for _ in 0..3 {
        t.step();
    }
    let later = flat(&t.d);
    assert!(later.iter().all(|v| v.abs() <= 0.01 + 1e-7));
    assert_ne!(first, later, "D trains under clipping");
}

#[test]
fn ema_follows_its_closed_form() {
    let dev = device();
    let cfg = ModelConfig {
        g_width: 4,
        g_depth: 1,
        ..ModelConfig::default()
    };
    let g0 = Generator::new(&cfg, 0, 2, None, &mut Pcg64Mcg::seed_from_u64(1), &dev).unwrap();
    let mut ema = Ema::new(&g0, 0.9);
    // Same parameters (same ids) as g0, every value shifted by 1.
    struct Shift;
    impl burn::module::ModuleMapper for Shift {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            p.map(|t| t.add_scalar(1.0))
        }
    }
    let g1 = g0.clone().map(&mut Shift);
    ema.update(&g1, false);
    let got = flat(&ema.apply(g0.valid()));
    let (a, b) = (flat(&g0), flat(&g1));
    for i in 0..a.len() {
        let want = 0.9 * a[i] + 0.1 * b[i];
        assert!(
            (got[i] - want).abs() < 1e-6,
            "param {i}: {} vs {want}",
            got[i]
        );
    }
    ema.update(&g1, true);
    assert_eq!(
        flat(&ema.apply(g0.valid())),
        b,
        "copy mode replaces the average"
    );
}

#[test]
fn global_norm_clipping_scales_all_gradients_together() {
    let dev = device();
    let cfg = ModelConfig {
        d_width: 8,
        ..ModelConfig::default()
    };
    let d = Discriminator::new(&cfg, 2, 0, &mut Pcg64Mcg::seed_from_u64(5), &dev);
    let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, -2.0, 1.0, 4.0], [2, 2]), &dev);
    let loss = d
        .forward(&d.weights(false), x, None)
        .powi_scalar(2)
        .sum()
        .mul_scalar(100.0);
    let mut grads = GradientsParams::from_grads(loss.backward(), &d);
    let before: Vec<f32> = flat_grads(&d, &grads);
    let norm = global_norm(&d, &grads);
    assert!(norm > 1.0);
    let plain = before
        .iter()
        .map(|&g| f64::from(g).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        (norm - plain).abs() < 1e-12 * plain,
        "the norm is √Σg² over every gradient: {norm} vs {plain}"
    );
    let reported = clip_global_norm(&d, &mut grads, 1.0);
    assert!((reported - norm).abs() < 1e-6 * norm);
    assert!(
        (global_norm(&d, &grads) - 1.0).abs() < 1e-4,
        "global norm after clipping is the maximum"
    );
    let after = flat_grads(&d, &grads);
    for (a, b) in before.iter().zip(&after) {
        assert!(
            (a / norm as f32 - b).abs() < 1e-5,
            "every tensor is scaled by the same factor"
        );
    }
}

fn flat_grads(d: &Discriminator, grads: &GradientsParams) -> Vec<f32> {
    struct C<'a>(&'a GradientsParams, Vec<f32>);
    impl burn::module::ModuleVisitor for C<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let g = self.0.get::<D>(p.id).unwrap();
            self.1
                .extend(g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = C(grads, Vec::new());
    d.visit(&mut c);
    c.1
}

#[test]
fn every_loss_optimizer_and_trick_trains_without_nan() {
    let combos: &[&[&str]] = &[
        &[
            "loss.kind=minimax",
            "optim.kind=sgd",
            "optim.momentum=0.9",
            "optim.lr_d=1e-2",
            "optim.lr_g=1e-2",
        ],
        &[
            "loss.kind=least-squares",
            "loss.label_smoothing=0.1",
            "model.g_batchnorm=true",
            "model.g_noise=true",
        ],
        &[
            "loss.kind=relativistic-average",
            "penalty.r2=1",
            "regularize.instance_noise=0.1",
            "regularize.instance_noise_anneal=5",
        ],
        &[
            "loss.kind=hinge",
            "model.spectral_norm=true",
            "model.d_minibatch_std=true",
            "regularize.grad_clip=1",
        ],
        &[
            "loss.kind=wasserstein",
            "penalty.gp=1",
            "penalty.gp_side=one-sided",
            "train.n_critic=3",
            "regularize.l2_d=1e-3",
            "regularize.l1_g=1e-4",
        ],
        &[
            "optim.kind=rmsprop",
            "optim.schedule=step",
            "optim.step_every=2",
            "train.ema=0.9",
            "model.g_activation=tanh",
        ],
    ];
    for extra in combos {
        let mut t = Trainer::new(
            small_config(extra),
            TrainData::points(ring_points(), 2),
            device(),
        )
        .unwrap();
        for _ in 0..8 {
            let s = t.step();
            assert!(
                s.loss_d.is_finite() && s.loss_g.is_finite() && s.grad_norm_d.is_finite(),
                "{extra:?}: {s:?}"
            );
        }
        let out = flat(&t.sampling_generator());
        assert!(out.iter().all(|v| v.is_finite()), "{extra:?}");
    }
}

#[test]
fn a_saved_batchnorm_generator_reloads_with_its_running_statistics() {
    let cfg = small_config(&[
        "model.g_batchnorm=true",
        "model.g_noise=true",
        "train.ema=0.5",
    ]);
    let mut t = Trainer::new(cfg.clone(), TrainData::points(ring_points(), 2), device()).unwrap();
    for _ in 0..5 {
        t.step();
    }
    let g = t.sampling_generator();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("g.bpk");
    g.clone().save_file(&path).unwrap();
    let inner = Device::flex();
    let fresh = Generator::new(
        &cfg.model,
        0,
        2,
        None,
        &mut Pcg64Mcg::seed_from_u64(99),
        &inner,
    )
    .unwrap();
    let loaded = fresh.try_load_file(&path).unwrap();
    let z = Tensor::<2>::from_data(
        TensorData::new(vec![0.3f32, -1.2, 0.7, 0.1, -0.4, 2.0], [3, 2]),
        &inner,
    );
    let mode = keel_trainer::model::generator::GenMode::inference;
    let a = g
        .forward(z.clone(), mode())
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    let b = loaded
        .forward(z, mode())
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(a, b, "reloaded generator differs");
    // The running statistics moved away from their initial values, so they were really saved.
    let rm = loaded.norms[0]
        .running_mean
        .value()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(
        rm.iter().any(|v| v.abs() > 1e-4),
        "running mean never updated: {rm:?}"
    );
}

/// Where a weight's values lie (the flex backend's buffer).
fn buffer_of<const D: usize>(p: &Param<Tensor<D>>) -> usize {
    let f = p
        .val()
        .inner()
        .try_into_primitive::<burn::backend::Flex>()
        .expect("a flex tensor");
    f.storage::<f32>().as_ptr() as usize
}

#[test]
fn the_optimizer_updates_the_weights_where_they_lie() {
    // A copy per weight per step is what handing the optimizer a clone of the networks cost.
    let cfg = small_config(&[]);
    let mut t = Trainer::new(cfg, TrainData::points(ring_points(), 2), device()).unwrap();
    t.step();
    let before = (
        buffer_of(&t.d.hidden[0].weight),
        buffer_of(&t.g.hidden[0].weight),
    );
    let values = flat(&t.d);
    t.step();
    let after = (
        buffer_of(&t.d.hidden[0].weight),
        buffer_of(&t.g.hidden[0].weight),
    );
    assert_ne!(flat(&t.d), values, "D trained");
    assert_eq!(
        before, after,
        "D's and G's first weights stay in their buffers"
    );
}
