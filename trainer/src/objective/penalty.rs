//! Penalties on D's input gradient (WGAN-GP, R1, R2), built in-graph by the discriminator's VJP,
//! and L1/L2 penalties on a network's weights.

use crate::config::GpSide;
use crate::model::{DWeights, Discriminator};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{activation::relu, Tensor};

/// λ·E[(‖∇D(x̂)‖ − t)²] (two-sided) or λ·E[max(0, ‖∇D(x̂)‖ − t)²] (one-sided) on x̂ = εx + (1 − ε)x̃,
/// ε ~ U[0, 1] per sample, given as `eps` [B, 1]; real and fake rows share the classes `y`.
#[allow(clippy::too_many_arguments)]
pub fn gradient_penalty(
    d: &Discriminator,
    w: &DWeights,
    real: Tensor<2>,
    fake: Tensor<2>,
    y: Option<Tensor<2>>,
    eps: Tensor<2>,
    lambda: f64,
    side: GpSide,
    target: f64,
) -> Tensor<1> {
    let x_hat = real.mul(eps.clone()) + fake.mul(eps.neg().add_scalar(1.0));
    let (_, g) = d.forward_with_input_grad(w, x_hat, y);
    let norm = g.powi_scalar(2).sum_dim(1).add_scalar(1e-12).sqrt();
    let excess = norm.sub_scalar(target);
    let excess = match side {
        GpSide::TwoSided => excess,
        GpSide::OneSided => relu(excess),
    };
    excess.powi_scalar(2).mean().mul_scalar(lambda)
}

/// (γ/2)·E‖∇ₓD(x)‖²: R1 on real samples, R2 on fakes (Mescheder et al. 2018).
pub fn r_penalty(
    d: &Discriminator,
    w: &DWeights,
    x: Tensor<2>,
    y: Option<Tensor<2>>,
    gamma: f64,
) -> Tensor<1> {
    let (_, g) = d.forward_with_input_grad(w, x, y);
    grad_sq_penalty(g, gamma)
}

/// (γ/2)·E‖g‖² for an input gradient `g` already computed.
pub fn grad_sq_penalty(g: Tensor<2>, gamma: f64) -> Tensor<1> {
    g.powi_scalar(2).sum_dim(1).mean().mul_scalar(gamma / 2.0)
}

/// l1·Σ|θ| + l2·Σθ² over every float parameter of `module`, in the graph.
pub fn weight_penalty<M: Module>(module: &M, l1: f64, l2: f64) -> Option<Tensor<1>> {
    if l1 == 0.0 && l2 == 0.0 {
        return None;
    }
    struct Acc {
        l1: f64,
        l2: f64,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Acc {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let mut term = t.clone().powi_scalar(2).sum().mul_scalar(self.l2);
            if self.l1 != 0.0 {
                term = term + t.abs().sum().mul_scalar(self.l1);
            }
            self.total = Some(match self.total.take() {
                Some(acc) => acc + term,
                None => term,
            });
        }
    }
    let mut acc = Acc {
        l1,
        l2,
        total: None,
    };
    module.visit(&mut acc);
    acc.total
}
