//! Adam in one pass over each parameter. burn's `Adam` runs a dozen tensor ops per parameter (each
//! a pass over memory and a fresh buffer). This computes the same f32
//! operations in the same order element by element, so the weights are bit-identical to burn's
//! (`tests::matches_burns_adam_bit_for_bit`), and keeps burn's `AdamState`, so checkpoints written
//! by either load in the other. On the CPU it updates the weights and moments where they lie.

use super::in_place::Slab;
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

#[derive(Clone)]
pub struct FusedAdam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

/// The smallest effective ε (ε·√(1−β₂ᵗ)) beside which √ of any subnormal is below half an ulp, so
/// flushing subnormals cannot change the sum √v + ε (2⁻⁶³ / 1e-11 ≈ 1e-8 < 2⁻²⁴).
const FLUSH_MIN_EPS: f32 = 1e-11;

struct Coefficients {
    b1: f32,
    b2: f32,
    f1: f32,
    f2: f32,
    combined: f32,
    eps: f32,
    lr: f32,
}

/// One Adam update of a parameter's values, for `pulp`'s dispatcher: `with_simd` is inlined into
/// its AVX-512 / AVX2 copy (a closure would not be, and would run as baseline SSE2).
struct Pass<'a> {
    p: &'a mut [f32],
    g: &'a [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    first: bool,
    k: &'a Coefficients,
}

impl pulp::WithSimd for Pass<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        update(self.p, self.g, self.m, self.v, self.first, self.k);
    }
}

/// burn's Adam, element by element: the moments (on the first step from the gradient alone), then
/// the parameter.
#[inline(always)]
fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], first: bool, k: &Coefficients) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let gi = g[i];
        let (mi, vi) = if first {
            (gi * k.f1, (gi * gi) * k.f2)
        } else {
            (m[i] * k.b1 + gi * k.f1, v[i] * k.b2 + (gi * gi) * k.f2)
        };
        m[i] = mi;
        v[i] = vi;
        p[i] -= ((mi * k.combined) / (vi.sqrt() + k.eps)) * k.lr;
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        let (time, m, v, first) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1,
                s.momentum.moment_2,
                false,
            ),
            None => (1, grad.zeros_like(), grad.zeros_like(), true),
        };
        let (mut p, g, mut m, mut v) = (
            Slab::new(tensor),
            Slab::new(grad),
            Slab::new(m),
            Slab::new(v),
        );
        let (b1, b2) = (self.beta_1, self.beta_2);
        let bc2 = (1.0 - b2.powi(time as i32)).sqrt();
        let k = Coefficients {
            b1,
            b2,
            f1: 1.0 - b1,
            f2: 1.0 - b2,
            combined: bc2 / (1.0 - b1.powi(time as i32)),
            eps: self.epsilon * bc2,
            lr: lr as f32,
        };
        // One pass, with the widest vectors the CPU has: the same f32 operations per element at
        // any width, so the weights do not depend on it.
        // A zero gradient (a dead unit's) leaves v a subnormal that each step then takes through
        // the CPU's slow path (NS-GAN's Adam went from 13 % of a step to 2 %). Flushed to zero the
        // update is the same f32: √v < 2⁻⁶³ vanishes beside ε when ε·√(1−β₂ᵗ) ≥ 1e-11.
        let _flush = (k.eps >= FLUSH_MIN_EPS).then(super::denormals::FlushDenormals::new);
        pulp::Arch::new().dispatch(Pass {
            p: p.values_mut(),
            g: g.values(),
            m: m.values_mut(),
            v: v.values_mut(),
            first,
            k: &k,
        });
        let momentum = AdaptiveMomentumState::new(time, m.into_tensor(), v.into_tensor());
        (p.into_tensor(), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: AdamState<D>, device: &Device) -> AdamState<D> {
        AdamState::new(state.momentum.to_device(device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::Distribution;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn matches_burns_adam_bit_for_bit() {
        let device = Device::flex().autodiff();
        let layer = burn::nn::LinearConfig::new(7, 5).init(&device);
        let mut ours = burn::optim::ModuleOptimizer::from(FusedAdam {
            beta_1: 0.5,
            beta_2: 0.99,
            epsilon: 1e-8,
        });
        let mut burns = AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.99)
            .with_epsilon(1e-8)
            .init();
        let (mut a, mut b) = (layer.clone(), layer);
        for step in 0..5 {
            let x = Tensor::<2>::random([3, 7], Distribution::Normal(0.0, 1.0), &device);
            let ga = GradientsParams::from_grads(
                a.forward(x.clone()).powi_scalar(2).mean().backward(),
                &a,
            );
            let gb = GradientsParams::from_grads(b.forward(x).powi_scalar(2).mean().backward(), &b);
            a = ours.step(1e-2 * (step + 1) as f64, a, ga);
            b = burns.step(1e-2 * (step + 1) as f64, b, gb);
            let (wa, wb) = (values(a.weight.val()), values(b.weight.val()));
            assert!(
                wa.iter().zip(&wb).all(|(x, y)| x.to_bits() == y.to_bits()),
                "step {step}: {wa:?} vs {wb:?}"
            );
        }
    }

    #[test]
    fn matches_burns_adam_bit_for_bit_once_moments_are_subnormal() {
        let device = Device::flex();
        let n = 64;
        let ours = FusedAdam {
            beta_1: 0.5,
            beta_2: 0.9,
            epsilon: 1e-8,
        };
        let burns = AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.9)
            .with_epsilon(1e-8)
            .build();
        let fresh = |t: &Tensor<1>| Tensor::<1>::from_data(t.to_data(), &device);
        let p0 = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
        let (mut pa, mut pb) = (fresh(&p0), fresh(&p0));
        let (mut sa, mut sb) = (None, None);
        // The first half of the weights gets a gradient on the first step only, as a unit that
        // dies: v then decays by β₂ into the subnormals and sticks there.
        let alive: Vec<f32> = (0..n).map(|i| f32::from(u8::from(i >= n / 2))).collect();
        let alive = Tensor::<1>::from_data(burn::tensor::TensorData::new(alive, [n]), &device);
        for step in 0..1200 {
            let g = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
            let g = if step == 0 { g } else { g.mul(alive.clone()) };
            (pa, sa) = ours.step(1e-3, pa, fresh(&g), sa);
            (pb, sb) = burns.step(1e-3, pb, g, sb);
            let (wa, wb) = (values(pa.clone()), values(pb.clone()));
            assert!(
                wa.iter().zip(&wb).all(|(x, y)| x.to_bits() == y.to_bits()),
                "step {step}"
            );
        }
        let v = values(sb.expect("state").momentum.moment_2);
        assert!(
            v[..n / 2].iter().all(|x| x.is_subnormal()),
            "the dead weights' second moments reached the subnormals: {:?}",
            &v[..n / 2]
        );
    }
}
