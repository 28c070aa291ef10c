//! Spectral normalisation (Miyato et al. 2018): W / σ(W), σ from power iteration with a persistent vector.

use burn::tensor::Tensor;

/// One power-iteration step on the detached weight `w` ([in, out]) from `u` ([out]); returns the new,
/// unit-norm `u` and `v` ([in]).
pub fn power_iteration(w: &Tensor<2>, u: Tensor<1>, iters: usize) -> (Tensor<1>, Tensor<1>) {
    let w = w.clone().detach();
    let [d_in, d_out] = w.dims();
    let mut u = u.reshape([d_out, 1]);
    let mut v = Tensor::<2>::zeros([d_in, 1], &w.device());
    for _ in 0..iters.max(1) {
        v = normalize(w.clone().matmul(u));
        u = normalize(w.clone().transpose().matmul(v.clone()));
    }
    (u.reshape([d_out]), v.reshape([d_in]))
}

/// σ = vᵀ W u, in the graph of `w` (u and v are constants, as in the paper).
pub fn spectral_sigma(w: &Tensor<2>, u: &Tensor<1>, v: &Tensor<1>) -> Tensor<1> {
    let [d_in, d_out] = w.dims();
    let wu = w.clone().matmul(u.clone().reshape([d_out, 1]));
    v.clone().reshape([1, d_in]).matmul(wu).reshape([1])
}

fn normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum().sqrt().add_scalar(1e-12);
    x.div(norm.unsqueeze())
}
