//! The in-graph input gradient of D equals burn's autodiff input gradient, and the penalties'
//! parameter gradients match central differences of the penalty, in f64.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use keel_trainer::config::{Activation, GpSide, ModelConfig};
use keel_trainer::model::Discriminator;
use keel_trainer::objective::{gradient_penalty, r_penalty};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// The flex device in f64 (a device is configured once per process).
fn f64_device() -> Device {
    static CONFIGURED: std::sync::Once = std::sync::Once::new();
    CONFIGURED.call_once(|| {
        Device::flex()
            .configure(FloatDType::F64)
            .expect("flex supports f64")
    });
    Device::flex().autodiff()
}

fn tensor(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    use rand::RngExt;
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let v: Vec<f64> = (0..rows * cols)
        .map(|_| rng.random_range(-1.5..1.5))
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

fn values(t: Tensor<2>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

fn model(act: Activation, mbstd: bool, sn: bool) -> ModelConfig {
    ModelConfig {
        d_width: 16,
        d_depth: 3,
        d_activation: act,
        d_minibatch_std: mbstd,
        spectral_norm: sn,
        ..ModelConfig::default()
    }
}

/// (name, config, classes): classes > 0 is a conditional D with the projection term.
fn variants() -> Vec<(&'static str, ModelConfig, usize)> {
    vec![
        ("relu", model(Activation::Relu, false, false), 0),
        ("leaky-relu", model(Activation::LeakyRelu, false, false), 0),
        ("tanh", model(Activation::Tanh, false, false), 0),
        (
            "leaky + minibatch std",
            model(Activation::LeakyRelu, true, false),
            0,
        ),
        (
            "tanh + minibatch std + spectral norm",
            model(Activation::Tanh, true, true),
            0,
        ),
        (
            "leaky + projection (3 classes)",
            model(Activation::LeakyRelu, false, false),
            3,
        ),
        (
            "tanh + minibatch std + spectral norm + projection",
            model(Activation::Tanh, true, true),
            3,
        ),
    ]
}

/// One-hot classes of `rows` inputs (row i has class i mod `classes`), or `None`.
fn classes_of(rows: usize, classes: usize, device: &Device) -> Option<Tensor<2>> {
    (classes > 0).then(|| {
        let labels: Vec<usize> = (0..rows).map(|i| i % classes).collect();
        keel_trainer::train::one_hot(&labels, classes, device)
    })
}

#[test]
fn in_graph_input_gradient_equals_autodiff() {
    let device = f64_device();
    for (name, cfg, classes) in variants() {
        let d = Discriminator::new(&cfg, 3, classes, &mut Pcg64Mcg::seed_from_u64(1), &device);
        let w = d.weights(false);
        let x = tensor(7, 3, 2, &device).require_grad();
        let y = classes_of(7, classes, &device);
        let grads = d.forward(&w, x.clone(), y.clone()).sum().backward();
        let autodiff = values(Tensor::from_inner(x.grad(&grads).expect("x is tracked")));
        let (_, in_graph) = d.forward_with_input_grad(&w, x.detach(), y);
        let in_graph = values(in_graph);
        let max = autodiff
            .iter()
            .zip(&in_graph)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            max < 1e-12,
            "{name}: in-graph input gradient differs from autodiff by {max:e}"
        );
    }
}

/// Real and fake share one pass through D (the training step's D update): the input gradient of a
/// range of rows is those rows of the whole batch's, and every output is the output of D alone.
#[test]
fn input_gradient_of_some_rows_is_those_rows_of_the_whole_batchs() {
    let device = f64_device();
    let n = SERIES[0] * SERIES[1];
    let mlps = variants()
        .into_iter()
        .filter(|(_, cfg, _)| !cfg.d_minibatch_std)
        .map(|(name, cfg, k)| (name, cfg, k, false));
    let convs = [
        (
            "conv leaky k5",
            conv_model(Activation::LeakyRelu, false, 5),
            0,
            true,
        ),
        (
            "conv tanh k3 + projection",
            conv_model(Activation::Tanh, true, 3),
            3,
            true,
        ),
    ];
    for (name, cfg, classes, conv) in mlps.chain(convs) {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let (d, cols) = if conv {
            (
                Discriminator::new_series(&cfg, SERIES, classes, &mut rng, &device),
                n,
            )
        } else {
            (Discriminator::new(&cfg, 3, classes, &mut rng, &device), 3)
        };
        let w = d.weights(false);
        let x = tensor(8, cols, 2, &device).require_grad();
        let y = classes_of(8, classes, &device);
        let out = values(d.forward(&w, x.clone(), y.clone()));
        let grads = d.forward(&w, x.clone(), y.clone()).sum().backward();
        let autodiff = values(Tensor::from_inner(x.grad(&grads).expect("x is tracked")));
        for rows in [0..4, 4..8, 3..5] {
            let (o, g) =
                d.forward_with_input_grad_of_rows(&w, x.clone().detach(), y.clone(), rows.clone());
            assert_eq!(g.dims(), [rows.len(), cols], "{name}");
            let want = &autodiff[rows.start * cols..rows.end * cols];
            let max = want
                .iter()
                .zip(&values(g))
                .chain(out.iter().zip(&values(o)))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(max < 1e-12, "{name}, rows {rows:?}: differs by {max:e}");
        }
    }
}

/// The first hidden layer's weight gradient of `penalty`, by autodiff and by central differences.
fn check_penalty<F>(name: &str, cfg: &ModelConfig, classes: usize, penalty: F)
where
    F: Fn(&Discriminator) -> Tensor<1>,
{
    let d = Discriminator::new(
        cfg,
        3,
        classes,
        &mut Pcg64Mcg::seed_from_u64(3),
        &f64_device(),
    );
    check_weight(
        name,
        &d,
        &penalty,
        |d| &mut d.hidden[0].weight,
        &[0, 5, 17, 30, 47],
    );
}

/// One weight tensor's gradient of `penalty`: autodiff against central differences at `indices`.
fn check_weight<const N: usize>(
    name: &str,
    d: &Discriminator,
    penalty: &dyn Fn(&Discriminator) -> Tensor<1>,
    weight: fn(&mut Discriminator) -> &mut Param<Tensor<N>>,
    indices: &[usize],
) {
    let device = f64_device();
    let grads = GradientsParams::from_grads(penalty(d).backward(), d);
    let w = weight(&mut d.clone()).clone();
    let flat =
        |t: Tensor<N>| -> Vec<f64> { t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap() };
    let analytic = flat(
        grads
            .get::<N>(w.id)
            .expect("the penalty reaches the weight"),
    );
    assert!(
        analytic.iter().any(|g| g.abs() > 1e-6),
        "{name}: the penalty gives D no gradient"
    );
    let base = flat(w.val().inner());
    let dims = w.val().dims();
    let h = 1e-6;
    for &idx in indices {
        let eval = |delta: f64| {
            let mut v = base.clone();
            v[idx] += delta;
            let mut dd = d.clone();
            *weight(&mut dd) =
                Param::from_tensor(Tensor::from_data(TensorData::new(v, dims), &device));
            penalty(&dd).into_scalar::<f64>()
        };
        let numeric = (eval(h) - eval(-h)) / (2.0 * h);
        let err = (numeric - analytic[idx]).abs();
        assert!(
            err < 1e-6 * (1.0 + numeric.abs()),
            "{name}: weight[{idx}] autodiff {} vs central difference {numeric} (error {err:e})",
            analytic[idx]
        );
    }
}

#[test]
fn penalty_parameter_gradients_match_central_differences() {
    let device = f64_device();
    let real = tensor(9, 3, 10, &device);
    let fake = tensor(9, 3, 11, &device);
    let eps = tensor(9, 1, 12, &device).abs().div_scalar(1.5);
    for (name, cfg, k) in variants().into_iter().filter(|(_, c, _)| !c.spectral_norm) {
        let y = classes_of(9, k, &device);
        check_penalty(&format!("R1 / {name}"), &cfg, k, |d| {
            r_penalty(d, &d.weights(false), real.clone(), y.clone(), 10.0)
        });
        check_penalty(&format!("R2 / {name}"), &cfg, k, |d| {
            r_penalty(d, &d.weights(false), fake.clone(), y.clone(), 10.0)
        });
        for side in [GpSide::TwoSided, GpSide::OneSided] {
            check_penalty(&format!("GP {side:?} / {name}"), &cfg, k, |d| {
                gradient_penalty(
                    d,
                    &d.weights(false),
                    real.clone(),
                    fake.clone(),
                    y.clone(),
                    eps.clone(),
                    10.0,
                    side,
                    0.05,
                )
            });
        }
    }
}

/// D with a Conv1d trunk (stride 2, odd length so the transposed convolution needs `padding_out`).
fn conv_model(act: Activation, sn: bool, kernel: usize) -> ModelConfig {
    ModelConfig {
        d_conv: 2,
        d_conv_channels: 4,
        d_conv_kernel: kernel,
        d_depth: 1,
        ..model(act, false, sn)
    }
}

const SERIES: [usize; 2] = [2, 9];

type Penalty<'a> = dyn Fn(&Discriminator) -> Tensor<1> + 'a;

#[test]
fn conv_trunk_input_gradient_equals_autodiff_and_its_penalties_train_the_kernels() {
    let device = f64_device();
    let n = SERIES[0] * SERIES[1];
    let variants = [
        (
            "conv leaky k5",
            conv_model(Activation::LeakyRelu, false, 5),
            0,
        ),
        (
            "conv relu k3 + projection",
            conv_model(Activation::Relu, false, 3),
            3,
        ),
        (
            "conv tanh k5 + spectral norm + projection",
            conv_model(Activation::Tanh, true, 5),
            3,
        ),
    ];
    for (name, cfg, k) in &variants {
        let d =
            Discriminator::new_series(cfg, SERIES, *k, &mut Pcg64Mcg::seed_from_u64(1), &device);
        let w = d.weights(false);
        let x = tensor(5, n, 2, &device).require_grad();
        let y = classes_of(5, *k, &device);
        let grads = d.forward(&w, x.clone(), y.clone()).sum().backward();
        let autodiff = values(Tensor::from_inner(x.grad(&grads).expect("x is tracked")));
        let (_, in_graph) = d.forward_with_input_grad(&w, x.detach(), y);
        let max = autodiff
            .iter()
            .zip(&values(in_graph))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            max < 1e-12,
            "{name}: in-graph input gradient differs from autodiff by {max:e}"
        );
    }
    // R1 and GP through the trunk: the first kernel's gradient against central differences.
    let real = tensor(6, n, 10, &device);
    let fake = tensor(6, n, 11, &device);
    let eps = tensor(6, 1, 12, &device).abs().div_scalar(1.5);
    for (name, cfg, k) in variants.iter().filter(|v| !v.1.spectral_norm) {
        let y = classes_of(6, *k, &device);
        let penalties: [(&str, Box<Penalty>); 2] = [
            (
                "R1",
                Box::new(|d: &Discriminator| {
                    r_penalty(d, &d.weights(false), real.clone(), y.clone(), 10.0)
                }),
            ),
            (
                "GP",
                Box::new(|d: &Discriminator| {
                    gradient_penalty(
                        d,
                        &d.weights(false),
                        real.clone(),
                        fake.clone(),
                        y.clone(),
                        eps.clone(),
                        10.0,
                        GpSide::TwoSided,
                        1.0,
                    )
                }),
            ),
        ];
        for (pname, penalty) in penalties {
            let d = Discriminator::new_series(
                cfg,
                SERIES,
                *k,
                &mut Pcg64Mcg::seed_from_u64(3),
                &device,
            );
            check_weight(
                &format!("{pname} / {name}"),
                &d,
                &*penalty,
                |d| &mut d.convs[0].weight,
                &[0, 3, 7, 12, 19],
            );
        }
    }
}
