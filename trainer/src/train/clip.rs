//! Gradient clipping by the *global* norm over all of a network's parameters (as
//! `torch.nn.utils.clip_grad_norm_`; burn's own `Norm` clipping is per tensor), and WGAN weight clipping.

use super::in_place::Slab;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// √Σ‖g‖² over the gradients of `module`'s parameters.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    struct Sq<'a> {
        grads: &'a GradientsParams,
        total: f64,
    }
    impl ModuleVisitor for Sq<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.total += sum_of_squares(g);
            }
        }
    }
    let mut sq = Sq { grads, total: 0.0 };
    module.visit(&mut sq);
    sq.total.sqrt()
}

/// √Σ‖θ‖² over `module`'s parameters (the watchdog's runaway check).
pub fn param_norm<M: Module>(module: &M) -> f64 {
    struct Sq(f64);
    impl ModuleVisitor for Sq {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            self.0 += sum_of_squares(if t.is_autodiff() { t.inner() } else { t });
        }
    }
    let mut sq = Sq(0.0);
    module.visit(&mut sq);
    sq.0.sqrt()
}

/// Σx² of a tensor's values, read where they lie. As tensor ops (`powi(2).sum()`) it made a
/// squared copy of every gradient to report a norm the default recipe does not clip with: 2 % of
/// a series step (docs/benchmarks.md). Sixteen f64 partial sums in a fixed order: the same figure
/// at any SIMD width.
fn sum_of_squares<const D: usize>(t: Tensor<D>) -> f64 {
    let slab = Slab::new(t);
    pulp::Arch::new().dispatch(SumSq(slab.values()))
}

/// For `pulp`'s dispatcher: `with_simd` is inlined into its AVX-512 / AVX2 copy.
struct SumSq<'a>(&'a [f32]);

impl pulp::WithSimd for SumSq<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> f64 {
        sum_sq(self.0)
    }
}

/// Σx² in sixteen f64 partial sums added in a fixed order; for loops already inside a `pulp` op.
#[inline(always)]
pub(super) fn sum_sq(v: &[f32]) -> f64 {
    const LANES: usize = 16;
    let mut acc = [0.0f64; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f64::from(x) * f64::from(x);
        }
    }
    for (a, &x) in acc.iter_mut().zip(tail) {
        *a += f64::from(x) * f64::from(x);
    }
    acc.iter().sum()
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
