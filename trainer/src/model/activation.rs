//! Activations with their derivatives, for the in-graph input gradient of D.

use crate::config::Activation;
use burn::tensor::{activation, Tensor};

#[derive(Debug, Clone, Copy)]
pub struct Act {
    pub kind: Activation,
    pub slope: f64,
}

impl Act {
    pub fn new(kind: Activation, slope: f64) -> Self {
        Self { kind, slope }
    }

    /// LeakyReLU is written `a·x + (1 − a)·relu(x)`: burn-onnx cannot export `LeakyRelu`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self.kind {
            Activation::Relu => activation::relu(x),
            Activation::LeakyRelu => {
                x.clone().mul_scalar(self.slope) + activation::relu(x).mul_scalar(1.0 - self.slope)
            }
            Activation::Tanh => activation::tanh(x),
        }
    }

    /// f'(pre) for the pre-activation `pre`. For the piecewise-linear ones the derivative is a
    /// constant mask (their second derivative is zero almost everywhere); for tanh it stays in the graph.
    pub fn derivative(&self, pre: Tensor<2>) -> Tensor<2> {
        match self.kind {
            Activation::Relu => pre.detach().greater_elem(0.0).float(),
            Activation::LeakyRelu => pre
                .detach()
                .greater_elem(0.0)
                .float()
                .mul_scalar(1.0 - self.slope)
                .add_scalar(self.slope),
            Activation::Tanh => {
                let t = activation::tanh(pre);
                t.clone().mul(t).neg().add_scalar(1.0)
            }
        }
    }
}
