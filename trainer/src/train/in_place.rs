//! f32 tensors as plain slices, for the element-wise updates burn would run as a chain of tensor
//! ops (Adam, the EMA). On burn's flex backend the buffer is used where it lies — changed in place
//! when nothing else holds it, copied once when something does; on other backends (wgpu, cuda)
//! through `TensorData`, a copy each way.

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{Device, Shape, Tensor, TensorData};

pub enum Slab<const D: usize> {
    Flex(FlexTensor),
    Host(Vec<f32>, Shape, Device),
}

impl<const D: usize> Slab<D> {
    /// Takes `t` (not an autodiff tensor; Keel's parameters are f32).
    pub fn new(t: Tensor<D>) -> Self {
        if t.device() == Device::flex() && !t.is_autodiff() {
            let f = t
                .try_into_primitive::<Flex>()
                .expect("a tensor on the flex device is a flex tensor");
            let whole = f.is_contiguous()
                && f.layout().start_offset() == 0
                && f.bytes().len() == f.layout().num_elements() * 4;
            return Self::Flex(if whole { f } else { f.to_contiguous() });
        }
        let (shape, device) = (t.shape(), t.device());
        let v = t
            .into_data()
            .try_into_vec::<f32>()
            .expect("Keel's parameters are f32");
        Self::Host(v, shape, device)
    }

    pub fn values(&self) -> &[f32] {
        match self {
            Self::Flex(f) => f.storage::<f32>(),
            Self::Host(v, ..) => v,
        }
    }

    /// Mutable values (a flex buffer that is shared is copied first).
    pub fn values_mut(&mut self) -> &mut [f32] {
        match self {
            Self::Flex(f) => f.storage_mut::<f32>(),
            Self::Host(v, ..) => v,
        }
    }

    pub fn into_tensor(self) -> Tensor<D> {
        match self {
            Self::Flex(f) => Tensor::from_primitive::<Flex>(f),
            Self::Host(v, shape, device) => Tensor::from_data(TensorData::new(v, shape), &device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_read_as_its_own_elements_and_changes_do_not_reach_the_original() {
        let device = Device::flex();
        let t = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &device);
        // A narrowed view shares the buffer at an offset: it is copied, and the original stays.
        let view = t.clone().narrow(0, 2, 3);
        let mut s = Slab::new(view);
        assert_eq!(s.values(), &[3.0, 4.0, 5.0]);
        s.values_mut()[0] = 30.0;
        let changed = s.into_tensor();
        assert_eq!(
            changed.into_data().try_to_vec::<f32>().unwrap(),
            [30.0, 4.0, 5.0]
        );
        // A shared whole buffer: copied on write.
        let mut s = Slab::new(t.clone());
        s.values_mut()[0] = 10.0;
        assert_eq!(
            s.into_tensor().into_data().try_to_vec::<f32>().unwrap()[0],
            10.0
        );
        assert_eq!(
            t.into_data().try_to_vec::<f32>().unwrap(),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
    }
}
