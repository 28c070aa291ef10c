//! Parameter ids in build order. burn draws each id from the OS's entropy, writes it into every
//! `.bpk` and keys optimizer state by it: numbered ids make same-seed runs write identical files,
//! and a resumed run's files identical to an uninterrupted run's.

use burn::module::{Module, ModuleMapper, Param, ParamId, RunningState};
use burn::tensor::Tensor;

/// First id of the generator's parameters and of the discriminator's (disjoint ranges).
pub const GENERATOR_IDS: u64 = 1 << 32;
pub const DISCRIMINATOR_IDS: u64 = 2 << 32;
/// Offset of running states (BatchNorm statistics, spectral-norm vectors) within a range.
const RUNNING: u64 = 1 << 24;

/// `module` with its trainable parameters numbered `base`, `base + 1`, … in visiting order.
pub fn number_params<M: Module>(module: M, base: u64) -> M {
    struct Number(u64);
    impl ModuleMapper for Number {
        fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.id = ParamId::from(self.0);
            self.0 += 1;
            param
        }
    }
    module.map(&mut Number(base))
}

/// A running state's value under the `k`-th running-state id of the range at `base` (burn's
/// mappers cannot renumber running states).
pub fn numbered_state<const D: usize>(
    s: &RunningState<Tensor<D>>,
    base: u64,
    k: usize,
) -> RunningState<Tensor<D>> {
    RunningState::with_id(ParamId::from(base + RUNNING + k as u64), s.value())
}
