//! The on-device augmenter: labelled windows from the int8 generator for an application's own use
//! (a learner that adapts to its user, say) — into a caller-owned buffer, one at a time, as an
//! iterator of owned windows, or through a `heapless::spsc::Queue` so that the generator and its
//! consumer can run at different rates (the generator in the main loop, the consumer in a task).
//!
//! Window `(class, index)` is the same on every target and in any order: its latent is seeded from
//! the augmenter's seed, the class and the index alone ([`crate::latent`]).
//!
//! ```
//! # fn main() -> Result<(), keel_firmware::Error> {
//! # use keel_firmware::kq8::{self, DenseSpec, LayerSpec, Spec, CDF_ENTRIES};
//! # let mut cdf = [0u32; CDF_ENTRIES];
//! # for (k, t) in cdf.iter_mut().enumerate() {
//! #     *t = ((k as u64 + 1) * u32::MAX as u64 / 256) as u32;
//! # }
//! # let (w, bias, mult, shift) = ([3i8; 32], [0i32; 16], [1i32 << 30; 8], [-2i8; 8]);
//! # let layers = [LayerSpec::Dense(DenseSpec {
//! #     in_dim: 4, out_dim: 8, relu: false, out_zp: 0,
//! #     weights: &w, bias: &bias, mult: &mult, shift: &shift,
//! # })];
//! # let spec = Spec {
//! #     latent: 2, classes: 2, channels: 2, length: 4, input_zp: 0, output_zp: 0,
//! #     input_scale: 0.1, output_scale: 0.1, cdf: &cdf, denorm: &[(1.0, 0.0); 2],
//! #     meta: b"{}", layers: &layers,
//! # };
//! # let mut bytes = Vec::new();
//! # kq8::write(&mut bytes, &spec)?;
//! use keel_firmware::{augment::Augmenter, Arena, Kernel, Model};
//!
//! let model = Model::parse(&bytes)?;
//! // The arena: on a device, statics sized at build time from the model.
//! let (mut a, mut b, mut x16) = ([0i8; 64], [0i8; 64], [0u32; 32]);
//! let mut arena = Arena { a: &mut a, b: &mut b, x16: &mut x16 };
//! let mut aug = Augmenter::new(&model, &mut arena, Kernel::Scalar, 7)?;
//!
//! // One window of class 1, in real units (channel-major).
//! let mut window = [0f32; 8];
//! aug.window(1, 0, &mut window)?;
//!
//! // Ten more of class 0 as owned int8 windows.
//! for w in aug.windows::<8>(0, 0..10) {
//!     let w = w?;
//!     assert_eq!((w.class, w.values.len()), (0, 8));
//! }
//!
//! // A producer fills a queue as far as it has room; a consumer drains it at its own pace.
//! // (heapless 0.9: a queue of N slots holds N − 1.)
//! let mut queue = heapless::spsc::Queue::<keel_firmware::augment::Window<8>, 5>::new();
//! let (mut producer, mut consumer) = queue.split();
//! let mut next = 0;
//! let made = aug.fill(1, &mut next, &mut producer)?;
//! assert_eq!((made, next), (4, 4));
//! while let Some(w) = consumer.dequeue() {
//!     assert_eq!(w.class, 1);
//! }
//! # Ok(())
//! # }
//! ```

use crate::infer::Arena;
use crate::kernels::Kernel;
use crate::kq8::Model;
use crate::learn::Features;
use crate::Error;
use core::ops::Range;
use heapless::spsc::Producer;

/// One generated window: its class and index, and `channels × length` int8 values,
/// channel-major (`Model::to_real` turns a value into real units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window<const N: usize> {
    pub class: u16,
    pub index: u32,
    pub values: heapless::Vec<i8, N>,
}

/// Windows of a model for one seed, generated in a borrowed arena.
pub struct Augmenter<'m, 'a, 'b> {
    model: &'m Model<'m>,
    arena: &'a mut Arena<'b>,
    kernel: Kernel,
    seed: u64,
}

impl<'m, 'a, 'b> Augmenter<'m, 'a, 'b> {
    /// Refuses an arena too small for the model (every later call can then only fail on its
    /// own arguments).
    pub fn new(
        model: &'m Model<'m>,
        arena: &'a mut Arena<'b>,
        kernel: Kernel,
        seed: u64,
    ) -> Result<Self, Error> {
        let have = arena.a.len().min(arena.b.len());
        if have < model.max_width || arena.x16.len() * 2 < model.max_in {
            return Err(Error::ArenaTooSmall {
                need: model.arena_bytes() as u32,
                have: (arena.a.len() + arena.b.len() + 4 * arena.x16.len()) as u32,
            });
        }
        Ok(Self {
            model,
            arena,
            kernel,
            seed,
        })
    }

    /// `(channels, length)` of a window.
    pub fn shape(&self) -> (usize, usize) {
        let h = &self.model.header;
        (h.channels as usize, h.length as usize)
    }

    /// The classes the model generates (0 for an unconditional model, whose class is 0).
    pub fn classes(&self) -> u16 {
        self.model.header.classes
    }

