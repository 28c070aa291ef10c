//! Exponential moving average of generator weights, kept off the autodiff graph. The EMA copy is
//! what sampling and export use; BatchNorm running statistics come from the live generator.

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
                Some(old) if !copy => old.mul_scalar(self.decay) + cur.mul_scalar(1.0 - self.decay),
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
