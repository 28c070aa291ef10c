//! Adversarial losses on D's logits `r = D(x_real)`, `f = D(G(z))`, each [B, 1]; scalar results.

use crate::config::LossKind;
use burn::tensor::{activation::relu, Tensor};

/// log(1 + eˣ), stable for large |x|.
pub fn softplus(x: Tensor<2>) -> Tensor<2> {
    relu(x.clone()) + x.abs().neg().exp().add_scalar(1.0).log()
}

/// Binary cross-entropy with logits against target t: t·softplus(−x) + (1 − t)·softplus(x).
fn bce(x: Tensor<2>, target: f64) -> Tensor<1> {
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
