//! Adam in one pass over each parameter. burn's `Adam` runs a dozen tensor ops per parameter (each
//! a pass over memory and a fresh buffer). This computes the same f32
//! operations in the same order element by element, so the weights are bit-identical to burn's
//! (`tests::matches_burns_adam_bit_for_bit`), and keeps burn's `AdamState`, so checkpoints written
//! by either load in the other.

use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor, TensorData};

#[derive(Clone)]
pub struct FusedAdam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("Keel's parameters are f32")
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
        let device = tensor.device();
        let shape = tensor.shape();
        let mut p = values(tensor);
        let g = values(grad);
        let (b1, b2) = (self.beta_1, self.beta_2);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        let (time, m, v) = match state {
            Some(s) => {
                let mut m = values(s.momentum.moment_1);
                let mut v = values(s.momentum.moment_2);
                for ((m, v), &g) in m.iter_mut().zip(v.iter_mut()).zip(&g) {
                    *m = *m * b1 + g * f1;
                    *v = *v * b2 + (g * g) * f2;
                }
                (s.momentum.time + 1, m, v)
            }
            None => (
                1,
                g.iter().map(|&g| g * f1).collect(),
                g.iter().map(|&g| (g * g) * f2).collect::<Vec<f32>>(),
            ),
        };
        let bc2 = (1.0 - b2.powi(time as i32)).sqrt();
        let combined = bc2 / (1.0 - b1.powi(time as i32));
        let eps = self.epsilon * bc2;
        let lr = lr as f32;
        for ((p, &m), &v) in p.iter_mut().zip(&m).zip(&v) {
            *p -= ((m * combined) / (v.sqrt() + eps)) * lr;
        }
        let tensor_of = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, shape.clone()), &device);
        let momentum = AdaptiveMomentumState::new(time, tensor_of(m), tensor_of(v));
        (tensor_of(p), Some(AdamState::new(momentum)))
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
}
