//! Adversarial losses on D's logits `r = D(x_real)`, `f = D(G(z))`, each [B, 1]; scalar results.

use crate::config::LossKind;
use burn::tensor::{activation::relu, Tensor};

/// log(1 + eˣ), stable for large |x|.
pub fn softplus(x: Tensor<2>) -> Tensor<2> {
    relu(x.clone()) + x.abs().neg().exp().add_scalar(1.0).log()
}

/// Binary cross-entropy with logits against target t: t·softplus(−x) + (1 − t)·softplus(x).
/// A target of exactly 1 or 0 (no label smoothing) keeps only its term: the other is multiplied by
/// zero, and adding that zero leaves every bit of a finite loss and of its gradient as it was (but
/// the sign of a gradient that underflows to zero, which no sum downstream can see), at half the
/// ops (10 of the 19 tensor ops, and their backward steps, on every D and G update).
fn bce(x: Tensor<2>, target: f64) -> Tensor<1> {
    if target == 1.0 {
        return softplus(x.neg()).mean();
    }
    if target == 0.0 {
        return softplus(x).mean();
    }
    bce_terms(x, target)
}

/// Both terms of the binary cross-entropy, for any target.
fn bce_terms(x: Tensor<2>, target: f64) -> Tensor<1> {
    let pos = softplus(x.clone().neg()).mul_scalar(target);
    let neg = softplus(x).mul_scalar(1.0 - target);
    (pos + neg).mean()
}

/// The discriminator's loss. `smooth` is one-sided label smoothing (real target 1 − smooth) for the
/// BCE and least-squares losses; the others have no labels to smooth.
pub fn d_loss(kind: LossKind, r: Tensor<2>, f: Tensor<2>, smooth: f64) -> Tensor<1> {
    let real_target = 1.0 - smooth;
    match kind {
        LossKind::NonSaturating | LossKind::Minimax => bce(r, real_target) + bce(f, 0.0),
        LossKind::Wasserstein => f.mean() - r.mean(),
        LossKind::Hinge => relu(r.neg().add_scalar(1.0)).mean() + relu(f.add_scalar(1.0)).mean(),
        LossKind::LeastSquares => (r.sub_scalar(real_target).powi_scalar(2).mean()
            + f.powi_scalar(2).mean())
        .mul_scalar(0.5),
        LossKind::RelativisticAverage => {
            let (rr, ff) = relativistic(r, f);
            bce(rr, real_target) + bce(ff, 0.0)
        }
    }
}

/// The generator's loss; `r` is only read by the relativistic loss.
pub fn g_loss(kind: LossKind, r: Tensor<2>, f: Tensor<2>) -> Tensor<1> {
    match kind {
        LossKind::NonSaturating => bce(f, 1.0),
        // minimise log(1 − σ(f)) = −softplus(f)
        LossKind::Minimax => softplus(f).mean().neg(),
        LossKind::Wasserstein | LossKind::Hinge => f.mean().neg(),
        LossKind::LeastSquares => f.sub_scalar(1.0).powi_scalar(2).mean().mul_scalar(0.5),
        LossKind::RelativisticAverage => {
            let (rr, ff) = relativistic(r, f);
            bce(rr, 0.0) + bce(ff, 1.0)
        }
    }
}

/// r − E[f] and f − E[r] (Jolicoeur-Martineau 2018).
fn relativistic(r: Tensor<2>, f: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let mr = r.clone().mean().unsqueeze();
    let mf = f.clone().mean().unsqueeze();
    (r.sub(mf), f.sub(mr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// The one-term BCE of a 0 or 1 target against both terms: the same bits in the loss and in
    /// the gradient it sends back, for logits from −100 to 100, where exp underflows and a gradient
    /// is zero: both terms give it +0 (+0 added), one term −0 there, so zeros compare unsigned.
    #[test]
    fn one_term_bce_is_both_terms_bit_for_bit() {
        let device = Device::flex().autodiff();
        let v: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5).powi(3) / 300.0).collect();
        assert!(v.iter().any(|x| *x < -90.0) && v.iter().any(|x| *x > 90.0));
        for target in [0.0, 1.0] {
            let run = |f: fn(Tensor<2>, f64) -> Tensor<1>| {
                let x = Tensor::<2>::from_data(TensorData::new(v.clone(), [64, 1]), &device)
                    .require_grad();
                let loss = f(x.clone(), target);
                let grads = loss.backward();
                let g = x.grad(&grads).expect("x has a gradient");
                let bits = |t: TensorData| -> Vec<u32> {
                    t.convert::<f32>()
                        .as_slice::<f32>()
                        .unwrap()
                        .iter()
                        .map(|x| if *x == 0.0 { 0 } else { x.to_bits() })
                        .collect()
                };
                (bits(loss.into_data()), bits(g.into_data()))
            };
            assert_eq!(run(bce), run(bce_terms), "target {target}");
        }
    }
}
