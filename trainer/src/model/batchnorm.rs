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
    pub fn forward(&self, x: Tensor<2>, train: bool, update: bool) -> Tensor<2> {
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
        let [n, _] = x.dims();
        let mean = x.clone().mean_dim(0);
        let centred = x.sub(mean.clone());
        let var = centred.clone().powi_scalar(2).mean_dim(0);
        if update {
            let m = self.momentum;
            let unbiased = var
                .clone()
                .detach()
                .mul_scalar(n as f64 / (n.max(2) - 1) as f64);
            let rm = self.running_mean.value_sync().mul_scalar(1.0 - m)
                + mean.detach().squeeze_dim(0).mul_scalar(m);
            let rv = self.running_var.value_sync().mul_scalar(1.0 - m)
                + unbiased.squeeze_dim(0).mul_scalar(m);
            self.running_mean.update(rm.detach());
            self.running_var.update(rv.detach());
        }
        let normed = centred.div(var.add_scalar(self.epsilon).sqrt());
        normed
            .mul(self.gamma.val().unsqueeze())
            .add(self.beta.val().unsqueeze())
    }
}
