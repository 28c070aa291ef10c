//! Exponential moving average of generator weights, kept off the autodiff graph. The EMA copy is
//! what sampling and export use; BatchNorm running statistics come from the live generator.

use super::in_place::Slab;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use std::collections::HashMap;

#[derive(Clone)]
pub struct Ema {
    pub decay: f64,
    values: HashMap<ParamId, Tensor<1>>,
}

impl Ema {
    /// Starts as an exact copy of `module`.
    pub fn new<M: Module>(module: &M, decay: f64) -> Self {
        Self {
            decay,
            values: flatten(module),
        }
    }

    /// θ_ema ← β·θ_ema + (1 − β)·θ. With `copy`, θ_ema ← θ (before the EMA starts).
    pub fn update<M: Module>(&mut self, module: &M, copy: bool) {
        let current = flatten(module);
        for (id, cur) in current {
            let next = match self.values.remove(&id) {
                Some(old) if !copy => average(old, cur, self.decay),
                _ => cur,
            };
            self.values.insert(id, next);
        }
    }

    /// `module` (on the inner backend) with its parameters replaced by the averages.
    pub fn apply<M: Module>(&self, module: M) -> M {
        struct Replace<'a>(&'a HashMap<ParamId, Tensor<1>>);
        impl ModuleMapper for Replace<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                match self.0.get(&param.id) {
                    Some(v) => {
                        let v = v.clone();
                        param.map(|t| v.reshape(t.shape()))
                    }
                    None => param,
                }
            }
        }
        module.map(&mut Replace(&self.values))
    }
}

/// `old·β + cur·(1 − β)` in one pass, in place where `old` is not shared (a snapshot's copy is):
/// the f32 operations of `old.mul_scalar(β) + cur.mul_scalar(1 − β)`, element by element.
fn average(old: Tensor<1>, cur: Tensor<1>, decay: f64) -> Tensor<1> {
    let (mut o, c) = (Slab::new(old), Slab::new(cur));
    pulp::Arch::new().dispatch(Average {
        old: o.values_mut(),
        cur: c.values(),
        b: decay as f32,
        a: (1.0 - decay) as f32,
    });
    o.into_tensor()
}

/// For `pulp`'s dispatcher: `with_simd` is inlined into its AVX-512 / AVX2 copy.
struct Average<'a> {
    old: &'a mut [f32],
    cur: &'a [f32],
    b: f32,
    a: f32,
}

impl pulp::WithSimd for Average<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for (o, &c) in self.old.iter_mut().zip(self.cur) {
            *o = *o * self.b + c * self.a;
        }
    }
}

fn flatten<M: Module>(module: &M) -> HashMap<ParamId, Tensor<1>> {
    struct Collect(HashMap<ParamId, Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let t = if t.is_autodiff() { t.inner() } else { t };
            let n = t.shape().num_elements();
            self.0.insert(param.id, t.reshape([n]));
        }
    }
    let mut c = Collect(HashMap::new());
    module.visit(&mut c);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn the_one_pass_average_is_burns_tensor_ops_bit_for_bit() {
        let device = Device::flex();
        for decay in [0.999, 0.9, 0.5] {
            let old = Tensor::<1>::random([1000], Distribution::Normal(0.0, 1.0), &device);
            let cur = Tensor::<1>::random([1000], Distribution::Normal(0.0, 3.0), &device);
            let bits = |t: Tensor<1>| -> Vec<u32> {
                let v = t.into_data().try_to_vec::<f32>().unwrap();
                v.iter().map(|x| x.to_bits()).collect()
            };
            let burns = old.clone().mul_scalar(decay) + cur.clone().mul_scalar(1.0 - decay);
            // A snapshot holds `old` too: the average must not change it under the snapshot.
            let snapshot = old.clone();
            let before = bits(snapshot.clone());
            let ours = average(old, cur, decay);
            assert_eq!(bits(ours), bits(burns), "decay {decay}");
            assert_eq!(bits(snapshot), before);
        }
    }
}
