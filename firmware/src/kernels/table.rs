//! An element-wise function (tanh, sigmoid, LeakyReLU, …) as a 256-entry table on the int8 input.

/// `x[i] = table[x[i] + 128]`, in place.
pub fn apply(table: &[u8; 256], x: &mut [i8]) {
    for v in x {
        *v = table[(*v as u8 ^ 0x80) as usize] as i8;
    }
}
