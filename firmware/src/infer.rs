//! One sample through the int8 program: latent, layers, output — in a caller-owned arena.

use crate::kernels::{conv::conv, dense::dense, table, Kernel};
use crate::kq8::{Layer, Model};
use crate::{latent, Error};

/// The activation memory: two i8 ping-pong buffers of `model.max_width` and `model.max_in / 2`
/// words for the unpacked dense input. On the device these are statics sized at build time.
pub struct Arena<'b> {
    pub a: &'b mut [i8],
    pub b: &'b mut [i8],
    pub x16: &'b mut [u32],
}

impl Model<'_> {
    /// Bytes of arena this model needs (the three buffers together).
    pub fn arena_bytes(&self) -> usize {
        2 * self.max_width + 2 * self.max_in
    }

    /// Sample `index` of `class` for `seed`: `channels × length` int8 values, channel-major.
    pub fn generate<'s>(
        &self,
        class: u16,
        seed: u64,
        index: u32,
        arena: &'s mut Arena<'_>,
        kernel: Kernel,
    ) -> Result<&'s [i8], Error> {
        self.generate_observed(class, seed, index, arena, kernel, &mut |_, _| {})
    }

    /// [`Model::generate`], showing `observe` each stage: 0 is the latent, `k + 1` the output of
    /// layer `k` (padded width). The quantizer measures per-layer error with it. (`dyn`, so this
    /// loop is compiled once, with this crate's optimisation level, not in every caller.)
    pub fn generate_observed<'s>(
        &self,
        class: u16,
        seed: u64,
        index: u32,
        arena: &'s mut Arena<'_>,
        kernel: Kernel,
        observe: &mut dyn FnMut(usize, &[i8]),
    ) -> Result<&'s [i8], Error> {
        let h = &self.header;
        let have = arena.a.len().min(arena.b.len());
        if have < self.max_width || arena.x16.len() * 2 < self.max_in {
            let have = (2 * have + 4 * arena.x16.len()) as u32;
            return Err(Error::ArenaTooSmall {
                need: self.arena_bytes() as u32,
                have,
            });
        }
        if class >= h.classes.max(1) {
            return Err(Error::BadClass {
                class,
                classes: h.classes,
            });
        }
        let first_in = match self.layer(0)? {
            Layer::Dense(d) => d.in_dim,
            Layer::Table { .. } | Layer::Conv(_) => {
                return Err(Error::BadLayer {
                    layer: 0,
                    field: "kind",
                })
            }
        };
        let latent = h.latent as usize;
        let mut rng = latent::sample_rng(seed, class, index);
        latent::fill(self, &mut rng, &mut arena.a[..latent]);
        arena.a[latent..first_in].fill(h.input_zp);
        observe(0, &arena.a[..latent]);

        let mut in_a = true;
        for i in 0..h.layer_count {
            let (src, dst) = if in_a {
                (&mut *arena.a, &mut *arena.b)
            } else {
                (&mut *arena.b, &mut *arena.a)
            };
            match self.layer(i)? {
                Layer::Dense(d) => {
                    let row = if i == 0 { class as usize } else { 0 };
                    dense(&d, row, src, arena.x16, dst, kernel);
                    observe(i as usize + 1, &dst[..d.out_dim]);
                    in_a = !in_a;
                }
                Layer::Conv(c) => {
                    // The output column lives in the input's buffer, after the input (the model
                    // sized `max_width` for it).
                    let too_small = Error::ArenaTooSmall {
                        need: self.arena_bytes() as u32,
                        have: src.len() as u32,
                    };
                    let (x, rest) = split(src, c.in_width()).ok_or(too_small)?;
                    let column = rest.get_mut(..c.dense.out_dim).ok_or(too_small)?;
                    let out = dst.get_mut(..c.out_width()).ok_or(too_small)?;
                    let x16 = arena.x16.get_mut(..c.x16_words()).ok_or(too_small)?;
                    conv(&c, x, column, x16, out, kernel);
                    observe(i as usize + 1, out);
                    in_a = !in_a;
                }
                Layer::Table { width, table } => {
                    table::apply(table, &mut src[..width]);
                    observe(i as usize + 1, &src[..width]);
                }
            }
        }
        let out = if in_a { &arena.a } else { &arena.b };
        Ok(&out[..h.outputs()])
    }
}

/// `s` cut at `at`, or `None` when it is shorter.
fn split(s: &mut [i8], at: usize) -> Option<(&mut [i8], &mut [i8])> {
    (at <= s.len()).then(|| s.split_at_mut(at))
}
