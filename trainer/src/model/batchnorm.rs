//! BatchNorm1d for the generator whose train/inference behaviour is an argument, not a property of
//! the device: the discriminator step draws fakes from G on the inner backend, still in train mode.
//! Inference uses burn's `batch_norm` op so the exported graph carries a real BatchNormalization.

use burn::module::{Module, Param, RunningState};
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct GenBatchNorm {
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
    pub running_mean: RunningState<Tensor<1>>,
    pub running_var: RunningState<Tensor<1>>,
    pub momentum: f64,
    pub epsilon: f64,
}

impl GenBatchNorm {
    pub fn new(features: usize, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([features], device)),
            beta: Param::from_tensor(Tensor::zeros([features], device)),
            running_mean: RunningState::new(Tensor::zeros([features], device)),
            running_var: RunningState::new(Tensor::ones([features], device)),
            momentum: 0.1,
            epsilon: 1e-5,
        }
    }

    /// `train`: normalise with the batch statistics; `update`: also move the running statistics.
    /// `x` is `[N, F]` or `[N, C, T]`: statistics per feature / channel (over N and T).
    pub fn forward<const D: usize>(&self, x: Tensor<D>, train: bool, update: bool) -> Tensor<D> {
        if !train {
            return burn::tensor::module::batch_norm(
                x,
                self.gamma.val(),
                self.beta.val(),
                self.running_mean.value(),
                self.running_var.value(),
                self.epsilon,
            );
        }
        let dims = x.dims();
        let n = dims.iter().product::<usize>() / dims[1];
        let per_channel = |t: Tensor<D>| (0..D).filter(|&d| d != 1).fold(t, |t, d| t.mean_dim(d));
        let mean = per_channel(x.clone());
        let centred = x.sub(mean.clone());
        let var = per_channel(centred.clone().powi_scalar(2));
        if update {
            let m = self.momentum;
            let unbiased = var
                .clone()
                .detach()
                .mul_scalar(n as f64 / (n.max(2) - 1) as f64);
            let rm = self.running_mean.value_sync().mul_scalar(1.0 - m)
                + mean.detach().flatten::<1>(0, D - 1).mul_scalar(m);
            let rv = self.running_var.value_sync().mul_scalar(1.0 - m)
                + unbiased.flatten::<1>(0, D - 1).mul_scalar(m);
            self.running_mean.update(rm.detach());
            self.running_var.update(rv.detach());
        }
        let normed = centred.div(var.add_scalar(self.epsilon).sqrt());
        let mut shape = [1usize; D];
        shape[1] = dims[1];
        normed
            .mul(self.gamma.val().reshape(shape))
            .add(self.beta.val().reshape(shape))
    }
}