    /// Window `index` of `class` into `out` (exactly `channels × length` values), int8.
    pub fn window_i8(&mut self, class: u16, index: u32, out: &mut [i8]) -> Result<(), Error> {
        let values = self.generate(class, index, out.len())?;
        out.copy_from_slice(values);
        Ok(())
    }

    /// Window `index` of `class` into `out` (exactly `channels × length` values), in the real
    /// units of the training data (the model's per-channel de-normalisation).
    pub fn window(&mut self, class: u16, index: u32, out: &mut [f32]) -> Result<(), Error> {
        let model = self.model;
        let length = model.header.length as usize;
        let values = self.generate(class, index, out.len())?;
        for (i, (o, &q)) in out.iter_mut().zip(values).enumerate() {
            *o = model.to_real(i / length.max(1), q);
        }
        Ok(())
    }

    /// A real-unit window (`channels × length`, channel-major) on the generator's int8 scale, so
    /// that it can sit beside generated ones (in a [`crate::learn::Store`], say).
    pub fn quantize(&self, real: &[f32], out: &mut [i8]) -> Result<(), Error> {
        let need = self.model.header.outputs();
        if real.len() != need || out.len() != need {
            return Err(Error::BadShape {
                need: need as u32,
                have: real.len().min(out.len()) as u32,
            });
        }
        let length = (self.model.header.length as usize).max(1);
        for (i, (o, &v)) in out.iter_mut().zip(real).enumerate() {
            *o = self.model.quantize(i / length, v);
        }
        Ok(())
    }

    /// A feature extractor for this model's windows, its biases fitted on generated windows
    /// (window `i` of class `i mod classes`, indices from `u32::MAX` down, apart from those an
    /// application draws from 0 up); `scratch` holds one window.
    pub fn features(&mut self, seed: u64, scratch: &mut [i8]) -> Result<Features, Error> {
        self.features_observed(seed, scratch, &mut |_| {})
    }

    /// [`Augmenter::features`], telling `observe` before each fit window is generated (and
    /// once at the end), so that a board can count instructions one window at a time.
    pub fn features_observed(
        &mut self,
        seed: u64,
        scratch: &mut [i8],
        observe: &mut dyn FnMut(usize),
    ) -> Result<Features, Error> {
        let (channels, length) = self.shape();
        let zero = self.model.header.output_zp;
        let classes = self.classes().max(1) as usize;
        let f = Features::fit(channels, length, zero, seed, scratch, &mut |i, buf| {
            observe(i);
            let class = (i % classes) as u16;
            self.window_i8(class, u32::MAX - i as u32, buf)
        });
        observe(crate::learn::features::FIT_WINDOWS);
        f
    }

    /// Windows `indices` of `class`, each owned (`N` ≥ `channels × length`).
    pub fn windows<'s, const N: usize>(
        &'s mut self,
        class: u16,
        indices: Range<u32>,
    ) -> Windows<'s, 'm, 'a, 'b, N> {
        Windows {
            augmenter: self,
            class,
            indices,
        }
    }

    /// Enqueues windows `next, next + 1, …` of `class` until the queue is full; advances `next`
    /// past the last one enqueued and returns how many were.
    pub fn fill<const N: usize>(
        &mut self,
        class: u16,
        next: &mut u32,
        queue: &mut Producer<'_, Window<N>>,
    ) -> Result<usize, Error> {
        let mut made = 0;
        while queue.ready() {
            let w = self.owned::<N>(class, *next)?;
            // `ready` said there is room, and only this producer enqueues.
            if queue.enqueue(w).is_err() {
                break;
            }
            *next = next.wrapping_add(1);
            made += 1;
        }
        Ok(made)
    }

    fn owned<const N: usize>(&mut self, class: u16, index: u32) -> Result<Window<N>, Error> {
        let need = self.model.header.outputs();
        if N < need {
            return Err(Error::BadShape {
                need: need as u32,
                have: N as u32,
            });
        }
        let values = self.generate(class, index, need)?;
        let values = heapless::Vec::from_slice(values).map_err(|_| Error::BadShape {
            need: need as u32,
            have: N as u32,
        })?;
        Ok(Window {
            class,
            index,
            values,
        })
    }

    /// The int8 values of a window, once `len` is checked against the model's window size.
    fn generate(&mut self, class: u16, index: u32, len: usize) -> Result<&[i8], Error> {
        let need = self.model.header.outputs();
        if len != need {
            return Err(Error::BadShape {
                need: need as u32,
                have: len as u32,
            });
        }
        self.model
            .generate(class, self.seed, index, self.arena, self.kernel)
    }
}

/// The iterator of [`Augmenter::windows`]: a failed window ends it after yielding the error.
pub struct Windows<'s, 'm, 'a, 'b, const N: usize> {
    augmenter: &'s mut Augmenter<'m, 'a, 'b>,
    class: u16,
    indices: Range<u32>,
}

impl<const N: usize> Iterator for Windows<'_, '_, '_, '_, N> {
    type Item = Result<Window<N>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let index = self.indices.next()?;
        let w = self.augmenter.owned::<N>(self.class, index);
        if w.is_err() {
            self.indices = self.indices.end..self.indices.end;
        }
        Some(w)
    }
}
