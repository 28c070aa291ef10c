//! Weight initialisation from our own seeded RNG, so runs are reproducible without touching burn's
//! global device RNG (several trainings may share a process).

use super::discriminator::ConvLayer;
use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use rand_pcg::Pcg64Mcg;

/// PyTorch's default for `nn.Linear`: weight and bias ~ U(−1/√fan_in, 1/√fan_in). Weight is [in, out].
pub fn init_linear(d_in: usize, d_out: usize, rng: &mut Pcg64Mcg, device: &Device) -> Linear {
    let bound = 1.0 / (d_in as f32).sqrt();
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
    let w = draw(d_in * d_out);
    let b = draw(d_out);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d_out]),
            device,
        ))),
    }
}

/// Conv1d weight `[c_out, c_in, k]` and bias ~ U(−1/√fan_in, 1/√fan_in), PyTorch's default (the
/// fan-in is `c_in · k` except where fewer taps meet the input).
pub fn init_conv(
    shape: [usize; 3],
    fan_in: usize,
    rng: &mut Pcg64Mcg,
    device: &Device,
) -> ConvLayer {
    let [c_out, c_in, k] = shape;
    let bound = 1.0 / (fan_in as f32).sqrt();
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
    let w = draw(c_out * c_in * k);
    let b = draw(c_out);
    ConvLayer {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, shape), device)),
        bias: Param::from_tensor(Tensor::from_data(TensorData::new(b, [c_out]), device)),
    }
}
