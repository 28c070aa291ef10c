//! Gradient clipping by the *global* norm over all of a network's parameters (as
//! `torch.nn.utils.clip_grad_norm_`; burn's own `Norm` clipping is per tensor), and WGAN weight clipping.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// √Σ‖g‖² over the gradients of `module`'s parameters.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    // Summed as tensors and read once: one device sync per network, not one per parameter.
    struct Sq<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Sq<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.powi_scalar(2).sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut sq = Sq { grads, total: None };
    module.visit(&mut sq);
    sq.total
        .map(|t| t.into_scalar::<f64>().sqrt())
        .unwrap_or(0.0)
}

/// √Σ‖θ‖² over `module`'s parameters (the watchdog's runaway check).
pub fn param_norm<M: Module>(module: &M) -> f64 {
    struct Sq(Option<Tensor<1>>);
    impl ModuleVisitor for Sq {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let t = if t.is_autodiff() { t.inner() } else { t };
            let s = t.powi_scalar(2).sum();
            self.0 = Some(match self.0.take() {
                Some(acc) => acc + s,
                None => s,
            });
        }
    }
    let mut sq = Sq(None);
    module.visit(&mut sq);
    sq.0.map(|t| t.into_scalar::<f64>().sqrt()).unwrap_or(0.0)
}

/// Scales every gradient by min(1, max_norm / global_norm); returns the norm before clipping.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_norm(module, grads);
    if norm > max_norm && norm.is_finite() {
        let scale = max_norm / (norm + 1e-12);
        struct Scale<'a> {
            grads: &'a mut GradientsParams,
            scale: f64,
        }
        impl ModuleVisitor for Scale<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(g) = self.grads.remove::<D>(param.id) {
                    self.grads.register(param.id, g.mul_scalar(self.scale));
                }
            }
        }
        module.visit(&mut Scale { grads, scale });
    }
    norm
}

/// The global gradient norm before clipping, clipping to `max_norm` when it is > 0 (0 = off).
pub fn clip_if_set<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    if max_norm > 0.0 {
        clip_global_norm(module, grads, max_norm)
    } else {
        global_norm(module, grads)
    }
}

/// Clamps every float parameter to [−c, c]. The result is rebuilt as a fresh leaf: clamping a
/// tracked parameter in place would leave a non-leaf the optimizer silently skips.
pub fn clip_weights<M: Module>(module: M, c: f64) -> M {
    struct Clamp(f64);
    impl ModuleMapper for Clamp {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let c = self.0;
            param.map(|t| {
                let tracked = t.is_require_grad();
                let v = Tensor::from_inner(t.inner().clamp(-c, c));
                if tracked {
                    v.require_grad()
                } else {
                    v
                }
            })
        }
    }
    module.map(&mut Clamp(c))
}
